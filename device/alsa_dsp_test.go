package device

import (
	"math"
	"testing"
)

func alsaSine(freq float64, rate, ch, frames int, amp float64) []int16 {
	s := make([]int16, 0, frames*ch)
	for i := 0; i < frames; i++ {
		v := int16(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
		for c := 0; c < ch; c++ {
			s = append(s, v)
		}
	}
	return s
}

// alsaGoertzel is the power of one frequency in channel 0 of interleaved s,
// normalised so a full-length sine of amplitude A gives about A²/4.
func alsaGoertzel(s []int16, ch, rate int, freq float64) float64 {
	n := len(s) / ch
	k := 2 * math.Cos(2*math.Pi*freq/float64(rate))
	var s1, s2 float64
	for i := 0; i < n; i++ {
		x := float64(s[i*ch])
		s0 := x + k*s1 - s2
		s2, s1 = s1, s0
	}
	p := s1*s1 + s2*s2 - k*s1*s2
	return p / float64(n) / float64(n)
}

func TestApplyGain(t *testing.T) {
	s := []int16{1000, -1000, 32767, -32768}
	applyGain(s, 255)
	if s[0] != 1000 || s[3] != -32768 {
		t.Fatalf("unity changed samples: %v", s)
	}
	applyGain(s, 51) // 1/5
	if want := []int16{200, -200, 6553, -6553}; s[0] != want[0] || s[1] != want[1] || s[2] != want[2] || s[3] != want[3] {
		t.Fatalf("gain 51: %v, want %v", s, want)
	}
	applyGain(s, 0)
	for _, v := range s {
		if v != 0 {
			t.Fatalf("gain 0 did not mute: %v", s)
		}
	}
}

func TestConvertChannels(t *testing.T) {
	st := convertChannels(nil, []int16{1, -5, 7}, 1, 2)
	if len(st) != 6 || st[0] != 1 || st[1] != 1 || st[4] != 7 || st[5] != 7 {
		t.Fatalf("mono→stereo %v", st)
	}
	mo := convertChannels(nil, []int16{100, 200, -10, -30}, 2, 1)
	if len(mo) != 2 || mo[0] != 150 || mo[1] != -20 {
		t.Fatalf("stereo→mono %v", mo)
	}
}

func TestResampler(t *testing.T) {
	for _, tc := range []struct{ in, out, ch int }{
		{48000, 8000, 1}, {48000, 16000, 2}, {8000, 48000, 1}, {16000, 48000, 2}, {44100, 16000, 1},
	} {
		const freq = 1000.0
		src := alsaSine(freq, tc.in, tc.ch, tc.in, 10000) // one second
		r := newResampler(tc.in, tc.out, tc.ch)
		var out []int16
		// Odd chunk sizes: state must carry across calls.
		for i := 0; i < len(src); {
			n := min(tc.ch*(97+i%31), len(src)-i)
			out = r.process(out, src[i:i+n])
			i += n
		}
		frames := len(out) / tc.ch
		if frames < tc.out-2 || frames > tc.out+2 {
			t.Errorf("%d→%d: %d frames for one second", tc.in, tc.out, frames)
		}
		// Skip the filter's start-up, then the tone must dominate.
		body := out[tc.ch*(tc.out/10):]
		on := alsaGoertzel(body, tc.ch, tc.out, freq)
		off := alsaGoertzel(body, tc.ch, tc.out, 1370)
		if on < 10000*10000/4*0.8 || off > on/1000 {
			t.Errorf("%d→%d: power at 1 kHz %.0f, at 1.37 kHz %.0f", tc.in, tc.out, on, off)
		}
	}
	// Going down, a tone above the new Nyquist must be filtered, not folded:
	// 7 kHz at 48k would alias to 1 kHz at 8k.
	r := newResampler(48000, 8000, 1)
	out := r.process(nil, alsaSine(7000, 48000, 1, 48000, 10000))
	if p := alsaGoertzel(out[800:], 1, 8000, 1000); p > 10000*10000/4*0.05 {
		t.Errorf("7 kHz folded into 1 kHz with power %.0f", p)
	}
	// Same rate: passthrough, exact.
	src := alsaSine(440, 16000, 1, 320, 5000)
	if got := newResampler(16000, 16000, 1).process(nil, src); len(got) != len(src) || got[100] != src[100] {
		t.Error("same-rate resampler altered the samples")
	}
}

func TestParseALSADeviceNumeric(t *testing.T) {
	for _, tc := range []struct {
		name      string
		card, dev int
	}{{"hw:1,0", 1, 0}, {"plughw:2,3", 2, 3}, {"hw:CARD=0,DEV=1", 0, 1}, {"hw:3", 3, 0}} {
		c, d, err := ParseALSADevice(tc.name)
		if err != nil || c != tc.card || d != tc.dev {
			t.Errorf("%s: %d,%d %v", tc.name, c, d, err)
		}
	}
	for _, bad := range []string{"default", "hw:1,x"} {
		if _, _, err := ParseALSADevice(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
