package device

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func checkTransitions(t *testing.T, got []Transition, t0 time.Time, want []Transition) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("transitions %v, want %v", rel(got, t0), rel(want, t0))
	}
	for i := range want {
		if got[i].On != want[i].On || !got[i].Time.Equal(want[i].Time) {
			t.Fatalf("transitions %v, want %v", rel(got, t0), rel(want, t0))
		}
	}
}

func rel(ts []Transition, t0 time.Time) []string {
	var s []string
	for _, x := range ts {
		st := "off"
		if x.On {
			st = "on"
		}
		s = append(s, st+"@"+x.Time.Sub(t0).String())
	}
	return s
}

func TestOutputDriverRinging(t *testing.T) {
	clk := newFakeClock()
	t0 := clk.Now()
	out := NewSimOutput("ringer", WithGPIOClock(clk), WithGPIOLogger(quietLog()))
	d := NewOutputDriver("ringer", out, WithGPIOClock(clk), WithGPIOLogger(quietLog()))
	ctx, cancel := context.WithCancel(context.Background())
	done := d.Play(ctx, PatternRinging)
	for i := 0; i < 4; i++ {
		clk.WaitTimers(t, 1)
		clk.Advance(time.Second)
	}
	clk.WaitTimers(t, 1)
	cancel() // the call was answered
	<-done
	s := time.Second
	checkTransitions(t, out.Transitions(), t0, []Transition{
		{true, t0}, {false, t0.Add(s)}, {true, t0.Add(2 * s)}, {false, t0.Add(3 * s)}, {true, t0.Add(4 * s)}, {false, t0.Add(4 * s)},
	})
}

func TestOutputDriverPulseAndReplace(t *testing.T) {
	clk := newFakeClock()
	t0 := clk.Now()
	out := NewSimOutput("door", WithGPIOClock(clk), WithGPIOLogger(quietLog()))
	d := NewOutputDriver("door", out, WithGPIOClock(clk), WithGPIOLogger(quietLog()))
	done := d.Pulse(context.Background(), 3*time.Second)
	clk.WaitTimers(t, 1)
	if !out.On() {
		t.Fatal("relay not on during the pulse")
	}
	clk.Advance(3 * time.Second)
	<-done
	if out.On() {
		t.Fatal("relay still on after the pulse")
	}

	// A steady pattern holds until replaced; the replacement starts from off.
	d.Play(context.Background(), PatternSteady)
	clk.WaitTimers(t, 0)
	for on, changed := out.Watch(); !on; on, changed = out.Watch() {
		<-changed
	}
	clk.Advance(time.Second)
	d.Play(context.Background(), PatternBlink)
	clk.WaitTimers(t, 1)
	d.Stop()
	if out.On() {
		t.Fatal("output on after Stop")
	}
	s := time.Second
	checkTransitions(t, out.Transitions(), t0, []Transition{
		{true, t0}, {false, t0.Add(3 * s)}, {true, t0.Add(3 * s)}, {false, t0.Add(4 * s)}, {true, t0.Add(4 * s)}, {false, t0.Add(4 * s)},
	})
}
