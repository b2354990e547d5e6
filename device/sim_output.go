package device

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Transition is one change of a simulated output.
type Transition struct {
	On   bool
	Time time.Time
}

// SimOutput is an Output that records and logs its state changes, for the
// demo and tests. Used only when the configuration asks for it.
type SimOutput struct {
	name  string
	clock Clock
	log   *slog.Logger

	mu     sync.Mutex
	on     bool
	closed bool
	trans  []Transition
	notify chan struct{}
}

// NewSimOutput makes a simulated output, off.
func NewSimOutput(name string, opts ...GPIOOption) *SimOutput {
	o := applyGPIOOptions(opts)
	return &SimOutput{name: name, clock: o.clock, log: o.log, notify: make(chan struct{})}
}

// Set records a change (setting the current state again records nothing).
func (s *SimOutput) Set(on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("sim output %q: closed", s.name)
	}
	s.setLocked(on)
	return nil
}

func (s *SimOutput) setLocked(on bool) {
	if on == s.on {
		return
	}
	s.on = on
	now := s.clock.Now()
	s.trans = append(s.trans, Transition{On: on, Time: now})
	s.log.Info("sim output", "output", s.name, "on", on)
	close(s.notify)
	s.notify = make(chan struct{})
}

// Close switches the output off.
func (s *SimOutput) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.setLocked(false)
		s.closed = true
	}
	return nil
}

// On is the current state.
func (s *SimOutput) On() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.on
}

// Transitions returns a copy of the recorded changes.
func (s *SimOutput) Transitions() []Transition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Transition(nil), s.trans...)
}

// Watch returns the current state and a channel closed at the next change,
// read together so that no change can fall between them (for tests and UIs
// that wait rather than poll).
func (s *SimOutput) Watch() (on bool, changed <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.on, s.notify
}
