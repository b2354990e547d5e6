package signaling_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/signaling"
	"github.com/intercomd/intercomd/signaling/sigtest"
)

var (
	door   = signaling.Address{Account: "door", Device: "d1"}
	flatA1 = signaling.Address{Account: "flat1", Device: "a"}
	flatA2 = signaling.Address{Account: "flat1", Device: "b"}
)

var seq int

func envelope(typ signaling.MsgType, from, to signaling.Address, payload any) signaling.Envelope {
	seq++
	return signaling.Envelope{
		Type: typ, ID: fmt.Sprintf("m%d-%s", seq, randHex(8)), From: from, To: to,
		Channel: "ch1", Time: time.Now().UnixMilli(), Payload: payload,
	}
}

func TestSendReceive(t *testing.T) {
	broker, prefix := sigtest.Broker(t), sigtest.Prefix(t)
	d := newClient(t, broker, prefix, door)
	a1 := newClient(t, broker, prefix, flatA1)
	a2 := newClient(t, broker, prefix, flatA2)
	d.waitUp(t)
	a1.waitUp(t)
	a2.waitUp(t)

	// An invite to the account rings every device of it.
	inv := envelope(signaling.TypeInvite, door, signaling.Address{Account: "flat1"}, &signaling.Invite{CallType: 2, Offer: "v=0"})
	if err := d.Send(inv); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*tclient{a1, a2} {
		got := recv(t, c.msgs, "invite")
		if got.ID != inv.ID || got.Type != signaling.TypeInvite || got.From != door {
			t.Fatalf("got %+v, want invite %s from door", got, inv.ID)
		}
		if p, ok := got.Payload.(*signaling.Invite); !ok || p.CallType != 2 || p.Offer != "v=0" {
			t.Fatalf("payload %#v", got.Payload)
		}
	}

	// A direct message reaches only its device, in order.
	const n = 50
	for i := 0; i < n; i++ {
		if err := a1.Send(envelope(signaling.TypeCandidate, flatA1, door, &signaling.Candidate{Candidate: fmt.Sprintf("c%d", i)})); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		got := recv(t, d.msgs, "candidate")
		if c := got.Payload.(*signaling.Candidate).Candidate; c != fmt.Sprintf("c%d", i) {
			t.Fatalf("message %d: got candidate %q: out of order", i, c)
		}
	}
	// a2's inbox gets one message; a1 must not see it, nor its own invite echo.
	if err := d.Send(envelope(signaling.TypeHangup, door, flatA2, &signaling.Hangup{Type: 0, Reason: "x"})); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, a2.msgs, "hangup"); got.Type != signaling.TypeHangup {
		t.Fatalf("a2 got %s", got.Type)
	}
	// Sentinel: after it, a1 must have seen nothing else.
	if err := d.Send(envelope(signaling.TypeControl, door, flatA1, &signaling.Control{Command: 1})); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, a1.msgs, "control"); got.Type != signaling.TypeControl {
		t.Fatalf("a1 got %s before the control sentinel: a message for a2 leaked", got.Type)
	}

	// A device sending to its own account does not hear itself.
	if err := a1.Send(envelope(signaling.TypeAckSync, flatA1, signaling.Address{Account: "flat1"}, &signaling.AckSync{Accepted: true, Device: "a", CallType: 2})); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, a2.msgs, "ackSync"); got.Type != signaling.TypeAckSync {
		t.Fatalf("a2 got %s", got.Type)
	}
	if err := d.Send(envelope(signaling.TypeControl, door, flatA1, &signaling.Control{Command: 2})); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, a1.msgs, "control"); got.Type != signaling.TypeControl {
		t.Fatalf("a1 heard its own %s", got.Type)
	}
}

