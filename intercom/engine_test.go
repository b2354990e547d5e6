package intercom

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/intercomd/intercomd/signaling"
)

func respond(ep *endpoint, info BeCallingInfo, accepted bool) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- ep.e.Response(context.Background(), info, accepted) }()
	return ch
}

func waitErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Response did not return")
		return nil
	}
}

// establish connects caller and callee (account flat1) and returns once
// the caller saw callAccepted.
func establish(t *testing.T, caller, callee *endpoint, typ int) CallResult {
	t.Helper()
	res := dial(t, caller, callee.addr.Account, typ, nil)
	ring := callee.next(t, EvBeCalling).Data.(*BeCallingInfo)
	if err := waitErr(t, respond(callee, *ring, true)); err != nil {
		t.Fatal(err)
	}
	caller.next(t, EvCallAccepted)
	return res
}

func dial(t *testing.T, ep *endpoint, account string, typ int, push *signaling.PushConfig) CallResult {
	t.Helper()
	res, err := ep.e.Call(context.Background(), CallOptions{Type: typ, Account: account, PushConfig: push})
	if err != nil {
		t.Fatalf("call %s: %v", account, err)
	}
	return res
}

func TestAcceptAndHangup(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	flat := h.add("flat1", "tablet")

	res := dial(t, door, "flat1", TypeVideo, &signaling.PushConfig{Custom: "hello"})
	ring := flat.next(t, EvBeCalling).Data.(*BeCallingInfo)
	if ring.Account != "door" || ring.Type != TypeVideo || ring.ChannelID != res.ChannelID || ring.Custom != "hello" {
		t.Fatalf("beCalling = %+v", ring)
	}
	ctl := door.next(t, EvControl).Data.(*ControlInfo)
	if ctl.Command != CmdStartNotifyReceived || ctl.Device != "tablet" {
		t.Fatalf("caller got control %+v, want START_NOTIFY_RECEIVED from tablet", ctl)
	}
	if s := flat.state(t); s != StateRinging {
		t.Fatalf("callee state %s", s)
	}
	h.advance(3 * time.Second)
	if err := waitErr(t, respond(flat, *ring, true)); err != nil {
		t.Fatalf("response: %v", err)
	}
	acc := door.next(t, EvCallAccepted).Data.(*CallAcceptedInfo)
	if acc.Account != "flat1" || acc.Device != "tablet" || acc.Type != TypeVideo {
		t.Fatalf("callAccepted at caller = %+v", acc)
	}
	flat.next(t, EvCallAccepted)
	h.settle()
	if door.state(t) != StateInCall || flat.state(t) != StateInCall {
		t.Fatal("both sides should be in_call")
	}

	h.advance(61 * time.Second)
	if err := flat.e.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	hu := door.next(t, EvHangup).Data.(*HangupInfo)
	if hu.Type != HangupNormal || hu.Reason != ReasonUserHangup || hu.By != "remote" || hu.ChannelID != res.ChannelID {
		t.Fatalf("hangup at caller = %+v", hu)
	}
	h.settle()
	for _, ep := range []*endpoint{door, flat} {
		b := ep.lastBill(t)
		if b.Type != BillAnswered || b.Disposition != DispAnswered || b.Duration != 61 || b.Billsec != 61 ||
			b.TotalSeconds != 64 || b.ChannelID != res.ChannelID || b.NetcallType != TypeVideo ||
			!slices.Equal(b.Accounts, []string{"door", "flat1"}) || b.AnsweredBy != "tablet" ||
			b.HungUpBy != "callee" || b.HangupReason != ReasonUserHangup || b.Caller != "door" || b.Callee != "flat1" {
			t.Fatalf("%s bill = %+v", ep.addr, b)
		}
		if ep.state(t) != StateIdle {
			t.Fatalf("%s not idle after hangup", ep.addr)
		}
	}
	if door.lastBill(t).ID == flat.lastBill(t).ID {
		t.Fatal("each endpoint's bill needs its own id")
	}
}

