package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/intercomd/intercomd/device"
	"github.com/intercomd/intercomd/intercom"
	"github.com/intercomd/intercomd/intercom/media"
)

// VideoConf selects the video source. Nothing is simulated unless asked.
type VideoConf struct {
	Source string `yaml:"source"` // none, camera, command, testpattern
	// Encoder encodes a raw (non-H.264) camera: builtin (pure Go, the
	// default), v4l2m2m (the Pi 0-4 hardware encoder, bcm2835-codec) or
	// software (openh264/x264, a cgo build with -tags swenc).
	Encoder string `yaml:"encoder"`
	// EncoderDevice names the V4L2 M2M encoder (path, driver or card
	// name); empty: the first H.264 M2M encoder.
	EncoderDevice string              `yaml:"encoderDevice"`
	Camera        device.CameraConfig `yaml:"camera"`
	Command       []string            `yaml:"command"` // e.g. [rpicam-vid, -t, "0", --inline, --codec, h264, --width, "{width}", --height, "{height}", --framerate, "{fps}", -o, "-"]
}

// AudioConf selects the microphone and speaker.
type AudioConf struct {
	Capture        string            `yaml:"capture"` // none, alsa, tone
	CaptureDevice  device.ALSAConfig `yaml:"captureDevice"`
	Playback       string            `yaml:"playback"` // none, alsa, wav
	PlaybackDevice device.ALSAConfig `yaml:"playbackDevice"`
	PlaybackFile   string            `yaml:"playbackFile"` // playback: wav
}

// ButtonConf is a button and what pressing it does.
type ButtonConf struct {
	device.ButtonConfig `yaml:",inline"`
	Action              string `yaml:"action"`     // see parseAction
	LongAction          string `yaml:"longAction"` // for a long press; empty: same as action
}

// ButtonsConf lists the buttons; driver gpio (default) or sim (presses
// come from stdin lines and the MQTT "press" command).
type ButtonsConf struct {
	Driver string       `yaml:"driver"`
	List   []ButtonConf `yaml:"list"`
}

// OutputsConf names the optional ringer, LED and door-relay lines.
type OutputsConf struct {
	Driver     string               `yaml:"driver"` // gpio (default) or sim
	Ringer     *device.OutputConfig `yaml:"ringer"`
	LED        *device.OutputConfig `yaml:"led"`
	Relay      *device.OutputConfig `yaml:"relay"`
	RelayPulse time.Duration        `yaml:"relayPulse"`
}

// action is what a button press does.
type action struct {
	kind    string // call, answer, reject, hangup, smart, unlock
	account string // call and smart
}

// parseAction reads "call ACCOUNT", "answer", "reject", "hangup",
// "smart ACCOUNT" (idle → call ACCOUNT, ringing → answer, otherwise hang
// up) or "unlock" (pulse the door relay).
func parseAction(s string) (action, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return action{}, errors.New("is empty")
	}
	a := action{kind: f[0]}
	switch a.kind {
	case "call", "smart":
		if len(f) != 2 {
			return a, fmt.Errorf("%q needs an account: %q", a.kind, a.kind+" ACCOUNT")
		}
		a.account = f[1]
	case "answer", "reject", "hangup", "unlock":
		if len(f) != 1 {
			return a, fmt.Errorf("%q takes no argument", a.kind)
		}
	default:
		return a, fmt.Errorf("%q is not call ACCOUNT, smart ACCOUNT, answer, reject, hangup or unlock", s)
	}
	return a, nil
}

