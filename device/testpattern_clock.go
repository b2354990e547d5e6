package device

import (
	"sync"
	"time"
)

// VirtualClock is a Clock for tests of the paced synthetic sources
// (TestPattern, Tone): time only moves when someone waits, and every timer
// fires at once after moving the clock to its deadline. A source paced by it
// runs as fast as the CPU allows while seeing exactly the timestamps it would
// see in real time. Safe for concurrent use; concurrent waiters each advance
// the clock, so time is the latest deadline anyone waited for.
type VirtualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewVirtualClock returns a clock reading start.
func NewVirtualClock(start time.Time) *VirtualClock { return &VirtualClock{now: start} }

// Now returns the virtual time.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (never backwards).
func (c *VirtualClock) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// NewTimer advances the clock by d and returns a timer that has fired.
func (c *VirtualClock) NewTimer(d time.Duration) Timer {
	c.Advance(d)
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return firedTimer{ch}
}

type firedTimer struct{ ch chan time.Time }

func (t firedTimer) C() <-chan time.Time { return t.ch }
func (t firedTimer) Stop() bool          { return false }
