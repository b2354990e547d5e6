package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/intercom"
	"github.com/intercomd/intercomd/signaling"
	"github.com/intercomd/intercomd/signaling/sigtest"
)

// The whole daemon (config → devices → endpoint → panel) with simulated
// buttons and outputs and the test pattern, against a real broker and a
// second endpoint: a press of the call button rings the flat, which
// answers; "unlock" pulses the relay; SIGTERM-like cancel ends the call.
func TestServeDoorStation(t *testing.T) {
	broker := sigtest.Broker(t)
	prefix := sigtest.Prefix(t)
	dir := t.TempDir()
	yml := strings.NewReplacer("BROKER", broker, "PREFIX", prefix, "DIR", dir).Replace(`
identity: {account: door, device: entrance}
mqtt: {broker: BROKER, prefix: PREFIX}
media: {loopbackOnly: true}
video: {source: testpattern}
audio: {capture: tone}
buttons:
  driver: sim
  list:
    - {name: call, action: call flat1, longAction: hangup}
outputs:
  driver: sim
  relay: {name: relay}
  relayPulse: 200ms
state: {outboxDir: DIR/outbox}
`)
	path := filepath.Join(dir, "door.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serve(ctx, cfg, sigtest.Logger(t)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	})

	self := signaling.Address{Account: "flat1", Device: "tablet"}
	flat, err := intercom.NewEndpoint(intercom.EndpointConfig{
		Engine:    intercom.Config{Self: self, Logger: sigtest.Logger(t)},
		Client:    signaling.ClientConfig{Broker: broker, Topics: signaling.Topics{Prefix: prefix}, Self: self},
		OutboxDir: filepath.Join(dir, "flat"),
	})
	if err != nil {
		t.Fatal(err)
	}
	fctx, fcancel := context.WithCancel(context.Background())
	fdone := make(chan struct{})
	go func() { defer close(fdone); _ = flat.Run(fctx) }()
	t.Cleanup(func() { fcancel(); <-fdone })
	events, _ := flat.Engine.Subscribe()

	ctl, err := signaling.DialController(sigtest.Ctx(t), signaling.ControllerConfig{Broker: broker, Topics: signaling.Topics{Prefix: prefix}})
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	door := signaling.Address{Account: "door", Device: "entrance"}
	request := func(req signaling.Request) signaling.CommandResponse {
		t.Helper()
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer rcancel()
		resp, err := ctl.Request(rctx, door, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// Wait for the daemon to serve requests (it subscribes once connected).
	for i := 0; ; i++ {
		rctx, rcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := ctl.Request(rctx, door, signaling.Request{Action: "status"})
		rcancel()
		if err == nil {
			break
		}
		if i > 40 {
			t.Fatalf("daemon never answered: %v", err)
		}
	}
	// Press the call button until the door has seen the flat come online.
	deadline := time.Now().Add(10 * time.Second)
	var info *intercom.BeCallingInfo
	for info == nil {
		if r := request(signaling.Request{Action: "press", Button: "call"}); r.Status != "ok" {
			t.Fatalf("press: %+v", r)
		}
		select {
		case ev := <-events:
			if ev.Name == intercom.EvBeCalling {
				info = ev.Data.(*intercom.BeCallingInfo)
			}
		case <-time.After(300 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the call button never rang the flat")
		}
	}
	if info.Account != "door" || info.Type != intercom.TypeVideo {
		t.Fatalf("%+v", info)
	}
	if err := flat.Engine.Response(context.Background(), *info, true); err != nil {
		t.Fatal(err)
	}
	if r := request(signaling.Request{Action: "status"}); !strings.Contains(string(r.Data), `"in_call"`) {
		t.Fatalf("status %+v", r)
	}
	if r := request(signaling.Request{Action: "unlock"}); r.Status != "ok" {
		t.Fatalf("unlock: %+v", r)
	}
	if r := request(signaling.Request{Action: "press", Button: "nope"}); r.Status != "error" {
		t.Fatalf("unknown button accepted: %+v", r)
	}
	// A long press hangs up.
	if r := request(signaling.Request{Action: "press", Button: "call", Long: true}); r.Status != "ok" {
		t.Fatalf("long press: %+v", r)
	}
	for ev := range events {
		if ev.Name == intercom.EvHangup {
			break
		}
	}
}

func TestDeviceConfigErrors(t *testing.T) {
	_, err := parseConfig([]byte(`
identity: {account: a, device: b}
video: {source: webcam}
audio: {capture: alsa, playback: wav}
buttons:
  list:
    - {name: call, action: "call"}
    - {name: call, line: "17", action: "open sesame"}
outputs: {relay: {name: relay}, relayPulse: 2h}
`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"video.source", "audio.captureDevice.device", "audio.playbackFile", "buttons.list[0].line", "buttons.list[0].action", "buttons.list[1].name", "buttons.list[1].action", "outputs.relay.line", "outputs.relayPulse"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}
