package systemd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeManager is the service manager's end of NOTIFY_SOCKET: a real
// unixgram socket, as systemd creates it.
type fakeManager struct {
	t    *testing.T
	conn *net.UnixConn
	addr string
}

func listenManager(t *testing.T, addr string) *fakeManager {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &fakeManager{t: t, conn: conn, addr: addr}
}

// pathManager listens on a filesystem socket like /run/systemd/notify.
func pathManager(t *testing.T) *fakeManager {
	// t.TempDir paths can exceed sun_path's 108 bytes; /tmp keeps it short.
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return listenManager(t, filepath.Join(dir, "notify"))
}

// next returns the next datagram. The timeout only keeps a broken test from
// hanging; no assertion depends on timing.
func (m *fakeManager) next() string {
	m.t.Helper()
	buf := make([]byte, 4096)
	if err := m.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		m.t.Fatal(err)
	}
	n, err := m.conn.Read(buf)
	if err != nil {
		m.t.Fatalf("waiting for a notification: %v", err)
	}
	return string(buf[:n])
}

// drain returns every datagram already queued. Senders write synchronously,
// so whatever was sent before drain is called is in the queue.
func (m *fakeManager) drain() []string {
	m.t.Helper()
	var msgs []string
	buf := make([]byte, 4096)
	for {
		if err := m.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
			m.t.Fatal(err)
		}
		n, err := m.conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return msgs
			}
			m.t.Fatalf("drain: %v", err)
		}
		msgs = append(msgs, string(buf[:n]))
	}
}

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestNilNotifierIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := NewNotifier()
	if n != nil {
		t.Fatalf("NewNotifier without NOTIFY_SOCKET = %+v, want nil", n)
	}
	if n.Enabled() {
		t.Error("nil notifier reports Enabled")
	}
	for name, err := range map[string]error{
		"Ready":    n.Ready(),
		"Stopping": n.Stopping(),
		"Status":   n.Status("x"),
		"Watchdog": n.Watchdog(),
		"Notify":   n.Notify("X=1"),
	} {
		if err != nil {
			t.Errorf("nil notifier %s: %v", name, err)
		}
	}
	if d, ok := n.WatchdogInterval(); ok || d != 0 {
		t.Errorf("nil notifier WatchdogInterval = %v, %v; want 0, false", d, ok)
	}
}

func TestNotifyPathSocket(t *testing.T) {
	m := pathManager(t)
	t.Setenv("NOTIFY_SOCKET", m.addr)
	n := NewNotifier()
	if !n.Enabled() {
		t.Fatal("notifier not enabled with NOTIFY_SOCKET set")
	}
	steps := []struct {
		send func() error
		want string
	}{
		{n.Ready, "READY=1"},
		{func() error { return n.Status("connected to broker\nmqtt://127.0.0.1:1883") }, "STATUS=connected to broker mqtt://127.0.0.1:1883"},
		{n.Watchdog, "WATCHDOG=1"},
		{n.Stopping, "STOPPING=1"},
		{func() error { return n.Notify("EXTEND_TIMEOUT_USEC=5000000") }, "EXTEND_TIMEOUT_USEC=5000000"},
	}
	for _, s := range steps {
		if err := s.send(); err != nil {
			t.Fatalf("send %q: %v", s.want, err)
		}
		if got := m.next(); got != s.want {
			t.Errorf("manager got %q, want %q", got, s.want)
		}
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	// systemd hands out abstract addresses for containers and user managers;
	// '@' stands for the leading NUL.
	addr := fmt.Sprintf("@intercomd-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	m := listenManager(t, addr)
	n := newNotifier(envOf(map[string]string{"NOTIFY_SOCKET": addr}), os.Getpid())
	if err := n.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if got := m.next(); got != "READY=1" {
		t.Errorf("got %q, want READY=1", got)
	}
}

func TestNotifyErrors(t *testing.T) {
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	n := newNotifier(envOf(map[string]string{"NOTIFY_SOCKET": filepath.Join(dir, "gone")}), 1)
	err = n.Ready()
	if err == nil {
		t.Fatal("Ready to a missing socket succeeded")
	}
	if !strings.Contains(err.Error(), "READY=1") {
		t.Errorf("error %q does not name the message", err)
	}
	if err := n.Notify(""); err == nil {
		t.Error("empty notification accepted")
	}
}

func TestWatchdogInterval(t *testing.T) {
	const pid = 4242
	cases := []struct {
		name, usec, wpid string
		want             time.Duration
		ok               bool
	}{
		{"unset", "", "", 0, false},
		{"30s for us", "30000000", "4242", 30 * time.Second, true},
		{"no pid given", "5000000", "", 5 * time.Second, true},
		{"other pid", "30000000", "1", 0, false},
		{"bad pid", "30000000", "x", 0, false},
		{"zero", "0", "", 0, false},
		{"negative", "-5", "", 0, false},
		{"garbage", "30s", "", 0, false},
		{"huge clamps", "18446744073709551615", "", time.Duration(1<<63-1) / time.Microsecond * time.Microsecond, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := newNotifier(envOf(map[string]string{
				"NOTIFY_SOCKET": "/run/systemd/notify",
				"WATCHDOG_USEC": c.usec,
				"WATCHDOG_PID":  c.wpid,
			}), pid)
			d, ok := n.WatchdogInterval()
			if d != c.want || ok != c.ok {
				t.Errorf("WatchdogInterval = %v, %v; want %v, %v", d, ok, c.want, c.ok)
			}
		})
	}
}

func TestNewNotifierReadsProcessEnv(t *testing.T) {
	m := pathManager(t)
	t.Setenv("NOTIFY_SOCKET", m.addr)
	t.Setenv("WATCHDOG_USEC", "2000000")
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	d, ok := NewNotifier().WatchdogInterval()
	if !ok || d != 2*time.Second {
		t.Errorf("WatchdogInterval = %v, %v; want 2s, true", d, ok)
	}
}
