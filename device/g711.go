package device

// G.711 µ-law (PCMU) and A-law (PCMA) companding, ITU-T G.711, computed as
// the ITU-T G.191 reference software (and Sun's g711.c) does: the
// encoders take 16-bit linear PCM (µ-law uses its top 14 bits, A-law its
// top 13), the decoders return the midpoint of each quantisation interval.
// Encoding is a lookup in a table indexed by the significant input bits,
// so a 20 ms frame costs a few hundred nanoseconds.

var (
	muLawDecodeTable [256]int16
	aLawDecodeTable  [256]int16
	muLawEncodeTable [1 << 14]byte // indexed by int16 >> 2, offset to unsigned
	aLawEncodeTable  [1 << 13]byte // indexed by int16 >> 3, offset to unsigned
)

func init() {
	for i := range muLawDecodeTable {
		muLawDecodeTable[i] = muLawDecodeRef(byte(i))
		aLawDecodeTable[i] = aLawDecodeRef(byte(i))
	}
	for i := range muLawEncodeTable {
		muLawEncodeTable[i] = muLawEncodeRef(int16((i - 1<<13) << 2))
	}
	for i := range aLawEncodeTable {
		aLawEncodeTable[i] = aLawEncodeRef(int16((i - 1<<12) << 3))
	}
}

// LinearToMuLaw encodes one sample to µ-law.
func LinearToMuLaw(s int16) byte { return muLawEncodeTable[int(s>>2)+1<<13] }

// MuLawToLinear decodes one µ-law byte.
func MuLawToLinear(b byte) int16 { return muLawDecodeTable[b] }

// LinearToALaw encodes one sample to A-law.
func LinearToALaw(s int16) byte { return aLawEncodeTable[int(s>>3)+1<<12] }

// ALawToLinear decodes one A-law byte.
func ALawToLinear(b byte) int16 { return aLawDecodeTable[b] }

// AppendMuLaw appends the µ-law encoding of pcm to dst.
func AppendMuLaw(dst []byte, pcm []int16) []byte {
	n := len(dst)
	dst = growBytes(dst, len(pcm))
	out := dst[n:]
	for i, s := range pcm {
		out[i] = muLawEncodeTable[int(s>>2)+1<<13]
	}
	return dst
}

// AppendALaw appends the A-law encoding of pcm to dst.
func AppendALaw(dst []byte, pcm []int16) []byte {
	n := len(dst)
	dst = growBytes(dst, len(pcm))
	out := dst[n:]
	for i, s := range pcm {
		out[i] = aLawEncodeTable[int(s>>3)+1<<12]
	}
	return dst
}

// AppendMuLawPCM appends the linear decoding of µ-law bytes to dst.
func AppendMuLawPCM(dst []int16, data []byte) []int16 {
	for _, b := range data {
		dst = append(dst, muLawDecodeTable[b])
	}
	return dst
}

// AppendALawPCM appends the linear decoding of A-law bytes to dst.
func AppendALawPCM(dst []int16, data []byte) []int16 {
	for _, b := range data {
		dst = append(dst, aLawDecodeTable[b])
	}
	return dst
}

func growBytes(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// The reference algorithms below build the tables; they follow the CCITT
// reference code step by step so they can be checked against it.

var (
	aLawSegEnd  = [8]int{0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF}
	muLawSegEnd = [8]int{0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF}
)

func g711Segment(v int, ends *[8]int) int {
	for i, e := range ends {
		if v <= e {
			return i
		}
	}
	return 8
}

func aLawEncodeRef(pcm int16) byte {
	v := int(pcm) >> 3
	mask := byte(0xD5) // sign bit set for positive values
	if v < 0 {
		mask = 0x55
		v = -v - 1
	}
	seg := g711Segment(v, &aLawSegEnd)
	if seg >= 8 {
		return 0x7F ^ mask
	}
	a := byte(seg << 4)
	if seg < 2 {
		a |= byte(v>>1) & 0x0F
	} else {
		a |= byte(v>>seg) & 0x0F
	}
	return a ^ mask
}

func aLawDecodeRef(a byte) int16 {
	a ^= 0x55
	t := int(a&0x0F) << 4
	seg := int(a&0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

const (
	muLawBias = 0x84
	muLawClip = 8159
)

func muLawEncodeRef(pcm int16) byte {
	// As in the ITU-T G.191 reference (ulaw_compress), negative values
	// take the one's complement magnitude, so -1 maps to "negative zero"
	// 0x7F and the quantiser is symmetric. (Sun's g711.c negates after
	// the shift instead, which skews negative values by one step.)
	v := int(pcm) >> 2
	mask := byte(0xFF)
	if pcm < 0 {
		v = int(^pcm) >> 2
		mask = 0x7F
	}
	if v > muLawClip {
		v = muLawClip
	}
	v += muLawBias >> 2
	seg := g711Segment(v, &muLawSegEnd)
	if seg >= 8 {
		return 0x7F ^ mask
	}
	u := byte(seg<<4) | byte(v>>(seg+1))&0x0F
	return u ^ mask
}

func muLawDecodeRef(u byte) int16 {
	u = ^u
	t := (int(u&0x0F) << 3) + muLawBias
	t <<= int(u&0x70) >> 4
	if u&0x80 != 0 {
		return int16(muLawBias - t)
	}
	return int16(t - muLawBias)
}
