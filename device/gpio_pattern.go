package device

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// PatternStep holds the output at On for For; For <= 0 holds it until the
// pattern is stopped.
type PatternStep struct {
	On  bool          `yaml:"on"`
	For time.Duration `yaml:"for"`
}

// Pattern is a sequence of output states, played once or repeated.
type Pattern struct {
	Name   string        `yaml:"name"`
	Steps  []PatternStep `yaml:"steps"`
	Repeat bool          `yaml:"repeat"`
}

// Built-in patterns for the ringer and the call LED.
var (
	PatternOff     = Pattern{Name: "off"}
	PatternSteady  = Pattern{Name: "steady", Steps: []PatternStep{{On: true}}}
	PatternRinging = Pattern{Name: "ringing", Repeat: true, Steps: []PatternStep{{On: true, For: time.Second}, {On: false, For: time.Second}}}
	PatternBlink   = Pattern{Name: "blink", Repeat: true, Steps: []PatternStep{{On: true, For: 250 * time.Millisecond}, {On: false, For: 250 * time.Millisecond}}}
)

// PulsePattern is one on-period of d: a door-relay pulse.
func PulsePattern(d time.Duration) Pattern {
	return Pattern{Name: "pulse", Steps: []PatternStep{{On: true, For: d}}}
}

// OutputDriver plays patterns on an Output, one at a time, from a goroutine
// owned by the context given to Play. Whatever ends a pattern (its end, the
// context, the next Play, Stop) leaves the output off.
type OutputDriver struct {
	name  string
	out   Output
	clock Clock
	log   *slog.Logger

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewOutputDriver wraps out; name is used in logs.
func NewOutputDriver(name string, out Output, opts ...GPIOOption) *OutputDriver {
	o := applyGPIOOptions(opts)
	return &OutputDriver{name: name, out: out, clock: o.clock, log: o.log}
}

// Play stops the current pattern (waiting until its goroutine has switched
// the output off) and starts p. The returned channel is closed when p has
// ended and the output is off.
func (d *OutputDriver) Play(ctx context.Context, p Pattern) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked()
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	d.cancel, d.done = cancel, done
	d.log.Debug("output pattern", "output", d.name, "pattern", p.Name)
	go d.run(pctx, p, done)
	return done
}

// Pulse switches the output on for dur (a door relay) and returns a channel
// closed when it is off again.
func (d *OutputDriver) Pulse(ctx context.Context, dur time.Duration) <-chan struct{} {
	return d.Play(ctx, PulsePattern(dur))
}

// Stop ends the current pattern and waits until the output is off.
func (d *OutputDriver) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked()
}

func (d *OutputDriver) stopLocked() {
	if d.cancel != nil {
		d.cancel()
		<-d.done
		d.cancel, d.done = nil, nil
	}
}

func (d *OutputDriver) run(ctx context.Context, p Pattern, done chan struct{}) {
	defer close(done)
	defer d.set(false)
	if len(p.Steps) == 0 {
		return
	}
	for {
		for _, s := range p.Steps {
			d.set(s.On)
			if s.For <= 0 {
				<-ctx.Done()
				return
			}
			t := d.clock.NewTimer(s.For)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
		}
		if !p.Repeat {
			return
		}
	}
}

func (d *OutputDriver) set(on bool) {
	if err := d.out.Set(on); err != nil {
		// A pattern has nobody to return an error to; the line is
		// tried again on the next step.
		d.log.Warn("output: set failed", "output", d.name, "on", on, "err", err)
	}
}
