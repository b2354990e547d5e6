package intercom

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/intercomd/intercomd/signaling"
	"github.com/intercomd/intercomd/signaling/sigtest"
)

// Integration tests: real engines, real signalling clients, a real broker
// (embedded, or mosquitto when INTERCOMD_TEST_BROKER is set), durable
// outboxes. Engine timers run on a fake clock so no test waits for a
// timeout in real time.

type testNet struct {
	t      *testing.T
	broker string
	prefix string
	clock  *FakeClock
}

func newNet(t *testing.T, broker string) *testNet {
	if broker == "" {
		broker = sigtest.Broker(t)
	}
	return &testNet{t: t, broker: broker, prefix: sigtest.Prefix(t), clock: NewFakeClock(time.Now())}
}

type node struct {
	addr   signaling.Address
	ep     *Endpoint
	events <-chan Event
	cancel context.CancelFunc
	done   chan struct{}
	dir    string
}

func (n *testNet) start(account, device string, tweak ...func(*EndpointConfig)) *node {
	n.t.Helper()
	return n.startIn(n.t.TempDir(), account, device, tweak...)
}

func (n *testNet) startIn(dir, account, device string, tweak ...func(*EndpointConfig)) *node {
	n.t.Helper()
	self := signaling.Address{Account: account, Device: device}
	cfg := EndpointConfig{
		Engine:    Config{Self: self, Clock: n.clock, Logger: sigtest.Logger(n.t).With("node", self.String())},
		Client:    signaling.ClientConfig{Broker: n.broker, Topics: signaling.Topics{Prefix: n.prefix}, Self: self, KeepAlive: 2 * time.Second, MaxReconnectInterval: 500 * time.Millisecond},
		OutboxDir: filepath.Join(dir, "outbox"),
	}
	for _, f := range tweak {
		f(&cfg)
	}
	ep, err := NewEndpoint(cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	nd := &node{addr: self, ep: ep, cancel: cancel, done: make(chan struct{}), dir: dir}
	nd.events, _ = ep.Engine.Subscribe()
	go func() { defer close(nd.done); _ = ep.Run(ctx) }()
	n.t.Cleanup(nd.stop)
	if err := ep.Client.WaitConnected(sigtest.Ctx(n.t)); err != nil {
		n.t.Fatal(err)
	}
	return nd
}

func (nd *node) stop() {
	nd.cancel()
	<-nd.done
}

// waitOnline waits until nd has seen every listed device of account online.
func (nd *node) waitOnline(t *testing.T, account string, devices ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		devs, err := nd.ep.Engine.OnlineDevices(context.Background(), account)
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, d := range devs {
			have[d] = true
		}
		all := true
		for _, d := range devices {
			all = all && have[d]
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never saw %s %v online (has %v)", nd.addr, account, devices, devs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (nd *node) next(t *testing.T, name string) Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-nd.events:
			if ev.Name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("%s: no %q event", nd.addr, name)
		}
	}
}

func (nd *node) respond(info BeCallingInfo, accepted bool) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- nd.ep.Engine.Response(context.Background(), info, accepted) }()
	return ch
}

func (nd *node) stateIs(t *testing.T, want State) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := nd.ep.Engine.State(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if s.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s state %s, want %s", nd.addr, s.State, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// billWatcher collects bills from the bill topics over MQTT, as a
// consumer would, counting deliveries per id.
type billWatcher struct {
	ctl    *signaling.Controller
	mu     sync.Mutex
	counts map[string]int
	bills  map[string]Bill
	ch     chan struct{}
}

func (n *testNet) watchBills() *billWatcher {
	n.t.Helper()
	w := &billWatcher{counts: map[string]int{}, bills: map[string]Bill{}, ch: make(chan struct{}, 1)}
	ctl, err := signaling.DialController(sigtest.Ctx(n.t), signaling.ControllerConfig{Broker: n.broker, Topics: signaling.Topics{Prefix: n.prefix}})
	if err != nil {
		n.t.Fatal(err)
	}
	stop, err := ctl.Subscribe(sigtest.Ctx(n.t), signaling.Address{Account: "+", Device: "+"}, []string{signaling.LeafBill}, func(o signaling.Observation) {
		var b Bill
		if err := json.Unmarshal(o.Payload, &b); err != nil {
			n.t.Errorf("bad bill JSON: %v", err)
			return
		}
		w.mu.Lock()
		w.counts[b.ID]++
		w.bills[b.ID] = b
		w.mu.Unlock()
		select {
		case w.ch <- struct{}{}:
		default:
		}
	})
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { stop(); ctl.Close() })
	w.ctl = ctl
	return w
}

