package device

import (
	"context"
	"strings"
	"testing"
)

func TestSimButtons(t *testing.T) {
	clk := newFakeClock()
	b := NewSimButtons([]string{"call", "hangup"}, WithGPIOClock(clk), WithGPIOLogger(quietLog()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan ButtonEvent)
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, events) }()

	if err := b.Press("call", ShortPress); err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Button != "call" || ev.Press != ShortPress || !ev.Time.Equal(clk.Now()) {
		t.Fatalf("got %+v", ev)
	}
	if err := b.Press("nope", ShortPress); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("unknown button: err %v, want one naming it", err)
	}
	if err := b.Trigger("hangup")(LongPress); err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Button != "hangup" || ev.Press != LongPress {
		t.Fatalf("got %+v", ev)
	}

	// Demo input: one press per line, unknown names skipped.
	if err := b.FeedLines(ctx, strings.NewReader("hangup\n\ntypo\ncall long\n")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []ButtonEvent{{Button: "hangup", Press: ShortPress}, {Button: "call", Press: LongPress}} {
		if ev := <-events; ev.Button != want.Button || ev.Press != want.Press {
			t.Fatalf("got %+v, want %+v", ev, want)
		}
	}
	b.Close()
	if err := b.Press("call", ShortPress); err == nil {
		t.Fatal("press after Close succeeded")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSimOutputRecords(t *testing.T) {
	clk := newFakeClock()
	o := NewSimOutput("led", WithGPIOClock(clk), WithGPIOLogger(quietLog()))
	t0 := clk.Now()
	o.Set(true)
	o.Set(true) // no change, not recorded
	clk.Advance(1500 * 1e6)
	o.Set(false)
	clk.Advance(1e9)
	o.Set(true)
	o.Close() // off on close
	if err := o.Set(true); err == nil {
		t.Fatal("Set after Close succeeded")
	}
	checkTransitions(t, o.Transitions(), t0, []Transition{
		{true, t0}, {false, t0.Add(1500 * 1e6)}, {true, t0.Add(2500 * 1e6)}, {false, t0.Add(2500 * 1e6)},
	})
}
