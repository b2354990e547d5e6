// Package systemd speaks the sd_notify(3) protocol to the service manager
// without cgo or libsystemd: readiness (READY=1), shutdown (STOPPING=1),
// free-form status lines and watchdog keep-alives over the datagram socket
// named by $NOTIFY_SOCKET.
//
// When the daemon is not started by systemd (NOTIFY_SOCKET unset: a shell, a
// container, a Buildroot image with another init) NewNotifier returns nil and
// every method of a nil *Notifier is a no-op that returns nil, so callers never
// need to branch on how they were started.
package systemd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Notifier sends state changes to the service manager. The zero of its
// pointer type (nil) is a valid, silent notifier.
type Notifier struct {
	// addr is the socket address as given in NOTIFY_SOCKET; a leading '@'
	// names a Linux abstract socket, which Go's net package maps to the
	// leading NUL byte the kernel expects.
	addr string

	watchdog   time.Duration
	watchdogOK bool
}

// NewNotifier reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the
// environment. It returns nil (a no-op notifier) when NOTIFY_SOCKET is unset.
//
// The variables are left in the environment on purpose: child processes
// (camera helpers) may inherit them, but the unit sets NotifyAccess=main so
// systemd ignores anything they send.
func NewNotifier() *Notifier {
	return newNotifier(os.Getenv, os.Getpid())
}

// newNotifier is NewNotifier with the environment and our PID injected, so
// tests can describe any service-manager setup without touching the
// process environment.
func newNotifier(getenv func(string) string, pid int) *Notifier {
	addr := getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	n := &Notifier{addr: addr}
	n.watchdog, n.watchdogOK = parseWatchdog(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"), pid)
	return n
}

// parseWatchdog follows sd_watchdog_enabled(3): the watchdog is ours when
// WATCHDOG_USEC is a positive integer and WATCHDOG_PID is either unset or our
// own PID (it is set for the main process only; a forked helper must not
// keep a dead daemon alive).
func parseWatchdog(usec, wpid string, pid int) (time.Duration, bool) {
	if usec == "" {
		return 0, false
	}
	u, err := strconv.ParseUint(usec, 10, 64)
	if err != nil || u == 0 {
		return 0, false
	}
	if wpid != "" {
		p, err := strconv.Atoi(wpid)
		if err != nil || p != pid {
			return 0, false
		}
	}
	// Clamp before multiplying: a absurd value must not overflow into a
	// negative duration that would make a ticker panic.
	const maxUsec = uint64(1<<63-1) / uint64(time.Microsecond)
	if u > maxUsec {
		u = maxUsec
	}
	return time.Duration(u) * time.Microsecond, true
}

// Enabled reports whether a service manager is listening.
func (n *Notifier) Enabled() bool { return n != nil }

// Notify sends one or more newline-separated VAR=value assignments, as
// sd_notify(3) does. It is the escape hatch for states this package has no
// method for (EXTEND_TIMEOUT_USEC=, RELOADING=1, ...).
func (n *Notifier) Notify(state string) error {
	if n == nil {
		return nil
	}
	if state == "" {
		return errors.New("systemd: empty notification")
	}
	// A fresh socket per message, as libsystemd does: nothing to keep open
	// or reconnect after systemd re-executes itself, and messages are rare
	// (a watchdog ping every few seconds).
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("systemd: notify %q: dial %s: %w", firstLine(state), n.addr, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("systemd: notify %q: %w", firstLine(state), err)
	}
	return nil
}

// Ready tells systemd that start-up finished (Type=notify): until then
// `systemctl start` blocks and units ordered after intercomd wait. Send it
// only once the broker connection and the devices are up.
func (n *Notifier) Ready() error { return n.Notify("READY=1") }

// Stopping tells systemd that a clean shutdown has begun, so the stop is not
// mistaken for a crash while calls are being hung up.
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// Status sets the one-line text `systemctl status intercomd` shows. Newlines
// would start a new assignment in the protocol, so they are flattened.
func (n *Notifier) Status(s string) error {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	return n.Notify("STATUS=" + s)
}

// Watchdog sends one keep-alive. Prefer RunWatchdog, which only pings while
// the call engine answers.
func (n *Notifier) Watchdog() error { return n.Notify("WATCHDOG=1") }

// WatchdogInterval returns WatchdogSec= as passed by systemd, and false when
// no watchdog is configured for this process.
func (n *Notifier) WatchdogInterval() (time.Duration, bool) {
	if n == nil {
		return 0, false
	}
	return n.watchdog, n.watchdogOK
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
