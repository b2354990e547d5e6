package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/warthog618/go-gpiocdev"
	"golang.org/x/sys/unix"
)

// ButtonConfig is one push button on a GPIO line.
//
//	buttons:
//	  - name: call-flat1
//	    chip: pinctrl-bcm2711   # label, gpiochipN or /dev/gpiochipN; empty: find line by name
//	    line: "17"              # offset, or a line name such as GPIO17
//	    activeLow: true        # pressed = line low (button to GND)
//	    bias: pull-up
//	    debounce: 30ms
//	    longPress: 1.5s
type ButtonConfig struct {
	Name      string `yaml:"name"`
	Chip      string `yaml:"chip"`
	Line      string `yaml:"line"`
	ActiveLow bool   `yaml:"activeLow"`
	// Bias: pull-up, pull-down, disabled, or as-is (default: leave it).
	Bias string `yaml:"bias"`
	// Debounce period (default 30ms; negative disables debouncing).
	Debounce time.Duration `yaml:"debounce"`
	// SoftwareDebounce debounces in intercomd instead of asking the kernel.
	// The kernel is asked first by default and intercomd falls back to its
	// own debouncing when the kernel refuses (uAPI v1, old kernels).
	SoftwareDebounce bool `yaml:"softwareDebounce"`
	// LongPress is how long a button must be held to be a long press
	// (default 1.5s; negative: never a long press).
	LongPress time.Duration `yaml:"longPress"`
}

func (c ButtonConfig) debounce() time.Duration {
	switch {
	case c.Debounce == 0:
		return DefaultDebounce
	case c.Debounce < 0:
		return 0
	}
	return c.Debounce
}

func (c ButtonConfig) longPress() time.Duration {
	switch {
	case c.LongPress == 0:
		return DefaultLongPress
	case c.LongPress < 0:
		return 0
	}
	return c.LongPress
}

// GPIOButtons implements Buttons on GPIO character-device lines.
type GPIOButtons struct {
	log   *slog.Logger
	clock Clock

	lines    []*gpiocdev.Line
	trackers []*pressTracker
	edges    chan rawEdge

	mu      sync.Mutex
	closed  bool
	running bool
}

type rawEdge struct {
	idx    int
	active bool
	at     time.Time
}

// GPIOOption tunes the GPIO adapters.
type GPIOOption func(*gpioOptions)

type gpioOptions struct {
	log   *slog.Logger
	clock Clock
}

// WithGPIOLogger sets the logger (default slog.Default()).
func WithGPIOLogger(l *slog.Logger) GPIOOption { return func(o *gpioOptions) { o.log = l } }

// WithGPIOClock sets the clock (tests).
func WithGPIOClock(c Clock) GPIOOption { return func(o *gpioOptions) { o.clock = c } }

