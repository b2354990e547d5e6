package device

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
)

// H.264 bit-level helpers: an RBSP bit writer and reader with Exp-Golomb
// codes, and the NAL-level emulation prevention that turns an RBSP into a
// NAL unit payload and back (ITU-T H.264 clauses 7.2, 7.3.2.11, 7.4.1, 9.1).

// h264BitWriter accumulates an RBSP most-significant bit first.
type h264BitWriter struct {
	buf []byte
	acc uint64 // pending bits, right-aligned; never more than 7 between calls
	n   uint   // number of pending bits in acc
}

func (w *h264BitWriter) reset() {
	w.buf = w.buf[:0]
	w.acc, w.n = 0, 0
}

// u writes the n low bits of v (n <= 32), the u(n) descriptor.
func (w *h264BitWriter) u(n uint, v uint32) {
	if n == 0 {
		return
	}
	w.acc = w.acc<<n | uint64(v)&(1<<n-1)
	w.n += n
	for w.n >= 8 {
		w.n -= 8
		w.buf = append(w.buf, byte(w.acc>>w.n))
	}
	w.acc &= 1<<w.n - 1
}

func (w *h264BitWriter) flag(b bool) {
	if b {
		w.u(1, 1)
	} else {
		w.u(1, 0)
	}
}

// ue writes an unsigned Exp-Golomb code ue(v): len-1 zero bits, then v+1 in
// len bits, where len is the bit length of v+1.
func (w *h264BitWriter) ue(v uint32) {
	x := uint64(v) + 1
	l := uint(bits.Len64(x))
	// Leading zeros first; split because u() takes at most 32 bits.
	for z := l - 1; z > 0; {
		k := min(z, 32)
		w.u(k, 0)
		z -= k
	}
	if l > 32 {
		w.u(l-32, uint32(x>>32))
		l = 32
	}
	w.u(l, uint32(x))
}

// se writes a signed Exp-Golomb code se(v): k>0 maps to 2k-1, k<=0 to -2k.
func (w *h264BitWriter) se(v int32) {
	if v > 0 {
		w.ue(uint32(2*int64(v) - 1))
	} else {
		w.ue(uint32(-2 * int64(v)))
	}
}

func (w *h264BitWriter) byteAligned() bool { return w.n == 0 }

// alignZero pads with zero bits to the next byte boundary (pcm_alignment_zero_bit).
func (w *h264BitWriter) alignZero() {
	if w.n != 0 {
		w.u(8-w.n, 0)
	}
}

// trailing writes rbsp_trailing_bits(): a one bit, then zero bits to alignment.
func (w *h264BitWriter) trailing() {
	w.u(1, 1)
	w.alignZero()
}

// raw appends whole bytes; the writer must be byte-aligned (PCM samples are).
func (w *h264BitWriter) raw(p []byte) {
	if w.n != 0 {
		w.alignZero()
	}
	w.buf = append(w.buf, p...)
}

// annexBStartCode is the 4-byte start code written in front of every NAL
// unit; the 4-byte form is what RTP packetisers and players expect for the
// first NAL of an access unit, and using it everywhere keeps things uniform.
var annexBStartCode = []byte{0, 0, 0, 1}

// appendNAL appends an Annex-B start code, the one-byte NAL header and the
// RBSP with emulation prevention applied: inside a NAL unit the byte
// sequences 00 00 00, 00 00 01, 00 00 02 and 00 00 03 must not occur, so a
// 0x03 is inserted after any two zero bytes that precede a byte <= 3.
func appendNAL(dst []byte, header byte, rbsp []byte) []byte {
	dst = append(dst, annexBStartCode...)
	dst = append(dst, header)
	start, i := 0, 0
	for {
		j := bytes.Index(rbsp[i:], h264TwoZeros)
		if j < 0 {
			break
		}
		k := i + j + 2 // the byte after two zeros
		if k < len(rbsp) && rbsp[k] <= 3 {
			dst = append(dst, rbsp[start:k]...)
			dst = append(dst, 3)
			start, i = k, k
		} else {
			i = i + j + 1
		}
	}
	return append(dst, rbsp[start:]...)
}

var h264TwoZeros = []byte{0, 0}

// unescapeRBSP removes emulation prevention bytes from a NAL payload (the
// bytes after the NAL header).
func unescapeRBSP(p []byte) []byte {
	out := make([]byte, 0, len(p))
	zeros := 0
	for _, b := range p {
		if zeros >= 2 && b == 3 {
			zeros = 0
			continue
		}
		out = append(out, b)
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

var errH264Truncated = errors.New("h264: truncated bitstream")

// h264BitReader reads an RBSP (emulation prevention already removed). All
// reads past the end return errH264Truncated rather than panicking, since it
// parses bytes from other programs.
type h264BitReader struct {
	p   []byte
	pos int // bit position
}

func (r *h264BitReader) bitsLeft() int { return len(r.p)*8 - r.pos }

func (r *h264BitReader) u(n int) (uint32, error) {
	if n < 0 || n > 32 {
		return 0, errors.New("h264: bad field width")
	}
	if r.bitsLeft() < n {
		return 0, errH264Truncated
	}
	var v uint32
	for i := 0; i < n; i++ {
		b := r.p[r.pos>>3] >> (7 - uint(r.pos&7)) & 1
		v = v<<1 | uint32(b)
		r.pos++
	}
	return v, nil
}

func (r *h264BitReader) flag() (bool, error) {
	v, err := r.u(1)
	return v == 1, err
}

// zeros reads 0 bits up to and including the next 1 and returns how many
// 0s there were; more than max is an error (a corrupt stream).
func (r *h264BitReader) zeros(max int) (int, error) {
	n := 0
	for {
		b, err := r.u(1)
		if err != nil {
			return 0, err
		}
		if b == 1 {
			return n, nil
		}
		n++
		if n > max {
			return 0, fmt.Errorf("h264: more than %d leading zero bits", max)
		}
	}
}

func (r *h264BitReader) ue() (uint32, error) {
	zeros, err := r.zeros(31)
	if err != nil {
		return 0, fmt.Errorf("h264: Exp-Golomb code: %w", err)
	}
	if zeros == 0 {
		return 0, nil
	}
	rest, err := r.u(zeros)
	if err != nil {
		return 0, err
	}
	return uint32((uint64(1)<<zeros - 1) + uint64(rest)), nil
}

func (r *h264BitReader) se() (int32, error) {
	k, err := r.ue()
	if err != nil {
		return 0, err
	}
	if k&1 == 1 {
		return int32((int64(k) + 1) / 2), nil
	}
	return int32(-(int64(k) / 2)), nil
}

func (r *h264BitReader) skip(n int) error {
	if n < 0 || r.bitsLeft() < n {
		return errH264Truncated
	}
	r.pos += n
	return nil
}

// moreRBSPData implements more_rbsp_data(): true while there are bits left
// before the rbsp_stop_one_bit (the last set bit of the RBSP).
func (r *h264BitReader) moreRBSPData() bool {
	last := len(r.p) - 1
	for last >= 0 && r.p[last] == 0 {
		last-- // cabac_zero_words / trailing zero bytes
	}
	if last < 0 {
		return false
	}
	stop := last*8 + 7 - bits.TrailingZeros8(r.p[last])
	return r.pos < stop
}
