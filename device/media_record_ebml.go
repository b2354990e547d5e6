package device

import (
	"encoding/binary"
	"math"
)

// A minimal EBML (Matroska) element writer: just what MKVRecorder needs.

// Matroska element IDs (with their length marker bits, as written).
const (
	ebmlHeaderID          = 0x1A45DFA3
	ebmlVersionID         = 0x4286
	ebmlReadVersionID     = 0x42F7
	ebmlMaxIDLengthID     = 0x42F2
	ebmlMaxSizeLengthID   = 0x42F3
	ebmlDocTypeID         = 0x4282
	ebmlDocTypeVersionID  = 0x4287
	ebmlDocTypeReadVerID  = 0x4285
	mkvSegmentID          = 0x18538067
	mkvInfoID             = 0x1549A966
	mkvTimestampScaleID   = 0x2AD7B1
	mkvMuxingAppID        = 0x4D80
	mkvWritingAppID       = 0x5741
	mkvDurationID         = 0x4489
	mkvDateUTCID          = 0x4461
	mkvTitleID            = 0x7BA9
	mkvTracksID           = 0x1654AE6B
	mkvTrackEntryID       = 0xAE
	mkvTrackNumberID      = 0xD7
	mkvTrackUIDID         = 0x73C5
	mkvTrackTypeID        = 0x83
	mkvFlagLacingID       = 0x9C
	mkvFlagDefaultID      = 0x88
	mkvNameID             = 0x536E
	mkvCodecIDID          = 0x86
	mkvCodecPrivateID     = 0x63A2
	mkvVideoID            = 0xE0
	mkvPixelWidthID       = 0xB0
	mkvPixelHeightID      = 0xBA
	mkvAudioID            = 0xE1
	mkvSamplingFreqID     = 0xB5
	mkvChannelsID         = 0x9F
	mkvBitDepthID         = 0x6264
	mkvClusterID          = 0x1F43B675
	mkvClusterTimestampID = 0xE7
	mkvSimpleBlockID      = 0xA3
)

// ebmlUnknownSize is the 8-byte "size unknown" value: used for the Segment
// and Clusters so a recording cut short (crash, power loss) stays playable.
var ebmlUnknownSize = []byte{0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

func ebmlAppendID(b []byte, id uint32) []byte {
	switch {
	case id >= 1<<24:
		return append(b, byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<16:
		return append(b, byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<8:
		return append(b, byte(id>>8), byte(id))
	}
	return append(b, byte(id))
}

// ebmlAppendSize appends n as the shortest EBML variable-length integer
// (the all-ones value of each length is reserved for "unknown").
func ebmlAppendSize(b []byte, n uint64) []byte {
	for l := 1; l <= 8; l++ {
		if n < 1<<(7*l)-1 {
			v := n | 1<<(7*l)
			for i := l - 1; i >= 0; i-- {
				b = append(b, byte(v>>(8*i)))
			}
			return b
		}
	}
	return ebmlAppendSize8(b, n) // not reached for in-memory payloads
}

// ebmlAppendSize8 appends n as an 8-byte size, so it can be patched later.
func ebmlAppendSize8(b []byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64(b, n|1<<56)
}

func ebmlElem(b []byte, id uint32, payload []byte) []byte {
	b = ebmlAppendID(b, id)
	b = ebmlAppendSize(b, uint64(len(payload)))
	return append(b, payload...)
}

func ebmlUint(b []byte, id uint32, v uint64) []byte {
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], v)
	i := 0
	for i < 7 && p[i] == 0 {
		i++
	}
	return ebmlElem(b, id, p[i:])
}

func ebmlInt(b []byte, id uint32, v int64) []byte {
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], uint64(v))
	return ebmlElem(b, id, p[:])
}

func ebmlFloat(b []byte, id uint32, v float64) []byte {
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], math.Float64bits(v))
	return ebmlElem(b, id, p[:])
}

func ebmlString(b []byte, id uint32, s string) []byte { return ebmlElem(b, id, []byte(s)) }
