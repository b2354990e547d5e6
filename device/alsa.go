package device

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// ALSAConfig selects a PCM device and tunes it.
//
//	audio:
//	  capture:  {device: "hw:1,0", volume: 255}
//	  playback: {device: "hw:CARD=Headphones,DEV=0", volume: 200}
type ALSAConfig struct {
	// Device: hw:N,D or hw:NAME,D or hw:CARD=NAME,DEV=D (plughw: is
	// accepted and treated alike: conversion is done here).
	Device string `yaml:"device"`
	// Volume is a software gain 0-255, 255 = unity (0 = default 255).
	Volume int `yaml:"volume"`
	// CardRate opens the card at this rate and resamples to/from the
	// call's rate (0: use the call's rate when the card can).
	CardRate int `yaml:"cardRate"`
	// PeriodMs is the period length (default 20); BufferPeriods the ring
	// size in periods (default 6; more survives scheduling stalls).
	PeriodMs      int `yaml:"periodMs"`
	BufferPeriods int `yaml:"bufferPeriods"`
}

// ParseALSADevice resolves an ALSA hw device name to card and device numbers
// using the card ids in sysfs (so hw:Loopback,0 works like hw:0,0).
func ParseALSADevice(name string) (card, dev int, err error) {
	s := strings.TrimSpace(name)
	switch {
	case strings.HasPrefix(s, "hw:"):
		s = s[3:]
	case strings.HasPrefix(s, "plughw:"):
		s = s[7:]
	default:
		return 0, 0, fmt.Errorf("alsa: device %q: want hw:CARD,DEV (no alsa-lib here, so no named PCMs like default)", name)
	}
	parts := strings.Split(s, ",")
	cardStr, devStr := parts[0], "0"
	if len(parts) > 1 {
		devStr = parts[1]
	}
	cardStr = strings.TrimPrefix(cardStr, "CARD=")
	devStr = strings.TrimPrefix(devStr, "DEV=")
	dev, err = strconv.Atoi(devStr)
	if err != nil {
		return 0, 0, fmt.Errorf("alsa: device %q: bad device number %q", name, devStr)
	}
	if n, err := strconv.Atoi(cardStr); err == nil {
		return n, dev, nil
	}
	ids, _ := filepath.Glob("/sys/class/sound/card*/id")
	var have []string
	for _, p := range ids {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		id := strings.TrimSpace(string(b))
		n, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(filepath.Dir(p)), "card"))
		if err != nil {
			continue
		}
		have = append(have, fmt.Sprintf("%d=%s", n, id))
		if id == cardStr {
			return n, dev, nil
		}
	}
	if len(have) == 0 {
		return 0, 0, fmt.Errorf("alsa: device %q: no sound cards present: %w", name, ErrUnavailable)
	}
	return 0, 0, fmt.Errorf("alsa: device %q: no card %q (cards: %s): %w", name, cardStr, strings.Join(have, ", "), ErrUnavailable)
}

func alsaPCMPath(name string, capture bool) (string, error) {
	card, dev, err := ParseALSADevice(name)
	if err != nil {
		return "", err
	}
	dir := "p"
	if capture {
		dir = "c"
	}
	p := fmt.Sprintf("/dev/snd/pcmC%dD%d%s", card, dev, dir)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("alsa: device %q: %s: %w", name, p, errors.Join(ErrUnavailable, err))
	}
	return p, nil
}

type alsaStream struct {
	cfg     ALSAConfig
	capture bool
	log     *slog.Logger

	mu      sync.Mutex
	pcm     *pcmStream
	format  AudioFormat
	rs      *resampler
	xruns   int
	pending []int16 // converted samples not yet handed out (capture) / written (playback)
	work    []int16
}

func newALSAStream(cfg ALSAConfig, capture bool, log *slog.Logger) (*alsaStream, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.Volume < 0 || cfg.Volume > 255 {
		return nil, fmt.Errorf("alsa %s: volume %d out of 0-255", cfg.Device, cfg.Volume)
	}
	if _, err := alsaPCMPath(cfg.Device, capture); err != nil {
		return nil, err
	}
	return &alsaStream{cfg: cfg, capture: capture, log: log}, nil
}

