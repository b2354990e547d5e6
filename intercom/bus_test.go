package intercom

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intercomd/intercomd/signaling"
)

// bus is an in-memory stand-in for the broker, for logic tests only: it
// routes envelopes (through the real codec) the way the topic layout does.
type bus struct {
	t         *testing.T
	mu        sync.Mutex
	engines   map[signaling.Address]*Engine
	delivered atomic.Int64
	// drop, when set, swallows matching envelopes (simulated loss).
	drop func(signaling.Envelope) bool
}

type busTransport struct {
	b    *bus
	self signaling.Address
}

func (bt *busTransport) Send(env signaling.Envelope) error {
	data, err := signaling.Encode(env)
	if err != nil {
		bt.b.t.Errorf("encode: %v", err)
		return err
	}
	dec, err := signaling.Decode(data)
	if err != nil {
		bt.b.t.Errorf("decode own message: %v", err)
		return err
	}
	bt.b.mu.Lock()
	drop := bt.b.drop
	var targets []*Engine
	for addr, e := range bt.b.engines {
		if addr.Account == env.To.Account && (env.To.Device == "" || env.To.Device == addr.Device) && addr != bt.self {
			targets = append(targets, e)
		}
	}
	bt.b.mu.Unlock()
	if drop != nil && drop(dec) {
		return nil
	}
	for _, e := range targets {
		bt.b.delivered.Add(1)
		e.HandleMessage(dec)
	}
	return nil
}

type harness struct {
	t     *testing.T
	clock *FakeClock
	bus   *bus
	eps   map[string]*endpoint
	ctx   context.Context
}

type endpoint struct {
	addr   signaling.Address
	e      *Engine
	events <-chan Event
	bills  *billRecorder
	cancel context.CancelFunc
	done   chan struct{}
}

type billRecorder struct {
	mu    sync.Mutex
	bills []Bill
}

func (r *billRecorder) AddBill(b Bill) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bills = append(r.bills, b)
	return nil
}

func (r *billRecorder) all() []Bill {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Bill(nil), r.bills...)
}

func newHarness(t *testing.T) *harness {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &harness{
		t:     t,
		clock: NewFakeClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)),
		bus:   &bus{t: t, engines: make(map[signaling.Address]*Engine)},
		eps:   make(map[string]*endpoint),
		ctx:   ctx,
	}
}

var quietLogger = slog.New(slog.NewTextHandler(testLogOut(), nil))

// add starts an engine for account/device and announces it online to all.
func (h *harness) add(account, device string, tweak ...func(*Config)) *endpoint {
	h.t.Helper()
	addr := signaling.Address{Account: account, Device: device}
	rec := &billRecorder{}
	cfg := Config{Self: addr, Clock: h.clock, Logger: quietLogger, Bills: rec}
	for _, f := range tweak {
		f(&cfg)
	}
	e, err := New(cfg, &busTransport{b: h.bus, self: addr})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	ep := &endpoint{addr: addr, e: e, bills: rec, cancel: cancel, done: make(chan struct{})}
	ep.events, _ = e.Subscribe()
	go func() { defer close(ep.done); _ = e.Run(ctx) }()
	h.t.Cleanup(func() { cancel(); <-ep.done })
	h.bus.mu.Lock()
	h.bus.engines[addr] = e
	others := make([]signaling.Address, 0, len(h.bus.engines))
	for a := range h.bus.engines {
		others = append(others, a)
	}
	h.bus.mu.Unlock()
	// Everyone learns of the newcomer, and the newcomer of everyone.
	for _, a := range others {
		if a != addr {
			e.HandlePresence(signaling.Presence{State: signaling.Online, Account: a.Account, Device: a.Device, Session: "s-" + a.String()})
		}
	}
	h.presence(addr, signaling.Online, "s-"+addr.String())
	h.eps[addr.String()] = ep
	h.settle()
	return ep
}

// presence tells every engine that addr changed presence.
func (h *harness) presence(addr signaling.Address, state, session string) {
	h.bus.mu.Lock()
	var all []*Engine
	for a, e := range h.bus.engines {
		if a != addr {
			all = append(all, e)
		}
	}
	h.bus.mu.Unlock()
	for _, e := range all {
		e.HandlePresence(signaling.Presence{State: state, Account: addr.Account, Device: addr.Device, Session: session})
	}
	h.settle()
}

// remove stops an endpoint's engine as a crash would: no hangup is sent.
func (h *harness) remove(ep *endpoint) {
	h.bus.mu.Lock()
	delete(h.bus.engines, ep.addr)
	h.bus.mu.Unlock()
}

// settle waits until no engine has work left: messages cascade between
// engines, so ping everyone until a round delivers nothing new.
func (h *harness) settle() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		before := h.bus.delivered.Load()
		h.bus.mu.Lock()
		var all []*Engine
		for _, e := range h.bus.engines {
			all = append(all, e)
		}
		h.bus.mu.Unlock()
		for _, e := range all {
			if err := e.Ping(ctx); err != nil {
				h.t.Fatalf("settle: %v", err)
			}
		}
		if h.bus.delivered.Load() == before {
			return
		}
	}
}

// advance moves the fake clock and lets the engines react.
func (h *harness) advance(d time.Duration) {
	h.clock.Advance(d)
	h.settle()
}

// next returns the next event named name, failing on timeout. Events of
// other names are skipped.
func (ep *endpoint) next(t *testing.T, name string) Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-ep.events:
			if ev.Name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("%s: no %q event", ep.addr, name)
		}
	}
}

// drainNames returns the names of the events queued now.
func (ep *endpoint) drainNames() []string {
	var names []string
	for {
		select {
		case ev := <-ep.events:
			names = append(names, ev.Name)
		default:
			return names
		}
	}
}

func (ep *endpoint) state(t *testing.T) State {
	t.Helper()
	s, err := ep.e.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s.State
}

func (ep *endpoint) lastBill(t *testing.T) Bill {
	t.Helper()
	b := ep.bills.all()
	if len(b) == 0 {
		t.Fatalf("%s: no bill", ep.addr)
	}
	return b[len(b)-1]
}

func testLogOut() io.Writer {
	if os.Getenv("INTERCOMD_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}