func TestReject(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	flat := h.add("flat1", "tablet")
	dial(t, door, "flat1", TypeAudio, nil)
	ring := flat.next(t, EvBeCalling).Data.(*BeCallingInfo)
	if err := waitErr(t, respond(flat, *ring, false)); err != nil {
		t.Fatal(err)
	}
	rej := door.next(t, EvCallRejected).Data.(*CallRejectedInfo)
	if rej.Busy || rej.Account != "flat1" {
		t.Fatalf("callRejected = %+v", rej)
	}
	h.settle()
	for _, ep := range []*endpoint{door, flat} {
		b := ep.lastBill(t)
		if b.Disposition != DispRejected || b.Type != BillRejected || b.Duration != 0 || b.Answer != 0 {
			t.Fatalf("%s bill = %+v", ep.addr, b)
		}
	}
}

func TestBusyKeepsCurrentCall(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	gate := h.add("gate", "g1")
	flat := h.add("flat1", "tablet")
	res := dial(t, door, "flat1", TypeVideo, nil)
	ring := flat.next(t, EvBeCalling).Data.(*BeCallingInfo)
	if err := waitErr(t, respond(flat, *ring, true)); err != nil {
		t.Fatal(err)
	}
	door.next(t, EvCallAccepted)

	dial(t, gate, "flat1", TypeAudio, nil)
	c1 := gate.next(t, EvControl).Data.(*ControlInfo)
	c2 := gate.next(t, EvControl).Data.(*ControlInfo)
	if c1.Command != CmdStartNotifyReceived || c2.Command != CmdBusy {
		t.Fatalf("gate got controls %d, %d; want 12 then 9", c1.Command, c2.Command)
	}
	rej := gate.next(t, EvCallRejected).Data.(*CallRejectedInfo)
	if !rej.Busy {
		t.Fatalf("callRejected not busy: %+v", rej)
	}
	h.settle()
	if gate.lastBill(t).Disposition != DispBusy {
		t.Fatalf("gate bill %+v", gate.lastBill(t))
	}
	s, _ := flat.e.State(context.Background())
	if s.State != StateInCall || s.ChannelID != res.ChannelID {
		t.Fatalf("flat lost its call: %+v", s)
	}
	if flat.lastBill(t).Disposition != DispBusy || flat.lastBill(t).Direction != "incoming" {
		t.Fatalf("flat's record of the busy attempt: %+v", flat.lastBill(t))
	}
}

func TestCallerTimeout(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1", func(c *Config) { c.CallTimeout = 30 * time.Second })
	flat := h.add("flat1", "tablet")
	res := dial(t, door, "flat1", TypeVideo, nil)
	flat.next(t, EvBeCalling)
	h.advance(29 * time.Second)
	if door.state(t) != StateCalling {
		t.Fatal("gave up too early")
	}
	h.advance(time.Second)
	hu := door.next(t, EvHangup).Data.(*HangupInfo)
	if hu.Type != HangupAbnormal || hu.Reason != ReasonInviteTimeout {
		t.Fatalf("caller hangup %+v", hu)
	}
	fh := flat.next(t, EvHangup).Data.(*HangupInfo)
	if fh.ChannelID != res.ChannelID || fh.Type != HangupAbnormal || fh.By != "remote" {
		t.Fatalf("callee hangup %+v", fh)
	}
	h.settle()
	if b := door.lastBill(t); b.Disposition != DispNoAnswer || b.Type != BillMissed || b.TotalSeconds != 30 {
		t.Fatalf("caller bill %+v", b)
	}
	if b := flat.lastBill(t); b.Disposition != DispNoAnswer || b.Direction != "incoming" {
		t.Fatalf("callee bill %+v", b)
	}
	if flat.state(t) != StateIdle {
		t.Fatal("callee still ringing")
	}
}

