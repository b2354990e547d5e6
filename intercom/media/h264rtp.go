package media

import (
	"bytes"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// rtpPayloadMTU leaves room for SRTP, the header extension and IPv6/UDP
// inside a 1280-byte path MTU.
const rtpPayloadMTU = 1150

// h264Packetizer turns access units into RTP packets. The RTP timestamp is
// derived from each unit's capture time, so gaps (mute, dropped frames) keep
// real time and the receiver's jitter figures stay meaningful.
type h264Packetizer struct {
	payloader codecs.H264Payloader
	seq       uint16
	tsBase    uint32
	t0        time.Time
}

func newH264Packetizer() *h264Packetizer {
	return &h264Packetizer{seq: uint16(randUint32()), tsBase: randUint32()}
}

// packetize returns the RTP packets of one access unit; the first carries
// the abs-capture-time extension when absID is non-zero.
func (p *h264Packetizer) packetize(au []byte, capture time.Time, absID uint8) []*rtp.Packet {
	if p.t0.IsZero() {
		p.t0 = capture
	}
	ts := p.tsBase + uint32(capture.Sub(p.t0)*90000/time.Second)
	payloads := p.payloader.Payload(rtpPayloadMTU, au)
	pkts := make([]*rtp.Packet, 0, len(payloads))
	for i, pl := range payloads {
		pkt := &rtp.Packet{
			Header: rtp.Header{
				Version:        2,
				Marker:         i == len(payloads)-1,
				SequenceNumber: p.seq,
				Timestamp:      ts,
			},
			Payload: pl,
		}
		p.seq++
		if i == 0 && absID != 0 {
			if ext, err := rtp.NewAbsCaptureTimeExtension(capture).Marshal(); err == nil {
				_ = pkt.Header.SetExtension(absID, ext)
			}
		}
		pkts = append(pkts, pkt)
	}
	return pkts
}

// h264Frame is one reassembled access unit.
type h264Frame struct {
	data     []byte // Annex-B
	keyframe bool
	capture  time.Time // zero when the sender did not stamp it
	complete time.Time // when its last packet arrived
}

type pendingFrame struct {
	ts      uint32
	pkts    []*rtp.Packet // sorted by sequence number
	marker  bool
	first   time.Time
	capture time.Time
}

// h264Assembler rebuilds access units from RTP packets as soon as a frame's
// last packet is in — unlike pion's samplebuilder, which holds every frame
// until the next frame's first packet arrives, a whole frame interval (66 ms
// at 15 fps) of added latency. It tolerates reordering and NACK
// retransmissions, emits frames in order, and reports when a frame had to be
// given up so the caller can ask for a keyframe.
type h264Assembler struct {
	absID    uint8
	maxWait  time.Duration // how long an incomplete frame may hold back newer ones
	pending  []*pendingFrame
	lastSeq  uint16 // last sequence number of the newest resolved frame
	haveLast bool
}

func newH264Assembler(absID uint8) *h264Assembler {
	return &h264Assembler{absID: absID, maxWait: 150 * time.Millisecond}
}

func seqLess(a, b uint16) bool { return int16(a-b) < 0 }
func tsLess(a, b uint32) bool  { return int32(a-b) < 0 }

// push adds a packet and returns the frames it completed, in order, and how
// many frames were given up as lost.
func (a *h264Assembler) push(p *rtp.Packet, now time.Time) (out []h264Frame, lost int) {
	if a.haveLast && !seqLess(a.lastSeq, p.SequenceNumber) {
		return nil, 0 // late duplicate or retransmission of a resolved frame
	}
	var f *pendingFrame
	idx := len(a.pending)
	for i, pf := range a.pending {
		if pf.ts == p.Timestamp {
			f = pf
			break
		}
		if tsLess(p.Timestamp, pf.ts) {
			idx = i
			break
		}
	}
	if f == nil {
		f = &pendingFrame{ts: p.Timestamp, first: now}
		a.pending = append(a.pending, nil)
		copy(a.pending[idx+1:], a.pending[idx:])
		a.pending[idx] = f
	}
	// Insert in sequence order, dropping duplicates.
	j := len(f.pkts)
	for j > 0 && seqLess(p.SequenceNumber, f.pkts[j-1].SequenceNumber) {
		j--
	}
	if j > 0 && f.pkts[j-1].SequenceNumber == p.SequenceNumber {
		return nil, 0
	}
	f.pkts = append(f.pkts, nil)
	copy(f.pkts[j+1:], f.pkts[j:])
	f.pkts[j] = p
	if p.Marker {
		f.marker = true
	}
	if a.absID != 0 && f.capture.IsZero() {
		if raw := p.GetExtension(a.absID); raw != nil {
			var ext rtp.AbsCaptureTimeExtension
			if ext.Unmarshal(raw) == nil {
				f.capture = ext.CaptureTime()
			}
		}
	}

	for len(a.pending) > 0 {
		head := a.pending[0]
		if a.complete(head) {
			out = append(out, a.build(head, now))
		} else if len(a.pending) > 1 && (now.Sub(head.first) > a.maxWait || len(a.pending) > 16) {
			lost++
		} else {
			break
		}
		a.lastSeq = head.pkts[len(head.pkts)-1].SequenceNumber
		a.haveLast = true
		a.pending = a.pending[1:]
	}
	return out, lost
}

func (a *h264Assembler) complete(f *pendingFrame) bool {
	if !f.marker || !f.pkts[len(f.pkts)-1].Marker {
		return false
	}
	for i := 1; i < len(f.pkts); i++ {
		if f.pkts[i].SequenceNumber != f.pkts[i-1].SequenceNumber+1 {
			return false
		}
	}
	first := f.pkts[0].SequenceNumber
	if a.haveLast && first == a.lastSeq+1 {
		return true
	}
	// The previous frame is unresolved or lost: accept only if the first
	// packet we hold visibly starts an access unit.
	return startsAccessUnit(f.pkts[0].Payload)
}

func (a *h264Assembler) build(f *pendingFrame, now time.Time) h264Frame {
	var depack codecs.H264Packet
	var data []byte
	for _, p := range f.pkts {
		b, err := depack.Unmarshal(p.Payload)
		if err != nil {
			continue
		}
		data = append(data, b...)
	}
	return h264Frame{data: data, keyframe: hasIDR(data), capture: f.capture, complete: now}
}

// startsAccessUnit reports whether an RTP payload begins an access unit:
// a parameter set, SEI or delimiter, or a slice with first_mb_in_slice 0.
func startsAccessUnit(pl []byte) bool {
	if len(pl) < 2 {
		return false
	}
	t := pl[0] & 0x1f
	switch {
	case t == 6 || t == 7 || t == 8 || t == 9:
		return true
	case t == 1 || t == 5:
		return pl[1]&0x80 != 0 // ue(v) 0 is the single bit '1'
	case t == 24: // STAP-A: look at the first aggregated NAL
		if len(pl) < 4 {
			return false
		}
		return startsAccessUnit(pl[3:])
	case t == 28: // FU-A
		if pl[1]&0x80 == 0 || len(pl) < 3 {
			return false
		}
		inner := pl[1] & 0x1f
		if inner == 1 || inner == 5 {
			return pl[2]&0x80 != 0
		}
		return inner == 6 || inner == 7 || inner == 8 || inner == 9
	}
	return false
}

// hasIDR reports whether an Annex-B access unit holds an IDR slice.
func hasIDR(au []byte) bool {
	for _, n := range splitAnnexB(au) {
		if len(n) > 0 && n[0]&0x1f == 5 {
			return true
		}
	}
	return false
}

var startCode = []byte{0, 0, 1}

// splitAnnexB returns the NAL units of an Annex-B byte stream.
func splitAnnexB(b []byte) [][]byte {
	var nals [][]byte
	i := bytes.Index(b, startCode)
	if i < 0 {
		return nil
	}
	b = b[i+3:]
	for len(b) > 0 {
		j := bytes.Index(b, startCode)
		if j < 0 {
			nals = append(nals, b)
			break
		}
		n := b[:j]
		// A 4-byte start code leaves a trailing zero on the previous NAL.
		for len(n) > 0 && n[len(n)-1] == 0 {
			n = n[:len(n)-1]
		}
		nals = append(nals, n)
		b = b[j+3:]
	}
	return nals
}
