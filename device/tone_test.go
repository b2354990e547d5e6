package device

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

var _ AudioSource = (*Tone)(nil)

// goertzel returns the normalised amplitude of freq in x.
func goertzel(x []int16, freq float64, rate int) float64 {
	w := 2 * math.Pi * freq / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s := float64(v) + c*s1 - s2
		s2, s1 = s1, s
	}
	p := s1*s1 + s2*s2 - c*s1*s2
	return 2 * math.Sqrt(math.Max(p, 0)) / float64(len(x)) / 32767
}

func readTone(t *testing.T, src *Tone, n, chunk int) []int16 {
	t.Helper()
	var out []int16
	buf := make([]int16, chunk)
	for len(out) < n {
		k, err := src.ReadPCM(context.Background(), buf)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, buf[:k]...)
	}
	return out[:n]
}

func TestToneSineFrequencyLevelAndPacing(t *testing.T) {
	start := time.Unix(5000, 0)
	clk := NewVirtualClock(start)
	src := NewSineTone(440)
	src.Clock = clk
	if err := src.Start(context.Background(), AudioFormat{SampleRate: 8000, Channels: 1}); err != nil {
		t.Fatal(err)
	}
	defer src.Stop()
	buf := make([]int16, 160)
	n, err := src.ReadPCM(context.Background(), buf)
	if err != nil || n != 160 {
		t.Fatal(n, err)
	}
	if got := clk.Now().Sub(start); got != 20*time.Millisecond {
		t.Fatalf("a 20 ms read returned at +%v, want +20ms", got)
	}
	x := readTone(t, src, 8000, 160)
	if got := clk.Now().Sub(start); got != 1020*time.Millisecond {
		t.Fatalf("clock at +%v after 1.02 s of audio", got)
	}
	a440, a600 := goertzel(x, 440, 8000), goertzel(x, 600, 8000)
	if math.Abs(a440-0.3) > 0.01 || a600 > 0.01 {
		t.Fatalf("440 Hz amplitude %.3f (want 0.3), 600 Hz %.4f", a440, a600)
	}
	peak := 0
	for _, v := range x {
		peak = max(peak, abs(int(v)))
	}
	if peak < 9700 || peak > 9831 {
		t.Fatalf("peak %d, want about 0.3 of full scale", peak)
	}
}

func TestToneChimePatternStereo(t *testing.T) {
	clk := NewVirtualClock(time.Unix(0, 0))
	src := NewChimeTone()
	src.Clock = clk
	if err := src.Start(context.Background(), AudioFormat{SampleRate: 16000, Channels: 2}); err != nil {
		t.Fatal(err)
	}
	defer src.Stop()
	x := readTone(t, src, 2*16000*3, 640) // one 3 s loop, interleaved stereo
	left := make([]int16, len(x)/2)
	for i := range left {
		if x[2*i] != x[2*i+1] {
			t.Fatalf("frame %d: channels differ", i)
		}
		left[i] = x[2*i]
	}
	ding, dong, pause := left[:8000], left[8000:22400], left[22400:]
	if e, o := goertzel(ding, 659.25, 16000), goertzel(ding, 523.25, 16000); e < 0.05 || o > e/5 {
		t.Errorf("ding: E5 %.3f C5 %.3f", e, o)
	}
	if e, o := goertzel(dong, 659.25, 16000), goertzel(dong, 523.25, 16000); o < 0.05 || e > o/5 {
		t.Errorf("dong: E5 %.3f C5 %.3f", e, o)
	}
	for i, v := range pause {
		if v != 0 {
			t.Fatalf("pause sample %d = %d", i, v)
		}
	}
	// Decay: the end of the ding is much quieter than its start.
	if head, tail := goertzel(ding[:1600], 659.25, 16000), goertzel(ding[6400:], 659.25, 16000); tail > head/3 {
		t.Errorf("no decay: head %.3f tail %.3f", head, tail)
	}
	// The pattern loops.
	again := readTone(t, src, 2*16000, 640)
	for i := 0; i < 16000; i++ {
		if again[2*i] != left[i] {
			t.Fatalf("second loop differs at %d", i)
		}
	}
}

func TestToneOverrunSkipsAhead(t *testing.T) {
	start := time.Unix(0, 0)
	clk := NewVirtualClock(start)
	src := &Tone{Clock: clk}
	if err := src.Start(context.Background(), AudioFormat{SampleRate: 8000, Channels: 1}); err != nil {
		t.Fatal(err)
	}
	defer src.Stop()
	readTone(t, src, 160, 160)
	clk.Advance(5 * time.Second)
	readTone(t, src, 160, 160)
	if got := clk.Now().Sub(start); got != 5*time.Second+40*time.Millisecond {
		t.Fatalf("after a 5 s stall the next 20 ms read ended at +%v, want +5.04s: the samples from the stall on, no backlog", got)
	}
}

func TestToneStopAndErrors(t *testing.T) {
	src := NewSineTone(1000)
	if _, err := src.ReadPCM(context.Background(), make([]int16, 10)); !errors.Is(err, ErrSourceStopped) {
		t.Fatalf("read before start: %v", err)
	}
	for _, f := range []AudioFormat{{SampleRate: 0, Channels: 1}, {SampleRate: 8000, Channels: 3}} {
		if err := src.Start(context.Background(), f); err == nil {
			t.Errorf("Start(%+v) succeeded", f)
		}
	}
	if err := (&Tone{Segments: []ToneSegment{{Freq: 5000, Duration: time.Second}}}).Start(context.Background(),
		AudioFormat{SampleRate: 8000, Channels: 1}); err == nil {
		t.Error("tone above Nyquist accepted")
	}
	// Real clock: a 10 s read blocks until Stop.
	if err := src.Start(context.Background(), AudioFormat{SampleRate: 8000, Channels: 1}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := src.ReadPCM(context.Background(), make([]int16, 80000))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	src.Stop()
	select {
	case err := <-done:
		if !errors.Is(err, ErrSourceStopped) {
			t.Fatalf("blocked read returned %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Stop did not release ReadPCM")
	}
}