func TestCalleeRingTimeout(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1", func(c *Config) { c.CallTimeout = 120 * time.Second })
	flat := h.add("flat1", "tablet", func(c *Config) { c.RingTimeout = 60 * time.Second })
	dial(t, door, "flat1", TypeAudio, nil)
	flat.next(t, EvBeCalling)
	h.advance(60 * time.Second)
	rej := door.next(t, EvCallRejected).Data.(*CallRejectedInfo)
	if rej.Reason != ReasonRingTimeout {
		t.Fatalf("callRejected %+v", rej)
	}
	h.settle()
	if b := door.lastBill(t); b.Disposition != DispNoAnswer || b.HangupReason != ReasonRingTimeout {
		t.Fatalf("caller bill %+v", b)
	}
	if b := flat.lastBill(t); b.Disposition != DispNoAnswer || b.HangupType != HangupAbnormal {
		t.Fatalf("callee bill %+v", b)
	}
}

func TestCalleeOffline(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	_, err := door.e.Call(context.Background(), CallOptions{Type: TypeVideo, Account: "nobody"})
	if ErrorCode(err) != CodeCalleeOffline {
		t.Fatalf("err = %v, want code 11001", err)
	}
	if door.state(t) != StateIdle {
		t.Fatal("state not idle after 11001")
	}
	if b := door.lastBill(t); b.Disposition != DispFailed || b.HangupReason != ReasonCalleeOffline {
		t.Fatalf("bill %+v", b)
	}
}

func TestForceKeepCallingUntilCalleeAppears(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	res := dial(t, door, "flat1", TypeVideo, &signaling.PushConfig{ForceKeepCalling: true})
	h.advance(10 * time.Second)
	if door.state(t) != StateCalling {
		t.Fatal("forceKeepCalling call ended while callee offline")
	}
	flat := h.add("flat1", "tablet")
	ring := flat.next(t, EvBeCalling).Data.(*BeCallingInfo)
	if ring.ChannelID != res.ChannelID {
		t.Fatalf("rang for %s, want %s", ring.ChannelID, res.ChannelID)
	}
	// Re-sent invites of the same channel do not ring again.
	h.advance(5 * time.Second)
	for _, n := range flat.drainNames() {
		if n == EvBeCalling {
			t.Fatal("duplicate invite rang again")
		}
	}
	if err := waitErr(t, respond(flat, *ring, true)); err != nil {
		t.Fatal(err)
	}
	door.next(t, EvCallAccepted)
}

func TestForceKeepCallingTimesOut(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	dial(t, door, "flat1", TypeVideo, &signaling.PushConfig{ForceKeepCalling: true})
	h.advance(30 * time.Second)
	hu := door.next(t, EvHangup).Data.(*HangupInfo)
	if hu.Reason != ReasonInviteTimeout {
		t.Fatalf("hangup %+v", hu)
	}
}

func TestMultiDevice(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	devs := []*endpoint{h.add("flat1", "tablet"), h.add("flat1", "phone"), h.add("flat1", "panel")}
	res := dial(t, door, "flat1", TypeVideo, nil)
	var infos []*BeCallingInfo
	for _, d := range devs {
		infos = append(infos, d.next(t, EvBeCalling).Data.(*BeCallingInfo))
	}
	if err := waitErr(t, respond(devs[1], *infos[1], true)); err != nil {
		t.Fatal(err)
	}
	acc := door.next(t, EvCallAccepted).Data.(*CallAcceptedInfo)
	if acc.Device != "phone" {
		t.Fatalf("accepted by %s", acc.Device)
	}
	for _, i := range []int{0, 2} {
		sync := devs[i].next(t, EvCallerAckSync).Data.(*CallerAckSyncInfo)
		if !sync.Accepted || sync.Device != "phone" || sync.ChannelID != res.ChannelID {
			t.Fatalf("%s callerAckSync %+v", devs[i].addr, sync)
		}
	}
	h.settle()
	for _, i := range []int{0, 2} {
		if devs[i].state(t) != StateIdle {
			t.Fatalf("%s still %s", devs[i].addr, devs[i].state(t))
		}
		if b := devs[i].lastBill(t); b.Disposition != DispNoAnswer || b.HangupReason != ReasonAnsweredElse || b.AnsweredBy != "phone" {
			t.Fatalf("%s bill %+v", devs[i].addr, b)
		}
	}
	// A late answer from a device that stopped ringing fails with 9103.
	if err := waitErr(t, respond(devs[2], *infos[2], true)); ErrorCode(err) != CodeAnsweredElsewhere {
		t.Fatalf("late response err = %v, want 9103", err)
	}
	if door.state(t) != StateInCall || devs[1].state(t) != StateInCall {
		t.Fatal("winning call disturbed")
	}
}