// waitFor waits until bills for channel from every listed device arrived.
func (w *billWatcher) waitFor(t *testing.T, channel string, devices ...signaling.Address) map[string]Bill {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		w.mu.Lock()
		got := map[string]Bill{}
		for _, b := range w.bills {
			if b.ChannelID == channel {
				got[b.Account+"/"+b.Device] = b
			}
		}
		w.mu.Unlock()
		all := true
		for _, d := range devices {
			_, ok := got[d.String()]
			all = all && ok
		}
		if all {
			return got
		}
		select {
		case <-w.ch:
		case <-timeout:
			t.Fatalf("bills for %s: got %d of %d", channel, len(got), len(devices))
		}
	}
}

func (w *billWatcher) duplicates() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := map[string]int{}
	for id, c := range w.counts {
		if c > 1 {
			d[id] = c
		}
	}
	return d
}

func mustCall(t *testing.T, nd *node, account string, push *signaling.PushConfig) CallResult {
	t.Helper()
	res, err := nd.ep.Engine.Call(context.Background(), CallOptions{Type: TypeVideo, Account: account, PushConfig: push})
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	return res
}

func must(t *testing.T, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("response did not return")
	}
}

func TestIntegrationAcceptHangupBills(t *testing.T) {
	n := newNet(t, "")
	bills := n.watchBills()
	door := n.start("door", "d1")
	flat := n.start("flat1", "tablet")
	door.waitOnline(t, "flat1", "tablet")

	res := mustCall(t, door, "flat1", nil)
	ring := flat.next(t, EvBeCalling).Data.(*BeCallingInfo)
	if c := door.next(t, EvControl).Data.(*ControlInfo); c.Command != CmdStartNotifyReceived {
		t.Fatalf("control %d", c.Command)
	}
	must(t, flat.respond(*ring, true))
	door.next(t, EvCallAccepted)
	door.stateIs(t, StateInCall)
	n.clock.Advance(42 * time.Second)
	if err := door.ep.Engine.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	hu := flat.next(t, EvHangup).Data.(*HangupInfo)
	if hu.Type != HangupNormal || hu.Reason != ReasonUserHangup {
		t.Fatalf("%+v", hu)
	}
	got := bills.waitFor(t, res.ChannelID, door.addr, flat.addr)
	for who, b := range got {
		if b.Type != BillAnswered || b.Duration != 42 || b.Disposition != DispAnswered || b.HungUpBy != "caller" {
			t.Fatalf("%s bill %+v", who, b)
		}
	}
	if d := bills.duplicates(); len(d) != 0 {
		t.Fatalf("duplicate bills %v", d)
	}
}

func TestIntegrationRejectBusyOffline(t *testing.T) {
	n := newNet(t, "")
	bills := n.watchBills()
	door := n.start("door", "d1")
	gate := n.start("gate", "g1")
	flat := n.start("flat1", "tablet")
	door.waitOnline(t, "flat1", "tablet")
	gate.waitOnline(t, "flat1", "tablet")

	// Offline account: 11001 at once, and a FAILED bill.
	if _, err := door.ep.Engine.Call(context.Background(), CallOptions{Type: TypeAudio, Account: "ghost"}); ErrorCode(err) != CodeCalleeOffline {
		t.Fatalf("err %v, want 11001", err)
	}
	// Reject.
	res := mustCall(t, door, "flat1", nil)
	ring := flat.next(t, EvBeCalling).Data.(*BeCallingInfo)
	must(t, flat.respond(*ring, false))
	door.next(t, EvCallRejected)
	got := bills.waitFor(t, res.ChannelID, door.addr, flat.addr)
	if got[door.addr.String()].Disposition != DispRejected {
		t.Fatalf("%+v", got)
	}
	door.stateIs(t, StateIdle)
	// Busy: flat in a call with door, gate calls.
	res = mustCall(t, door, "flat1", nil)
	ring = flat.next(t, EvBeCalling).Data.(*BeCallingInfo)
	must(t, flat.respond(*ring, true))
	door.next(t, EvCallAccepted)
	res2 := mustCall(t, gate, "flat1", nil)
	rej := gate.next(t, EvCallRejected).Data.(*CallRejectedInfo)
	if !rej.Busy {
		t.Fatalf("%+v", rej)
	}
	got = bills.waitFor(t, res2.ChannelID, gate.addr, flat.addr)
	if got[gate.addr.String()].Disposition != DispBusy {
		t.Fatalf("%+v", got)
	}
	flat.stateIs(t, StateInCall)
	s, _ := flat.ep.Engine.State(context.Background())
	if s.ChannelID != res.ChannelID {
		t.Fatal("busy invite replaced the current call")
	}
}

