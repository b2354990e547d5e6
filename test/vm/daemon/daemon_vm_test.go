// Package daemon is the full-daemon hardware scenario of the VM rig
// (`make test-hw-daemon`): two intercomd processes in the arm64 guest, the
// door on the kernel's simulated devices, driven by gpio-sim lines and the
// intercomctl binary. See test/vm/README.md.
package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/intercomd/intercomd/device"
	"github.com/intercomd/intercomd/signaling"
)

// The gpio-sim lines the door uses (the rig's chip intercomd-sim).
const (
	simLabel   = "intercomd-sim"
	lineCall   = 3 // button to GND, pull-up: "call flat1"
	lineHangup = 5 // button to GND, pull-up: "hangup"
	lineRelay  = 8 // door relay output
	toneHz     = 1000
	rate       = 48000
	// Everything is emulated (TCG): generous bounds.
	slack = 60 * time.Second
)

const doorConfig = `identity: {account: door, device: entrance}
mqtt: {broker: "tcp://127.0.0.1:1883"}
broker: {enabled: true, listen: "127.0.0.1:1883", websocket: "-"}
media: {loopbackOnly: true}
session: {videoQuality: 2, videoFrameRate: 2}   # 352x288 asked, vivid's nearest is 320x180; 10 fps
video:
  source: camera
  camera: {device: vivid}
audio:
  capture: alsa
  captureDevice: {device: "hw:Loopback,1", cardRate: 48000}
buttons:
  list:
    - {name: call, chip: intercomd-sim, line: "3", activeLow: true, bias: pull-up, action: call flat1}
    - {name: hangup, chip: intercomd-sim, line: sim-line-5, activeLow: true, bias: pull-up, action: hangup}
outputs:
  relay: {name: door, chip: intercomd-sim, line: sim-line-8}
  relayPulse: 1500ms
state: {outboxDir: "%s"}
log: {level: info}
`

const flatConfig = `identity: {account: flat1, device: tablet}
mqtt: {broker: "tcp://127.0.0.1:1883"}
media: {loopbackOnly: true}
session: {videoQuality: 2, videoFrameRate: 2}
audio:
  playback: alsa
  playbackDevice: {device: "hw:Loopback,1", cardRate: 48000}
state: {outboxDir: "%s"}
log: {level: info}
`

