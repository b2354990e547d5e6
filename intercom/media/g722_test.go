package media

import (
	"math"
	"testing"
)

// g722SNR encodes and decodes a sine and returns the gain and SNR (dB) of
// the output against the input at the best-matching codec delay.
func g722SNR(t *testing.T, freq float64) (gain, snr float64, lag int) {
	t.Helper()
	const n = 16000
	in := make([]int16, n)
	for i := range in {
		in[i] = int16(8000 * math.Sin(2*math.Pi*freq*float64(i)/16000))
	}
	enc, dec := newG722Encoder(), newG722Decoder()
	var out []int16
	for i := 0; i < n; i += 320 { // 20 ms packets, as on the wire
		b := enc.encode(nil, in[i:i+320])
		if len(b) != 160 {
			t.Fatalf("20 ms encoded to %d bytes, want 160", len(b))
		}
		out = dec.decode(out, b)
	}
	best := -1.0
	for l := range 80 {
		var xy, xx, yy float64
		for i := 2000; i < n-100; i++ {
			x, y := float64(in[i]), float64(out[i+l])
			xy += x * y
			xx += x * x
			yy += y * y
		}
		if c := xy / math.Sqrt(xx*yy); c > best {
			best, lag, gain = c, l, xy/xx
		}
	}
	var sig, noise float64
	for i := 2000; i < n-100; i++ {
		x := gain * float64(in[i])
		e := float64(out[i+lag]) - x
		sig += x * x
		noise += e * e
	}
	return gain, 10 * math.Log10(sig/noise), lag
}

func TestG722RoundTrip(t *testing.T) {
	for _, c := range []struct {
		freq   float64
		minSNR float64
	}{
		{400, 25}, {1000, 25}, {3000, 20}, // lower sub-band: 6-bit ADPCM
		{5000, 10}, // upper sub-band: 2-bit ADPCM
	} {
		gain, snr, lag := g722SNR(t, c.freq)
		t.Logf("%5.0f Hz: gain %.3f, SNR %.1f dB, delay %d samples", c.freq, gain, snr, lag)
		if gain < 0.8 || gain > 1.25 || snr < c.minSNR {
			t.Errorf("%.0f Hz: gain %.3f SNR %.1f dB (want ~1 and ≥ %.0f dB)", c.freq, gain, snr, c.minSNR)
		}
	}
}

func TestG722Silence(t *testing.T) {
	enc, dec := newG722Encoder(), newG722Decoder()
	out := dec.decode(nil, enc.encode(nil, make([]int16, 3200)))
	for i, s := range out[100:] {
		if s > 8 || s < -8 {
			t.Fatalf("silence decoded to %d at %d", s, i+100)
		}
	}
}