func TestPresenceOnlineOffline(t *testing.T) {
	broker, prefix := sigtest.Broker(t), sigtest.Prefix(t)
	obs := newClient(t, broker, prefix, door)
	obs.waitUp(t)
	a := newClient(t, broker, prefix, flatA1, func(c *signaling.ClientConfig) { c.ClientType = "indoor"; c.Version = "1.2.3" })
	p := waitPresence(t, obs.presence, flatA1, signaling.Online)
	if p.Session != a.Session() || p.ClientType != "indoor" || p.Version != "1.2.3" || p.Since <= 0 || p.V != signaling.Version {
		t.Fatalf("online presence %+v (session %s)", p, a.Session())
	}
	a.waitUp(t)
	ctx := sigtest.Ctx(t)
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	p = waitPresence(t, obs.presence, flatA1, signaling.Offline)
	if p.Session != a.Session() {
		t.Fatalf("offline presence %+v", p)
	}
	if !errors.Is(a.Send(envelope(signaling.TypeControl, flatA1, door, &signaling.Control{})), signaling.ErrClosed) {
		t.Fatal("Send after Close did not fail with ErrClosed")
	}

	// A late joiner sees the retained presence.
	late := newClient(t, broker, prefix, signaling.Address{Account: "late", Device: "x"})
	seen := map[string]string{}
	for seen[flatA1.String()] != signaling.Offline || seen[door.String()] != signaling.Online {
		p := recv(t, late.presence, "retained presence")
		seen[p.Account+"/"+p.Device] = p.State
	}
}

func TestLastWillOnAbruptDisconnect(t *testing.T) {
	broker, prefix := sigtest.Broker(t), sigtest.Prefix(t)
	obs := newClient(t, broker, prefix, door)
	obs.waitUp(t)
	var k connKiller
	a := newClient(t, broker, prefix, flatA1, k.opt)
	a.waitUp(t)
	waitPresence(t, obs.presence, flatA1, signaling.Online)

	k.kill() // no DISCONNECT: the broker must publish our will
	p := waitPresence(t, obs.presence, flatA1, signaling.Offline)
	if p.Session != a.Session() {
		t.Fatalf("will %+v, want session %s", p, a.Session())
	}
	recv(t, a.lost, "ConnectionLost callback")
	// The client comes back by itself and says so.
	a.waitUp(t)
	waitPresence(t, obs.presence, flatA1, signaling.Online)
	if err := a.Send(envelope(signaling.TypeControl, flatA1, door, &signaling.Control{Command: 5})); err != nil {
		t.Fatal(err)
	}
	recv(t, obs.msgs, "message after reconnect")
}

func TestLastWillBrokerSideKick(t *testing.T) {
	rb := sigtest.NewRestartableBroker(t)
	prefix := sigtest.Prefix(t)
	obs := newClient(t, rb.URL(), prefix, door)
	obs.waitUp(t)
	a := newClient(t, rb.URL(), prefix, flatA1)
	a.waitUp(t)
	waitPresence(t, obs.presence, flatA1, signaling.Online)
	if !rb.Broker().KickClient(a.ClientID()) {
		t.Fatal("client not found on broker")
	}
	waitPresence(t, obs.presence, flatA1, signaling.Offline)
	a.waitUp(t)
	waitPresence(t, obs.presence, flatA1, signaling.Online)
}

