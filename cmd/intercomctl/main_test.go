package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/intercom"
	"github.com/intercomd/intercomd/signaling"
	"github.com/intercomd/intercomd/signaling/sigtest"
)

func TestBuildRequestRejectsBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"call"}, {"call", "a", "hologram"}, {"answer", "x"}, {"control"}, {"control", "x"}, {"control", "0"}, {"frobnicate"},
		{"press"}, {"press", "call", "short"}, {"unlock", "now"},
	} {
		if _, err := buildRequest(args[0], args[1:]); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	req, err := buildRequest("call", []string{"flat1", "audio"})
	if err != nil || req.Account != "flat1" || req.Type != 1 || req.Action != "call" {
		t.Fatalf("%+v %v", req, err)
	}
	if req, err := buildRequest("press", []string{"call", "long"}); err != nil || req.Button != "call" || !req.Long {
		t.Fatalf("press: %+v %v", req, err)
	}
	for _, bad := range []string{"", "flat1", "/x", "a/b/c"} {
		if _, err := parseDevice(bad); err == nil {
			t.Errorf("device %q accepted", bad)
		}
	}
}

// intercomctl drives real endpoints over a real broker.
func TestCommandsAgainstEndpoints(t *testing.T) {
	broker := sigtest.Broker(t)
	prefix := sigtest.Prefix(t)
	start := func(account, device string) *intercom.Endpoint {
		self := signaling.Address{Account: account, Device: device}
		ep, err := intercom.NewEndpoint(intercom.EndpointConfig{
			Engine:    intercom.Config{Self: self, Logger: sigtest.Logger(t)},
			Client:    signaling.ClientConfig{Broker: broker, Topics: signaling.Topics{Prefix: prefix}, Self: self},
			OutboxDir: t.TempDir(),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = ep.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		if err := ep.Client.WaitConnected(sigtest.Ctx(t)); err != nil {
			t.Fatal(err)
		}
		return ep
	}
	door := start("door", "d1")
	start("flat1", "tablet")
	for {
		if devs, _ := door.Engine.OnlineDevices(context.Background(), "flat1"); len(devs) > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctl := func(args ...string) (int, string, string) {
		var out, errOut strings.Builder
		code := run(append([]string{"-broker", broker, "-prefix", prefix, "-timeout", "10s"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, out, errOut := ctl("-device", "door/d1", "call", "flat1"); code != 0 || !strings.Contains(out, "channelId") {
		t.Fatalf("call: %d %q %q", code, out, errOut)
	}
	if code, out, _ := ctl("-device", "flat1/tablet", "status"); code != 0 || !strings.Contains(out, `"state":"ringing"`) {
		t.Fatalf("status: %d %q", code, out)
	}
	if code, _, errOut := ctl("-device", "flat1/tablet", "answer"); code != 0 {
		t.Fatalf("answer: %d %q", code, errOut)
	}
	if code, out, _ := ctl("-device", "door/d1", "status"); code != 0 || !strings.Contains(out, `"state":"in_call"`) {
		t.Fatalf("status: %d %q", code, out)
	}
	if code, _, _ := ctl("-device", "flat1/tablet", "hangup"); code != 0 {
		t.Fatal("hangup failed")
	}
	// Errors come back with their code.
	code, _, errOut := ctl("-device", "door/d1", "call", "ghost")
	if code != 1 || !strings.Contains(errOut, "11001") {
		t.Fatalf("offline call: %d %q", code, errOut)
	}
	// A device nobody runs: a clear timeout, not a hang.
	code, _, errOut = ctl("-timeout", "300ms", "-device", "nobody/x", "status")
	if code != 1 || !strings.Contains(errOut, "no response") {
		t.Fatalf("unknown device: %d %q", code, errOut)
	}
}