func applyGPIOOptions(opts []GPIOOption) gpioOptions {
	o := gpioOptions{log: slog.Default(), clock: SystemClock{}}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// NewGPIOButtons requests every configured line as an edge-detecting input.
// Lines are requested here, not in Run, so that a wrong chip or line fails
// at startup with an error naming it.
func NewGPIOButtons(cfgs []ButtonConfig, opts ...GPIOOption) (*GPIOButtons, error) {
	o := applyGPIOOptions(opts)
	b := &GPIOButtons{log: o.log, clock: o.clock, edges: make(chan rawEdge, 256)}
	seen := map[string]bool{}
	for i, cfg := range cfgs {
		if cfg.Name == "" {
			b.Close()
			return nil, fmt.Errorf("gpio: button %d (chip %q line %q) has no name", i, cfg.Chip, cfg.Line)
		}
		if seen[cfg.Name] {
			b.Close()
			return nil, fmt.Errorf("gpio: button %q configured twice", cfg.Name)
		}
		seen[cfg.Name] = true
		if err := b.add(i, cfg); err != nil {
			b.Close()
			return nil, err
		}
	}
	return b, nil
}

func (b *GPIOButtons) add(idx int, cfg ButtonConfig) error {
	ref, err := resolveGPIOLine(cfg.Chip, cfg.Line)
	if err != nil {
		return fmt.Errorf("button %q: %w", cfg.Name, err)
	}
	bias, err := gpioBias(cfg.Bias)
	if err != nil {
		return fmt.Errorf("button %q: %w", cfg.Name, err)
	}
	handler := func(ev gpiocdev.LineEvent) {
		e := rawEdge{idx: idx, active: ev.Type == gpiocdev.LineEventRisingEdge, at: b.eventTime(ev.Timestamp)}
		select {
		case b.edges <- e:
		default:
			// Run is not draining (not started, or stuck): a button
			// is not worth blocking the kernel event reader for.
			b.log.Warn("gpio: button edge dropped, queue full", "button", cfg.Name)
		}
	}
	base := []gpiocdev.LineReqOption{
		gpiocdev.AsInput, gpiocdev.WithBothEdges, gpiocdev.WithEventHandler(handler),
		gpiocdev.WithConsumer(consumerName(cfg.Name)),
	}
	if cfg.ActiveLow {
		base = append(base, gpiocdev.AsActiveLow)
	}
	if bias != nil {
		base = append(base, bias)
	}
	soft := cfg.debounce()
	var line *gpiocdev.Line
	if soft > 0 && !cfg.SoftwareDebounce {
		line, err = gpiocdev.RequestLine(ref.chip, ref.offset, append(base, gpiocdev.WithDebounce(soft))...)
		if err == nil {
			soft = 0 // the kernel debounces
		} else {
			b.log.Info("gpio: kernel debounce refused, debouncing in software", "button", cfg.Name, "line", ref.String(), "err", err)
		}
	}
	if line == nil {
		line, err = gpiocdev.RequestLine(ref.chip, ref.offset, base...)
		if err != nil {
			return fmt.Errorf("button %q: request %s: %w", cfg.Name, ref, err)
		}
	}
	initial, err := line.Value()
	if err != nil {
		line.Close()
		return fmt.Errorf("button %q: read %s: %w", cfg.Name, ref, err)
	}
	b.lines = append(b.lines, line)
	b.trackers = append(b.trackers, newPressTracker(cfg.Name, soft, cfg.longPress(), initial == 1))
	b.log.Info("gpio: button ready", "button", cfg.Name, "line", ref.String(),
		"activeLow", cfg.ActiveLow, "bias", cfg.Bias, "softwareDebounce", soft, "pressed", initial == 1)
	return nil
}

// eventTime maps a kernel event timestamp (CLOCK_MONOTONIC since Linux 5.7)
// onto the clock, so press durations come from the kernel's timing rather
// than from when Go got round to reading the event.
func (b *GPIOButtons) eventTime(ts time.Duration) time.Time {
	now := b.clock.Now()
	var mono unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
		return now
	}
	lag := time.Duration(mono.Nano()) - ts
	if lag < 0 || lag > time.Second {
		// Not CLOCK_MONOTONIC (pre-5.7 kernels used the real-time clock).
		return now
	}
	return now.Add(-lag)
}

func consumerName(name string) string {
	// The kernel keeps 31 bytes of consumer label.
	s := "intercomd:" + name
	if len(s) > 31 {
		s = s[:31]
	}
	return s
}

// Run delivers presses until ctx ends; it returns nil then. Only one Run at
// a time.
func (b *GPIOButtons) Run(ctx context.Context, events chan<- ButtonEvent) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf("gpio buttons: %w", gpiocdev.ErrClosed)
	}
	if b.running {
		b.mu.Unlock()
		return errors.New("gpio buttons: Run already running")
	}
	b.running = true
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.running = false
		b.mu.Unlock()
	}()
	return runPressLoop(ctx, b.clock, b.trackers, b.edges, events, b.log)
}

// Close releases the lines.
func (b *GPIOButtons) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	var errs []error
	for _, l := range b.lines {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// runPressLoop is the single goroutine that owns the trackers: raw edges in,
// debounced presses out, a timer for the next debounce or long-press
// deadline.
func runPressLoop(ctx context.Context, clk Clock, trackers []*pressTracker, edges <-chan rawEdge, events chan<- ButtonEvent, log *slog.Logger) error {
	emit := func(evs []ButtonEvent) bool {
		for _, ev := range evs {
			log.Info("button press", "button", ev.Button, "press", ev.Press.String())
			select {
			case events <- ev:
			case <-ctx.Done():
				return false
			}
		}
		return true
	}
	for {
		var timer Timer
		var timerC <-chan time.Time
		var next time.Time
		has := false
		for _, t := range trackers {
			if dl, ok := t.deadline(); ok && (!has || dl.Before(next)) {
				next, has = dl, true
			}
		}
		if has {
			timer = clk.NewTimer(next.Sub(clk.Now()))
			timerC = timer.C()
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case e := <-edges:
			if timer != nil {
				timer.Stop()
			}
			if e.idx >= 0 && e.idx < len(trackers) && !emit(trackers[e.idx].edge(e.active, e.at)) {
				return nil
			}
		case <-timerC:
			now := clk.Now()
			for _, t := range trackers {
				if !emit(t.advance(now)) {
					return nil
				}
			}
		}
	}
}
