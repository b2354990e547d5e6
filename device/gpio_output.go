package device

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/warthog618/go-gpiocdev"
)

// OutputConfig is one on/off GPIO line: ringer, LED, door relay.
//
//	outputs:
//	  - name: door-relay
//	    chip: pinctrl-bcm2711
//	    line: "27"
//	    activeLow: false   # true for relay boards that switch on a low input
//	    drive: push-pull    # or open-drain / open-source
type OutputConfig struct {
	Name      string `yaml:"name"`
	Chip      string `yaml:"chip"`
	Line      string `yaml:"line"`
	ActiveLow bool   `yaml:"activeLow"`
	Drive     string `yaml:"drive"`
}

// GPIOOutput implements Output on a GPIO line. The line is requested already
// driven inactive, so a restart after a crash that left it on turns it off
// at once, and it is driven inactive again on Close. (Between a crash and
// the restart the kernel keeps the last level: wire a pull resistor to the
// inactive level on relay lines so an unrequested line is off too.)
type GPIOOutput struct {
	name string
	ref  gpioLineRef
	log  *slog.Logger

	mu     sync.Mutex
	line   *gpiocdev.Line
	on     bool
	closed bool
}

// NewGPIOOutput requests the line as an output driven inactive.
func NewGPIOOutput(cfg OutputConfig, opts ...GPIOOption) (*GPIOOutput, error) {
	o := applyGPIOOptions(opts)
	if cfg.Name == "" {
		return nil, fmt.Errorf("gpio: output (chip %q line %q) has no name", cfg.Chip, cfg.Line)
	}
	ref, err := resolveGPIOLine(cfg.Chip, cfg.Line)
	if err != nil {
		return nil, fmt.Errorf("output %q: %w", cfg.Name, err)
	}
	drive, err := gpioDrive(cfg.Drive)
	if err != nil {
		return nil, fmt.Errorf("output %q: %w", cfg.Name, err)
	}
	req := []gpiocdev.LineReqOption{gpiocdev.AsOutput(0), gpiocdev.WithConsumer(consumerName(cfg.Name))}
	if cfg.ActiveLow {
		req = append(req, gpiocdev.AsActiveLow)
	}
	if drive != nil {
		req = append(req, drive)
	}
	line, err := gpiocdev.RequestLine(ref.chip, ref.offset, req...)
	if err != nil {
		return nil, fmt.Errorf("output %q: request %s: %w", cfg.Name, ref, err)
	}
	o.log.Info("gpio: output ready (off)", "output", cfg.Name, "line", ref.String(), "activeLow", cfg.ActiveLow)
	return &GPIOOutput{name: cfg.Name, ref: ref, log: o.log, line: line}, nil
}

// Name is the configured name.
func (g *GPIOOutput) Name() string { return g.name }

// Set drives the line active (on) or inactive.
func (g *GPIOOutput) Set(on bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return fmt.Errorf("output %q: %w", g.name, gpiocdev.ErrClosed)
	}
	v := 0
	if on {
		v = 1
	}
	if err := g.line.SetValue(v); err != nil {
		return fmt.Errorf("output %q: set %s to %d: %w", g.name, g.ref, v, err)
	}
	if on != g.on {
		g.log.Debug("gpio: output", "output", g.name, "on", on)
	}
	g.on = on
	return nil
}

// On reports the last value set.
func (g *GPIOOutput) On() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.on
}

// Close drives the line inactive and releases it.
func (g *GPIOOutput) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	errOff := g.line.SetValue(0)
	if errOff != nil {
		errOff = fmt.Errorf("output %q: drive %s off: %w", g.name, g.ref, errOff)
	}
	errClose := g.line.Close()
	if errClose != nil {
		errClose = fmt.Errorf("output %q: release %s: %w", g.name, g.ref, errClose)
	}
	g.on = false
	return errors.Join(errOff, errClose)
}
