package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// M2MCamera is the VideoSource of a raw camera encoded by a V4L2 M2M
// hardware encoder (bcm2835-codec on a Pi 0-4): the counterpart of
// EncodedCamera with the encoder in hardware. Frames are converted to I420
// (ToI420) and encoded synchronously; the encoder is opened at the first
// frame's size (a camera may grant another size than asked) and closed on
// Stop. VideoConfig.BitrateKbps becomes the bitrate control and
// VideoConfig.KeyframeEvery the GOP; RequestKeyframe (a PLI) forces the
// next frame to be a keyframe.
type M2MCamera struct {
	src  RawFrameSource
	opts M2MEncoderOptions
	log  *slog.Logger

	keyReq atomic.Bool

	mu      sync.Mutex // the state below; not held while reading the camera
	gen     uint64
	cfg     VideoConfig
	started bool
	enc     *M2MEncoder
	frame   *I420Frame
}

// NewM2MCamera wraps src. opts.Device/Codec/Profile/Level/RawFormats are
// used as given; Width, Height, FPS, Bitrate and GOP come from each Start's
// VideoConfig and the camera's frames.
func NewM2MCamera(src RawFrameSource, opts M2MEncoderOptions) *M2MCamera {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	opts.Logger = log
	return &M2MCamera{src: src, opts: opts, log: log}
}

// Start starts the camera; the encoder opens with the first frame, which
// is a keyframe.
func (c *M2MCamera) Start(ctx context.Context, cfg VideoConfig) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.src.Start(ctx, cfg); err != nil {
		return err
	}
	c.closeEncoderLocked()
	c.cfg, c.started = cfg, true
	c.gen++
	c.keyReq.Store(false)
	return nil
}

// ReadAccessUnit reads and encodes the next frame.
func (c *M2MCamera) ReadAccessUnit(ctx context.Context) (AccessUnit, error) {
	c.mu.Lock()
	started, gen := c.started, c.gen
	c.mu.Unlock()
	if !started {
		return AccessUnit{}, errors.New("m2m camera: not started")
	}
	f, err := c.src.ReadFrame(ctx)
	if err != nil {
		return AccessUnit{}, fmt.Errorf("m2m camera: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || !c.started {
		return AccessUnit{}, errors.New("m2m camera: stopped")
	}
	w, h := f.Width&^1, f.Height&^1
	if c.enc == nil || c.frame.Width != w || c.frame.Height != h {
		c.closeEncoderLocked()
		o := c.opts
		o.Width, o.Height = w, h
		fps := max(c.cfg.FPS, 1)
		o.FPS = c.cfg.FPS
		if c.cfg.BitrateKbps > 0 {
			o.Bitrate = c.cfg.BitrateKbps * 1000
		}
		if c.cfg.KeyframeEvery > 0 {
			o.GOP = max(int(c.cfg.KeyframeEvery.Seconds()*float64(fps)+0.5), 1)
		}
		enc, err := OpenM2MEncoder(o)
		if err != nil {
			return AccessUnit{}, fmt.Errorf("m2m camera: %w", err)
		}
		c.enc, c.frame = enc, NewI420Frame(w, h)
		c.keyReq.Store(false) // a fresh encoder starts with a keyframe
	}
	if err := ToI420(c.frame, f); err != nil {
		return AccessUnit{}, fmt.Errorf("m2m camera: %w", err)
	}
	p, err := c.enc.Encode(c.frame, c.keyReq.Swap(false))
	if err != nil {
		return AccessUnit{}, fmt.Errorf("m2m camera: %w", err)
	}
	var d time.Duration
	if c.cfg.FPS > 0 {
		d = time.Second / time.Duration(c.cfg.FPS)
	}
	return AccessUnit{Data: p.Data, Keyframe: p.Keyframe, CaptureTime: f.CaptureTime, Duration: d}, nil
}

// RequestKeyframe makes the next access unit a keyframe.
func (c *M2MCamera) RequestKeyframe() { c.keyReq.Store(true) }

// Encoder returns the open encoder (nil before the first frame).
func (c *M2MCamera) Encoder() *M2MEncoder {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.enc
}

// Stop stops the camera and closes the encoder.
func (c *M2MCamera) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started = false
	c.gen++
	c.closeEncoderLocked()
	return c.src.Stop()
}

func (c *M2MCamera) closeEncoderLocked() {
	if c.enc != nil {
		if err := c.enc.Close(); err != nil {
			c.log.Warn("m2m camera: closing the encoder", "err", err)
		}
		c.enc = nil
	}
}