func TestIntegrationTimeouts(t *testing.T) {
	n := newNet(t, "")
	door := n.start("door", "d1", func(c *EndpointConfig) { c.Engine.CallTimeout = 30 * time.Second })
	flat := n.start("flat1", "tablet", func(c *EndpointConfig) { c.Engine.RingTimeout = 20 * time.Second })
	door.waitOnline(t, "flat1", "tablet")
	// Callee ring timeout (20 s) before the caller's (30 s).
	mustCall(t, door, "flat1", nil)
	flat.next(t, EvBeCalling)
	n.clock.Advance(20 * time.Second)
	if r := door.next(t, EvCallRejected).Data.(*CallRejectedInfo); r.Reason != ReasonRingTimeout {
		t.Fatalf("%+v", r)
	}
	door.stateIs(t, StateIdle)
	flat.stateIs(t, StateIdle)
	// Caller timeout: a callee with a long ring timeout.
	flat2 := n.start("flat2", "tablet", func(c *EndpointConfig) { c.Engine.RingTimeout = 5 * time.Minute })
	door.waitOnline(t, "flat2", "tablet")
	mustCall(t, door, "flat2", nil)
	flat2.next(t, EvBeCalling)
	n.clock.Advance(30 * time.Second)
	if h := flat2.next(t, EvHangup).Data.(*HangupInfo); h.Type != HangupAbnormal || h.Reason != ReasonInviteTimeout {
		t.Fatalf("%+v", h)
	}
	flat2.stateIs(t, StateIdle)
}

func TestIntegrationForceKeepCalling(t *testing.T) {
	n := newNet(t, "")
	door := n.start("door", "d1")
	res := mustCall(t, door, "flat1", &signaling.PushConfig{ForceKeepCalling: true})
	n.clock.Advance(5 * time.Second)
	flat := n.start("flat1", "tablet")
	ring := flat.next(t, EvBeCalling).Data.(*BeCallingInfo)
	if ring.ChannelID != res.ChannelID {
		t.Fatal("rang for another call")
	}
	must(t, flat.respond(*ring, true))
	door.next(t, EvCallAccepted)
}

func TestIntegrationThreeDevices(t *testing.T) {
	n := newNet(t, "")
	door := n.start("door", "d1")
	devs := []*node{n.start("flat1", "a"), n.start("flat1", "b"), n.start("flat1", "c")}
	door.waitOnline(t, "flat1", "a", "b", "c")
	mustCall(t, door, "flat1", nil)
	var infos []*BeCallingInfo
	for _, d := range devs {
		infos = append(infos, d.next(t, EvBeCalling).Data.(*BeCallingInfo))
	}
	must(t, devs[0].respond(*infos[0], true))
	if a := door.next(t, EvCallAccepted).Data.(*CallAcceptedInfo); a.Device != "a" {
		t.Fatalf("%+v", a)
	}
	for _, d := range devs[1:] {
		if s := d.next(t, EvCallerAckSync).Data.(*CallerAckSyncInfo); s.Device != "a" || !s.Accepted {
			t.Fatalf("%+v", s)
		}
		d.stateIs(t, StateIdle)
	}
	err := <-devs[2].respond(*infos[2], true)
	if ErrorCode(err) != CodeAnsweredElsewhere {
		t.Fatalf("late answer: %v, want 9103", err)
	}
}