func TestReconnectAfterBrokerRestart(t *testing.T) {
	rb := sigtest.NewRestartableBroker(t)
	prefix := sigtest.Prefix(t)
	fast := func(c *signaling.ClientConfig) { c.MaxReconnectInterval = 200 * time.Millisecond }
	var g dialGate
	g.open()
	d := newClient(t, rb.URL(), prefix, door, fast, g.opt)
	a := newClient(t, rb.URL(), prefix, flatA1, fast)
	d.waitUp(t)
	a.waitUp(t)
	a.SetState(signaling.CallState{State: "ringing", Channel: "ch9", Peer: &door, CallType: 2, Since: 1})

	g.close()
	rb.Stop()
	recv(t, d.lost, "door ConnectionLost")
	recv(t, a.lost, "flat ConnectionLost")
	if d.Connected() {
		t.Fatal("Connected() true while the broker is down")
	}
	// Sent while down: kept and delivered after the reconnect, in order.
	for i := 0; i < 10; i++ {
		if err := d.Send(envelope(signaling.TypeControl, door, flatA1, &signaling.Control{Command: i})); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.PublishBill(context.Background(), []byte("{}")); !errors.Is(err, signaling.ErrNotConnected) {
		t.Fatalf("PublishBill while down: %v, want ErrNotConnected", err)
	}
	rb.Start() // empty: retained presence and state are gone
	// The recipient must be subscribed again before the queue flushes: a
	// clean-session broker keeps nothing for absent subscribers.
	a.waitUp(t)
	g.open()
	d.waitUp(t)
	for i := 0; i < 10; i++ {
		got := recv(t, a.msgs, "queued message")
		if c := got.Payload.(*signaling.Control).Command; c != i {
			t.Fatalf("queued message %d arrived as %d", i, c)
		}
	}
	// Re-subscribed: new messages flow both ways.
	if err := a.Send(envelope(signaling.TypeControl, flatA1, door, &signaling.Control{Command: 99})); err != nil {
		t.Fatal(err)
	}
	recv(t, d.msgs, "message after restart")

	// Presence and state were re-published (the restarted broker had none).
	raw := newRaw(t, rb.URL())
	st := raw.sub(signaling.Topics{Prefix: prefix}.Device(flatA1, signaling.LeafState))
	m := recv(t, st, "retained state")
	var cs signaling.CallState
	if err := json.Unmarshal(m.Payload(), &cs); err != nil || cs.State != "ringing" || cs.Channel != "ch9" || !m.Retained() {
		t.Fatalf("retained state %s (retained %v): %v", m.Payload(), m.Retained(), err)
	}
	pres := raw.sub(signaling.Topics{Prefix: prefix}.Device(flatA1, signaling.LeafPresence))
	m = recv(t, pres, "retained presence")
	p, err := signaling.DecodePresence(m.Payload(), flatA1)
	if err != nil || p.State != signaling.Online || p.Session != a.Session() {
		t.Fatalf("retained presence %s: %v", m.Payload(), err)
	}
}

func TestInvalidMessagesDropped(t *testing.T) {
	broker, prefix := sigtest.Broker(t), sigtest.Prefix(t)
	tp := signaling.Topics{Prefix: prefix}
	a := newClient(t, broker, prefix, flatA1)
	a.waitUp(t)
	raw := newRaw(t, broker)

	valid := func(from, to signaling.Address) []byte {
		b, err := signaling.Encode(envelope(signaling.TypeControl, from, to, &signaling.Control{Command: 7}))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	inbox := tp.Inbox(flatA1, door)
	call := tp.AccountCall("flat1", door)
	bad := []struct {
		name, topic string
		payload     []byte
	}{
		{"garbage", inbox, []byte("\x00\xff not json")},
		{"empty", inbox, nil},
		{"truncated", inbox, valid(door, flatA1)[:20]},
		{"oversized", inbox, []byte(`{"v":1,"pad":"` + strings.Repeat("x", signaling.MaxMessageSize) + `"}`)},
		{"wrong version", inbox, []byte(strings.Replace(string(valid(door, flatA1)), `"v":1`, `"v":2`, 1))},
		{"unknown type", inbox, []byte(strings.Replace(string(valid(door, flatA1)), `"type":"control"`, `"type":"nope"`, 1))},
		{"sender mismatch", inbox, valid(flatA2, flatA1)},
		{"sender mismatch on call topic", call, valid(flatA2, signaling.Address{Account: "flat1"})},
		{"other account", call, valid(door, signaling.Address{Account: "flat2"})},
		{"other device", inbox, valid(door, flatA2)},
		{"own message", tp.Inbox(flatA1, flatA1), valid(flatA1, flatA1)},
		{"deep json", inbox, []byte(strings.Repeat("[", 10000))},
	}
	for _, b := range bad {
		raw.pub(b.topic, 1, false, b.payload)
	}
	// Invalid presence and requests, then valid sentinels.
	raw.pub(tp.Device(flatA2, signaling.LeafPresence), 1, false, []byte(`{"v":1,"state":"online","account":"flat2","device":"b","session":"s","since":1}`)) // device mismatch
	raw.pub(tp.Device(flatA2, signaling.LeafPresence), 1, false, []byte(`{"v":1,"state":"maybe","account":"flat1","device":"b","session":"s","since":1}`))
	raw.pub(tp.Device(flatA2, signaling.LeafPresence), 1, false, []byte(`{`))
	raw.pub(tp.Device(flatA1, signaling.LeafRequest), 1, false, []byte(`{"action":"call","bogus":1}`))
	raw.pub(tp.Device(flatA1, signaling.LeafRequest), 1, false, []byte(`{"transaction":"t0"}`))

	sentinel := valid(door, flatA1)
	raw.pub(inbox, 1, false, sentinel)
	raw.pub(tp.Device(flatA2, signaling.LeafPresence), 1, false, []byte(`{"v":1,"state":"online","account":"flat1","device":"b","session":"s2","since":1}`))
	raw.pub(tp.Device(flatA1, signaling.LeafRequest), 1, false, []byte(`{"transaction":"t1","action":"status"}`))

	got := recv(t, a.msgs, "sentinel")
	want, _ := signaling.Decode(sentinel)
	if got.ID != want.ID {
		t.Fatalf("first delivered message is %+v, want the sentinel: an invalid message got through", got)
	}
	p := waitPresence(t, a.presence, flatA2, signaling.Online)
	if p.Session != "s2" {
		t.Fatalf("invalid presence delivered: %+v", p)
	}
	if r := recv(t, a.requests, "request"); r.Transaction != "t1" || r.Action != "status" {
		t.Fatalf("first request %+v, want t1", r)
	}
	// Still working both ways.
	if err := a.Send(envelope(signaling.TypeControl, flatA1, door, &signaling.Control{})); err != nil {
		t.Fatal(err)
	}
	if !a.Connected() {
		t.Fatal("client disconnected by invalid input")
	}
}

func TestStateEventsRequestsBills(t *testing.T) {
	broker, prefix := sigtest.Broker(t), sigtest.Prefix(t)
	tp := signaling.Topics{Prefix: prefix}
	a := newClient(t, broker, prefix, flatA1)
	a.waitUp(t)
	raw := newRaw(t, broker)
	events := raw.sub(tp.Device(flatA1, signaling.LeafEvent))
	resp := raw.sub(tp.Device(flatA1, signaling.LeafResponse))
	bills := raw.sub(tp.Device(flatA1, signaling.LeafBill))
	states := raw.sub(tp.Device(flatA1, signaling.LeafState))

	a.SetState(signaling.CallState{State: "idle", Since: 5})
	m := recv(t, states, "state")
	if !strings.Contains(string(m.Payload()), `"state":"idle"`) || !strings.Contains(string(m.Payload()), `"v":1`) {
		t.Fatalf("state %s", m.Payload())
	}
	if err := a.PublishEvent(signaling.Event{Event: "beCalling", Data: json.RawMessage(`{"x":1}`)}); err != nil {
		t.Fatal(err)
	}
	var ev signaling.Event
	if m := recv(t, events, "event"); json.Unmarshal(m.Payload(), &ev) != nil || ev.Event != "beCalling" || ev.Time == 0 || m.Retained() {
		t.Fatalf("event %s", m.Payload())
	}
	raw.pub(tp.Device(flatA1, signaling.LeafRequest), 1, false, []byte(`{"transaction":"42","action":"call","account":"door","type":2}`))
	r := recv(t, a.requests, "request")
	if r.Action != "call" || r.Account != "door" || r.Type != 2 {
		t.Fatalf("request %+v", r)
	}
	if err := a.Respond(signaling.CommandResponse{Transaction: r.Transaction, Status: "ok"}); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, resp, "response"); string(m.Payload()) != `{"transaction":"42","status":"ok"}` {
		t.Fatalf("response %s", m.Payload())
	}
	if err := a.PublishBill(sigtest.Ctx(t), []byte(`{"id":"b1"}`)); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, bills, "bill"); string(m.Payload()) != `{"id":"b1"}` || m.Qos() != 1 {
		t.Fatalf("bill %s qos %d", m.Payload(), m.Qos())
	}
}

