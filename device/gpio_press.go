package device

import "time"

// Defaults for ButtonConfig.
const (
	DefaultDebounce  = 30 * time.Millisecond
	DefaultLongPress = 1500 * time.Millisecond
)

// pressTracker turns the raw active/inactive edges of one button into
// debounced presses. It is pure: time only enters through the timestamps
// it is given, so it is tested without a clock at all.
//
// A long press is reported as soon as the button has been held for the
// threshold (so the user gets feedback while still holding it); a short
// press is reported on release. A press that began before tracking started
// (button held at startup) is not reported.
type pressTracker struct {
	name     string
	debounce time.Duration // software debounce; 0 when the kernel debounces
	long     time.Duration

	stable bool // debounced level: true = active (pressed)

	hasPending bool // a raw level waiting out the debounce period
	pending    bool
	pendingAt  time.Time

	down     bool // a press we saw begin is in progress
	downAt   time.Time
	longSent bool
}

func newPressTracker(name string, debounce, long time.Duration, initial bool) *pressTracker {
	return &pressTracker{name: name, debounce: debounce, long: long, stable: initial}
}

// edge feeds a raw level change observed at t.
func (p *pressTracker) edge(active bool, t time.Time) []ButtonEvent {
	// Anything that matured before this edge happened first.
	evs := p.advance(t)
	if p.debounce <= 0 {
		return append(evs, p.apply(active, t)...)
	}
	// Every edge restarts the debounce window: the level must stay put for
	// the whole period to count.
	p.hasPending, p.pending, p.pendingAt = true, active, t
	return evs
}

// advance reports what the passage of time up to now completes: a debounced
// level change and/or a long press.
func (p *pressTracker) advance(now time.Time) []ButtonEvent {
	var evs []ButtonEvent
	if p.hasPending && !now.Before(p.pendingAt.Add(p.debounce)) {
		p.hasPending = false
		evs = append(evs, p.apply(p.pending, p.pendingAt.Add(p.debounce))...)
	}
	if p.down && !p.longSent && p.long > 0 && !now.Before(p.downAt.Add(p.long)) {
		p.longSent = true
		evs = append(evs, ButtonEvent{Button: p.name, Press: LongPress, Time: p.downAt.Add(p.long)})
	}
	return evs
}

// deadline is when advance next has something to do.
func (p *pressTracker) deadline() (time.Time, bool) {
	var dl time.Time
	ok := false
	if p.hasPending {
		dl, ok = p.pendingAt.Add(p.debounce), true
	}
	if p.down && !p.longSent && p.long > 0 {
		if l := p.downAt.Add(p.long); !ok || l.Before(dl) {
			dl, ok = l, true
		}
	}
	return dl, ok
}

func (p *pressTracker) apply(active bool, t time.Time) []ButtonEvent {
	if active == p.stable {
		return nil
	}
	p.stable = active
	if active {
		p.down, p.downAt, p.longSent = true, t, false
		return nil
	}
	wasDown, long := p.down, p.longSent
	p.down = false
	if wasDown && !long {
		return []ButtonEvent{{Button: p.name, Press: ShortPress, Time: t}}
	}
	return nil
}
