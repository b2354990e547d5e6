package device

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// ToneSegment is one step of a Tone pattern: a sine at Freq Hz (0 = silence)
// for Duration. With Decay > 0 the level falls exponentially with that time
// constant, like a struck chime; otherwise it is held.
type ToneSegment struct {
	Freq     float64
	Duration time.Duration
	Decay    time.Duration
}

// Tone is a synthetic AudioSource: a sine or a looping pattern of tones,
// for the demo and tests (a door station without a microphone still sends
// something audible). Like a real microphone, ReadPCM returns a buffer once
// the time it covers has passed on Clock, so a caller is paced at real time
// (or virtual time in tests). A reader that falls more than 200 ms behind is
// moved forward to now instead of receiving a burst, as a capture device
// overrun would.
type Tone struct {
	// Segments loop forever; empty means a continuous 440 Hz sine.
	Segments []ToneSegment
	// Level is the peak amplitude as a fraction of full scale; 0 means 0.3.
	Level float64
	// Clock paces ReadPCM; nil means the system clock.
	Clock Clock

	readMu sync.Mutex
	mu     sync.Mutex
	run    *toneRun
}

type toneRun struct {
	ctx    context.Context
	cancel context.CancelFunc
	f      AudioFormat
	segs   []toneSeg
	period int64     // samples per pattern loop
	start  time.Time // clock time of sample 0
	pos    int64     // next sample frame
	level  float64
}

type toneSeg struct {
	freq, decay float64 // decay in samples, 0 = none
	start, n    int64
}

// Each tone segment fades in and out over this long so segment changes do not click.
const toneRamp = 5 * time.Millisecond

// NewSineTone returns a continuous sine at freq Hz.
func NewSineTone(freq float64) *Tone {
	return &Tone{Segments: []ToneSegment{{Freq: freq, Duration: time.Second}}}
}

// NewChimeTone returns a two-tone door chime ("ding-dong", E5 then C5, each
// decaying) followed by a pause, repeating.
func NewChimeTone() *Tone {
	return &Tone{Segments: []ToneSegment{
		{Freq: 659.25, Duration: 500 * time.Millisecond, Decay: 250 * time.Millisecond},
		{Freq: 523.25, Duration: 900 * time.Millisecond, Decay: 400 * time.Millisecond},
		{Duration: 1600 * time.Millisecond},
	}}
}

// Start begins a capture at f. The tone runs until Stop or ctx ends.
func (t *Tone) Start(ctx context.Context, f AudioFormat) error {
	if f.SampleRate < 8000 || f.SampleRate > 192000 {
		return fmt.Errorf("tone: sample rate %d out of range", f.SampleRate)
	}
	if f.Channels < 1 || f.Channels > 2 {
		return fmt.Errorf("tone: %d channels, want 1 or 2", f.Channels)
	}
	segs := t.Segments
	if len(segs) == 0 {
		segs = []ToneSegment{{Freq: 440, Duration: time.Second}}
	}
	level := t.Level
	if level <= 0 {
		level = 0.3
	}
	if level > 1 {
		level = 1
	}
	run := &toneRun{f: f, level: level}
	rate := float64(f.SampleRate)
	for _, s := range segs {
		n := int64(s.Duration.Seconds() * rate)
		if n <= 0 {
			continue
		}
		if s.Freq < 0 || s.Freq >= rate/2 {
			return fmt.Errorf("tone: frequency %.1f Hz not below Nyquist (%d Hz)", s.Freq, f.SampleRate/2)
		}
		run.segs = append(run.segs, toneSeg{freq: s.Freq, decay: s.Decay.Seconds() * rate, start: run.period, n: n})
		run.period += n
	}
	if run.period == 0 {
		return errors.New("tone: pattern has no duration")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.run != nil {
		return errors.New("tone: already started")
	}
	run.ctx, run.cancel = context.WithCancel(ctx)
	run.start = clockOrSystem(t.Clock).Now()
	t.run = run
	return nil
}

// Stop ends the capture; a blocked ReadPCM returns ErrSourceStopped.
func (t *Tone) Stop() error {
	t.mu.Lock()
	r := t.run
	t.run = nil
	t.mu.Unlock()
	if r != nil {
		r.cancel()
	}
	return nil
}

// ReadPCM fills buf with whole sample frames (len(buf) rounded down to a
// multiple of the channel count) and returns once they are "captured".
func (t *Tone) ReadPCM(ctx context.Context, buf []int16) (int, error) {
	t.readMu.Lock()
	defer t.readMu.Unlock()
	t.mu.Lock()
	r := t.run
	t.mu.Unlock()
	if r == nil {
		return 0, ErrSourceStopped
	}
	frames := int64(len(buf) / r.f.Channels)
	if frames == 0 {
		return 0, nil
	}
	clk := clockOrSystem(t.Clock)
	rate := int64(r.f.SampleRate)
	at := func(pos int64) time.Time {
		return r.start.Add(time.Duration(pos * int64(time.Second) / rate))
	}
	if now := clk.Now(); now.Sub(at(r.pos)) > 200*time.Millisecond {
		// Overrun: skip the samples nobody read, keep the pattern phase.
		r.pos += int64(now.Sub(at(r.pos)) * time.Duration(rate) / time.Second)
	}
	end := at(r.pos + frames)
	if d := end.Sub(clk.Now()); d > 0 {
		tm := clk.NewTimer(d)
		select {
		case <-tm.C():
		case <-ctx.Done():
			tm.Stop()
			return 0, ctx.Err()
		case <-r.ctx.Done():
			tm.Stop()
			return 0, ErrSourceStopped
		}
	}
	if r.ctx.Err() != nil {
		return 0, ErrSourceStopped
	}
	ch := r.f.Channels
	for i := int64(0); i < frames; i++ {
		v := r.sample(r.pos + i)
		for c := 0; c < ch; c++ {
			buf[int(i)*ch+c] = v
		}
	}
	r.pos += frames
	return int(frames) * ch, nil
}

// sample computes sample number pos from the pattern directly (no phase
// accumulator), so long runs do not drift.
func (r *toneRun) sample(pos int64) int16 {
	p := pos % r.period
	for _, s := range r.segs {
		if p >= s.start+s.n {
			continue
		}
		if s.freq == 0 {
			return 0
		}
		k := float64(p - s.start)
		rate := float64(r.f.SampleRate)
		env := 1.0
		ramp := toneRamp.Seconds() * rate
		if k < ramp {
			env = k / ramp
		}
		if rest := float64(s.n) - k; rest < ramp {
			env = math.Min(env, rest/ramp)
		}
		if s.decay > 0 {
			env *= math.Exp(-k / s.decay)
		}
		v := r.level * env * math.Sin(2*math.Pi*s.freq*k/rate)
		return int16(math.Round(v * 32767))
	}
	return 0
}
