package intercom

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/intercomd/intercomd/device"
	"github.com/intercomd/intercomd/intercom/media"
	"github.com/intercomd/intercomd/signaling"
)

// A child process runs one endpoint so tests can kill it with SIGKILL,
// the way power loss or the OOM killer would.

const envChild = "INTERCOMD_TEST_CHILD"

// childBills is how many bills the "bills" child stores before it is killed.
const childBills = 3

type childSpec struct {
	Broker, Prefix, Account, Device, Mode, Dir string
}

type child struct {
	cmd *exec.Cmd
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(envChild); spec != "" {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}

func skipIfNoExec(t *testing.T) {
	if os.Getenv("INTERCOMD_QEMU_USER") != "" {
		t.Skip("qemu-user breaks os/exec (golang/go#69259); runs natively in make test")
	}
}

func unusedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func startChild(t testing.TB, spec childSpec) *child {
	t.Helper()
	data, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+string(data))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd}
	t.Cleanup(func() { c.kill(t) })
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "READY" {
				ready <- nil
				return
			}
		}
		ready <- fmt.Errorf("child exited before READY: %v", sc.Err())
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("child not ready")
	}
	return c
}

func (c *child) kill(t testing.TB) {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

func runChild(specJSON string) int {
	var spec childSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "child spec:", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	self := signaling.Address{Account: spec.Account, Device: spec.Device}
	var mp MediaProvider
	if spec.Mode == "answerMedia" {
		// An indoor unit: tone for a microphone, no camera, null speaker.
		me, err := media.NewEngine(media.Config{LoopbackOnly: true, Logger: logger})
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 1
		}
		mp = &PionMedia{Engine: me, Devices: func() media.Devices {
			return media.Devices{Audio: device.NewSineTone(330), Speaker: &device.NullSink{}}
		}}
	}
	ep, err := NewEndpoint(EndpointConfig{
		Engine:    Config{Self: self, Logger: logger, Media: mp},
		Client:    signaling.ClientConfig{Broker: spec.Broker, Topics: signaling.Topics{Prefix: spec.Prefix}, Self: self, KeepAlive: 2 * time.Second},
		OutboxDir: filepath.Join(spec.Dir, "outbox"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	ctx := context.Background()
	events, _ := ep.Engine.Subscribe()
	go func() { _ = ep.Run(ctx) }()
	switch spec.Mode {
	case "answer", "answerMedia":
		if err := ep.Client.WaitConnected(ctx); err != nil {
			return 1
		}
		fmt.Println("READY")
		for ev := range events {
			if ev.Name == EvBeCalling {
				info := *ev.Data.(*BeCallingInfo)
				go func() { _ = ep.Engine.Response(ctx, info, true) }()
			}
		}
	case "bills":
		for i := 0; i < childBills; i++ {
			_, err := ep.Engine.Call(ctx, CallOptions{Type: TypeAudio, Account: "ghost"})
			if ErrorCode(err) != CodeCalleeOffline {
				fmt.Fprintln(os.Stderr, "child: expected 11001, got", err)
				return 1
			}
		}
		fmt.Println("READY")
		select {}
	}
	return 0
}
