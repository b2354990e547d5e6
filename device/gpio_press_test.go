package device

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

type edgeAt struct {
	active bool
	at     time.Duration
}

func TestPressTracker(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name     string
		debounce time.Duration
		long     time.Duration
		initial  bool
		edges    []edgeAt
		until    time.Duration // final advance
		want     []Press
		wantAt   []time.Duration
	}{
		{name: "short press, kernel debounced", long: time.Second,
			edges: []edgeAt{{true, 100 * ms}, {false, 300 * ms}}, until: 2 * time.Second,
			want: []Press{ShortPress}, wantAt: []time.Duration{300 * ms}},
		{name: "long press reported while held", long: time.Second,
			edges: []edgeAt{{true, 100 * ms}, {false, 3 * time.Second}}, until: 4 * time.Second,
			want: []Press{LongPress}, wantAt: []time.Duration{1100 * ms}},
		{name: "long press disabled", long: 0,
			edges: []edgeAt{{true, 100 * ms}, {false, 3 * time.Second}}, until: 4 * time.Second,
			want: []Press{ShortPress}, wantAt: []time.Duration{3 * time.Second}},
		{name: "software debounce swallows bounces", debounce: 30 * ms, long: time.Second,
			edges: []edgeAt{
				{true, 100 * ms}, {false, 102 * ms}, {true, 105 * ms}, // contact bounce
				{false, 400 * ms}, {true, 401 * ms}, {false, 404 * ms},
			}, until: 2 * time.Second,
			want: []Press{ShortPress}, wantAt: []time.Duration{434 * ms}},
		{name: "software debounce drops a glitch", debounce: 30 * ms, long: time.Second,
			edges: []edgeAt{{true, 100 * ms}, {false, 110 * ms}}, until: 2 * time.Second},
		{name: "held at startup is not a press", initial: true, long: time.Second,
			edges: []edgeAt{{false, 5 * time.Second}}, until: 6 * time.Second},
		{name: "two presses", debounce: 10 * ms, long: time.Second,
			edges: []edgeAt{{true, 0}, {false, 200 * ms}, {true, 500 * ms}, {false, 2 * time.Second}}, until: 3 * time.Second,
			want: []Press{ShortPress, LongPress}, wantAt: []time.Duration{210 * ms, 1510 * ms}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			p := newPressTracker("b", tc.debounce, tc.long, tc.initial)
			var got []ButtonEvent
			// Drive it like runPressLoop does: fire deadlines that come
			// before the next edge, then the edge.
			step := func(until time.Time) {
				for {
					dl, ok := p.deadline()
					if !ok || dl.After(until) {
						return
					}
					got = append(got, p.advance(dl)...)
				}
			}
			for _, e := range tc.edges {
				step(t0.Add(e.at))
				got = append(got, p.edge(e.active, t0.Add(e.at))...)
			}
			step(t0.Add(tc.until))
			if len(got) != len(tc.want) {
				t.Fatalf("got %d presses %v, want %v", len(got), got, tc.want)
			}
			for i, ev := range got {
				if ev.Press != tc.want[i] || ev.Button != "b" {
					t.Errorf("press %d = %v %s, want %v", i, ev.Button, ev.Press, tc.want[i])
				}
				if at := ev.Time.Sub(t0); at != tc.wantAt[i] {
					t.Errorf("press %d at %v, want %v", i, at, tc.wantAt[i])
				}
			}
		})
	}
}

// The loop with a fake clock: the long press must come from the timer, with
// no edge after the press.
func TestPressLoopFakeClock(t *testing.T) {
	clk := newFakeClock()
	edges := make(chan rawEdge)
	events := make(chan ButtonEvent, 4)
	trackers := []*pressTracker{
		newPressTracker("call", 20*time.Millisecond, time.Second, false),
		newPressTracker("hangup", 0, time.Second, false),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { done <- runPressLoop(ctx, clk, trackers, edges, events, log) }()

	edges <- rawEdge{idx: 0, active: true, at: clk.Now()}
	clk.WaitTimers(t, 1) // debounce timer
	clk.Advance(20 * time.Millisecond)
	clk.WaitTimers(t, 1) // long-press timer
	select {
	case ev := <-events:
		t.Fatalf("event before the threshold: %+v", ev)
	default:
	}
	clk.Advance(time.Second)
	ev := <-events
	if ev.Button != "call" || ev.Press != LongPress {
		t.Fatalf("got %+v, want call long", ev)
	}

	edges <- rawEdge{idx: 1, active: true, at: clk.Now()}
	clk.WaitTimers(t, 1)
	clk.Advance(100 * time.Millisecond)
	edges <- rawEdge{idx: 1, active: false, at: clk.Now()}
	ev = <-events
	if ev.Button != "hangup" || ev.Press != ShortPress {
		t.Fatalf("got %+v, want hangup short", ev)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v at context end, want nil", err)
	}
}

func TestButtonConfigDefaults(t *testing.T) {
	c := ButtonConfig{}
	if c.debounce() != DefaultDebounce || c.longPress() != DefaultLongPress {
		t.Fatalf("defaults: debounce %v long %v", c.debounce(), c.longPress())
	}
	c = ButtonConfig{Debounce: -1, LongPress: -1}
	if c.debounce() != 0 || c.longPress() != 0 {
		t.Fatalf("disabled: debounce %v long %v", c.debounce(), c.longPress())
	}
}