func TestOutboundQueueDropsOldest(t *testing.T) {
	broker, prefix := sigtest.Broker(t), sigtest.Prefix(t)
	a := newClient(t, broker, prefix, flatA1)
	a.waitUp(t)
	var g dialGate
	d := newClient(t, broker, prefix, door, g.opt, func(c *signaling.ClientConfig) {
		c.OutboundQueue = 3
		c.MaxReconnectInterval = 200 * time.Millisecond
	})
	for i := 0; i < 5; i++ {
		if err := d.Send(envelope(signaling.TypeControl, door, flatA1, &signaling.Control{Command: i})); err != nil {
			t.Fatal(err)
		}
	}
	g.open()
	d.waitUp(t)
	for i := 2; i < 5; i++ {
		got := recv(t, a.msgs, "queued message")
		if c := got.Payload.(*signaling.Control).Command; c != i {
			t.Fatalf("got command %d, want %d (the two oldest dropped)", c, i)
		}
	}
}

func TestNewClientValidation(t *testing.T) {
	ok := signaling.ClientConfig{Broker: "tcp://127.0.0.1:1883", Self: door}
	cases := []struct {
		name  string
		mod   func(*signaling.ClientConfig)
		field string
	}{
		{"no broker", func(c *signaling.ClientConfig) { c.Broker = "" }, "Broker"},
		{"bad scheme", func(c *signaling.ClientConfig) { c.Broker = "http://x:1" }, "Broker"},
		{"no port", func(c *signaling.ClientConfig) { c.Broker = "tcp://x" }, "Broker"},
		{"tls files on tcp", func(c *signaling.ClientConfig) { c.CAFile = "/x" }, "CAFile"},
		{"cert without key", func(c *signaling.ClientConfig) { c.Broker = "ssl://x:8883"; c.CertFile = "/x" }, "KeyFile"},
		{"no account", func(c *signaling.ClientConfig) { c.Self.Account = "" }, "Self.Account"},
		{"wildcard device", func(c *signaling.ClientConfig) { c.Self.Device = "a+" }, "Self.Device"},
		{"wildcard prefix", func(c *signaling.ClientConfig) { c.Topics.Prefix = "a/#" }, "Topics.Prefix"},
		{"empty prefix level", func(c *signaling.ClientConfig) { c.Topics.Prefix = "a//b" }, "Topics.Prefix"},
		{"keepalive", func(c *signaling.ClientConfig) { c.KeepAlive = time.Millisecond }, "KeepAlive"},
		{"reconnect", func(c *signaling.ClientConfig) { c.MaxReconnectInterval = time.Millisecond }, "MaxReconnectInterval"},
		{"queue", func(c *signaling.ClientConfig) { c.OutboundQueue = -1 }, "OutboundQueue"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.mod(&cfg)
			_, err := signaling.NewClient(cfg, signaling.Handler{})
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %v, want one naming %s", err, tc.field)
			}
		})
	}
	if _, err := signaling.NewClient(ok, signaling.Handler{}); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	cfg := ok
	cfg.Broker, cfg.CAFile = "ssl://127.0.0.1:8883", "/nonexistent/ca.pem"
	c, err := signaling.NewClient(cfg, signaling.Handler{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "CAFile") {
		t.Fatalf("Start with a missing CA file: %v", err)
	}
}