func TestMultiDeviceRaceFirstResponseWins(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	a, b := h.add("flat1", "a"), h.add("flat1", "b")
	dial(t, door, "flat1", TypeAudio, nil)
	ia := a.next(t, EvBeCalling).Data.(*BeCallingInfo)
	ib := b.next(t, EvBeCalling).Data.(*BeCallingInfo)
	ea, eb := respond(a, *ia, true), respond(b, *ib, true)
	errA, errB := waitErr(t, ea), waitErr(t, eb)
	if (errA == nil) == (errB == nil) {
		t.Fatalf("exactly one response must win: a=%v b=%v", errA, errB)
	}
	loser := errA
	if loser == nil {
		loser = errB
	}
	if ErrorCode(loser) != CodeAnsweredElsewhere {
		t.Fatalf("loser err %v, want 9103", loser)
	}
	door.next(t, EvCallAccepted)
}

func TestBusyDeviceDoesNotEndMultiDeviceCall(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	gate := h.add("gate", "g1")
	a, b := h.add("flat1", "a"), h.add("flat1", "b")
	// a is busy with the gate.
	dial(t, gate, "flat1", TypeAudio, nil)
	ia := a.next(t, EvBeCalling).Data.(*BeCallingInfo)
	b.next(t, EvBeCalling)
	if err := waitErr(t, respond(a, *ia, true)); err != nil {
		t.Fatal(err)
	}
	h.settle()
	// b went idle through callerAckSync; now the door calls: a is busy, b rings.
	dial(t, door, "flat1", TypeVideo, nil)
	ib := b.next(t, EvBeCalling).Data.(*BeCallingInfo)
	h.settle()
	if door.state(t) != StateCalling {
		t.Fatal("one busy device ended the call for the whole account")
	}
	if err := waitErr(t, respond(b, *ib, true)); err != nil {
		t.Fatal(err)
	}
	door.next(t, EvCallAccepted)
}

func TestAllDevicesBusy(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	gate := h.add("gate", "g1")
	a := h.add("flat1", "a")
	dial(t, gate, "flat1", TypeAudio, nil)
	ia := a.next(t, EvBeCalling).Data.(*BeCallingInfo)
	if err := waitErr(t, respond(a, *ia, true)); err != nil {
		t.Fatal(err)
	}
	dial(t, door, "flat1", TypeVideo, nil)
	rej := door.next(t, EvCallRejected).Data.(*CallRejectedInfo)
	if !rej.Busy {
		t.Fatalf("%+v", rej)
	}
}