func (c *Config) validateDevices(bad func(key, format string, args ...any)) {
	switch c.Video.Source {
	case "", "none", "camera", "testpattern":
	case "command":
		if len(c.Video.Command) == 0 {
			bad("video.command", "is empty while video.source is command")
		}
	default:
		bad("video.source", "%q is not none, camera, command or testpattern", c.Video.Source)
	}
	switch c.Video.Encoder {
	case "", "builtin", "software", "v4l2m2m":
	default:
		bad("video.encoder", "%q is not builtin, v4l2m2m or software", c.Video.Encoder)
	}
	switch c.Audio.Capture {
	case "", "none", "tone":
	case "alsa":
		if c.Audio.CaptureDevice.Device == "" {
			bad("audio.captureDevice.device", "is empty while audio.capture is alsa (e.g. hw:1,0)")
		}
	default:
		bad("audio.capture", "%q is not none, alsa or tone", c.Audio.Capture)
	}
	switch c.Audio.Playback {
	case "", "none":
	case "alsa":
		if c.Audio.PlaybackDevice.Device == "" {
			bad("audio.playbackDevice.device", "is empty while audio.playback is alsa")
		}
	case "wav":
		if c.Audio.PlaybackFile == "" {
			bad("audio.playbackFile", "is empty while audio.playback is wav")
		}
	default:
		bad("audio.playback", "%q is not none, alsa or wav", c.Audio.Playback)
	}
	for _, d := range []struct{ key, v string }{{"buttons.driver", c.Buttons.Driver}, {"outputs.driver", c.Outputs.Driver}} {
		if d.v != "" && d.v != "gpio" && d.v != "sim" {
			bad(d.key, "%q is not gpio or sim", d.v)
		}
	}
	names := map[string]bool{}
	for i, b := range c.Buttons.List {
		key := fmt.Sprintf("buttons.list[%d]", i)
		if b.Name == "" {
			bad(key+".name", "is empty")
		} else if names[b.Name] {
			bad(key+".name", "%q is used twice", b.Name)
		}
		names[b.Name] = true
		if c.Buttons.Driver != "sim" && b.Line == "" {
			bad(key+".line", "is empty (a line offset such as 17, or a line name)")
		}
		if _, err := parseAction(b.Action); err != nil {
			bad(key+".action", "%v", err)
		}
		if b.LongAction != "" {
			if _, err := parseAction(b.LongAction); err != nil {
				bad(key+".longAction", "%v", err)
			}
		}
	}
	for _, o := range []struct {
		key string
		c   *device.OutputConfig
	}{{"outputs.ringer", c.Outputs.Ringer}, {"outputs.led", c.Outputs.LED}, {"outputs.relay", c.Outputs.Relay}} {
		if o.c != nil && c.Outputs.Driver != "sim" && o.c.Line == "" {
			bad(o.key+".line", "is empty")
		}
	}
	if c.Outputs.RelayPulse < 0 || c.Outputs.RelayPulse > time.Minute {
		bad("outputs.relayPulse", "%s is not between 0 and 1m", c.Outputs.RelayPulse)
	}
}

// devices are the hardware the configuration selects, opened at start so
// a missing device is an error naming it, not a surprise mid-call.
type devices struct {
	log    *slog.Logger
	video  *media.SharedVideo
	mic    device.AudioSource
	mkSpk  func() device.AudioSink
	closer []func() error
}

func openDevices(cfg Config, logger *slog.Logger) (*devices, error) {
	d := &devices{log: logger}
	var src device.VideoSource
	switch cfg.Video.Source {
	case "camera":
		cam, err := device.NewV4L2Camera(cfg.Video.Camera, device.WithCameraLogger(logger))
		if err != nil {
			return nil, fmt.Errorf("video.camera: %w", err)
		}
		d.closer = append(d.closer, cam.Close)
		// H.264 cameras pass through; raw frames go to an encoder.
		switch cfg.Video.Encoder {
		case "software":
			if src, err = newSoftwareEncoder(cam, logger); err != nil {
				cam.Close()
				return nil, fmt.Errorf("video.encoder: %w", err)
			}
		case "v4l2m2m":
			src = device.NewM2MCamera(cam, device.M2MEncoderOptions{Device: cfg.Video.EncoderDevice, Logger: logger})
		default:
			src = device.NewEncodedCamera(cam, device.EncodedCameraOptions{Logger: logger})
		}
	case "command":
		src = &device.Subprocess{Args: cfg.Video.Command, Logger: logger}
	case "testpattern":
		src = &device.TestPattern{}
	}
	if src != nil {
		d.video = media.NewSharedVideo(src, logger)
	}
	switch cfg.Audio.Capture {
	case "alsa":
		mic, err := device.NewALSASource(cfg.Audio.CaptureDevice, logger)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("audio.captureDevice: %w", err)
		}
		d.mic = mic
	case "tone":
		d.mic = device.NewChimeTone()
	}
	switch cfg.Audio.Playback {
	case "alsa":
		if _, err := device.NewALSASink(cfg.Audio.PlaybackDevice, logger); err != nil {
			d.Close()
			return nil, fmt.Errorf("audio.playbackDevice: %w", err)
		}
		pc := cfg.Audio.PlaybackDevice
		d.mkSpk = func() device.AudioSink {
			s, err := device.NewALSASink(pc, logger)
			if err != nil {
				logger.Error("speaker unavailable", "device", pc.Device, "err", err)
				return nil
			}
			return s
		}
	case "wav":
		path := cfg.Audio.PlaybackFile
		d.mkSpk = func() device.AudioSink { return device.NewWAVSink(path) }
	}
	return d, nil
}

