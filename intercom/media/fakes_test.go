package media

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/intercomd/intercomd/device"
)

// fixtureSource is a VideoSource playing a pre-encoded x264 stream
// (testdata/test_640x480.h264: 30 frames, Constrained Baseline, IDR every
// 15 frames with SPS/PPS in front) in a loop at the configured frame rate.
// RequestKeyframe jumps to the next IDR, as a real encoder would produce one.
type fixtureSource struct {
	aus      []device.AccessUnit
	keys     []int
	keyReq   atomic.Bool
	produced atomic.Int64
	failAt   atomic.Int64 // >0: ReadAccessUnit fails with ErrUnavailable at this frame
	startErr error

	mu     sync.Mutex
	run    context.Context
	cancel context.CancelFunc
	period time.Duration
	next   time.Time
	idx    int
	starts atomic.Int64
	stops  atomic.Int64
}

var (
	fixtureOnce sync.Once
	fixtureAUs  []device.AccessUnit
	fixtureErr  error
)

func loadFixture() ([]device.AccessUnit, error) {
	fixtureOnce.Do(func() {
		b, err := os.ReadFile("testdata/test_640x480.h264")
		if err != nil {
			fixtureErr = err
			return
		}
		// One slice per frame: an access unit ends at each VCL NAL.
		var cur []byte
		for _, n := range splitAnnexB(b) {
			cur = append(cur, 0, 0, 0, 1)
			cur = append(cur, n...)
			if t := n[0] & 0x1f; t == 1 || t == 5 {
				fixtureAUs = append(fixtureAUs, device.AccessUnit{Data: cur, Keyframe: t == 5})
				cur = nil
			}
		}
		if len(fixtureAUs) == 0 {
			fixtureErr = errors.New("fixture has no access units")
		}
	})
	return fixtureAUs, fixtureErr
}

func newFixtureSource() (*fixtureSource, error) {
	aus, err := loadFixture()
	if err != nil {
		return nil, err
	}
	f := &fixtureSource{aus: aus}
	for i, au := range aus {
		if au.Keyframe {
			f.keys = append(f.keys, i)
		}
	}
	return f, nil
}

func (f *fixtureSource) Start(ctx context.Context, cfg device.VideoConfig) error {
	if f.startErr != nil {
		return f.startErr
	}
	fps := cfg.FPS
	if fps <= 0 {
		fps = 15
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cancel != nil {
		return errors.New("fixture source already started")
	}
	f.run, f.cancel = context.WithCancel(ctx)
	f.period = time.Second / time.Duration(fps)
	f.next = time.Time{}
	f.idx = 0
	f.starts.Add(1)
	return nil
}

func (f *fixtureSource) RequestKeyframe() { f.keyReq.Store(true) }

func (f *fixtureSource) Stop() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cancel != nil {
		f.cancel()
		f.cancel = nil
		f.stops.Add(1)
	}
	return nil
}

func (f *fixtureSource) ReadAccessUnit(ctx context.Context) (device.AccessUnit, error) {
	f.mu.Lock()
	run := f.run
	if f.cancel == nil {
		f.mu.Unlock()
		return device.AccessUnit{}, errors.New("fixture source stopped")
	}
	now := time.Now()
	if f.next.IsZero() || now.Sub(f.next) > f.period {
		f.next = now
	}
	wait := f.next.Sub(now)
	f.next = f.next.Add(f.period)
	f.mu.Unlock()
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return device.AccessUnit{}, ctx.Err()
		case <-run.Done():
			t.Stop()
			return device.AccessUnit{}, errors.New("fixture source stopped")
		}
	}
	n := f.produced.Add(1)
	if fa := f.failAt.Load(); fa > 0 && n >= fa {
		return device.AccessUnit{}, fmt.Errorf("fixture camera unplugged: %w", device.ErrUnavailable)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keyReq.Swap(false) && !f.aus[f.idx].Keyframe {
		next := f.keys[0]
		for _, k := range f.keys {
			if k >= f.idx {
				next = k
				break
			}
		}
		f.idx = next
	}
	au := f.aus[f.idx]
	f.idx = (f.idx + 1) % len(f.aus)
	au.CaptureTime = time.Now()
	au.Duration = f.period
	return au, nil
}

// toneSource is a microphone producing a 440 Hz tone in real time, 20 ms
// at a time.
type toneSource struct {
	mu     sync.Mutex
	rate   int
	start  time.Time
	sent   int64 // samples delivered
	phase  float64
	frames atomic.Int64
}

func (s *toneSource) Start(ctx context.Context, f device.AudioFormat) error {
	if (f.SampleRate != 8000 && f.SampleRate != 16000) || f.Channels != 1 {
		return fmt.Errorf("tone source: unsupported format %+v", f)
	}
	s.mu.Lock()
	s.start, s.sent, s.rate = time.Now(), 0, f.SampleRate
	s.mu.Unlock()
	return nil
}

func (s *toneSource) ReadPCM(ctx context.Context, buf []int16) (int, error) {
	s.mu.Lock()
	due := s.start.Add(time.Duration(s.sent+int64(len(buf))) * time.Second / time.Duration(s.rate))
	s.mu.Unlock()
	if d := time.Until(due); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range buf {
		buf[i] = int16(8000 * math.Sin(s.phase))
		s.phase += 2 * math.Pi * 440 / float64(s.rate)
	}
	s.sent += int64(len(buf))
	s.frames.Add(1)
	return len(buf), nil
}

func (s *toneSource) Stop() error { return nil }

// countSink is a speaker that counts what it is given.
type countSink struct {
	samples atomic.Int64
	nonZero atomic.Int64
	started atomic.Int64
	stopped atomic.Int64
}

func (c *countSink) Start(ctx context.Context, f device.AudioFormat) error {
	c.started.Add(1)
	return nil
}

func (c *countSink) WritePCM(ctx context.Context, pcm []int16) error {
	c.samples.Add(int64(len(pcm)))
	for _, s := range pcm {
		if s > 1000 || s < -1000 {
			c.nonZero.Add(1)
			break
		}
	}
	return nil
}

func (c *countSink) Stop() error { c.stopped.Add(1); return nil }
