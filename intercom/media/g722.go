package media

// G.722 (ITU-T G.722, 64 kbit/s mode): sub-band ADPCM, 16 kHz audio, one
// byte per pair of input samples. A pure-Go port of the well-known public
// domain reference structure (CMU / Steve Underwood's spandsp g722.c),
// integer arithmetic throughout so it behaves the same on every GOARCH.
//
// RTP quirk (RFC 3551 §4.5.2): G.722 is sampled at 16 kHz but its RTP
// clock rate is 8000, so a 20 ms packet of 320 samples (160 bytes)
// advances the RTP timestamp by 160.

var (
	g722q6   = [32]int32{0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940, 1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0}
	g722iln  = [32]int32{0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 0}
	g722ilp  = [32]int32{0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 0}
	g722wl   = [8]int32{-60, -30, 58, 172, 334, 538, 1198, 3042}
	g722rl42 = [16]int32{0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0}
	g722ilb  = [32]int32{2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834, 2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008}
	g722qm4  = [16]int32{0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0}
	g722qm2  = [4]int32{-7408, -1616, 7408, 1616}
	g722qmf  = [12]int32{3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11}
	g722ihn  = [3]int32{0, 1, 0}
	g722ihp  = [3]int32{0, 3, 2}
	g722wh   = [3]int32{0, -214, 798}
	g722rh2  = [4]int32{2, 1, 2, 1}
	g722qm6  = [64]int32{
		-136, -136, -136, -136, -24808, -21904, -19008, -16704,
		-14984, -13512, -12280, -11192, -10232, -9360, -8576, -7856,
		-7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576,
		-3168, -2776, -2400, -2032, -1688, -1360, -1040, -728,
		24808, 21904, 19008, 16704, 14984, 13512, 12280, 11192,
		10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456,
		4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032,
		1688, 1360, 1040, 728, 432, 136, -432, -136,
	}
)

func sat16(v int32) int32 {
	if v > 32767 {
		return 32767
	}
	if v < -32768 {
		return -32768
	}
	return v
}

// g722Band is the adaptive predictor state of one sub-band.
type g722Band struct {
	s, sp, sz int32
	r, a, ap  [3]int32
	p         [3]int32
	d, b, bp  [7]int32
	sg        [7]int32
	nb, det   int32
}

// block4 updates the band's pole/zero predictor with the new quantised
// difference d (G.722 block 4: RECONS, PARREC, UPPOL1/2, UPZERO, DELAYA,
// FILTEP, FILTEZ, PREDIC).
func (s *g722Band) block4(d int32) {
	s.d[0] = d
	s.r[0] = sat16(s.s + d)
	s.p[0] = sat16(s.sz + d)

	for i := range 3 {
		s.sg[i] = s.p[i] >> 15
	}
	wd1 := sat16(s.a[1] << 2)
	wd2 := wd1
	if s.sg[0] == s.sg[1] {
		wd2 = -wd1
	}
	if wd2 > 32767 {
		wd2 = 32767
	}
	wd3 := wd2 >> 7
	if s.sg[0] == s.sg[2] {
		wd3 += 128
	} else {
		wd3 -= 128
	}
	wd3 += (s.a[2] * 32512) >> 15
	wd3 = min(max(wd3, -12288), 12288)
	s.ap[2] = wd3

	s.sg[0] = s.p[0] >> 15
	s.sg[1] = s.p[1] >> 15
	wd1 = -192
	if s.sg[0] == s.sg[1] {
		wd1 = 192
	}
	wd2 = (s.a[1] * 32640) >> 15
	s.ap[1] = sat16(wd1 + wd2)
	wd3 = sat16(15360 - s.ap[2])
	s.ap[1] = min(max(s.ap[1], -wd3), wd3)

	wd1 = 128
	if d == 0 {
		wd1 = 0
	}
	s.sg[0] = d >> 15
	for i := 1; i < 7; i++ {
		s.sg[i] = s.d[i] >> 15
		wd2 = -wd1
		if s.sg[i] == s.sg[0] {
			wd2 = wd1
		}
		wd3 = (s.b[i] * 32640) >> 15
		s.bp[i] = sat16(wd2 + wd3)
	}

	for i := 6; i > 0; i-- {
		s.d[i] = s.d[i-1]
		s.b[i] = s.bp[i]
	}
	for i := 2; i > 0; i-- {
		s.r[i] = s.r[i-1]
		s.p[i] = s.p[i-1]
		s.a[i] = s.ap[i]
	}

	wd1 = sat16(s.r[1] + s.r[1])
	wd1 = (s.a[1] * wd1) >> 15
	wd2 = sat16(s.r[2] + s.r[2])
	wd2 = (s.a[2] * wd2) >> 15
	s.sp = sat16(wd1 + wd2)

	s.sz = 0
	for i := 6; i > 0; i-- {
		wd1 = sat16(s.d[i] + s.d[i])
		s.sz += (s.b[i] * wd1) >> 15
	}
	s.sz = sat16(s.sz)
	s.s = sat16(s.sp + s.sz)
}

