package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/intercomd/intercomd/device"
)

// SharedVideo lets several sessions use one camera at once — the door
// previewing to every ringing indoor device, each on its own
// PeerConnection, since one offer can be answered only once. The camera
// starts with the first subscriber and stops with the last. A subscriber
// that falls behind loses frames up to the next keyframe (a gap inside a
// GOP would decode as garbage) and a keyframe is requested for it.
type SharedVideo struct {
	src device.VideoSource
	log *slog.Logger

	mu     sync.Mutex
	subs   map[*videoSub]struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// NewSharedVideo wraps src; src must not be used directly any more.
func NewSharedVideo(src device.VideoSource, log *slog.Logger) *SharedVideo {
	if log == nil {
		log = slog.Default()
	}
	return &SharedVideo{src: src, log: log.With("component", "media", "video", "shared"), subs: map[*videoSub]struct{}{}}
}

// Source returns a new subscriber, a VideoSource for one session.
func (v *SharedVideo) Source() device.VideoSource {
	return &videoSub{v: v}
}

var errSubStopped = errors.New("shared video: subscriber stopped")

type videoSub struct {
	v *SharedVideo

	mu      sync.Mutex
	ch      chan device.AccessUnit
	dead    chan struct{} // closed on Stop or when the camera fails
	err     error
	skipKey bool // dropping until the next keyframe after an overflow
}

func (s *videoSub) Start(ctx context.Context, cfg device.VideoConfig) error {
	v := s.v
	v.mu.Lock()
	defer v.mu.Unlock()
	s.mu.Lock()
	if s.ch != nil {
		s.mu.Unlock()
		return errors.New("shared video: subscriber already started")
	}
	s.ch = make(chan device.AccessUnit, 4)
	s.dead = make(chan struct{})
	s.err = nil
	s.mu.Unlock()
	if v.cancel == nil {
		// The camera outlives any one subscriber's context: it belongs to
		// the SharedVideo and stops with the last Stop.
		pctx, cancel := context.WithCancel(context.Background())
		if err := v.src.Start(pctx, cfg); err != nil {
			cancel()
			s.mu.Lock()
			s.ch = nil
			s.mu.Unlock()
			return fmt.Errorf("shared video: start camera: %w", err)
		}
		v.cancel, v.done = cancel, make(chan struct{})
		go v.pump(pctx, v.done)
		v.log.Debug("shared camera started", "width", cfg.Width, "height", cfg.Height, "fps", cfg.FPS)
	}
	v.subs[s] = struct{}{}
	// A new viewer needs a keyframe now, not at the end of the GOP.
	v.src.RequestKeyframe()
	return nil
}

func (s *videoSub) ReadAccessUnit(ctx context.Context) (device.AccessUnit, error) {
	s.mu.Lock()
	ch, dead := s.ch, s.dead
	s.mu.Unlock()
	if ch == nil {
		return device.AccessUnit{}, errSubStopped
	}
	select {
	case au := <-ch:
		return au, nil
	case <-ctx.Done():
		return device.AccessUnit{}, ctx.Err()
	case <-dead:
		s.mu.Lock()
		err := s.err
		s.mu.Unlock()
		if err == nil {
			err = errSubStopped
		}
		return device.AccessUnit{}, err
	}
}

func (s *videoSub) RequestKeyframe() { s.v.src.RequestKeyframe() }

func (s *videoSub) Stop() error {
	v := s.v
	v.mu.Lock()
	_, ok := v.subs[s]
	delete(v.subs, s)
	last := ok && len(v.subs) == 0 && v.cancel != nil
	var cancel context.CancelFunc
	var done chan struct{}
	if last {
		cancel, done = v.cancel, v.done
		v.cancel, v.done = nil, nil
	}
	v.mu.Unlock()
	s.kill(nil)
	s.mu.Lock()
	s.ch = nil
	s.mu.Unlock()
	if last {
		cancel()
		<-done
		if err := v.src.Stop(); err != nil {
			return fmt.Errorf("shared video: stop camera: %w", err)
		}
		v.log.Debug("shared camera stopped")
	}
	return nil
}

func (s *videoSub) kill(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead == nil {
		return
	}
	select {
	case <-s.dead:
	default:
		s.err = err
		close(s.dead)
	}
}

// pump reads the camera and fans each access unit out without blocking on
// any subscriber.
func (v *SharedVideo) pump(ctx context.Context, done chan struct{}) {
	defer close(done)
	for {
		au, err := v.src.ReadAccessUnit(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			v.mu.Lock()
			for s := range v.subs {
				s.kill(err)
			}
			v.mu.Unlock()
			return
		}
		v.mu.Lock()
		for s := range v.subs {
			s.offer(au, v.src)
		}
		v.mu.Unlock()
	}
}

func (s *videoSub) offer(au device.AccessUnit, src device.VideoSource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		return
	}
	if s.skipKey {
		if !au.Keyframe {
			return
		}
		s.skipKey = false
	}
	select {
	case s.ch <- au:
	default:
		// Full: this viewer is behind. Drop this unit and everything up to
		// the next keyframe, and ask for one.
		s.skipKey = true
		src.RequestKeyframe()
	}
}