func TestGlare(t *testing.T) {
	for _, order := range []string{"a-first", "b-first"} {
		t.Run(order, func(t *testing.T) {
			h := newHarness(t)
			a := h.add("flatA", "a")
			b := h.add("flatB", "b")
			// Hold delivery so both invites cross in flight.
			var held []signaling.Envelope
			h.bus.mu.Lock()
			h.bus.drop = func(env signaling.Envelope) bool {
				if env.Type == signaling.TypeInvite {
					held = append(held, env)
					return true
				}
				return false
			}
			h.bus.mu.Unlock()
			ra := dial(t, a, "flatB", TypeVideo, nil)
			rb := dial(t, b, "flatA", TypeVideo, nil)
			h.bus.mu.Lock()
			h.bus.drop = nil
			h.bus.mu.Unlock()
			if order == "b-first" {
				held[0], held[1] = held[1], held[0]
			}
			for _, env := range held {
				if env.To.Account == "flatA" {
					a.e.HandleMessage(env)
				} else {
					b.e.HandleMessage(env)
				}
			}
			h.settle()
			winner := min(ra.ChannelID, rb.ChannelID)
			for _, ep := range []*endpoint{a, b} {
				s, _ := ep.e.State(context.Background())
				if s.State != StateInCall || s.ChannelID != winner {
					t.Fatalf("%s: %+v, want in_call on %s", ep.addr, s, winner)
				}
			}
		})
	}
}

func TestPeerLostMidCall(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	flat := h.add("flat1", "tablet")
	establish(t, door, flat, TypeVideo)
	h.remove(flat) // crash: no hangup sent
	h.presence(flat.addr, signaling.Offline, "s-"+flat.addr.String())
	h.advance(2 * time.Second)
	if door.state(t) != StateInCall {
		t.Fatal("call ended before the offline grace")
	}
	h.advance(time.Second)
	hu := door.next(t, EvHangup).Data.(*HangupInfo)
	if hu.Type != HangupAbnormal || hu.Reason != ReasonPeerLost {
		t.Fatalf("hangup %+v", hu)
	}
	h.settle()
	if b := door.lastBill(t); b.Disposition != DispAnswered || b.HangupType != HangupAbnormal || b.HungUpBy != "system" {
		t.Fatalf("bill %+v", b)
	}
}

func TestPresenceFlapKeepsCall(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	flat := h.add("flat1", "tablet")
	establish(t, door, flat, TypeVideo)
	sess := "s-" + flat.addr.String()
	h.presence(flat.addr, signaling.Offline, sess)
	h.advance(2 * time.Second)
	h.presence(flat.addr, signaling.Online, sess) // same process reconnected
	h.advance(time.Minute)
	if door.state(t) != StateInCall {
		t.Fatal("a presence flap ended the call")
	}
}

func TestPeerRestartDetectedBySession(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	flat := h.add("flat1", "tablet")
	establish(t, door, flat, TypeVideo)
	// The peer rebooted between two presence messages we saw: online again
	// with a new session.
	h.presence(flat.addr, signaling.Online, "rebooted")
	hu := door.next(t, EvHangup).Data.(*HangupInfo)
	if hu.Reason != ReasonPeerLost {
		t.Fatalf("hangup %+v", hu)
	}
}

func TestCallerCancels(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	a, b := h.add("flat1", "a"), h.add("flat1", "b")
	dial(t, door, "flat1", TypeVideo, nil)
	a.next(t, EvBeCalling)
	b.next(t, EvBeCalling)
	if err := door.e.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, ep := range []*endpoint{a, b} {
		hu := ep.next(t, EvHangup).Data.(*HangupInfo)
		if hu.By != "remote" || hu.Type != HangupNormal {
			t.Fatalf("%+v", hu)
		}
	}
	h.settle()
	for _, ep := range []*endpoint{door, a, b} {
		if d := ep.lastBill(t).Disposition; d != DispCancelled {
			t.Fatalf("%s disposition %s", ep.addr, d)
		}
	}
}

