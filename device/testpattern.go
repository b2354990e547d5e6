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

// ErrSourceStopped is returned by ReadAccessUnit after Stop (or before Start).
var ErrSourceStopped = errors.New("source stopped")

// Defaults of the synthetic video source.
const (
	testPatternDefaultFPS      = 15
	testPatternDefaultKeyEvery = 3 * time.Second
)

// TestPattern is a VideoSource that renders a moving test pattern with a
// burned-in capture clock and frame counter and encodes it with the pure-Go
// H264Encoder: real, decodable H.264 without cgo or a camera, for the demo
// and CGO_ENABLED=0 tests. By default the pictures are coded lossy
// (Intra_16x16 at H264DefaultQP: a 640x480 keyframe is a few kilobytes, a
// handful of RTP packets); Lossless selects I_PCM for exact pixels.
//
// Frames are produced on demand inside ReadAccessUnit, paced to the frame
// rate by Clock: the first access unit (always an IDR with SPS/PPS) is
// returned at once, then one per frame interval. A reader that falls behind
// by more than one interval is not given a burst of stale frames; the
// schedule restarts from now. CaptureTime is the frame's scheduled time,
// which is also the time drawn into the picture.
//
// BitrateKbps is ignored: the encoder has a fixed QP, no rate control.
type TestPattern struct {
	// QP is the quantisation parameter of the lossy coding (1..51, 0 means
	// H264DefaultQP); ignored when Lossless. Read at Start.
	QP int
	// Lossless codes every picture as I_PCM (raw samples, ~460 kB per
	// 640x480 keyframe) so decoded pictures equal the rendered ones
	// exactly; for tests. Read at Start.
	Lossless bool
	// Clock paces frames and stamps them; nil means the system clock. Tests
	// use a VirtualClock to run faster than real time.
	Clock Clock
	// Logger receives start/stop and keyframe diagnostics; nil means slog.Default().
	Logger *slog.Logger

	keyReq atomic.Bool

	mu     sync.Mutex // guards the fields below
	run    *patternRun
	readMu sync.Mutex // serialises ReadAccessUnit (the encoder is stateful)
}

// patternRun is the state of one Start..Stop period.
type patternRun struct {
	ctx    context.Context
	cancel context.CancelFunc
	cfg    VideoConfig
	period time.Duration

	enc     *H264Encoder
	render  *patternRenderer
	frame   *I420Frame
	n       uint64
	next    time.Time
	lastKey time.Time
}

func (p *TestPattern) clock() Clock { return clockOrSystem(p.Clock) }

func (p *TestPattern) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// Start prepares the source for cfg. Width and height default to 640x480 and
// must be even; sizes that are not a multiple of 16 are coded padded and
// cropped in the SPS. FPS defaults to 15, KeyframeEvery to 3 s. The source
// stops when ctx ends or on Stop.
func (p *TestPattern) Start(ctx context.Context, cfg VideoConfig) error {
	if cfg.Width == 0 && cfg.Height == 0 {
		cfg.Width, cfg.Height = 640, 480
	}
	if cfg.FPS == 0 {
		cfg.FPS = testPatternDefaultFPS
	}
	if cfg.KeyframeEvery <= 0 {
		cfg.KeyframeEvery = testPatternDefaultKeyEvery
	}
	enc, err := NewH264Encoder(cfg.Width, cfg.Height, cfg.FPS, H264EncoderOptions{QP: p.QP, PCM: p.Lossless})
	if err != nil {
		return fmt.Errorf("test pattern: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != nil {
		return errors.New("test pattern: already started")
	}
	rctx, cancel := context.WithCancel(ctx)
	p.run = &patternRun{
		ctx:    rctx,
		cancel: cancel,
		cfg:    cfg,
		period: time.Second / time.Duration(cfg.FPS),
		enc:    enc,
		render: newPatternRenderer(cfg.Width, cfg.Height, cfg.FPS),
		frame:  NewI420Frame(cfg.Width, cfg.Height),
	}
	p.keyReq.Store(false)
	p.logger().Debug("test pattern started", "width", cfg.Width, "height", cfg.Height, "fps", cfg.FPS,
		"keyframe_every", cfg.KeyframeEvery)
	return nil
}

// RequestKeyframe makes the next access unit an IDR.
func (p *TestPattern) RequestKeyframe() { p.keyReq.Store(true) }

// Stop ends the current run; a blocked ReadAccessUnit returns ErrSourceStopped.
func (p *TestPattern) Stop() error {
	p.mu.Lock()
	r := p.run
	p.run = nil
	p.mu.Unlock()
	if r != nil {
		r.cancel()
	}
	return nil
}

// ReadAccessUnit waits for the next frame time, renders and encodes it.
func (p *TestPattern) ReadAccessUnit(ctx context.Context) (AccessUnit, error) {
	p.readMu.Lock()
	defer p.readMu.Unlock()
	p.mu.Lock()
	r := p.run
	p.mu.Unlock()
	if r == nil {
		return AccessUnit{}, ErrSourceStopped
	}
	clk := p.clock()
	now := clk.Now()
	if r.next.IsZero() || now.Sub(r.next) > r.period {
		r.next = now
	}
	if d := r.next.Sub(now); d > 0 {
		t := clk.NewTimer(d)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return AccessUnit{}, ctx.Err()
		case <-r.ctx.Done():
			t.Stop()
			return AccessUnit{}, ErrSourceStopped
		}
	}
	if err := r.ctx.Err(); err != nil {
		return AccessUnit{}, ErrSourceStopped
	}
	if err := ctx.Err(); err != nil {
		return AccessUnit{}, err
	}
	capture := r.next
	r.next = r.next.Add(r.period)

	key := r.n == 0 || p.keyReq.Swap(false) || capture.Sub(r.lastKey) >= r.cfg.KeyframeEvery
	r.render.render(r.frame, r.n, capture)
	data, isKey, err := r.enc.Encode(nil, r.frame, key)
	if err != nil {
		return AccessUnit{}, fmt.Errorf("test pattern: %w", err)
	}
	if isKey {
		r.lastKey = capture
	}
	r.n++
	return AccessUnit{Data: data, Keyframe: isKey, CaptureTime: capture, Duration: r.period}, nil
}
