package signaling

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Default listen addresses of the embedded broker: loopback only, so a unit
// never exposes an unauthenticated broker unless configured to.
const (
	DefaultBrokerTCPAddr = "127.0.0.1:1883"
	DefaultBrokerWSAddr  = "127.0.0.1:1884"
)

// BrokerConfig configures the embedded MQTT broker.
type BrokerConfig struct {
	// TCPAddr is the MQTT/TCP listen address; empty means
	// DefaultBrokerTCPAddr. Port 0 picks a free port (see Broker.TCPAddr).
	TCPAddr string
	// WSAddr is the MQTT-over-WebSocket listen address (subprotocol "mqtt",
	// any path) for browsers; empty means DefaultBrokerWSAddr and "-"
	// disables the listener.
	WSAddr string
	// Users maps user names to passwords. Empty allows every client.
	Users  map[string]string
	Logger *slog.Logger
}

// Broker is a running embedded broker (mochi-mqtt).
type Broker struct {
	srv    *mqtt.Server
	tcp    *tcpListener
	gate   *connGate
	ws     *wsListener
	logger *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

// StartBroker starts the embedded broker and returns once its listeners are
// bound, so the reported addresses are the real ones.
func StartBroker(cfg BrokerConfig) (*Broker, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "broker")
	tcpAddr := cfg.TCPAddr
	if tcpAddr == "" {
		tcpAddr = DefaultBrokerTCPAddr
	}
	if _, _, err := net.SplitHostPort(tcpAddr); err != nil {
		return nil, fmt.Errorf("broker tcp address %q: %w", tcpAddr, err)
	}
	wsAddr := cfg.WSAddr
	switch wsAddr {
	case "":
		wsAddr = DefaultBrokerWSAddr
	case "-":
		wsAddr = ""
	}
	if wsAddr != "" {
		if _, _, err := net.SplitHostPort(wsAddr); err != nil {
			return nil, fmt.Errorf("broker websocket address %q: %w", wsAddr, err)
		}
	}

	caps := mqtt.NewDefaultServerCapabilities()
	// mochi drops retained messages older than this (default one day):
	// presence and call state must stay retained for as long as a device
	// runs.
	caps.MaximumMessageExpiryInterval = 0
	srv := mqtt.New(&mqtt.Options{
		Capabilities: caps,
		// mochi logs a warning for every client whose keepalive is at or
		// below 5 s; intercomd uses 5 s on purpose (fast last will), so that
		// message is filtered out.
		Logger: slog.New(quietHandler{logger.Handler()}),
		// Paho (and the MQTT 3.1.1 spec) expect the connection to close
		// after a DISCONNECT; mochi's default is compatible.
	})
	if len(cfg.Users) == 0 {
		if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
			return nil, fmt.Errorf("broker allow-all auth hook: %w", err)
		}
	} else {
		users := make(map[string]string, len(cfg.Users))
		for u, p := range cfg.Users {
			users[u] = p
		}
		if err := srv.AddHook(&passwordHook{users: users}, nil); err != nil {
			return nil, fmt.Errorf("broker password auth hook: %w", err)
		}
	}

	if err := srv.AddHook(newRetainGuard(), nil); err != nil {
		return nil, fmt.Errorf("broker retain guard hook: %w", err)
	}

	b := &Broker{srv: srv, logger: logger, gate: &connGate{wg: &srv.Listeners.ClientsWg}}
	b.tcp = &tcpListener{id: "tcp", addr: tcpAddr, gate: b.gate}
	if err := srv.AddListener(b.tcp); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("broker tcp listener on %s: %w", tcpAddr, err)
	}
	if wsAddr != "" {
		b.ws = newWSListener("ws", wsAddr, b.gate)
		if err := srv.AddListener(b.ws); err != nil {
			_ = srv.Close()
			return nil, fmt.Errorf("broker websocket listener on %s: %w", wsAddr, err)
		}
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("broker serve: %w", err)
	}
	logger.Info("embedded broker listening", "tcp", b.TCPAddr(), "ws", b.WSAddr())
	return b, nil
}

// TCPAddr is the bound MQTT/TCP address (host:port).
func (b *Broker) TCPAddr() string { return b.tcp.Address() }

// WSAddr is the bound WebSocket address, or "" when disabled.
func (b *Broker) WSAddr() string {
	if b.ws == nil {
		return ""
	}
	return b.ws.Address()
}

// URL is the broker URL a Client connects to: tcp://host:port.
func (b *Broker) URL() string { return "tcp://" + b.TCPAddr() }

// Close stops the listeners and disconnects every client. The ports are
// free for a new broker when it returns.
// Closing twice is harmless (mochi itself panics on a second Close).
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.gate.close()
		if err := b.srv.Close(); err != nil {
			b.closeErr = fmt.Errorf("close embedded broker: %w", err)
		}
	})
	return b.closeErr
}

// KickClient closes the broker side of a client's connection without a
// DISCONNECT, as a dead network would: the broker publishes its last will.
// It reports whether a client with that id was connected. For tests and
// operators.
func (b *Broker) KickClient(clientID string) bool {
	cl, ok := b.srv.Clients.Get(clientID)
	if !ok || cl.Closed() {
		return false
	}
	// Close the socket rather than cl.Stop: Stop marks the client closed,
	// and mochi skips the will when its read loop sees that flag before
	// the read error.
	if cl.Net.Conn == nil {
		return false
	}
	_ = cl.Net.Conn.Close()
	return true
}

// passwordHook authenticates by user name and password; every authenticated
// client may use every topic (deployments wanting per-device ACLs run a
// standalone broker, see docs).
type passwordHook struct {
	mqtt.HookBase
	users map[string]string
}

func (h *passwordHook) ID() string { return "intercomd-password-auth" }

func (h *passwordHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *passwordHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	want, ok := h.users[string(pk.Connect.Username)]
	if !ok {
		// Compare anyway so an unknown user costs the same time.
		want = "\x00unknown-user"
	}
	match := subtle.ConstantTimeCompare([]byte(want), pk.Connect.Password) == 1
	if !ok || !match {
		h.Log.Warn("mqtt authentication failed", "client", cl.ID, "username", string(pk.Connect.Username), "remote", cl.Net.Remote)
		return false
	}
	return true
}

func (h *passwordHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool { return true }

// quietHandler drops mochi's low-keepalive warning (see StartBroker).
type quietHandler struct{ slog.Handler }

func (q quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return q.Handler.Enabled(ctx, l)
}

func (q quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "client keepalive is below minimum") {
		return nil
	}
	return q.Handler.Handle(ctx, r)
}

func (q quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return quietHandler{q.Handler.WithAttrs(as)}
}

func (q quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{q.Handler.WithGroup(name)}
}