func TestIntegrationGlare(t *testing.T) {
	n := newNet(t, "")
	a := n.start("flatA", "a")
	b := n.start("flatB", "b")
	a.waitOnline(t, "flatB", "b")
	b.waitOnline(t, "flatA", "a")
	var ra, rb CallResult
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ra = mustCall(t, a, "flatB", nil) }()
	go func() { defer wg.Done(); rb = mustCall(t, b, "flatA", nil) }()
	wg.Wait()
	a.stateIs(t, StateInCall)
	b.stateIs(t, StateInCall)
	sa, _ := a.ep.Engine.State(context.Background())
	sb, _ := b.ep.Engine.State(context.Background())
	if sa.ChannelID != sb.ChannelID || sa.ChannelID != min(ra.ChannelID, rb.ChannelID) {
		t.Fatalf("a on %s, b on %s; want both on %s", sa.ChannelID, sb.ChannelID, min(ra.ChannelID, rb.ChannelID))
	}
}

func TestIntegrationPeerKilledMidCall(t *testing.T) {
	skipIfNoExec(t)
	n := newNet(t, "")
	door := n.start("door", "d1")
	child := startChild(t, childSpec{Broker: n.broker, Prefix: n.prefix, Account: "flat1", Device: "tablet", Mode: "answer", Dir: t.TempDir()})
	door.waitOnline(t, "flat1", "tablet")
	mustCall(t, door, "flat1", nil)
	door.next(t, EvCallAccepted)
	// Power loss: SIGKILL, no hangup, no DISCONNECT. The broker fires the
	// flat's last will; after the offline grace the door ends the call.
	child.kill(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		devs, _ := door.ep.Engine.OnlineDevices(context.Background(), "flat1")
		if len(devs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the flat's last will never arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
	door.ep.Engine.Ping(context.Background())
	n.clock.Advance(3 * time.Second)
	hu := door.next(t, EvHangup).Data.(*HangupInfo)
	if hu.Type != HangupAbnormal || hu.Reason != ReasonPeerLost {
		t.Fatalf("%+v", hu)
	}
}

func TestIntegrationBillsSurviveKill9(t *testing.T) {
	skipIfNoExec(t)
	n := newNet(t, "")
	bills := n.watchBills()
	dir := t.TempDir()
	// The child's broker is unreachable: its bills pile up in the outbox,
	// then it is killed before it could publish any.
	dead := unusedAddr(t)
	child := startChild(t, childSpec{Broker: "tcp://" + dead, Prefix: n.prefix, Account: "door", Device: "d1", Mode: "bills", Dir: dir})
	child.kill(t)
	files, _ := filepath.Glob(filepath.Join(dir, "outbox", "*.json"))
	if len(files) != childBills {
		t.Fatalf("outbox holds %d bills after kill -9, want %d", len(files), childBills)
	}
	// The daemon restarts with the same state directory and a broker.
	door := n.startIn(dir, "door", "d1")
	deadline := time.Now().Add(15 * time.Second)
	for {
		bills.mu.Lock()
		got := len(bills.counts)
		bills.mu.Unlock()
		if got == childBills && door.ep.Outbox.Pending() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d bills delivered, %d pending", got, childBills, door.ep.Outbox.Pending())
		}
		time.Sleep(10 * time.Millisecond)
	}
	door.stop() // flush and disconnect; nothing may be sent twice
	if d := bills.duplicates(); len(d) != 0 {
		t.Fatalf("bills delivered more than once: %v", d)
	}
	for _, b := range bills.bills {
		if b.Disposition != DispFailed || b.HangupReason != ReasonCalleeOffline || b.Caller != "door" {
			t.Fatalf("bill %+v", b)
		}
	}
}

// gatedBills holds bill publishing while its gate is shut.
type gatedBills struct {
	mu   sync.Mutex
	open chan struct{}
}

type gatedPublisher struct {
	g    *gatedBills
	next signaling.BillPublisher
}

func (g *gatedBills) wrap(p signaling.BillPublisher) signaling.BillPublisher {
	return gatedPublisher{g: g, next: p}
}

func (p gatedPublisher) PublishBill(ctx context.Context, payload []byte) error {
	p.g.mu.Lock()
	open := p.g.open
	p.g.mu.Unlock()
	select {
	case <-open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return p.next.PublishBill(ctx, payload)
}

func TestIntegrationBrokerRestart(t *testing.T) {
	for _, phase := range []string{"ringing", "in_call"} {
		t.Run(phase, func(t *testing.T) {
			rb := sigtest.NewRestartableBroker(t)
			n := newNet(t, rb.URL())
			bills := n.watchBills()
			// Bills are published only while the test's consumer is
			// subscribed: after a restart the consumer's clean session has
			// to come back first, or a non-retained bill has no audience.
			gate := &gatedBills{open: make(chan struct{})}
			close(gate.open)
			door := n.start("door", "d1", func(c *EndpointConfig) {
				c.WrapBills = func(p signaling.BillPublisher) signaling.BillPublisher { return gate.wrap(p) }
				c.Engine.CallTimeout = 10 * time.Minute // see the flat's timers below
			})
			flat := n.start("flat1", "tablet", func(c *EndpointConfig) {
				c.WrapBills = func(p signaling.BillPublisher) signaling.BillPublisher { return gate.wrap(p) }
				// The test advances the fake clock to drive response repeats
				// while the clients reconnect (slowly under qemu-user): keep
				// the give-up timers out of the way.
				c.Engine.ResponseTimeout = 10 * time.Minute
				c.Engine.RingTimeout = 10 * time.Minute
			})
			door.waitOnline(t, "flat1", "tablet")
			res := mustCall(t, door, "flat1", nil)
			ring := flat.next(t, EvBeCalling).Data.(*BeCallingInfo)
			gate.mu.Lock()
			gate.open = make(chan struct{})
			gate.mu.Unlock()
			if phase == "ringing" {
				rb.Stop()
				// Shorter than the peer-offline grace: the broker's last wills
				// (a graceful broker stop publishes them) must not end the call.
				n.clock.Advance(2 * time.Second)
				rb.Start()
				if err := bills.ctl.WaitReady(sigtest.Ctx(t)); err != nil {
					t.Fatal(err)
				}
				flat.stateIs(t, StateRinging)
				// The response (or its confirmation) may meet a side that
				// has not re-subscribed yet; it is repeated every second.
				done := flat.respond(*ring, true)
				for i := 0; ; i++ {
					select {
					case err := <-done:
						if err != nil {
							t.Fatal(err)
						}
					case <-time.After(300 * time.Millisecond):
						if i > 100 {
							t.Fatal("response never confirmed")
						}
						n.clock.Advance(responseRetransmit)
						continue
					}
					break
				}
				door.next(t, EvCallAccepted)
				if err := flat.ep.Engine.Hangup(context.Background()); err != nil {
					t.Fatal(err)
				}
			} else {
				must(t, flat.respond(*ring, true))
				door.next(t, EvCallAccepted)
				rb.Stop()
				n.clock.Advance(2 * time.Second)
				// Hang up while the broker is down: the bill waits in the
				// outbox, the hangup in the send queue.
				if err := flat.ep.Engine.Hangup(context.Background()); err != nil {
					t.Fatal(err)
				}
				flat.stateIs(t, StateIdle)
				if p := flat.ep.Outbox.Pending(); p != 1 {
					t.Fatalf("outbox holds %d bills while the broker is down, want 1", p)
				}
				door.stateIs(t, StateInCall)
				rb.Start()
				if err := bills.ctl.WaitReady(sigtest.Ctx(t)); err != nil {
					t.Fatal(err)
				}
			}
			close(gate.open)
			// The door learns of the hangup either from the flat's queued
			// hangup, or — if that met the door before it re-subscribed —
			// from the sync after its reconnect (peer_lost). Never both,
			// never neither.
			hu := door.next(t, EvHangup).Data.(*HangupInfo)
			viaHangup := hu.By == "remote" && hu.Reason == ReasonUserHangup
			viaSync := hu.By == "system" && hu.Reason == ReasonPeerLost && hu.Type == HangupAbnormal
			if !viaHangup && !viaSync {
				t.Fatalf("%+v", hu)
			}
			got := bills.waitFor(t, res.ChannelID, door.addr, flat.addr)
			for who, b := range got {
				if b.Disposition != DispAnswered {
					t.Fatalf("%s: %+v", who, b)
				}
			}
			if d := bills.duplicates(); len(d) != 0 {
				t.Fatalf("bills delivered more than once: %v", d)
			}
		})
	}
}