// forCall returns the devices for one call's media session.
func (d *devices) forCall() media.Devices {
	var m media.Devices
	if d.video != nil {
		m.Video = d.video.Source()
	}
	m.Audio = d.mic
	if d.mkSpk != nil {
		if s := d.mkSpk(); s != nil {
			m.Speaker = s
		}
	}
	return m
}

func (d *devices) sendsVideo() bool { return d.video != nil }

func (d *devices) Close() error {
	var errs []error
	for _, c := range d.closer {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// panel is the buttons and outputs: presses become engine actions, and
// the outputs follow the call state.
type panel struct {
	log     *slog.Logger
	engine  *intercom.Engine
	actions map[string][2]action // button name → short, long
	buttons device.Buttons
	sim     *device.SimButtons
	ringer  *device.OutputDriver
	led     *device.OutputDriver
	relay   *device.OutputDriver
	pulse   time.Duration
	outputs []device.Output
	stdin   io.Reader // simulated buttons read presses from here
	wg      sync.WaitGroup
}

func openPanel(cfg Config, eng *intercom.Engine, logger *slog.Logger) (*panel, error) {
	p := &panel{log: logger, engine: eng, actions: map[string][2]action{}, pulse: cfg.Outputs.RelayPulse}
	if p.pulse == 0 {
		p.pulse = 3 * time.Second
	}
	if len(cfg.Buttons.List) > 0 {
		var names []string
		var gpioCfgs []device.ButtonConfig
		for _, b := range cfg.Buttons.List {
			short, _ := parseAction(b.Action)
			long := short
			if b.LongAction != "" {
				long, _ = parseAction(b.LongAction)
			}
			p.actions[b.Name] = [2]action{short, long}
			names = append(names, b.Name)
			gpioCfgs = append(gpioCfgs, b.ButtonConfig)
		}
		if cfg.Buttons.Driver == "sim" {
			p.sim = device.NewSimButtons(names, device.WithGPIOLogger(logger))
			p.buttons = p.sim
		} else {
			b, err := device.NewGPIOButtons(gpioCfgs, device.WithGPIOLogger(logger))
			if err != nil {
				return nil, fmt.Errorf("buttons: %w", err)
			}
			p.buttons = b
		}
	}
	open := func(key string, oc *device.OutputConfig) (*device.OutputDriver, error) {
		if oc == nil {
			return nil, nil
		}
		var out device.Output
		if cfg.Outputs.Driver == "sim" {
			out = device.NewSimOutput(oc.Name, device.WithGPIOLogger(logger))
		} else {
			o, err := device.NewGPIOOutput(*oc, device.WithGPIOLogger(logger))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			out = o
		}
		p.outputs = append(p.outputs, out)
		return device.NewOutputDriver(key, out, device.WithGPIOLogger(logger)), nil
	}
	var err error
	if p.ringer, err = open("outputs.ringer", cfg.Outputs.Ringer); err == nil {
		if p.led, err = open("outputs.led", cfg.Outputs.LED); err == nil {
			p.relay, err = open("outputs.relay", cfg.Outputs.Relay)
		}
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Run handles presses and drives the outputs until ctx ends.
func (p *panel) Run(ctx context.Context) {
	events, cancel := p.engine.Subscribe()
	defer cancel()
	presses := make(chan device.ButtonEvent, 16)
	if p.sim != nil && p.stdin != nil {
		// Simulated buttons: a line with a button's name presses it
		// ("call", or "call long").
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := p.sim.FeedLines(ctx, p.stdin); err != nil && ctx.Err() == nil {
				p.log.Debug("stdin buttons stopped", "err", err)
			}
		}()
	}
	if p.buttons != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := p.buttons.Run(ctx, presses); err != nil && ctx.Err() == nil {
				p.log.Error("buttons stopped", "err", err)
			}
		}()
	}
	defer p.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-presses:
			p.press(ctx, ev.Button, ev.Press)
		case ev := <-events:
			if ev.Name == intercom.EvState {
				p.follow(ctx, ev.Data.(intercom.StateInfo).State)
			}
		}
	}
}

