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
	// Replay, when > 0, renders that many frames once and then delivers
	// them in a loop, so a frame costs no CPU to produce, as a camera's
	// DMA'd buffer does: CPU measurements then count the encoder and what
	// follows it, not the renderer.
	Replay int

	mu      sync.Mutex
	running bool
	ctx     context.Context
	cfg     VideoConfig
	period  time.Duration
	next    time.Time
	n       uint64
	rnd     uint32
	buf     []byte
	replay  [][]byte
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
	var data []byte
	if s.Replay > 0 {
		data = s.replayed(w, h, n)
	} else {
		if cap(s.buf) < n {
			s.buf = make([]byte, n)
		}
		s.render(s.buf[:n], w, h, s.n)
		data = s.buf[:n]
	}
	f := RawFrame{Data: data, FourCC: FourCCYU12, Width: w, Height: h, Stride: w, CaptureTime: now, Sequence: s.n}
	s.n++
	return f, nil
}

// replayed returns frame s.n of the replay loop, rendering the loop the
// first time (and again if the size changes).
func (s *SyntheticRawSource) replayed(w, h, n int) []byte {
	if len(s.replay) != s.Replay || len(s.replay[0]) != n {
		s.replay = make([][]byte, s.Replay)
		for i := range s.replay {
			s.replay[i] = make([]byte, n)
			s.render(s.replay[i], w, h, uint64(i))
		}
	}
	return s.replay[s.n%uint64(s.Replay)]
}

// render draws picture number frame (the noise continues from s.rnd).
func (s *SyntheticRawSource) render(p []byte, w, h int, frame uint64) {
	y, cb, cr := p[:w*h], p[w*h:w*h+(w/2)*(h/2)], p[w*h+(w/2)*(h/2):]
	shift := int(frame)
	box := max(16, h/6)
	span := max(1, w-box)
	bx := int(frame*4) % (2 * span)
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
