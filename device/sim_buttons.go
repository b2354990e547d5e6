package device

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// SimButtons are buttons pressed by a method call (tests, MQTT, an injected
// trigger function) or by lines on a reader (stdin in the demo). They are
// used only when the configuration asks for simulated buttons.
type SimButtons struct {
	clock Clock
	log   *slog.Logger
	names map[string]bool
	ch    chan ButtonEvent

	mu     sync.Mutex
	closed bool
}

// NewSimButtons makes simulated buttons with the given names.
func NewSimButtons(names []string, opts ...GPIOOption) *SimButtons {
	o := applyGPIOOptions(opts)
	s := &SimButtons{clock: o.clock, log: o.log, names: map[string]bool{}, ch: make(chan ButtonEvent, 64)}
	for _, n := range names {
		s.names[n] = true
	}
	return s
}

// Press presses a button as if a person had; it does not block. It fails
// for an unknown button name or when nobody reads the events.
func (s *SimButtons) Press(name string, p Press) error {
	if !s.names[name] {
		return fmt.Errorf("sim buttons: no button %q", name)
	}
	if p != ShortPress && p != LongPress {
		return fmt.Errorf("sim buttons: invalid press %d for %q", int(p), name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("sim buttons: closed (press %q)", name)
	}
	ev := ButtonEvent{Button: name, Press: p, Time: s.clock.Now()}
	select {
	case s.ch <- ev:
		s.log.Info("sim button press", "button", name, "press", p.String())
		return nil
	default:
		return fmt.Errorf("sim buttons: event queue full (press %q)", name)
	}
}

// Trigger returns a function that presses name; handy to inject into code
// that should not know about SimButtons.
func (s *SimButtons) Trigger(name string) func(Press) error {
	return func(p Press) error { return s.Press(name, p) }
}

// FeedLines presses buttons from text lines such as "call-flat1" or
// "hangup long" until r ends or ctx does. Unknown names are logged and
// skipped so a typo in the demo does not end it.
func (s *SimButtons) FeedLines(ctx context.Context, r io.Reader) error {
	lines := make(chan string)
	errc := make(chan error, 1)
	go func() {
		// The scanner cannot be interrupted; it ends with r.
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				errc <- nil
				return
			}
		}
		errc <- sc.Err()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case line := <-lines:
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			p := ShortPress
			if len(f) > 1 && (f[1] == "long" || f[1] == "l") {
				p = LongPress
			}
			if err := s.Press(f[0], p); err != nil {
				s.log.Warn("sim buttons: input ignored", "line", line, "err", err)
			}
		}
	}
}

// Run delivers presses until ctx ends; it returns nil then.
func (s *SimButtons) Run(ctx context.Context, events chan<- ButtonEvent) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-s.ch:
			select {
			case events <- ev:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// Close makes later presses fail.
func (s *SimButtons) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
