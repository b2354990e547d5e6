package device

import "math"

// applyGain scales samples by vol/255 (the seed's setCaptureVolume /
// setPlayVolume scale: 0 mutes, 255 is unity).
func applyGain(s []int16, vol int) {
	if vol >= 255 {
		return
	}
	if vol <= 0 {
		clear(s)
		return
	}
	for i, v := range s {
		s[i] = int16(int32(v) * int32(vol) / 255)
	}
}

// convertChannels converts interleaved frames between mono and stereo
// (mono to stereo duplicates; stereo to mono averages), appending to dst.
func convertChannels(dst, src []int16, from, to int) []int16 {
	if from == to {
		return append(dst, src...)
	}
	frames := len(src) / from
	for f := 0; f < frames; f++ {
		var sum int32
		for c := 0; c < from; c++ {
			sum += int32(src[f*from+c])
		}
		v := int16(sum / int32(from))
		for c := 0; c < to; c++ {
			dst = append(dst, v)
		}
	}
	return dst
}

// resampler converts a stream of interleaved S16 frames between two rates
// by linear interpolation, after a low-pass when rates go down so that what
// the lower rate cannot carry does not fold back as aliases. Quality is
// meant for speech (8/16/48 kHz), streaming and allocation-free in steady
// state.
type resampler struct {
	in, out, ch int
	step        float64 // input frames per output frame
	t           float64 // position between prev and the next input frame
	prev        []float64
	cur         []float64
	lp          []biquad // per channel, two stages (4th order)
}

func newResampler(in, out, ch int) *resampler {
	r := &resampler{in: in, out: out, ch: ch, step: float64(in) / float64(out),
		prev: make([]float64, ch), cur: make([]float64, ch)}
	if out < in {
		// Cut at 45% of the output rate.
		for i := 0; i < 2*ch; i++ {
			r.lp = append(r.lp, newLowpass(float64(in), 0.45*float64(out)))
		}
	}
	return r
}

// process appends the resampled frames of src to dst.
func (r *resampler) process(dst, src []int16) []int16 {
	if r.in == r.out {
		return append(dst, src...)
	}
	for f := 0; f+r.ch <= len(src); f += r.ch {
		for c := 0; c < r.ch; c++ {
			x := float64(src[f+c])
			if r.lp != nil {
				x = r.lp[2*c+1].filter(r.lp[2*c].filter(x))
			}
			r.cur[c] = x
		}
		for r.t < 1 {
			for c := 0; c < r.ch; c++ {
				v := r.prev[c] + (r.cur[c]-r.prev[c])*r.t
				dst = append(dst, clip16(v))
			}
			r.t += r.step
		}
		r.t -= 1
		copy(r.prev, r.cur)
	}
	return dst
}

func clip16(v float64) int16 {
	v = math.Round(v)
	if v > math.MaxInt16 {
		return math.MaxInt16
	}
	if v < math.MinInt16 {
		return math.MinInt16
	}
	return int16(v)
}

// biquad is an RBJ-cookbook second-order low-pass (Q = 1/sqrt 2).
type biquad struct {
	b0, b1, b2, a1, a2 float64
	x1, x2, y1, y2     float64
}

func newLowpass(rate, cutoff float64) biquad {
	w := 2 * math.Pi * cutoff / rate
	alpha := math.Sin(w) / (2 * math.Sqrt2 / 2)
	cos := math.Cos(w)
	a0 := 1 + alpha
	return biquad{
		b0: (1 - cos) / 2 / a0, b1: (1 - cos) / a0, b2: (1 - cos) / 2 / a0,
		a1: -2 * cos / a0, a2: (1 - alpha) / a0,
	}
}

func (q *biquad) filter(x float64) float64 {
	y := q.b0*x + q.b1*q.x1 + q.b2*q.x2 - q.a1*q.y1 - q.a2*q.y2
	q.x2, q.x1, q.y2, q.y1 = q.x1, x, q.y1, y
	return y
}