// follow sets the outputs for a call state: the ringer rings while a call
// rings here, the LED blinks while ringing or calling and is steady in a call.
func (p *panel) follow(ctx context.Context, s intercom.State) {
	play := func(d *device.OutputDriver, pat device.Pattern) {
		if d != nil {
			d.Play(ctx, pat)
		}
	}
	switch s {
	case intercom.StateRinging:
		play(p.ringer, device.PatternRinging)
		play(p.led, device.PatternBlink)
	case intercom.StateCalling:
		play(p.ringer, device.PatternOff)
		play(p.led, device.PatternBlink)
	case intercom.StateInCall:
		play(p.ringer, device.PatternOff)
		play(p.led, device.PatternSteady)
	default:
		play(p.ringer, device.PatternOff)
		play(p.led, device.PatternOff)
	}
}

// press runs a button's action; the engine's answer is logged.
func (p *panel) press(ctx context.Context, name string, kind device.Press) {
	acts, ok := p.actions[name]
	if !ok {
		p.log.Warn("press of an unknown button", "button", name)
		return
	}
	a := acts[0]
	if kind == device.LongPress {
		a = acts[1]
	}
	p.log.Info("button", "button", name, "press", kind.String(), "action", a.kind, "account", a.account)
	// Answering waits for the caller's confirmation: not on this loop.
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := p.do(actx, a); err != nil {
			p.log.Warn("button action failed", "button", name, "action", a.kind, "err", err)
		}
	}()
}

func (p *panel) do(ctx context.Context, a action) error {
	switch a.kind {
	case "call":
		_, err := p.engine.Call(ctx, intercom.CallOptions{Type: intercom.TypeVideo, Account: a.account})
		return err
	case "answer":
		return p.engine.Answer(ctx, true)
	case "reject":
		return p.engine.Answer(ctx, false)
	case "hangup":
		return p.engine.Hangup(ctx)
	case "unlock":
		return p.Unlock(ctx)
	case "smart":
		s, err := p.engine.State(ctx)
		if err != nil {
			return err
		}
		switch s.State {
		case intercom.StateIdle:
			_, err = p.engine.Call(ctx, intercom.CallOptions{Type: intercom.TypeVideo, Account: a.account})
		case intercom.StateRinging:
			err = p.engine.Answer(ctx, true)
		default:
			err = p.engine.Hangup(ctx)
		}
		return err
	}
	return fmt.Errorf("unknown action %q", a.kind)
}

// Unlock pulses the door relay.
func (p *panel) Unlock(ctx context.Context) error {
	if p.relay == nil {
		return errors.New("no door relay configured (outputs.relay)")
	}
	p.log.Info("door relay pulse", "duration", p.pulse)
	p.relay.Pulse(context.WithoutCancel(ctx), p.pulse)
	return nil
}

// Press acts as if the named button was pressed (the MQTT "press" command).
func (p *panel) Press(ctx context.Context, name string, long bool) error {
	if _, ok := p.actions[name]; !ok {
		return fmt.Errorf("no button named %q", name)
	}
	kind := device.ShortPress
	if long {
		kind = device.LongPress
	}
	if p.sim != nil {
		return p.sim.Press(name, kind)
	}
	p.press(ctx, name, kind)
	return nil
}

// Close drives every output off and releases the lines.
func (p *panel) Close() error {
	var errs []error
	for _, d := range []*device.OutputDriver{p.ringer, p.led, p.relay} {
		if d != nil {
			d.Stop()
		}
	}
	for _, o := range p.outputs {
		errs = append(errs, o.Close())
	}
	if p.buttons != nil {
		errs = append(errs, p.buttons.Close())
	}
	return errors.Join(errs...)
}
