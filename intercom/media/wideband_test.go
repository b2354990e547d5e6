package media

import (
	"math"
	"testing"
	"time"
)

func g722Engine(tb testing.TB) *Engine {
	tb.Helper()
	e, err := NewEngine(Config{LoopbackOnly: true, ICEDisconnectedTimeout: time.Second, ICEFailedTimeout: time.Second,
		G722: true, Logger: testLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// Two G.722 endpoints negotiate wideband and the tone arrives at 16 kHz.
func TestG722Call(t *testing.T) {
	e := g722Engine(t)
	a, b := newSide(t, CallTypeAudio, false), newSide(t, CallTypeAudio, false)
	c := startCall(t, e, a, b)
	eventually(t, 5*time.Second, "G.722 audio both ways", func() bool {
		return c.a.s.Stats().Audio.PacketsReceived >= 10 && c.b.s.Stats().Audio.PacketsReceived >= 10 &&
			a.spk.nonZero.Load() > 0 && b.spk.nonZero.Load() > 0
	})
	if got := c.b.s.Stats().AudioCodec; got != "G722" {
		t.Fatalf("negotiated %q, want G722", got)
	}
	// 20 ms of 16 kHz audio per 160-byte packet.
	st := c.b.s.Stats().Audio
	if per := (st.BytesReceived / st.PacketsReceived) - 12; per != 160 {
		t.Errorf("%d payload bytes per packet, want 160", per)
	}
	if n, p := b.spk.samples.Load(), c.b.s.Stats().Audio.PacketsReceived; n < int64(p-2)*320 {
		t.Errorf("speaker got %d samples for %d packets: not 320 per packet", n, p)
	}
}

// A G.722 endpoint and a G.711-only one meet on PCMU; the wideband side
// resamples both ways.
func TestG722FallsBackToPCMU(t *testing.T) {
	wide := g722Engine(t)
	narrow := testEngine(t)
	a, b := newSide(t, CallTypeAudio, false), newSide(t, CallTypeAudio, false)
	ea := newEndpoint(t, wide, "wideband", a.opts, a.devices())
	eb := newEndpoint(t, narrow, "narrowband", b.opts, b.devices())
	c := connect(t, ea, eb)
	defer c.close(t)
	eventually(t, 5*time.Second, "audio both ways", func() bool {
		return ea.s.Stats().Audio.PacketsReceived >= 10 && eb.s.Stats().Audio.PacketsReceived >= 10 &&
			a.spk.nonZero.Load() > 0 && b.spk.nonZero.Load() > 0
	})
	if got := ea.s.Stats().AudioCodec; got != "PCMU" {
		t.Fatalf("negotiated %q, want PCMU", got)
	}
	if n, p := a.spk.samples.Load(), ea.s.Stats().Audio.PacketsReceived; n < int64(p-2)*320 {
		t.Errorf("wideband speaker got %d samples for %d packets: not upsampled", n, p)
	}
}

func TestResamplers(t *testing.T) {
	tone := func(freq float64, rate, n int) []int16 {
		out := make([]int16, n)
		for i := range out {
			out[i] = int16(8000 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
		}
		return out
	}
	rms := func(s []int16) float64 {
		var sum float64
		for _, v := range s[200:] {
			sum += float64(v) * float64(v)
		}
		return math.Sqrt(sum / float64(len(s)-200))
	}
	var d downsampler
	if r := rms(d.process(nil, tone(1000, 16000, 3200))) / rms(tone(1000, 8000, 1600)); r < 0.9 || r > 1.1 {
		t.Errorf("downsampler passes 1 kHz at %.2f", r)
	}
	d = downsampler{}
	if r := rms(d.process(nil, tone(6000, 16000, 3200))) / 5657; r > 0.1 { // 6 kHz must not alias to 2 kHz
		t.Errorf("downsampler lets 6 kHz through at %.2f", r)
	}
	var u upsampler
	if r := rms(u.process(nil, tone(1000, 8000, 1600))) / rms(tone(1000, 16000, 3200)); r < 0.9 || r > 1.1 {
		t.Errorf("upsampler passes 1 kHz at %.2f", r)
	}
}