// scale recomputes det from nb (blocks 3L/3H SCALEL/SCALEH).
func (s *g722Band) scale(shift int32) {
	wd1 := (s.nb >> 6) & 31
	wd2 := shift - (s.nb >> 11)
	var wd3 int32
	if wd2 < 0 {
		wd3 = g722ilb[wd1] << -wd2
	} else {
		wd3 = g722ilb[wd1] >> wd2
	}
	s.det = wd3 << 2
}

func (s *g722Band) logLow(il4 int32) {
	s.nb = min(max((s.nb*127)>>7+g722wl[il4], 0), 18432)
	s.scale(8)
}

func (s *g722Band) logHigh(ih2 int32) {
	s.nb = min(max((s.nb*127)>>7+g722wh[ih2], 0), 22528)
	s.scale(10)
}

// g722State is what encoder and decoder each keep: the QMF delay line and
// the two sub-band ADPCM states.
type g722State struct {
	x    [24]int32
	band [2]g722Band
}

func newG722State() g722State {
	var s g722State
	s.band[0].det, s.band[1].det = 32, 8
	return s
}

// g722Encoder encodes 16 kHz PCM; state carries across calls, so feed it
// one continuous stream.
type g722Encoder struct{ g722State }

func newG722Encoder() *g722Encoder { return &g722Encoder{newG722State()} }

// encode appends one byte per two samples of pcm (len(pcm) must be even).
func (e *g722Encoder) encode(dst []byte, pcm []int16) []byte {
	for j := 0; j+1 < len(pcm); j += 2 {
		copy(e.x[:22], e.x[2:])
		e.x[22], e.x[23] = int32(pcm[j]), int32(pcm[j+1])
		var sumEven, sumOdd int32
		for i := range 12 {
			sumOdd += e.x[2*i] * g722qmf[i]
			sumEven += e.x[2*i+1] * g722qmf[11-i]
		}
		xlow := (sumEven + sumOdd) >> 14
		xhigh := (sumEven - sumOdd) >> 14

		lo := &e.band[0]
		el := sat16(xlow - lo.s)
		wd := el
		if el < 0 {
			wd = -(el + 1)
		}
		i := int32(1)
		for ; i < 30; i++ {
			if wd < (g722q6[i]*lo.det)>>12 {
				break
			}
		}
		ilow := g722ilp[i]
		if el < 0 {
			ilow = g722iln[i]
		}
		ril := ilow >> 2
		dlow := (lo.det * g722qm4[ril]) >> 15
		lo.logLow(g722rl42[ril])
		lo.block4(dlow)

		hi := &e.band[1]
		eh := sat16(xhigh - hi.s)
		wd = eh
		if eh < 0 {
			wd = -(eh + 1)
		}
		mih := int32(1)
		if wd >= (564*hi.det)>>12 {
			mih = 2
		}
		ihigh := g722ihp[mih]
		if eh < 0 {
			ihigh = g722ihn[mih]
		}
		dhigh := (hi.det * g722qm2[ihigh]) >> 15
		hi.logHigh(g722rh2[ihigh])
		hi.block4(dhigh)

		dst = append(dst, byte(ihigh<<6|ilow))
	}
	return dst
}

// g722Decoder decodes to 16 kHz PCM.
type g722Decoder struct{ g722State }

func newG722Decoder() *g722Decoder { return &g722Decoder{newG722State()} }

// decode appends two samples per input byte.
func (d *g722Decoder) decode(dst []int16, data []byte) []int16 {
	for _, code := range data {
		wd1 := int32(code & 0x3f)
		ihigh := int32(code>>6) & 0x03
		wd2 := g722qm6[wd1]
		wd1 >>= 2

		lo := &d.band[0]
		rlow := lo.s + (lo.det*wd2)>>15
		rlow = min(max(rlow, -16384), 16383)
		dlowt := (lo.det * g722qm4[wd1]) >> 15
		lo.logLow(g722rl42[wd1])
		lo.block4(dlowt)

		hi := &d.band[1]
		dhigh := (hi.det * g722qm2[ihigh]) >> 15
		rhigh := dhigh + hi.s
		rhigh = min(max(rhigh, -16384), 16383)
		hi.logHigh(g722rh2[ihigh])
		hi.block4(dhigh)

		copy(d.x[:22], d.x[2:])
		d.x[22], d.x[23] = rlow+rhigh, rlow-rhigh
		var xout1, xout2 int32
		for i := range 12 {
			xout2 += d.x[2*i] * g722qmf[i]
			xout1 += d.x[2*i+1] * g722qmf[11-i]
		}
		dst = append(dst, int16(sat16(xout1>>11)), int16(sat16(xout2>>11)))
	}
	return dst
}