func TestIgnoresOtherChannelsAndDuplicates(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	flat := h.add("flat1", "tablet")
	res := dial(t, door, "flat1", TypeVideo, nil)
	flat.next(t, EvBeCalling)
	h.settle()
	door.drainNames()
	now := h.clock.Now().UnixMilli()
	// A hangup for some other channel must not end this call.
	flat.e.HandleMessage(signaling.Envelope{V: 1, Type: signaling.TypeHangup, ID: "x1", From: door.addr,
		To: flat.addr, Channel: "other", Time: now, Payload: &signaling.Hangup{}})
	// A duplicate delivery of the same invite must not ring twice.
	dup := signaling.Envelope{V: 1, Type: signaling.TypeInvite, ID: "x2", From: door.addr,
		To: signaling.Address{Account: "flat1"}, Channel: res.ChannelID, Time: now, Payload: &signaling.Invite{CallType: 2}}
	flat.e.HandleMessage(dup)
	flat.e.HandleMessage(dup)
	h.settle()
	if flat.state(t) != StateRinging {
		t.Fatal("call disturbed by another channel's hangup")
	}
	for _, n := range flat.drainNames() {
		if n == EvBeCalling || n == EvHangup {
			t.Fatalf("unexpected %s", n)
		}
	}
}

func TestMaxCallDuration(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1", func(c *Config) { c.MaxCallDuration = 10 * time.Minute })
	flat := h.add("flat1", "tablet")
	dial(t, door, "flat1", TypeAudio, nil)
	ring := flat.next(t, EvBeCalling).Data.(*BeCallingInfo)
	if err := waitErr(t, respond(flat, *ring, true)); err != nil {
		t.Fatal(err)
	}
	h.settle() // the caller arms its timer after confirming the response
	h.advance(10 * time.Minute)
	hu := flat.next(t, EvHangup).Data.(*HangupInfo)
	if hu.Reason != ReasonMaxDuration {
		t.Fatalf("%+v", hu)
	}
	h.settle()
	if b := door.lastBill(t); b.Billsec != 600 || b.HungUpBy != "system" {
		t.Fatalf("%+v", b)
	}
}

func TestAPIErrors(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	h.add("flat1", "tablet")
	if _, err := door.e.Call(context.Background(), CallOptions{Type: 3, Account: "flat1"}); ErrorCode(err) != CodeInvalidArgument {
		t.Fatalf("bad type: %v", err)
	}
	if _, err := door.e.Call(context.Background(), CallOptions{Type: 1, Account: "a/b"}); ErrorCode(err) != CodeInvalidArgument {
		t.Fatalf("bad account: %v", err)
	}
	if err := door.e.Hangup(context.Background()); ErrorCode(err) != CodeChannelInvalid {
		t.Fatalf("hangup without call: %v", err)
	}
	dial(t, door, "flat1", TypeAudio, nil)
	if _, err := door.e.Call(context.Background(), CallOptions{Type: 1, Account: "flat1"}); ErrorCode(err) != CodeBusy {
		t.Fatalf("second call: %v", err)
	}
	if err := door.e.Response(context.Background(), BeCallingInfo{ChannelID: "nope"}, true); ErrorCode(err) != CodeChannelInvalid {
		t.Fatalf("response to unknown channel: %v", err)
	}
}

func TestControlDelivered(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	flat := h.add("flat1", "tablet")
	res := dial(t, door, "flat1", TypeVideo, nil)
	ring := flat.next(t, EvBeCalling).Data.(*BeCallingInfo)
	if err := waitErr(t, respond(flat, *ring, true)); err != nil {
		t.Fatal(err)
	}
	door.next(t, EvCallAccepted)
	if err := flat.e.Control(context.Background(), res.ChannelID, CmdNotifyAudioOff); err != nil {
		t.Fatal(err)
	}
	for {
		c := door.next(t, EvControl).Data.(*ControlInfo)
		if c.Command == CmdNotifyAudioOff {
			break
		}
	}
	if err := flat.e.Control(context.Background(), "wrong", CmdNotifyAudioOff); ErrorCode(err) != CodeChannelInvalid {
		t.Fatalf("control on wrong channel: %v", err)
	}
}

