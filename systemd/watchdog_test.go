package systemd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type round struct {
	pinged bool
	err    error
}

// driven is a watchdog loop with a hand-cranked clock: the test sends ticks
// and receives one round result per tick, so it counts messages and never
// measures time.
type driven struct {
	t      *testing.T
	m      *fakeManager
	tick   chan time.Time
	rounds chan round
	cancel context.CancelFunc
	done   chan error
}

func startDriven(t *testing.T, probe func(context.Context) error, timeout time.Duration) *driven {
	t.Helper()
	m := pathManager(t)
	n := newNotifier(envOf(map[string]string{"NOTIFY_SOCKET": m.addr, "WATCHDOG_USEC": "1000000"}), os.Getpid())
	ctx, cancel := context.WithCancel(context.Background())
	d := &driven{t: t, m: m, tick: make(chan time.Time), rounds: make(chan round, 1), cancel: cancel, done: make(chan error, 1)}
	w := &watchdogLoop{
		n: n, probe: probe, tick: d.tick, timeout: timeout,
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		onRound: func(p bool, err error) { d.rounds <- round{p, err} },
	}
	go func() { d.done <- w.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-d.done; err != nil {
			t.Errorf("run returned %v, want nil on cancel", err)
		}
	})
	return d
}

// step waits for the round in progress (the initial one or the one a tick
// started), then returns its result.
func (d *driven) await() round {
	d.t.Helper()
	select {
	case r := <-d.rounds:
		return r
	case <-time.After(10 * time.Second):
		d.t.Fatal("watchdog round did not finish")
		return round{}
	}
}

func (d *driven) step() round {
	d.tick <- time.Now()
	return d.await()
}

