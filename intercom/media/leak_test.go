package media

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// settledGoroutines waits for the goroutine count to stop falling (pion and
// the runtime finish some work asynchronously after Close) and returns it.
func settledGoroutines(limit int) int {
	n := runtime.NumGoroutine()
	deadline := time.Now().Add(5 * time.Second)
	for n > limit && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

// 100 sequential video calls, each connected with media flowing both ways
// and then closed, leave no goroutines behind.
func TestSequentialSessionsNoLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("100 calls")
	}
	e := testEngine(t)
	// One warm-up call: first use initialises package-level state (pools,
	// timers) that is not per-call.
	runShortCall(t, e)
	before := settledGoroutines(0)
	fdsBefore := openFDs()
	const calls = 100
	for i := range calls {
		runShortCall(t, e)
		if t.Failed() {
			t.Fatalf("call %d failed", i)
		}
	}
	after := settledGoroutines(before)
	fdsAfter := openFDs()
	t.Logf("goroutines before %d, after %d calls %d; open fds %d → %d", before, calls, after, fdsBefore, fdsAfter)
	if fdsAfter > fdsBefore {
		t.Errorf("open file descriptors grew from %d to %d", fdsBefore, fdsAfter)
	}
	if after > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines grew from %d to %d over %d calls\n%s", before, after, calls, buf[:runtime.Stack(buf, true)])
	}
}

func runShortCall(t *testing.T, e *Engine) {
	t.Helper()
	a, b := newSide(t, CallTypeVideo, true), newSide(t, CallTypeVideo, true)
	ea := newEndpoint(t, e, "caller", a.opts, a.devices())
	eb := newEndpoint(t, e, "callee", b.opts, b.devices())
	c := connect(t, ea, eb)
	waitState(t, ea, StateConnected, 5*time.Second)
	waitState(t, eb, StateConnected, 5*time.Second)
	select {
	case <-eb.first:
	case <-time.After(5 * time.Second):
		t.Fatal("no first frame")
	}
	eventually(t, 5*time.Second, "audio both ways", func() bool {
		return ea.s.Stats().Audio.PacketsReceived > 0 && eb.s.Stats().Audio.PacketsReceived > 0
	})
	c.close(t)
	if a.cam.stops.Load() != a.cam.starts.Load() {
		t.Errorf("camera started %d, stopped %d", a.cam.starts.Load(), a.cam.stops.Load())
	}
}

// openFDs counts this process's open file descriptors (-1 off Linux).
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}
