//go:build cgo && swenc

package device

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// SyntheticRawSource is a RawFrameSource of camera-like I420 pictures: a
// slowly drifting diagonal gradient, a bright box moving across it and
// low-level sensor noise, so an encoder has motion and texture to code
// rather than the flat bars of TestPattern. It feeds SoftwareEncoder in
// tests, benchmarks and the demo on machines without a camera.
type SyntheticRawSource struct {
	// Unpaced returns frames as fast as they are read instead of one per
	// frame interval (benchmarks, tests). CaptureTime is then the read time.
	Unpaced bool
	// Noise is the peak amplitude of the luma noise (0 = none; 4 is a
	// typical small-sensor indoor level).
	Noise int

	mu      sync.Mutex
	running bool
	ctx     context.Context
	cfg     VideoConfig
	period  time.Duration
	next    time.Time
	n       uint64
	rnd     uint32
	buf     []byte
}

// Start takes the size (default 640x480, even) and frame rate (default 15).
func (s *SyntheticRawSource) Start(ctx context.Context, cfg VideoConfig) error {
	if cfg.Width == 0 && cfg.Height == 0 {
		cfg.Width, cfg.Height = 640, 480
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width%2 != 0 || cfg.Height%2 != 0 {
		return fmt.Errorf("synthetic source: size %dx%d must be even", cfg.Width, cfg.Height)
	}
	if cfg.FPS <= 0 {
		cfg.FPS = swencDefaultFPS
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running, s.ctx, s.cfg = true, ctx, cfg
	s.period = time.Second / time.Duration(cfg.FPS)
	s.next, s.n, s.rnd = time.Time{}, 0, 0x9e3779b9
	return nil
}

// Stop makes ReadFrame return ErrSourceStopped.
func (s *SyntheticRawSource) Stop() error {
	s.mu.Lock()
	s.running = false
	s.mu.Unlock()
	return nil
}

// ReadFrame renders the next picture; the returned Data is only valid until
// the next ReadFrame (it is reused, as a camera's buffers are).
func (s *SyntheticRawSource) ReadFrame(ctx context.Context) (RawFrame, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return RawFrame{}, ErrSourceStopped
	}
	now := time.Now()
	if !s.Unpaced {
		if s.next.IsZero() || now.Sub(s.next) > s.period {
			s.next = now // a slow reader gets no burst of stale frames
		}
		if d := s.next.Sub(now); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return RawFrame{}, ctx.Err()
			case <-s.ctx.Done():
				t.Stop()
				return RawFrame{}, ErrSourceStopped
			}
		}
		now = s.next
		s.next = s.next.Add(s.period)
	} else if err := ctx.Err(); err != nil {
		return RawFrame{}, err
	}
	w, h := s.cfg.Width, s.cfg.Height
	n := w*h + 2*(w/2)*(h/2)
	if cap(s.buf) < n {
		s.buf = make([]byte, n)
	}
	s.render(s.buf[:n], w, h)
	f := RawFrame{Data: s.buf[:n], FourCC: FourCCYU12, Width: w, Height: h, Stride: w, CaptureTime: now, Sequence: s.n}
	s.n++
	return f, nil
}

func (s *SyntheticRawSource) render(p []byte, w, h int) {
	y, cb, cr := p[:w*h], p[w*h:w*h+(w/2)*(h/2)], p[w*h+(w/2)*(h/2):]
	shift := int(s.n)
	box := max(16, h/6)
	span := max(1, w-box)
	bx := int(s.n*4) % (2 * span)
	if bx > span {
		bx = 2*span - bx
	}
	by := (h - box) / 2
	for j := 0; j < h; j++ {
		row := y[j*w : (j+1)*w]
		for i := range row {
			v := 40 + ((i+j+shift)*160/(w+h))%176
			if i >= bx && i < bx+box && j >= by && j < by+box {
				v = 220
			}
			if s.Noise > 0 {
				s.rnd ^= s.rnd << 13
				s.rnd ^= s.rnd >> 17
				s.rnd ^= s.rnd << 5
				v += int(s.rnd%uint32(2*s.Noise+1)) - s.Noise
			}
			row[i] = byte(min(max(v, 16), 235))
		}
	}
	for j := 0; j < h/2; j++ {
		for i := 0; i < w/2; i++ {
			cb[j*(w/2)+i] = byte(96 + (i*64)/(w/2))
			cr[j*(w/2)+i] = byte(160 - (j*64)/(h/2))
		}
	}
}

var _ RawFrameSource = (*SyntheticRawSource)(nil)