func (a *alsaStream) start(f AudioFormat) error {
	if f.Channels != 1 && f.Channels != 2 {
		return fmt.Errorf("alsa %s: %d channels (want 1 or 2)", a.cfg.Device, f.Channels)
	}
	if f.SampleRate <= 0 {
		return fmt.Errorf("alsa %s: sample rate %d", a.cfg.Device, f.SampleRate)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closeLocked()
	path, err := alsaPCMPath(a.cfg.Device, a.capture)
	if err != nil {
		return err
	}
	rate := f.SampleRate
	if a.cfg.CardRate > 0 {
		rate = a.cfg.CardRate
	}
	periodMs := a.cfg.PeriodMs
	if periodMs <= 0 {
		periodMs = 20
	}
	np := a.cfg.BufferPeriods
	if np <= 0 {
		np = 6
	}
	pcm, err := openPCM(fmt.Sprintf("%s (%s)", a.cfg.Device, path), path, a.capture,
		pcmRequest{rate: rate, chans: f.Channels, periodFrames: rate * periodMs / 1000, bufferPeriods: np})
	if err != nil {
		return err
	}
	a.pcm, a.format, a.xruns, a.pending = pcm, f, 0, a.pending[:0]
	if a.capture {
		a.rs = newResampler(pcm.rate, f.SampleRate, f.Channels)
	} else {
		a.rs = newResampler(f.SampleRate, pcm.rate, pcm.chans)
	}
	kind := "playback"
	if a.capture {
		kind = "capture"
	}
	a.log.Info("alsa started", "device", a.cfg.Device, "path", path, "dir", kind,
		"rate", f.SampleRate, "cardRate", pcm.rate, "channels", f.Channels, "card_channels", pcm.chans,
		"period", pcm.period, "buffer", pcm.buffer)
	return nil
}

func (a *alsaStream) onXrun(err error) {
	a.xruns++
	a.log.Warn("alsa xrun, recovered", "device", a.cfg.Device, "capture", a.capture, "err", err, "count", a.xruns)
}

func (a *alsaStream) volume() int {
	if a.cfg.Volume == 0 {
		return 255
	}
	return a.cfg.Volume
}

// read fills buf with converted samples.
func (a *alsaStream) read(ctx context.Context, buf []int16) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pcm == nil {
		return 0, fmt.Errorf("alsa %s: capture not started", a.cfg.Device)
	}
	for len(a.pending) == 0 {
		if err := a.pcm.wait(ctx); err != nil {
			return 0, err
		}
		n, err := a.pcm.xfer(a.pcm.period, a.onXrun)
		if err != nil {
			a.lostLocked(err)
			return 0, err
		}
		if n == 0 {
			continue
		}
		a.work = a.work[:0]
		for i := 0; i < n*a.pcm.chans; i++ {
			a.work = append(a.work, int16(binary.LittleEndian.Uint16(a.pcm.buf[2*i:])))
		}
		// Channels first (fewer samples to resample when going to mono).
		conv := convertChannels(nil, a.work, a.pcm.chans, a.format.Channels)
		a.pending = a.rs.process(a.pending, conv)
	}
	n := copy(buf, a.pending)
	n -= n % a.format.Channels
	if n == 0 {
		return 0, fmt.Errorf("alsa %s: buffer of %d samples holds no whole frame", a.cfg.Device, len(buf))
	}
	applyGain(buf[:n], a.volume())
	a.pending = append(a.pending[:0], a.pending[n:]...)
	return n, nil
}

// write converts samples and queues them, blocking while the card's ring
// is full.
func (a *alsaStream) write(ctx context.Context, samples []int16) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pcm == nil {
		return fmt.Errorf("alsa %s: playback not started", a.cfg.Device)
	}
	a.work = append(a.work[:0], samples...)
	applyGain(a.work, a.volume())
	conv := convertChannels(nil, a.work, a.format.Channels, a.pcm.chans)
	a.pending = a.rs.process(a.pending, conv)
	ch := a.pcm.chans
	for len(a.pending) >= ch {
		frames := min(len(a.pending)/ch, a.pcm.buffer)
		for i := 0; i < frames*ch; i++ {
			binary.LittleEndian.PutUint16(a.pcm.buf[2*i:], uint16(a.pending[i]))
		}
		n, err := a.pcm.xfer(frames, a.onXrun)
		if err != nil {
			a.lostLocked(err)
			return err
		}
		if n == 0 {
			if err := a.pcm.wait(ctx); err != nil {
				return err
			}
			continue
		}
		a.pending = append(a.pending[:0], a.pending[n*ch:]...)
	}
	return nil
}

func (a *alsaStream) lostLocked(err error) {
	if errors.Is(err, ErrUnavailable) {
		a.log.Warn("alsa device lost", "device", a.cfg.Device, "err", err)
		a.closeLocked()
	}
}

func (a *alsaStream) closeLocked() {
	if a.pcm != nil {
		a.pcm.close()
		a.pcm = nil
	}
}

func (a *alsaStream) stop() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closeLocked()
	return nil
}

// Xruns is the number of over/underruns recovered since Start.
func (a *alsaStream) Xruns() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.xruns
}

// ALSASource captures from an ALSA hw device (a microphone).
type ALSASource struct{ s *alsaStream }

// NewALSASource checks that the device exists (an error naming it
// otherwise, wrapping ErrUnavailable); it is opened on Start.
func NewALSASource(cfg ALSAConfig, log *slog.Logger) (*ALSASource, error) {
	s, err := newALSAStream(cfg, true, log)
	if err != nil {
		return nil, err
	}
	return &ALSASource{s}, nil
}

// Start opens the device for f.
func (a *ALSASource) Start(ctx context.Context, f AudioFormat) error { return a.s.start(f) }

// ReadPCM blocks for the next samples (at most len(buf), whole frames).
func (a *ALSASource) ReadPCM(ctx context.Context, buf []int16) (int, error) {
	return a.s.read(ctx, buf)
}

// Stop closes the device.
func (a *ALSASource) Stop() error { return a.s.stop() }

// Xruns counts recovered overruns.
func (a *ALSASource) Xruns() int { return a.s.Xruns() }

// ALSASink plays to an ALSA hw device (a loudspeaker).
type ALSASink struct{ s *alsaStream }

// NewALSASink checks that the device exists; it is opened on Start.
func NewALSASink(cfg ALSAConfig, log *slog.Logger) (*ALSASink, error) {
	s, err := newALSAStream(cfg, false, log)
	if err != nil {
		return nil, err
	}
	return &ALSASink{s}, nil
}

// Start opens the device for f.
func (a *ALSASink) Start(ctx context.Context, f AudioFormat) error { return a.s.start(f) }

// WritePCM queues samples, blocking while the device buffer is full.
func (a *ALSASink) WritePCM(ctx context.Context, samples []int16) error {
	return a.s.write(ctx, samples)
}

// Stop drops what is queued and closes the device.
func (a *ALSASink) Stop() error { return a.s.stop() }

// Xruns counts recovered underruns.
func (a *ALSASink) Xruns() int { return a.s.Xruns() }

var (
	_ AudioSource = (*ALSASource)(nil)
	_ AudioSink   = (*ALSASink)(nil)
)