// TestDoorToFlatScenarioVM: the door's call button (a gpio-sim line) rings
// flat1/tablet; intercomctl answers; vivid video and loopback audio reach
// the flat (its bill's media stats, and the tone played into the door's
// sound card comes out of the flat's); the hangup line ends the call; both
// bills are published; unlock pulses the relay line.
func TestDoorToFlatScenarioVM(t *testing.T) {
	if os.Getenv("INTERCOMD_VM") != "1" {
		t.Skip("needs the VM rig: make test-hw")
	}
	bin := binaries(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 6*slack)
	defer cancel()

	// The sound: a 1 kHz tone into the door's microphone (hw:Loopback,0
	// plays into hw:Loopback,1, which the door captures), and a recorder
	// on hw:Loopback,0's capture side, which is what the flat plays into
	// hw:Loopback,1. Both are opened before the daemons, at 48 kHz, so the
	// loopback cables run at the rate the daemons' cardRate asks for.
	audio := startAudio(ctx, t)

	door := startDaemon(ctx, t, bin, dir, "door", doorConfig)
	waitFor(t, "the door's status", func() (bool, string) {
		out, err := ctl(ctx, bin, "-device", "door/entrance", "status")
		return err == nil && strings.Contains(out, `"state":"idle"`), out
	})
	flat := startDaemon(ctx, t, bin, dir, "flat", flatConfig)
	dumpLogs := func() {
		for _, d := range []*daemon{door, flat} {
			t.Logf("--- %s log ---\n%s", d.name, d.log.String())
		}
	}
	defer func() {
		if t.Failed() {
			dumpLogs()
		}
	}()
	waitFor(t, "the flat's status", func() (bool, string) {
		out, err := ctl(ctx, bin, "-device", "flat1/tablet", "status")
		return err == nil && strings.Contains(out, `"state":"idle"`), out
	})
	watch := startWatch(ctx, t, bin)
	// The buttons' pull-ups hold the lines high (released).
	for _, l := range []int{lineCall, lineHangup} {
		if v := simValue(t, l); v != 1 {
			t.Fatalf("button line %d reads %d with pull-up requested, want 1", l, v)
		}
	}
	if v := simValue(t, lineRelay); v != 0 {
		t.Fatalf("relay line reads %d after start, want 0 (off)", v)
	}

	// 1. The call button rings the flat.
	t0 := time.Now()
	press(t, lineCall)
	waitFor(t, "the flat ringing", func() (bool, string) {
		out, err := ctl(ctx, bin, "-device", "flat1/tablet", "status")
		return err == nil && strings.Contains(out, `"state":"ringing"`), out
	})
	t.Logf("call button → flat ringing: %v", time.Since(t0).Round(time.Millisecond))

	// 2. The flat answers.
	if out, err := ctl(ctx, bin, "-device", "flat1/tablet", "answer"); err != nil {
		t.Fatalf("answer: %v\n%s", err, out)
	}
	waitFor(t, "the door in the call", func() (bool, string) {
		out, err := ctl(ctx, bin, "-device", "door/entrance", "status")
		return err == nil && strings.Contains(out, `"state":"in_call"`), out
	})
	t1 := time.Now()

	// 3. The tone goes door mic → WebRTC → flat speaker.
	waitFor(t, "the door's tone out of the flat's speaker", func() (bool, string) {
		n := audio.toneBlocks()
		return n >= 25, fmt.Sprintf("%d blocks of 20 ms with the tone", n) // 0.5 s
	})
	t.Logf("answer → tone heard at the flat: %v", time.Since(t1).Round(time.Millisecond))
	// Some more media before hanging up.
	time.Sleep(3 * time.Second)
	if !strings.Contains(door.log.String(), "encoding raw frames in software") || !strings.Contains(door.log.String(), "format=YUYV") {
		t.Errorf("the door's log does not show vivid's YUYV frames being encoded")
	}

	// 4. The hangup button ends the call; both bills are published.
	press(t, lineHangup)
	var doorBill, flatBill bill
	waitFor(t, "both bills", func() (bool, string) {
		doorBill, flatBill = watch.bill("door/entrance"), watch.bill("flat1/tablet")
		return doorBill.ID != "" && flatBill.ID != "", watch.String()
	})
	for _, b := range []bill{doorBill, flatBill} {
		t.Logf("bill %s/%s: %s, %s, hung up by %s, %d s, media %s", b.Account, b.Device, b.Type, b.Disposition, b.HungUpBy, b.Billsec, b.Media)
		if b.Type != "netcallBill" || b.ChannelID != doorBill.ChannelID || b.Caller != "door" || b.Callee != "flat1" || b.HungUpBy != "caller" {
			t.Errorf("bill %s/%s: %+v, want an answered call door → flat1 hung up by the caller", b.Account, b.Device, b)
		}
	}
	fm := flatBill.Media
	if fm == nil || fm.Video.FramesReceived == 0 || fm.Video.KeyframesReceived == 0 || fm.Audio.PacketsReceived == 0 {
		t.Errorf("flat bill media %+v: want video frames (with a keyframe) and audio packets received", fm)
	}
	if dm := doorBill.Media; dm == nil || dm.Video.FramesSent == 0 || dm.Audio.PacketsSent == 0 {
		t.Errorf("door bill media %+v: want video frames and audio packets sent", dm)
	}
	waitFor(t, "both idle", func() (bool, string) {
		a, _ := ctl(ctx, bin, "-device", "door/entrance", "status")
		b, _ := ctl(ctx, bin, "-device", "flat1/tablet", "status")
		return strings.Contains(a, `"state":"idle"`) && strings.Contains(b, `"state":"idle"`), a + b
	})

	// 5. Unlock pulses the relay: on, then off again after relayPulse.
	levels := sampleLine(t, lineRelay, 4*time.Second, func() {
		unlock(ctx, t, bin)
	})
	on, off := pulseTimes(levels)
	if on < 0 || off < 0 {
		t.Fatalf("relay line did not go 1 then back to 0: %v", levels)
	}
	width := levels[off].at.Sub(levels[on].at)
	t.Logf("relay pulse: %v (relayPulse 1.5s)", width.Round(time.Millisecond))
	if width < 1300*time.Millisecond || width > 3*time.Second {
		t.Errorf("relay pulse %v, want about 1.5s", width)
	}

	// Both daemons stop cleanly on SIGTERM.
	for _, d := range []*daemon{flat, door} {
		if err := d.stop(); err != nil {
			t.Errorf("%s: %v", d.name, err)
		}
	}
	if v := simValue(t, lineRelay); v != 0 {
		t.Errorf("relay line %d after the door stopped", v)
	}
	audio.stop()
}

