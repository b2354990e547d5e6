package media

import "math"

// With G.722 enabled the microphone and speaker run at 16 kHz; a peer that
// only speaks G.711 needs 8 kHz. These 2:1 converters use one windowed-sinc
// low-pass (cut-off 3.7 kHz, Q15 integer taps): cheap on a Pi Zero and free
// of the aliasing plain decimation would fold into the telephone band.

const halfbandTaps = 31

var halfband = func() (h [halfbandTaps]int32) {
	const fc = 3700.0 / 16000 // cut-off, fraction of the 16 kHz rate
	mid := float64(halfbandTaps-1) / 2
	var sum float64
	f := make([]float64, halfbandTaps)
	for i := range f {
		x := float64(i) - mid
		sinc := 2 * fc
		if x != 0 {
			sinc = math.Sin(2*math.Pi*fc*x) / (math.Pi * x)
		}
		w := 0.54 - 0.46*math.Cos(2*math.Pi*float64(i)/float64(halfbandTaps-1)) // Hamming
		f[i] = sinc * w
		sum += f[i]
	}
	for i := range f {
		h[i] = int32(math.Round(f[i] / sum * 32768)) // unity DC gain
	}
	return h
}()

// downsampler halves the rate of a continuous 16 kHz stream.
type downsampler struct {
	hist [halfbandTaps]int32
	pos  int
}

// process appends len(in)/2 samples at 8 kHz.
func (d *downsampler) process(dst []int16, in []int16) []int16 {
	for i, s := range in {
		d.hist[d.pos] = int32(s)
		d.pos = (d.pos + 1) % halfbandTaps
		if i%2 == 1 {
			dst = append(dst, int16(sat16(d.filter()>>15)))
		}
	}
	return dst
}

func (d *downsampler) filter() int32 {
	var acc int32
	j := d.pos // oldest sample
	for k := range halfbandTaps {
		acc += d.hist[j] * halfband[k]
		j++
		if j == halfbandTaps {
			j = 0
		}
	}
	return acc
}

// upsampler doubles the rate of a continuous 8 kHz stream: zero stuffing,
// then the same low-pass with gain 2 to restore the level.
type upsampler struct{ d downsampler }

// process appends 2*len(in) samples at 16 kHz.
func (u *upsampler) process(dst []int16, in []int16) []int16 {
	for _, s := range in {
		for k := range 2 {
			v := int32(0)
			if k == 0 {
				v = int32(s)
			}
			u.d.hist[u.d.pos] = v
			u.d.pos = (u.d.pos + 1) % halfbandTaps
			dst = append(dst, int16(sat16(u.d.filter()>>14)))
		}
	}
	return dst
}