func TestCloseFlushesThenGoesOffline(t *testing.T) {
	broker, prefix := sigtest.Broker(t), sigtest.Prefix(t)
	a := newClient(t, broker, prefix, flatA1)
	a.waitUp(t)
	d := newClient(t, broker, prefix, door)
	d.waitUp(t)
	waitPresence(t, a.presence, door, signaling.Online)
	const n = 20
	for i := 0; i < n; i++ {
		env := envelope(signaling.TypeControl, signaling.Address{}, flatA1, &signaling.Control{Command: i})
		env.Time = 0 // filled in by Send, like From
		if err := d.Send(env); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(sigtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		got := recv(t, a.msgs, "message sent before Close")
		if got.From != door || got.Time <= 0 || got.Payload.(*signaling.Control).Command != i {
			t.Fatalf("message %d: %+v", i, got)
		}
	}
	waitPresence(t, a.presence, door, signaling.Offline)
	if err := d.Send(envelope(signaling.TypeControl, door, flatA1, &signaling.Control{})); !errors.Is(err, signaling.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

func TestSendRejectsForeignFrom(t *testing.T) {
	c, err := signaling.NewClient(signaling.ClientConfig{Broker: "tcp://127.0.0.1:1", Self: door}, signaling.Handler{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(envelope(signaling.TypeControl, flatA1, door, &signaling.Control{})); err == nil {
		t.Fatal("Send accepted an envelope from another device")
	}
}