func TestSyncAfterReconnectRepairsLostHangup(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	flat := h.add("flat1", "tablet")
	establish(t, door, flat, TypeVideo)
	h.settle()
	// A reconnect while the call is alive on both sides changes nothing.
	door.e.Reconnected()
	h.settle()
	if door.state(t) != StateInCall || flat.state(t) != StateInCall {
		t.Fatal("a sync between live peers ended the call")
	}
	// The flat's hangup is lost (the door was disconnected at the time).
	h.bus.mu.Lock()
	h.bus.drop = func(env signaling.Envelope) bool { return env.Type == signaling.TypeHangup }
	h.bus.mu.Unlock()
	if err := flat.e.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.bus.mu.Lock()
	h.bus.drop = nil
	h.bus.mu.Unlock()
	if door.state(t) != StateInCall {
		t.Fatal("test setup: the hangup was not lost")
	}
	door.e.Reconnected()
	hu := door.next(t, EvHangup).Data.(*HangupInfo)
	if hu.Type != HangupAbnormal || hu.Reason != ReasonPeerLost {
		t.Fatalf("%+v", hu)
	}
	h.settle()
	if b := door.lastBill(t); b.Disposition != DispAnswered || b.HangupReason != ReasonPeerLost {
		t.Fatalf("%+v", b)
	}
}

func TestCalleeVanishesWhileCalling(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	flat := h.add("flat1", "tablet")
	dial(t, door, "flat1", TypeVideo, nil)
	flat.next(t, EvBeCalling)
	h.remove(flat)
	h.presence(flat.addr, signaling.Offline, "s-"+flat.addr.String())
	h.advance(2 * time.Second)
	if door.state(t) != StateCalling {
		t.Fatal("gave up before the offline grace")
	}
	h.advance(time.Second)
	hu := door.next(t, EvHangup).Data.(*HangupInfo)
	if hu.Reason != ReasonPeerLost || hu.Type != HangupAbnormal {
		t.Fatalf("%+v", hu)
	}
	h.settle()
	if b := door.lastBill(t); b.Disposition != DispFailed {
		t.Fatalf("%+v", b)
	}
}

// A reject whose confirmation is lost is sent again and confirmed again
// after the caller's call has ended; a device that never responded in time
// still gets 9103 from the caller.
func TestLostConfirmationOfRejectIsRepeated(t *testing.T) {
	h := newHarness(t)
	door := h.add("door", "d1")
	tablet := h.add("flat1", "tablet")
	phone := h.add("flat1", "phone")
	dial(t, door, "flat1", TypeVideo, nil)
	ring := tablet.next(t, EvBeCalling).Data.(*BeCallingInfo)
	phoneRing := phone.next(t, EvBeCalling).Data.(*BeCallingInfo)
	h.settle()
	// The tablet's confirmation is lost, and so is the phone's callerAckSync
	// (it keeps ringing as if it had been offline for a moment).
	h.bus.mu.Lock()
	h.bus.drop = func(env signaling.Envelope) bool {
		return (env.Type == signaling.TypeResponseAck && env.To.Device == "tablet") ||
			(env.Type == signaling.TypeAckSync && env.To.Device == "phone")
	}
	h.bus.mu.Unlock()
	rejected := respond(tablet, *ring, false)
	door.next(t, EvCallRejected)
	h.settle()
	if door.state(t) != StateIdle {
		t.Fatal("the door's call did not end on the reject")
	}
	select {
	case err := <-rejected:
		t.Fatalf("Response returned %v without a confirmation", err)
	default:
	}
	h.bus.mu.Lock()
	h.bus.drop = nil
	h.bus.mu.Unlock()
	h.advance(responseRetransmit)
	if err := waitErr(t, rejected); err != nil {
		t.Fatalf("repeated reject: %v, want it confirmed", err)
	}
	if err := waitErr(t, respond(phone, *phoneRing, true)); ErrorCode(err) != CodeAnsweredElsewhere {
		t.Fatalf("late answer from the phone: %v, want %d", err, CodeAnsweredElsewhere)
	}
	h.settle()
	if b := tablet.lastBill(t); b.Disposition != DispRejected {
		t.Fatalf("tablet bill %+v", b)
	}
}
