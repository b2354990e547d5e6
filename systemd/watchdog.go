package systemd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ErrProbeTimeout is reported (wrapped) when the liveness probe did not answer
// within its deadline, or an earlier probe is still stuck.
var ErrProbeTimeout = errors.New("liveness probe timed out")

// RunWatchdog keeps systemd's watchdog fed for as long as probe, the call
// engine's liveness ping, succeeds: it probes at start and then every half
// of WatchdogSec=, and sends WATCHDOG=1 only after a successful probe that
// answered within a quarter of WatchdogSec= (so the keep-alive is never late
// because of a slow answer). A wedged engine therefore stops the keep-alives
// and systemd kills and restarts the daemon (Restart=always) — a process
// that is alive but deaf is worse than a restart on a door intercom.
//
// probe gets a context with that deadline and should return promptly when
// it ends; a probe that ignores it is abandoned, and no new probe is started
// until it returns, so a stuck engine cannot pile up goroutines.
//
// RunWatchdog returns nil at once when no watchdog is configured for this
// process (n is nil or WATCHDOG_USEC is unset), and nil when ctx ends. Run it
// in its own goroutine after Ready.
func RunWatchdog(ctx context.Context, n *Notifier, probe func(context.Context) error) error {
	interval, ok := n.WatchdogInterval()
	if !ok {
		return nil
	}
	period := interval / 2
	if period <= 0 {
		// WATCHDOG_USEC=1 would give a zero period, which NewTicker rejects.
		period = time.Microsecond
	}
	t := time.NewTicker(period)
	defer t.Stop()
	w := &watchdogLoop{
		n:       n,
		probe:   probe,
		tick:    t.C,
		timeout: period / 2,
		log:     slog.Default().With("component", "watchdog"),
	}
	w.log.Info("systemd watchdog enabled", "watchdog_sec", interval, "ping_every", period, "probe_timeout", w.timeout)
	return w.run(ctx)
}

// watchdogLoop is RunWatchdog with its clock injected: tests drive tick by
// hand and watch onRound, so they count messages instead of timing them.
type watchdogLoop struct {
	n       *Notifier
	probe   func(context.Context) error
	tick    <-chan time.Time
	timeout time.Duration
	log     *slog.Logger
	// onRound, when set, is called after every round with whether a
	// keep-alive was sent and the probe (or notify) error.
	onRound func(pinged bool, err error)

	// inflight is non-nil while an abandoned probe has not returned yet.
	inflight chan error
	healthy  bool
}

func (w *watchdogLoop) run(ctx context.Context) error {
	w.healthy = true
	for {
		w.round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-w.tick:
		}
	}
}

func (w *watchdogLoop) round(ctx context.Context) {
	err := w.check(ctx)
	if ctx.Err() != nil {
		// Shutting down: a probe cancelled by our own context says nothing
		// about the engine, and STOPPING=1 is the caller's job.
		return
	}
	pinged := false
	if err == nil {
		if nerr := w.n.Watchdog(); nerr != nil {
			err = fmt.Errorf("send keep-alive: %w", nerr)
		} else {
			pinged = true
		}
	}
	// Log transitions only: a wedged engine would otherwise log every few
	// seconds until systemd kills it.
	switch {
	case err != nil && w.healthy:
		w.log.Error("call engine liveness check failed; withholding watchdog keep-alive so systemd restarts intercomd", "err", err)
		w.healthy = false
	case err == nil && !w.healthy:
		w.log.Info("call engine responsive again; watchdog keep-alives resumed")
		w.healthy = true
	}
	if w.onRound != nil {
		w.onRound(pinged, err)
	}
}

// check runs one probe with a deadline.
func (w *watchdogLoop) check(ctx context.Context) error {
	if w.inflight != nil {
		// An abandoned probe gets one more deadline to return (a probe that
		// honours its context does so right after the deadline). Its answer
		// is stale and dropped; a fresh probe below decides this round.
		t := time.NewTimer(w.timeout)
		select {
		case <-w.inflight:
			t.Stop()
			w.inflight = nil
		case <-t.C:
			return fmt.Errorf("previous probe still running: %w", ErrProbeTimeout)
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	pctx, cancel := context.WithTimeout(ctx, w.timeout)
	done := make(chan error, 1)
	go func() {
		defer cancel()
		done <- w.probe(pctx)
	}()
	select {
	case err := <-done:
		return w.probeErr(ctx, err)
	case <-pctx.Done():
		// An answer that raced the deadline is taken: it still leaves the
		// keep-alive on schedule.
		select {
		case err := <-done:
			return w.probeErr(ctx, err)
		default:
		}
		w.inflight = done
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("no answer within %v: %w", w.timeout, ErrProbeTimeout)
	}
}

func (w *watchdogLoop) probeErr(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		// A well-behaved probe gave up at our deadline: same verdict as one
		// that ignored it.
		return fmt.Errorf("probe gave up after %v: %w (%w)", w.timeout, ErrProbeTimeout, err)
	default:
		return fmt.Errorf("probe: %w", err)
	}
}