func TestWatchdogPingsOnlyWhileProbeSucceeds(t *testing.T) {
	var wedged atomic.Bool
	var calls atomic.Int32
	probe := func(ctx context.Context) error {
		calls.Add(1)
		if wedged.Load() {
			// A wedged engine that still honours the deadline.
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	d := startDriven(t, probe, 100*time.Millisecond)

	// Initial round plus two ticks: three keep-alives.
	if r := d.await(); !r.pinged || r.err != nil {
		t.Fatalf("initial round = %+v, want a keep-alive", r)
	}
	for i := 0; i < 2; i++ {
		if r := d.step(); !r.pinged {
			t.Fatalf("healthy tick %d = %+v", i, r)
		}
	}
	if got := d.m.drain(); len(got) != 3 || got[0] != "WATCHDOG=1" {
		t.Fatalf("healthy engine: manager got %q, want 3×WATCHDOG=1", got)
	}

	// Wedged: every round fails with ErrProbeTimeout and nothing is sent,
	// which is what makes systemd restart the daemon.
	wedged.Store(true)
	for i := 0; i < 3; i++ {
		r := d.step()
		if r.pinged || !errors.Is(r.err, ErrProbeTimeout) {
			t.Fatalf("wedged tick %d = %+v, want no keep-alive and ErrProbeTimeout", i, r)
		}
	}
	if got := d.m.drain(); len(got) != 0 {
		t.Fatalf("wedged engine: manager got %q, want nothing", got)
	}

	// Recovered before systemd gave up: keep-alives resume.
	wedged.Store(false)
	if r := d.step(); !r.pinged {
		t.Fatalf("recovered tick = %+v", r)
	}
	if got := d.m.drain(); len(got) != 1 || got[0] != "WATCHDOG=1" {
		t.Fatalf("recovered engine: manager got %q, want one WATCHDOG=1", got)
	}
	if c := calls.Load(); c != 7 {
		t.Errorf("probe called %d times, want 7 (one per round)", c)
	}
}

func TestWatchdogProbeError(t *testing.T) {
	errClosed := errors.New("engine loop closed")
	d := startDriven(t, func(context.Context) error { return errClosed }, time.Second)
	r := d.await()
	if r.pinged || !errors.Is(r.err, errClosed) {
		t.Fatalf("round = %+v, want no keep-alive and the probe's error", r)
	}
	if got := d.m.drain(); len(got) != 0 {
		t.Fatalf("manager got %q, want nothing", got)
	}
}

func TestWatchdogStuckProbeIsNotStackedUp(t *testing.T) {
	// A probe that ignores its context: the loop must abandon it, not start
	// a second one while it hangs, and drop its late answer.
	release := make(chan struct{})
	var calls atomic.Int32
	var mu sync.Mutex
	stuck := true
	probe := func(ctx context.Context) error {
		calls.Add(1)
		mu.Lock()
		s := stuck
		mu.Unlock()
		if s {
			<-release
		}
		return nil
	}
	d := startDriven(t, probe, 20*time.Millisecond)

	if r := d.await(); r.pinged || !errors.Is(r.err, ErrProbeTimeout) {
		t.Fatalf("stuck round = %+v", r)
	}
	for i := 0; i < 2; i++ {
		if r := d.step(); r.pinged || !errors.Is(r.err, ErrProbeTimeout) {
			t.Fatalf("round %d while stuck = %+v", i, r)
		}
	}
	if c := calls.Load(); c != 1 {
		t.Fatalf("probe started %d times while the first hung, want 1", c)
	}
	if got := d.m.drain(); len(got) != 0 {
		t.Fatalf("manager got %q while the probe hung", got)
	}

	mu.Lock()
	stuck = false
	mu.Unlock()
	close(release)
	// The stuck call's late nil is stale. Until it has actually returned the
	// loop keeps failing; once it has, a fresh probe decides the round.
	var r round
	for i := 0; i < 100; i++ {
		if r = d.step(); r.pinged {
			break
		}
	}
	if !r.pinged {
		t.Fatalf("no keep-alive after the probe recovered: %+v", r)
	}
	if c := calls.Load(); c != 2 {
		t.Errorf("probe called %d times, want 2 (the stuck one and one fresh)", c)
	}
	if got := d.m.drain(); len(got) != 1 {
		t.Errorf("manager got %q, want one WATCHDOG=1", got)
	}
}

func TestRunWatchdogDisabled(t *testing.T) {
	called := false
	probe := func(context.Context) error { called = true; return nil }
	if err := RunWatchdog(context.Background(), nil, probe); err != nil {
		t.Errorf("nil notifier: %v", err)
	}
	n := newNotifier(envOf(map[string]string{"NOTIFY_SOCKET": "/run/systemd/notify"}), 1)
	if err := RunWatchdog(context.Background(), n, probe); err != nil {
		t.Errorf("no WATCHDOG_USEC: %v", err)
	}
	if called {
		t.Error("probe called without a watchdog")
	}
}

// TestRunWatchdogRealClock runs the exported loop against a real socket
// with a 100 ms WatchdogSec. It still asserts on message counts only: while
// the engine is wedged for three consecutive probes, nothing arrives.
func TestRunWatchdogRealClock(t *testing.T) {
	m := pathManager(t)
	t.Setenv("NOTIFY_SOCKET", m.addr)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	n := NewNotifier()
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	var wedged atomic.Bool
	wedgedCalls := make(chan struct{}, 16)
	probe := func(ctx context.Context) error {
		if wedged.Load() {
			wedgedCalls <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunWatchdog(ctx, n, probe) }()

	for i := 0; i < 3; i++ {
		if got := m.next(); got != "WATCHDOG=1" {
			t.Fatalf("got %q, want WATCHDOG=1", got)
		}
	}
	wedged.Store(true)
	waitCall := func() {
		t.Helper()
		select {
		case <-wedgedCalls:
		case <-time.After(10 * time.Second):
			t.Fatal("no probe while wedged")
		}
	}
	// Rounds are sequential, so once the first wedged probe runs every
	// earlier keep-alive has been written; after the third, two full wedged
	// rounds have passed and must have sent nothing.
	waitCall()
	m.drain()
	waitCall()
	waitCall()
	if got := m.drain(); len(got) != 0 {
		t.Fatalf("wedged engine: manager got %q, want nothing", got)
	}
	wedged.Store(false)
	if got := m.next(); got != "WATCHDOG=1" {
		t.Fatalf("after recovery got %q, want WATCHDOG=1", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunWatchdog returned %v, want nil", err)
	}
}
