package intercom

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/intercomd/intercomd/device"
	"github.com/intercomd/intercomd/intercom/media"
	"github.com/intercomd/intercomd/intercom/media/mediatest"
	"github.com/intercomd/intercomd/signaling/sigtest"
)

func testMediaEngine(t *testing.T) *media.Engine {
	t.Helper()
	e, err := media.NewEngine(media.Config{LoopbackOnly: true, ICEDisconnectedTimeout: time.Second, ICEFailedTimeout: time.Second, Logger: sigtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// withMedia gives an endpoint pion media: a door with a test-pattern
// camera and a tone microphone, or an indoor unit with a tone microphone.
func withMedia(me *media.Engine, door bool) func(*EndpointConfig) {
	return func(c *EndpointConfig) {
		c.Engine.Media = &PionMedia{
			Engine:    me,
			SendVideo: door,
			Devices: func() media.Devices {
				d := media.Devices{Audio: device.NewSineTone(440), Speaker: &device.NullSink{}}
				if door {
					d.Video = &device.TestPattern{}
				}
				return d
			},
		}
		c.Engine.AutoAgreeVideo = true
	}
}

type mediaStats struct {
	Audio struct {
		PacketsSent, PacketsReceived uint64
	}
	Video struct {
		PacketsReceived, FramesReceived uint64
	}
}

func statsOf(t *testing.T, raw json.RawMessage) mediaStats {
	t.Helper()
	var s mediaStats
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("media stats %s: %v", raw, err)
	}
	return s
}

// answeredMediaCall starts a door (meDoor) and an indoor unit flat1/tablet
// (meFlat) with media on a fresh test network and returns once the flat
// has accepted the door's video call.
func answeredMediaCall(t *testing.T, meDoor, meFlat *media.Engine) (bills *billWatcher, door, flat *node, res CallResult) {
	t.Helper()
	n := newNet(t, "")
	bills = n.watchBills()
	door = n.start("door", "d1", withMedia(meDoor, true))
	flat = n.start("flat1", "tablet", withMedia(meFlat, false))
	door.waitOnline(t, "flat1", "tablet")
	res = mustCall(t, door, "flat1", nil)
	ring := flat.next(t, EvBeCalling).Data.(*BeCallingInfo)
	must(t, flat.respond(*ring, true))
	return bills, door, flat, res
}

func TestIntegrationMediaCall(t *testing.T) {
	me := testMediaEngine(t)
	bills, door, flat, res := answeredMediaCall(t, me, me)
	door.next(t, EvCallAccepted)
	// The indoor unit sees the door's picture.
	for {
		mi := flat.next(t, EvMedia).Data.(*MediaInfo)
		if mi.State == "firstFrame" {
			t.Logf("first frame %.1f ms after answer", mi.FirstFrameMs)
			break
		}
	}
	// Let audio flow both ways for a moment, then hang up from the flat.
	time.Sleep(500 * time.Millisecond)
	if err := flat.ep.Engine.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := bills.waitFor(t, res.ChannelID, door.addr, flat.addr)
	t.Logf("door media %s", got[door.addr.String()].Media)
	t.Logf("flat media %s", got[flat.addr.String()].Media)
	ds, fs := statsOf(t, got[door.addr.String()].Media), statsOf(t, got[flat.addr.String()].Media)
	if fs.Video.FramesReceived == 0 || fs.Video.PacketsReceived == 0 {
		t.Fatalf("indoor unit received no video: %+v", fs)
	}
	if ds.Audio.PacketsReceived == 0 || fs.Audio.PacketsReceived == 0 || ds.Audio.PacketsSent == 0 {
		t.Fatalf("audio did not flow both ways: door %+v flat %+v", ds, fs)
	}
}

func TestIntegrationMediaFailureEndsCall(t *testing.T) {
	me := testMediaEngine(t)
	bills, door, flat, res := answeredMediaCall(t, me, me)
	for {
		if mi := door.next(t, EvMedia).Data.(*MediaInfo); mi.State == "connected" {
			break
		}
	}
	// The flat's media dies but its signalling stays up (a network path
	// that carries MQTT but no longer UDP): the door's ICE gives up.
	flat.ep.Engine.exec(context.Background(), func() { flat.ep.Engine.call.media.session.Close() })
	hu := door.next(t, EvHangup).Data.(*HangupInfo)
	if hu.Type != HangupAbnormal || (hu.Reason != ReasonICEFailed && hu.Reason != ReasonICETimeout) {
		t.Fatalf("%+v", hu)
	}
	b := bills.waitFor(t, res.ChannelID, door.addr)[door.addr.String()]
	if b.HangupReason != hu.Reason || b.HangupType != HangupAbnormal || len(b.Media) == 0 {
		t.Fatalf("bill %+v", b)
	}
}

func TestIntegrationPreviewBeforeAnswer(t *testing.T) {
	me := testMediaEngine(t)
	n := newNet(t, "")
	bills := n.watchBills()
	door := n.start("door", "d1", withMedia(me, true))
	preview := func(c *EndpointConfig) { c.Engine.Preview = true }
	a := n.start("flat1", "a", withMedia(me, false), preview)
	b := n.start("flat1", "b", withMedia(me, false), preview)
	door.waitOnline(t, "flat1", "a", "b")

	res := mustCall(t, door, "flat1", nil)
	infoA := a.next(t, EvBeCalling).Data.(*BeCallingInfo)
	b.next(t, EvBeCalling)
	// Both ringing devices see the door before anyone answers.
	for _, nd := range []*node{a, b} {
		for {
			mi := nd.next(t, EvMedia).Data.(*MediaInfo)
			if mi.State == "firstFrame" {
				if !mi.Preview {
					t.Fatalf("%s: first frame not from the preview", nd.addr)
				}
				break
			}
		}
	}
	door.stateIs(t, StateCalling)
	must(t, a.respond(*infoA, true))
	door.next(t, EvCallAccepted)
	b.next(t, EvCallerAckSync)
	time.Sleep(500 * time.Millisecond) // two-way audio on the promoted session
	if err := door.ep.Engine.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := bills.waitFor(t, res.ChannelID, door.addr, a.addr, b.addr)
	ds, as := statsOf(t, got[door.addr.String()].Media), statsOf(t, got[a.addr.String()].Media)
	if as.Video.FramesReceived == 0 {
		t.Fatalf("answering device: no video %+v", as)
	}
	if as.Audio.PacketsReceived == 0 || ds.Audio.PacketsReceived == 0 {
		t.Fatalf("no two-way audio after answering on the preview: door %+v, a %+v", ds, as)
	}
	if bb := got[b.addr.String()]; bb.Disposition != DispNoAnswer || bb.HangupReason != ReasonAnsweredElse {
		t.Fatalf("b's bill %+v", bb)
	}
}

// A call whose media path dies (every socket of both sides silenced, as
// when an indoor unit's Wi-Fi roams) survives: the door, the caller,
// restarts ICE over the MQTT signalling, media flows again on the new
// path, and the call ends normally later with the restart in the bill.
func TestIntegrationICERestartKeepsCall(t *testing.T) {
	var nets []*mediatest.CutNet
	var engines []*media.Engine
	for range 2 {
		n := mediatest.NewCutNet(t)
		e, err := media.NewEngine(media.Config{LoopbackOnly: true, ICEDisconnectedTimeout: time.Second,
			ICEFailedTimeout: 10 * time.Second, Net: n, Logger: sigtest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		nets, engines = append(nets, n), append(engines, e)
	}
	bills, door, flat, res := answeredMediaCall(t, engines[0], engines[1])
	for flat.next(t, EvMedia).Data.(*MediaInfo).State != "firstFrame" {
	}
	for door.next(t, EvMedia).Data.(*MediaInfo).State != "connected" {
	}

	for _, n := range nets {
		n.Cut()
	}
	// The door reports connected again once the restarted ICE and DTLS are
	// through; a failure would end the call with a hangup instead.
	for {
		ev := door.next(t, EvMedia)
		if mi := ev.Data.(*MediaInfo); mi.State == "connected" {
			break
		} else if mi.State == "failed" {
			t.Fatalf("media failed instead of restarting: %+v", mi)
		}
	}
	// Media flows on the new path before the call ends.
	var received uint64
	stats := func() uint64 {
		var raw json.RawMessage
		flat.ep.Engine.exec(context.Background(), func() {
			if c := flat.ep.Engine.call; c != nil && c.media != nil && c.media.session != nil {
				raw = c.media.session.StatsJSON()
			}
		})
		if raw == nil {
			t.Fatal("the indoor unit's call or media session is gone")
		}
		return statsOf(t, raw).Audio.PacketsReceived
	}
	received = stats()
	deadline := time.Now().Add(10 * time.Second)
	for stats() < received+25 {
		if time.Now().After(deadline) {
			t.Fatal("no audio at the indoor unit after the restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := flat.ep.Engine.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := bills.waitFor(t, res.ChannelID, door.addr, flat.addr)
	for addr, b := range got {
		if b.HangupType != HangupNormal || b.Disposition != DispAnswered {
			t.Errorf("%s bill: %+v", addr, b)
		}
	}
	var ds struct{ ICERestarts int }
	if err := json.Unmarshal(got[door.addr.String()].Media, &ds); err != nil || ds.ICERestarts != 1 {
		t.Errorf("door bill media %s: want iceRestarts 1 (%v)", got[door.addr.String()].Media, err)
	}
}
