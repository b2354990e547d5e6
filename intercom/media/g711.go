package media

// A small G.711 codec (ITU-T G.711, the Sun reference algorithm) so the media
// path does not wait for device/'s codecs; it is table-free on encode and
// uses 256-entry decode tables.

const (
	ulawBias = 0x84
	ulawClip = 32635
)

var ulawDecTable, alawDecTable [256]int16

func init() {
	for i := range 256 {
		ulawDecTable[i] = ulawDecode(byte(i))
		alawDecTable[i] = alawDecode(byte(i))
	}
}

func ulawEncode(s int16) byte {
	v := int(s)
	sign := 0
	if v < 0 {
		v = -v
		sign = 0x80
	}
	if v > ulawClip {
		v = ulawClip
	}
	v += ulawBias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

func ulawDecode(u byte) int16 {
	u = ^u
	sign := u & 0x80
	exp := int(u>>4) & 0x07
	mant := int(u & 0x0f)
	v := ((mant << 3) + ulawBias) << exp
	v -= ulawBias
	if sign != 0 {
		return int16(-v)
	}
	return int16(v)
}

func alawEncode(s int16) byte {
	v := int(s) >> 3 // A-law quantises 13-bit magnitudes
	mask := 0xd5     // sign bit set for positive, even bits inverted
	if v < 0 {
		mask = 0x55
		v = -v - 1
	}
	seg := 0
	for seg < 8 && v > alawSegEnd[seg] {
		seg++
	}
	if seg >= 8 {
		return byte(0x7f ^ mask)
	}
	out := seg << 4
	if seg < 2 {
		out |= (v >> 1) & 0x0f
	} else {
		out |= (v >> seg) & 0x0f
	}
	return byte(out ^ mask)
}

var alawSegEnd = [8]int{0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff}

func alawDecode(a byte) int16 {
	a ^= 0x55
	sign := a & 0x80
	seg := int(a>>4) & 0x07
	v := int(a&0x0f)<<4 + 8
	if seg > 0 {
		v = (v + 0x100) << (seg - 1)
	}
	if sign != 0 {
		return int16(v)
	}
	return int16(-v)
}

// encodeG711 appends the G.711 encoding of pcm (payload type ptPCMU or
// ptPCMA) to dst.
func encodeG711(dst []byte, pcm []int16, pt uint8) []byte {
	if pt == ptPCMA {
		for _, s := range pcm {
			dst = append(dst, alawEncode(s))
		}
		return dst
	}
	for _, s := range pcm {
		dst = append(dst, ulawEncode(s))
	}
	return dst
}

// decodeG711 appends the PCM decoding of payload to dst.
func decodeG711(dst []int16, payload []byte, pt uint8) []int16 {
	table := &ulawDecTable
	if pt == ptPCMA {
		table = &alawDecTable
	}
	for _, b := range payload {
		dst = append(dst, table[b])
	}
	return dst
}
