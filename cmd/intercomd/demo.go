package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/intercomd/intercomd/device"
	"github.com/intercomd/intercomd/intercom"
	"github.com/intercomd/intercomd/intercom/media"
	"github.com/intercomd/intercomd/signaling"
	"github.com/intercomd/intercomd/web"
)

// runDemo places one call between a simulated door station and indoor
// unit, on an embedded broker, and prints what a monitor sees over MQTT:
// states, events and both bills.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("intercomd demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	talk := fs.Duration("talk", 3*time.Second, "how long the call lasts before the door hangs up")
	answerAfter := fs.Duration("answer-after", 1500*time.Millisecond, "how long the indoor unit rings before answering")
	stay := fs.Bool("stay", false, "keep the broker and both units running after the call (Ctrl-C to stop)")
	outDir := fs.String("out", "demo-output", "where the indoor unit records the call (video + audio) for you to play")
	verbose := fs.Bool("v", false, "log the daemons' debug output")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := demo(ctx, stdout, logger, *talk, *answerAfter, *stay, *outDir); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	return 0
}

// freeOr returns addr if it can be bound, else a free loopback port, so
// the demo runs beside an existing broker.
func freeOr(addr string) string {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "127.0.0.1:0"
	}
	l.Close()
	return addr
}

func demo(ctx context.Context, out io.Writer, logger *slog.Logger, talk, answerAfter time.Duration, stay bool, outDir string) error {
	broker, err := signaling.StartBroker(signaling.BrokerConfig{
		TCPAddr: freeOr(signaling.DefaultBrokerTCPAddr), WSAddr: freeOr(signaling.DefaultBrokerWSAddr), Logger: logger,
	})
	if err != nil {
		return err
	}
	defer broker.Close()
	stateDir, err := os.MkdirTemp("", "intercomd-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)
	say := func(format string, args ...any) {
		fmt.Fprintf(out, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
	say("embedded MQTT broker on %s (WebSocket %s)", broker.URL(), broker.WSAddr())

	// Media: one pion engine for both units, loopback ICE. The door sends
	// a moving test pattern with a burned-in clock and a chime; the indoor
	// unit sends a tone back and records what it receives.
	mediaEngine, err := media.NewEngine(media.Config{LoopbackOnly: true, Logger: logger})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	doorMedia := &intercom.PionMedia{Engine: mediaEngine, SendVideo: true, Devices: func() media.Devices {
		return media.Devices{Video: &device.TestPattern{}, Audio: device.NewChimeTone(), Speaker: &device.NullSink{}}
	}}
	indoorMedia := &intercom.PionMedia{Engine: mediaEngine, RecordDir: outDir, Devices: func() media.Devices {
		return media.Devices{Audio: device.NewSineTone(330), Speaker: &device.NullSink{}}
	}}

	topics := signaling.Topics{Prefix: signaling.DefaultPrefix}
	mk := func(account, device string, m intercom.MediaProvider, sc *signaling.SessionConfig) (*intercom.Endpoint, error) {
		self := signaling.Address{Account: account, Device: device}
		return intercom.NewEndpoint(intercom.EndpointConfig{
			Engine:    intercom.Config{Self: self, Logger: logger.With("unit", self.String()), Media: m, SessionConfig: sc, AutoAgreeVideo: true},
			Client:    signaling.ClientConfig{Broker: broker.URL(), Topics: topics, Self: self, ClientType: "intercomd", Version: version},
			OutboxDir: filepath.Join(stateDir, account+"-"+device),
		})
	}
	door, err := mk("door", "entrance", doorMedia, nil)
	if err != nil {
		return err
	}
	indoor, err := mk("flat1", "tablet", indoorMedia, &signaling.SessionConfig{RecordVideo: true, RecordAudio: true})
	if err != nil {
		return err
	}

	// A monitor, as Home Assistant or intercomctl watch would be.
	ctl, err := signaling.DialController(ctx, signaling.ControllerConfig{Broker: broker.URL(), Topics: topics})
	if err != nil {
		return err
	}
	defer ctl.Close()
	bills := make(chan intercom.Bill, 8)
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watchWG sync.WaitGroup
	watchWG.Add(1)
	go func() {
		defer watchWG.Done()
		_ = ctl.Watch(watchCtx, signaling.Address{Account: "+", Device: "+"}, nil, func(o signaling.Observation) {
			switch o.Kind {
			case signaling.LeafState:
				var s signaling.CallState
				if json.Unmarshal(o.Payload, &s) == nil {
					say("[mqtt] %-15s state %s", o.Device, s.State)
				}
			case signaling.LeafEvent:
				var ev signaling.Event
				if json.Unmarshal(o.Payload, &ev) == nil && ev.Event != intercom.EvState && ev.Event != intercom.EvBill {
					if len(ev.Data) > 160 {
						ev.Data = append(ev.Data[:157:157], "..."...)
					}
					say("[mqtt] %-15s event %s %s", o.Device, ev.Event, ev.Data)
				}
			case signaling.LeafBill:
				var b intercom.Bill
				if json.Unmarshal(o.Payload, &b) == nil {
					say("[mqtt] %-15s bill  %s", o.Device, o.Payload)
					bills <- b
				}
			}
		})
	}()
	defer func() { stopWatch(); watchWG.Wait() }()

	runCtx, stopUnits := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, ep := range []*intercom.Endpoint{door, indoor} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = ep.Run(runCtx) }()
	}
	defer func() { stopUnits(); wg.Wait() }()

	// The indoor unit answers after ringing a while, like a resident
	// would — during the scripted call only: afterwards a person answers.
	var scripted atomic.Bool
	scripted.Store(true)
	ringing, cancelSub := indoor.Engine.Subscribe()
	defer cancelSub()
	go func() {
		for ev := range ringing {
			if ev.Name == intercom.EvBeCalling && scripted.Load() {
				info := *ev.Data.(*intercom.BeCallingInfo)
				time.AfterFunc(answerAfter, func() {
					say("indoor unit: resident presses answer")
					if err := indoor.Engine.Response(runCtx, info, true); err != nil {
						say("indoor unit: answer failed: %v", err)
					}
				})
			}
		}
	}()

	for _, ep := range []*intercom.Endpoint{door, indoor} {
		if err := ep.Client.WaitConnected(ctx); err != nil {
			return err
		}
	}
	say("door station door/entrance and indoor unit flat1/tablet are online")
	// The door learns the tablet's presence a moment after connecting.
	for {
		devs, err := door.Engine.OnlineDevices(ctx, "flat1")
		if err != nil {
			return err
		}
		if len(devs) > 0 {
			break
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	say("visitor presses the call button for flat1")
	res, err := door.Engine.Call(ctx, intercom.CallOptions{Type: intercom.TypeVideo, Account: "flat1"})
	if err != nil {
		return fmt.Errorf("call: %w", err)
	}
	say("door station: calling, channelId %s", res.ChannelID)

	doorEvents, cancelDoor := door.Engine.Subscribe()
	defer cancelDoor()
	deadline := time.After(answerAfter + 30*time.Second)
wait:
	for {
		select {
		case ev := <-doorEvents:
			if ev.Name == intercom.EvCallAccepted {
				break wait
			}
			if ev.Name == intercom.EvHangup || ev.Name == intercom.EvCallRejected {
				return fmt.Errorf("call ended before it was answered: %s", ev.Name)
			}
		case <-deadline:
			return fmt.Errorf("nobody answered")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	say("door station: connected; talking for %s", talk)
	select {
	case <-time.After(talk):
	case <-ctx.Done():
		return ctx.Err()
	}
	say("door station: visitor walks away, hang up")
	if err := door.Engine.Hangup(ctx); err != nil {
		return err
	}
	seen := map[string]bool{}
	timeout := time.After(10 * time.Second)
	for len(seen) < 2 {
		select {
		case b := <-bills:
			if b.ChannelID == res.ChannelID {
				seen[b.ID] = true
			}
		case <-timeout:
			return fmt.Errorf("only %d of 2 bills arrived", len(seen))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	say("both bills published on %s/device/+/+/bill", topics.Prefix)
	// Recordings are named after the call's channelId (earlier runs' stay).
	if recs, _ := filepath.Glob(filepath.Join(outDir, res.ChannelID+"*.mkv")); len(recs) > 0 {
		say("the indoor unit recorded the call; play it with a media player:")
		for _, r := range recs {
			if fi, err := os.Stat(r); err == nil && fi.Size() > 0 {
				say("  %s (%d bytes)", r, fi.Size())
			}
		}
	}
	say("demo done")
	if !stay {
		return nil
	}
	scripted.Store(false)
	ws, err := web.NewServer(web.Config{Listen: freeOr("127.0.0.1:8080"), BrokerWS: "ws://" + broker.WSAddr(), Logger: logger})
	if err != nil {
		return err
	}
	webDone := make(chan struct{})
	go func() { defer close(webDone); _ = ws.Serve(ctx) }()
	defer func() { <-webDone }()
	say("still running; Ctrl-C to stop")
	say("  browser indoor unit: open %s and sign in as account flat1, device phone", ws.URL())
	say("  ring it: type \"call\" and Enter here (the door presses its call button), \"hangup\" to hang up")
	say("  or: bin/intercomctl -device door/entrance call flat1   (broker %s)", broker.URL())
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			select {
			case lines <- strings.TrimSpace(sc.Text()):
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line := <-lines:
			var err error
			switch line {
			case "call":
				_, err = door.Engine.Call(ctx, intercom.CallOptions{Type: intercom.TypeVideo, Account: "flat1"})
			case "hangup":
				err = door.Engine.Hangup(ctx)
			case "":
				continue
			default:
				err = fmt.Errorf("type call or hangup")
			}
			if err != nil {
				say("door station: %v", err)
			}
		}
	}
}
