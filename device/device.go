// Package device puts the intercom's hardware behind small interfaces: a video
// source that yields H.264 access units, PCM audio in and out, buttons and
// on/off outputs. Each interface has a real adapter (V4L2, ALSA, GPIO
// character device, subprocess) and a simulated one; which one is used is
// always chosen explicitly by configuration, never by silent fallback.
package device

import (
	"context"
	"errors"
	"time"
)

// ErrUnavailable reports that a device is missing or went away (unplugged,
// ENODEV). Callers keep the call going without it (audio-only for a camera).
var ErrUnavailable = errors.New("device unavailable")

// VideoConfig is what the call asks of a video source.
type VideoConfig struct {
	Width, Height int
	FPS           int
	BitrateKbps   int // 0 = source default
	KeyframeEvery time.Duration
}

// AccessUnit is one H.264 access unit in Annex-B form. A keyframe carries its
// SPS and PPS in front of the IDR slice so a receiver can start decoding from
// any keyframe.
type AccessUnit struct {
	Data        []byte
	Keyframe    bool
	CaptureTime time.Time     // when the frame was captured, for latency measurement
	Duration    time.Duration // nominal frame duration
}

// VideoSource yields H.264 access units. Start may be called again after
// Stop (sources start on demand per call).
type VideoSource interface {
	Start(ctx context.Context, cfg VideoConfig) error
	// ReadAccessUnit blocks until the next access unit, ctx ends or the
	// source stops; a lost device returns an error wrapping ErrUnavailable.
	ReadAccessUnit(ctx context.Context) (AccessUnit, error)
	// RequestKeyframe asks for an IDR as soon as possible (PLI/FIR, a new receiver).
	RequestKeyframe()
	Stop() error
}

// AudioFormat describes interleaved signed 16-bit little-endian PCM.
type AudioFormat struct {
	SampleRate int // 8000, 16000 or 48000
	Channels   int // 1 or 2
}

// AudioSource captures PCM (a microphone).
type AudioSource interface {
	Start(ctx context.Context, f AudioFormat) error
	// ReadPCM fills buf with interleaved samples and returns how many it wrote.
	ReadPCM(ctx context.Context, buf []int16) (int, error)
	Stop() error
}

// AudioSink plays PCM (a loudspeaker).
type AudioSink interface {
	Start(ctx context.Context, f AudioFormat) error
	WritePCM(ctx context.Context, samples []int16) error
	Stop() error
}

// Press says how a button was pressed.
type Press int

const (
	ShortPress Press = iota + 1
	LongPress
)

func (p Press) String() string {
	switch p {
	case ShortPress:
		return "short"
	case LongPress:
		return "long"
	}
	return "unknown"
}

// ButtonEvent is one debounced press of a named button.
type ButtonEvent struct {
	Button string
	Press  Press
	Time   time.Time
}

// Buttons delivers debounced presses until ctx ends.
type Buttons interface {
	Run(ctx context.Context, events chan<- ButtonEvent) error
	Close() error
}

// Output is an on/off line: a ringer, an LED, a door relay. Implementations
// drive the line to off on Close so nothing is left energised.
type Output interface {
	Set(on bool) error
	Close() error
}