type paths struct{ intercomd, intercomctl string }

// binaries are the intercomd and intercomctl (arm64, or armv6 run through
// the compat layer) that `make test-hw-daemon` builds into testdata/bin
// (the rig copies testdata into the guest).
func binaries(t *testing.T) paths {
	t.Helper()
	var p paths
	for name, dst := range map[string]*string{"intercomd": &p.intercomd, "intercomctl": &p.intercomctl} {
		f, err := filepath.Abs(filepath.Join("testdata", "bin", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%v: build the binaries first (make test-hw-daemon does)", err)
		}
		*dst = f
	}
	return p
}

// ---------------------------------------------------------------- daemons

type daemon struct {
	name string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan error
}

func startDaemon(ctx context.Context, t *testing.T, bin paths, dir, name, conf string) *daemon {
	t.Helper()
	outbox := filepath.Join(dir, name+"-outbox")
	cfgPath := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(conf, outbox)), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &daemon{name: name, log: &syncBuffer{}, done: make(chan error, 1)}
	d.cmd = exec.CommandContext(ctx, bin.intercomd, "-config", cfgPath)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	// Killed for sure when the test ends, however it ends.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

func (d *daemon) stop() error {
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	select {
	case err := <-d.done:
		if err != nil {
			return fmt.Errorf("exit after SIGTERM: %w", err)
		}
		return nil
	case <-time.After(slack / 2):
		d.cmd.Process.Kill()
		<-d.done
		return errors.New("did not exit within 30s of SIGTERM")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ctl runs intercomctl with a short timeout and returns its output.
func ctl(ctx context.Context, bin paths, args ...string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, bin.intercomctl, append([]string{"-timeout", "10s"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// unlock sends the door's "unlock" command with intercomctl when it has
// one, else as a plain request (the daemon's MQTT command either way).
func unlock(ctx context.Context, t *testing.T, bin paths) {
	out, err := ctl(ctx, bin, "-device", "door/entrance", "unlock")
	if err == nil {
		return
	}
	if !strings.Contains(out, "unknown command") {
		t.Errorf("intercomctl unlock: %v\n%s", err, out)
		return
	}
	t.Logf("intercomctl has no unlock command (%s); sending {\"action\":\"unlock\"} with signaling.Controller", strings.TrimSpace(out))
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := signaling.DialController(cctx, signaling.ControllerConfig{Broker: "tcp://127.0.0.1:1883", Topics: signaling.Topics{Prefix: signaling.DefaultPrefix}})
	if err != nil {
		t.Errorf("controller: %v", err)
		return
	}
	defer c.Close()
	resp, err := c.Request(cctx, signaling.Address{Account: "door", Device: "entrance"}, signaling.Request{Action: "unlock"})
	if err != nil || resp.Status != "ok" {
		t.Errorf("unlock request: %+v %v", resp, err)
	}
}

// waitFor polls cond every 250 ms for up to slack.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(slack)
	var last string
	for time.Now().Before(deadline) {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last: %s", what, last)
}

// ---------------------------------------------------------------- bills

type streamStats struct {
	PacketsSent       uint64 `json:"packetsSent"`
	PacketsReceived   uint64 `json:"packetsReceived"`
	FramesSent        uint64 `json:"framesSent"`
	FramesReceived    uint64 `json:"framesReceived"`
	KeyframesReceived uint64 `json:"keyframesReceived"`
}

type mediaStats struct {
	AudioCodec string      `json:"audioCodec"`
	Audio      streamStats `json:"audio"`
	Video      streamStats `json:"video"`
}

func (m *mediaStats) String() string {
	if m == nil {
		return "none"
	}
	return fmt.Sprintf("%s audio %+v video %+v", m.AudioCodec, m.Audio, m.Video)
}

type bill struct {
	Type        string      `json:"type"`
	ChannelID   string      `json:"channelId"`
	ID          string      `json:"id"`
	Account     string      `json:"account"`
	Device      string      `json:"device"`
	Caller      string      `json:"caller"`
	Callee      string      `json:"callee"`
	Billsec     int64       `json:"billsec"`
	Disposition string      `json:"disposition"`
	HungUpBy    string      `json:"hungUpBy"`
	Media       *mediaStats `json:"media"`
}

// watcher is `intercomctl -json watch` on every device, collecting bills.
type watcher struct {
	out   *syncBuffer
	mu    sync.Mutex
	bills map[string]bill // by ACCOUNT/DEVICE
}

func startWatch(ctx context.Context, t *testing.T, bin paths) *watcher {
	t.Helper()
	w := &watcher{out: &syncBuffer{}, bills: map[string]bill{}}
	wctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(wctx, bin.intercomctl, "-json", "watch")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, w.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		cmd.Wait()
		pw.Close()
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			w.out.Write([]byte(line + "\n"))
			topic, payload, ok := strings.Cut(line, " ")
			if !ok || !strings.HasSuffix(topic, "/bill") {
				continue
			}
			var b bill
			if err := json.Unmarshal([]byte(payload), &b); err != nil {
				continue
			}
			w.mu.Lock()
			w.bills[b.Account+"/"+b.Device] = b
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	// The watcher is subscribed once it has seen the retained presence.
	waitFor(t, "intercomctl watch", func() (bool, string) {
		s := w.out.String()
		return strings.Contains(s, "/presence"), s
	})
	return w
}

func (w *watcher) bill(dev string) bill {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bills[dev]
}

func (w *watcher) String() string { return w.out.String() }

// ---------------------------------------------------------------- gpio-sim

func simFile(t *testing.T, line int, leaf string) string {
	t.Helper()
	d := os.Getenv("INTERCOMD_VM_GPIO_SIM")
	if d == "" {
		t.Fatal("INTERCOMD_VM_GPIO_SIM not set by the VM rig's /init")
	}
	return filepath.Join(d, "sim_gpio"+strconv.Itoa(line), leaf)
}

func simPull(t *testing.T, line int, high bool) {
	t.Helper()
	v := "pull-down"
	if high {
		v = "pull-up"
	}
	if err := os.WriteFile(simFile(t, line, "pull"), []byte(v), 0); err != nil {
		t.Fatalf("gpio-sim: %v", err)
	}
}

func simValue(t *testing.T, line int) int {
	t.Helper()
	b, err := os.ReadFile(simFile(t, line, "value"))
	if err != nil {
		t.Fatalf("gpio-sim: %v", err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("gpio-sim line %d: %q", line, b)
	}
	return v
}

// press is a 200 ms press of an active-low button: pulled to GND, released.
func press(t *testing.T, line int) {
	t.Helper()
	simPull(t, line, false)
	time.Sleep(200 * time.Millisecond)
	simPull(t, line, true)
}

type level struct {
	at time.Time
	v  int
}

// sampleLine records the line's level every 10 ms for d while act runs.
func sampleLine(t *testing.T, line int, d time.Duration, act func()) []level {
	t.Helper()
	var levels []level
	go act()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		v := simValue(t, line)
		if len(levels) == 0 || levels[len(levels)-1].v != v {
			levels = append(levels, level{time.Now(), v})
		}
		time.Sleep(10 * time.Millisecond)
	}
	return levels
}

// pulseTimes finds the first 0→1 and the following 1→0 change.
func pulseTimes(ls []level) (on, off int) {
	on, off = -1, -1
	for i := 1; i < len(ls); i++ {
		if on < 0 && ls[i-1].v == 0 && ls[i].v == 1 {
			on = i
		} else if on >= 0 && ls[i].v == 0 {
			off = i
			break
		}
	}
	return on, off
}

// ---------------------------------------------------------------- audio

type audioRig struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	tone   int // 20 ms blocks of the recording where the tone dominates
	errs   []error
}

func startAudio(ctx context.Context, t *testing.T) *audioRig {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := device.AudioFormat{SampleRate: rate, Channels: 1}
	mic, err := device.NewALSASink(device.ALSAConfig{Device: "hw:Loopback,0"}, log)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := device.NewALSASource(device.ALSAConfig{Device: "hw:Loopback,0"}, log)
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithCancel(ctx)
	a := &audioRig{cancel: cancel}
	if err := rec.Start(actx, f); err != nil {
		t.Fatal(err)
	}
	if err := mic.Start(actx, f); err != nil {
		rec.Stop()
		t.Fatal(err)
	}
	a.wg.Add(2)
	go func() { // the tone, -12 dBFS, in 20 ms writes
		defer a.wg.Done()
		defer mic.Stop()
		buf := make([]int16, rate/50)
		n := 0
		for actx.Err() == nil {
			for i := range buf {
				buf[i] = int16(8000 * math.Sin(2*math.Pi*toneHz*float64(n)/rate))
				n++
			}
			if err := mic.WritePCM(actx, buf); err != nil && actx.Err() == nil {
				a.fail(fmt.Errorf("tone playback: %w", err))
				return
			}
		}
	}()
	go func() { // what the flat plays, analysed per 20 ms block
		defer a.wg.Done()
		defer rec.Stop()
		buf := make([]int16, rate/50)
		for actx.Err() == nil {
			got := 0
			for got < len(buf) {
				n, err := rec.ReadPCM(actx, buf[got:])
				if err != nil {
					if actx.Err() == nil {
						a.fail(fmt.Errorf("recording: %w", err))
					}
					return
				}
				got += n
			}
			if isTone(buf) {
				a.mu.Lock()
				a.tone++
				a.mu.Unlock()
			}
		}
	}()
	t.Cleanup(a.stop)
	return a
}

func (a *audioRig) fail(err error) {
	a.mu.Lock()
	a.errs = append(a.errs, err)
	a.mu.Unlock()
}

func (a *audioRig) toneBlocks() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tone
}

func (a *audioRig) stop() {
	a.cancel()
	a.wg.Wait()
}

// isTone: the block is loud enough and most of its energy is at toneHz
// (Goertzel), whatever codec and resampling it went through.
func isTone(b []int16) bool {
	var energy, s1, s2 float64
	c := 2 * math.Cos(2*math.Pi*toneHz/rate)
	for _, v := range b {
		x := float64(v)
		energy += x * x
		s0 := x + c*s1 - s2
		s2, s1 = s1, s0
	}
	n := float64(len(b))
	if energy/n < 500*500 {
		return false
	}
	power := s1*s1 + s2*s2 - c*s1*s2
	return power/(energy*n/2) > 0.5
}
