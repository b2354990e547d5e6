package signaling_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/intercomd/intercomd/signaling"
	"github.com/intercomd/intercomd/signaling/sigtest"
)

// tclient is a Client whose handler feeds channels.
type tclient struct {
	*signaling.Client
	msgs     chan signaling.Envelope
	presence chan signaling.Presence
	requests chan signaling.Request
	up       chan struct{}
	lost     chan error
}

type clientOpt func(*signaling.ClientConfig)

func newClient(t testing.TB, broker, prefix string, self signaling.Address, opts ...clientOpt) *tclient {
	t.Helper()
	tc := &tclient{
		msgs:     make(chan signaling.Envelope, 1000),
		presence: make(chan signaling.Presence, 1000),
		requests: make(chan signaling.Request, 100),
		up:       make(chan struct{}, 100),
		lost:     make(chan error, 100),
	}
	cfg := signaling.ClientConfig{
		Broker:     broker,
		Topics:     signaling.Topics{Prefix: prefix},
		Self:       self,
		ClientType: "test",
		Version:    "test",
		Logger:     sigtest.Logger(t).With("client", self.String()),
	}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := signaling.NewClient(cfg, signaling.Handler{
		Message:        func(e signaling.Envelope) { tc.msgs <- e },
		Presence:       func(p signaling.Presence) { tc.presence <- p },
		Request:        func(r signaling.Request) { tc.requests <- r },
		Connected:      func() { tc.up <- struct{}{} },
		ConnectionLost: func(err error) { tc.lost <- err },
	})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	tc.Client = c
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return tc
}

func (tc *tclient) waitUp(t testing.TB) {
	t.Helper()
	recv(t, tc.up, "Connected callback")
}

// recv waits for one value on ch, failing the test after sigtest.Timeout.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(sigtest.Timeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// waitPresence waits for a presence update of dev in state.
func waitPresence(t testing.TB, ch <-chan signaling.Presence, dev signaling.Address, state string) signaling.Presence {
	t.Helper()
	deadline := time.After(sigtest.Timeout)
	for {
		select {
		case p := <-ch:
			if p.Account == dev.Account && p.Device == dev.Device && p.State == state {
				return p
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s presence %s", dev, state)
		}
	}
}

// rawClient is a bare paho client for publishing arbitrary bytes.
type rawClient struct {
	paho.Client
	t testing.TB
}

func newRaw(t testing.TB, broker string) *rawClient {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID("raw-" + randHex(8)).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).SetOrderMatters(true)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(sigtest.Timeout) || tok.Error() != nil {
		t.Fatalf("raw client connect to %s: %v", broker, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return &rawClient{Client: c, t: t}
}

func (r *rawClient) pub(topic string, qos byte, retain bool, payload []byte) {
	r.t.Helper()
	if tok := r.Publish(topic, qos, retain, payload); !tok.WaitTimeout(sigtest.Timeout) || tok.Error() != nil {
		r.t.Fatalf("raw publish to %s: %v", topic, tok.Error())
	}
}

// sub subscribes and returns a channel of received messages.
func (r *rawClient) sub(filter string) <-chan paho.Message {
	r.t.Helper()
	ch := make(chan paho.Message, 1000)
	if tok := r.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) { ch <- m }); !tok.WaitTimeout(sigtest.Timeout) || tok.Error() != nil {
		r.t.Fatalf("raw subscribe %s: %v", filter, tok.Error())
	}
	return ch
}

// connKiller records the client's network connections so a test can cut
// them without a DISCONNECT, as a power cut or a dead link would.
type connKiller struct {
	mu    sync.Mutex
	conns []*killableConn
}

// killableConn reports a reset after kill. Paho ignores "use of closed
// network connection" (it assumes it closed the socket itself), so a plain
// Close would only be noticed by the keepalive; a dead link shows up as a
// reset or timeout instead.
type killableConn struct {
	net.Conn
	killed atomic.Bool
}

var errKilled = errors.New("connection reset (killed by test)")

func (c *killableConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && c.killed.Load() {
		err = errKilled
	}
	return n, err
}

func (c *killableConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil && c.killed.Load() {
		err = errKilled
	}
	return n, err
}

func (k *connKiller) opt(cfg *signaling.ClientConfig) {
	signaling.SetOpenConn(cfg, func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
		c, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
		if err != nil {
			return nil, err
		}
		kc := &killableConn{Conn: c}
		k.mu.Lock()
		k.conns = append(k.conns, kc)
		k.mu.Unlock()
		return kc, nil
	})
}

func (k *connKiller) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.conns {
		c.killed.Store(true)
		_ = c.Conn.Close()
	}
	k.conns = nil
}

func randHex(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// dialGate keeps a client from connecting until open is called.
type dialGate struct{ ok atomic.Bool }

func (g *dialGate) opt(cfg *signaling.ClientConfig) {
	signaling.SetOpenConn(cfg, func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
		if !g.ok.Load() {
			return nil, errors.New("dial gate closed")
		}
		return net.DialTimeout("tcp", u.Host, 10*time.Second)
	})
}

func (g *dialGate) open() { g.ok.Store(true) }

func (g *dialGate) close() { g.ok.Store(false) }
