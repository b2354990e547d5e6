// Package sigtest is test tooling for code that talks MQTT through package
// signaling: a broker for each test (mosquitto in CI via
// INTERCOMD_TEST_BROKER, else an embedded one), unique topic prefixes so
// tests sharing one broker never see each other's messages or retained
// state, a broker that can be stopped and restarted on the same port for
// outage tests, and a logger that writes to the test log.
package sigtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/intercomd/intercomd/signaling"
)

// EnvBroker names the environment variable holding an external broker URL
// (e.g. tcp://127.0.0.1:1883 for mosquitto in CI).
const EnvBroker = "INTERCOMD_TEST_BROKER"

// External reports whether tests run against an external broker.
func External() bool { return os.Getenv(EnvBroker) != "" }

// Broker returns the URL of the broker a test should use: $EnvBroker when
// set, else an embedded broker on a free loopback port, closed when the
// test ends.
func Broker(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(EnvBroker); u != "" {
		return u
	}
	b, err := signaling.StartBroker(signaling.BrokerConfig{TCPAddr: "127.0.0.1:0", WSAddr: "-", Logger: Logger(t)})
	if err != nil {
		t.Fatalf("start embedded broker: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b.URL()
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// Prefix returns a topic prefix unique to this test run, so tests sharing
// one broker neither see each other's messages nor inherit retained
// presence and state.
func Prefix(t testing.TB) string {
	name := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	return "itest/" + name + "-" + hex.EncodeToString(r[:])
}

// Logger returns a logger writing to the test log (shown on failure or
// with -v). Records logged after the test finished are discarded instead
// of panicking, since brokers and clients may log while shutting down.
// Benchmarks log errors only; INTERCOMD_TEST_LOG=debug lowers the level.
func Logger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	level := slog.LevelInfo
	if _, bench := t.(*testing.B); bench {
		level = slog.LevelError // benchmark output prints every log line
	}
	if os.Getenv("INTERCOMD_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(p[:len(p)-min(len(p), 1)])) // drop the newline
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// RestartableBroker is an embedded broker that can be stopped and started
// again on the same port, to simulate a broker outage. Outage tests use it
// whatever $EnvBroker says, since they must control the broker.
type RestartableBroker struct {
	t    testing.TB
	mu   sync.Mutex
	addr string
	b    *signaling.Broker
	log  *slog.Logger
}

// NewRestartableBroker starts an embedded broker on a free loopback port;
// it is closed when the test ends.
func NewRestartableBroker(t testing.TB) *RestartableBroker {
	t.Helper()
	r := &RestartableBroker{t: t, addr: "127.0.0.1:0", log: Logger(t)}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Start starts the broker (again) on its port.
func (r *RestartableBroker) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.b != nil {
		return
	}
	b, err := signaling.StartBroker(signaling.BrokerConfig{TCPAddr: r.addr, WSAddr: "-", Logger: r.log})
	if err != nil {
		r.t.Fatalf("start restartable broker on %s: %v", r.addr, err)
	}
	r.b = b
	r.addr = b.TCPAddr()
}

// Stop closes the broker, dropping every client connection and all
// retained messages, as a crashed broker without persistence would.
func (r *RestartableBroker) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.b == nil {
		return
	}
	_ = r.b.Close()
	r.b = nil
}

// URL is the broker's tcp:// URL, stable across restarts.
func (r *RestartableBroker) URL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return "tcp://" + r.addr
}

// Broker returns the running broker, or nil while stopped.
func (r *RestartableBroker) Broker() *signaling.Broker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b
}

// Ctx returns a context bounded by a generous timeout, cancelled when the
// test ends: the deadline for every wait in a test.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// Timeout bounds every wait in tests: generous, because CI machines and
// qemu-user are slow, and a passing test never waits for it.
const Timeout = 30 * time.Second
