package media

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/intercomd/intercomd/signaling"
)

func testLogger() *slog.Logger {
	if os.Getenv("MEDIA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testEngine(tb testing.TB) *Engine {
	tb.Helper()
	e, err := NewEngine(Config{
		LoopbackOnly:           true,
		ICEDisconnectedTimeout: time.Second,
		ICEFailedTimeout:       time.Second,
		Logger:                 testLogger(),
	})
	if err != nil {
		tb.Fatalf("NewEngine: %v", err)
	}
	return e
}

// endpoint is one side of a test call: a session plus what its callbacks
// reported.
type endpoint struct {
	name   string
	s      *Session
	out    chan any // signaling to the peer: signaling.Candidate or signaling.SDP
	states chan State
	first  chan time.Duration
	camErr chan error
}

func newEndpoint(tb testing.TB, e *Engine, name string, opts SessionOptions, dev Devices) *endpoint {
	tb.Helper()
	ep := &endpoint{
		name:   name,
		out:    make(chan any, 256),
		states: make(chan State, 16),
		first:  make(chan time.Duration, 1),
		camErr: make(chan error, 1),
	}
	s, err := e.NewSession(opts, dev, Callbacks{
		LocalCandidate: func(c signaling.Candidate) { ep.out <- c },
		Renegotiate:    func(d signaling.SDP) { ep.out <- d },
		StateChanged:   func(st State) { ep.states <- st },
		CameraFailed:   func(err error) { ep.camErr <- err },
		FirstFrame:     func(d time.Duration) { ep.first <- d },
	})
	if err != nil {
		tb.Fatalf("%s: NewSession: %v", name, err)
	}
	ep.s = s
	return ep
}

// pump delivers one side's signalling to the other in order, as MQTT would.
func pump(tb testing.TB, ctx context.Context, wg *sync.WaitGroup, from, to *endpoint) {
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-from.out:
				var err error
				switch m := m.(type) {
				case signaling.Candidate:
					err = to.s.AddCandidate(m)
				case signaling.SDP:
					err = to.s.HandleSDP(m)
				}
				if err != nil && ctx.Err() == nil && !isClosedErr(err) && err != ErrClosed {
					tb.Errorf("%s → %s: %v", from.name, to.name, err)
				}
			}
		}
	})
}

// call is two connected endpoints.
type call struct {
	a, b   *endpoint
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// connect runs the invite/response exchange: a offers, b answers, a
// applies the answer; candidates flow through the pumps.
func connect(tb testing.TB, a, b *endpoint) *call {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &call{a: a, b: b, cancel: cancel}
	offer, err := a.s.CreateOffer()
	if err != nil {
		tb.Fatalf("CreateOffer: %v", err)
	}
	answer, err := b.s.AcceptOffer(offer)
	if err != nil {
		tb.Fatalf("AcceptOffer: %v", err)
	}
	if err := a.s.SetAnswer(answer); err != nil {
		tb.Fatalf("SetAnswer: %v", err)
	}
	pump(tb, ctx, &c.wg, a, b)
	pump(tb, ctx, &c.wg, b, a)
	return c
}

func (c *call) close(tb testing.TB) {
	tb.Helper()
	if err := c.a.s.Close(); err != nil {
		tb.Errorf("close %s: %v", c.a.name, err)
	}
	if err := c.b.s.Close(); err != nil {
		tb.Errorf("close %s: %v", c.b.name, err)
	}
	c.cancel()
	c.wg.Wait()
}

// waitState waits for a state of the given kind, failing on anything else
// terminal.
func waitState(tb testing.TB, ep *endpoint, kind StateKind, within time.Duration) State {
	tb.Helper()
	t := time.NewTimer(within)
	defer t.Stop()
	for {
		select {
		case st := <-ep.states:
			if st.Kind == kind {
				return st
			}
			if st.Kind == StateFailed || st.Kind == StateClosed {
				tb.Fatalf("%s: state %v while waiting for %v", ep.name, st, kind)
			}
		case <-t.C:
			tb.Fatalf("%s: no %v state within %v", ep.name, kind, within)
		}
	}
}

// eventually polls cond until it holds. Polling an observable condition is
// the synchronisation here (packet counters have no event to wait on); the
// deadline only bounds a failure.
func eventually(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitFrames blocks until the source has produced n more frames: a way to
// let real media time pass that is tied to what the test observes.
func waitFrames(tb testing.TB, src *fixtureSource, n int64) {
	tb.Helper()
	target := src.produced.Load() + n
	eventually(tb, 10*time.Second, "source frames", func() bool { return src.produced.Load() >= target })
}

func waitTone(tb testing.TB, src *toneSource, n int64) {
	tb.Helper()
	target := src.frames.Load() + n
	eventually(tb, 10*time.Second, "microphone frames", func() bool { return src.frames.Load() >= target })
}
