package signaling_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/intercomd/intercomd/signaling"
	"github.com/intercomd/intercomd/signaling/sigtest"
)

func startBroker(t *testing.T, cfg signaling.BrokerConfig) *signaling.Broker {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = sigtest.Logger(t)
	}
	b, err := signaling.StartBroker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestBrokerPortZeroAndURL(t *testing.T) {
	b := startBroker(t, signaling.BrokerConfig{TCPAddr: "127.0.0.1:0", WSAddr: "127.0.0.1:0"})
	for _, a := range []string{b.TCPAddr(), b.WSAddr()} {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host != "127.0.0.1" || port == "0" {
			t.Fatalf("bound address %q: %v", a, err)
		}
	}
	if b.URL() != "tcp://"+b.TCPAddr() {
		t.Fatalf("URL %s", b.URL())
	}
	off := startBroker(t, signaling.BrokerConfig{TCPAddr: "127.0.0.1:0", WSAddr: "-"})
	if off.WSAddr() != "" {
		t.Fatalf("WS disabled but WSAddr %q", off.WSAddr())
	}
	if _, err := signaling.StartBroker(signaling.BrokerConfig{TCPAddr: b.TCPAddr(), WSAddr: "-", Logger: sigtest.Logger(t)}); err == nil {
		t.Fatal("second broker on a busy port started")
	}
	if _, err := signaling.StartBroker(signaling.BrokerConfig{TCPAddr: "nonsense", Logger: sigtest.Logger(t)}); err == nil || !strings.Contains(err.Error(), "tcp address") {
		t.Fatalf("bad address: %v", err)
	}
}

func TestBrokerRestartSamePort(t *testing.T) {
	b := startBroker(t, signaling.BrokerConfig{TCPAddr: "127.0.0.1:0", WSAddr: "127.0.0.1:0"})
	tcp, ws := b.TCPAddr(), b.WSAddr()
	raw := newRaw(t, b.URL())
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	_ = raw
	b2 := startBroker(t, signaling.BrokerConfig{TCPAddr: tcp, WSAddr: ws})
	if b2.TCPAddr() != tcp || b2.WSAddr() != ws {
		t.Fatalf("restarted on %s/%s, want %s/%s", b2.TCPAddr(), b2.WSAddr(), tcp, ws)
	}
	newRaw(t, b2.URL())
}

func TestBrokerWebSocket(t *testing.T) {
	b := startBroker(t, signaling.BrokerConfig{TCPAddr: "127.0.0.1:0", WSAddr: "127.0.0.1:0"})
	// A browser's MQTT.js asks for subprotocol "mqtt"; the answer must
	// name it or the browser drops the connection.
	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+b.WSAddr()+"/mqtt", http.Header{"Sec-WebSocket-Protocol": {"mqtt"}})
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "mqtt" {
		t.Fatalf("subprotocol %q, want mqtt", got)
	}
	conn.Close()

	// MQTT over websocket (paho) and over TCP see each other.
	prefix := sigtest.Prefix(t)
	tcpSub := newRaw(t, b.URL())
	msgs := tcpSub.sub(prefix + "/x")
	wsPub := newRaw(t, "ws://"+b.WSAddr()+"/mqtt")
	wsPub.pub(prefix+"/x", 1, false, []byte("over websocket"))
	if m := recv(t, msgs, "message from the websocket client"); string(m.Payload()) != "over websocket" {
		t.Fatalf("got %q", m.Payload())
	}
	// And the intercom client works over websocket too.
	c := newClient(t, "ws://"+b.WSAddr()+"/mqtt", prefix, door)
	c.waitUp(t)
}

func TestBrokerAuth(t *testing.T) {
	b := startBroker(t, signaling.BrokerConfig{TCPAddr: "127.0.0.1:0", WSAddr: "-", Users: map[string]string{"door": "s3cret"}})
	try := func(user, pass string) error {
		opts := paho.NewClientOptions().AddBroker(b.URL()).SetClientID("auth-" + randHex(6)).
			SetUsername(user).SetPassword(pass).SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second)
		c := paho.NewClient(opts)
		tok := c.Connect()
		if !tok.WaitTimeout(sigtest.Timeout) {
			t.Fatal("connect timed out")
		}
		if tok.Error() == nil {
			c.Disconnect(0)
		}
		return tok.Error()
	}
	if err := try("door", "s3cret"); err != nil {
		t.Fatalf("right password rejected: %v", err)
	}
	for _, up := range [][2]string{{"door", "wrong"}, {"door", ""}, {"nobody", "s3cret"}, {"", ""}} {
		if err := try(up[0], up[1]); err == nil {
			t.Errorf("user %q password %q accepted", up[0], up[1])
		}
	}
	// The client passes credentials.
	c := newClient(t, b.URL(), sigtest.Prefix(t), door, func(c *signaling.ClientConfig) { c.Username, c.Password = "door", "s3cret" })
	c.waitUp(t)
}

// TestBrokerRetainedUnderConcurrentSubscribes exercises mochi's retained
// topic tree with wildcard subscribes racing retained publishes (the
// pattern of many devices starting at once); run with -race it checks the
// retain guard.
func TestBrokerRetainedUnderConcurrentSubscribes(t *testing.T) {
	b := startBroker(t, signaling.BrokerConfig{TCPAddr: "127.0.0.1:0", WSAddr: "-"})
	prefix := sigtest.Prefix(t)
	const n = 12
	done := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			id := "stress-" + randHex(8)
			opts := paho.NewClientOptions().AddBroker(b.URL()).SetClientID(id).
				SetProtocolVersion(4).SetAutoReconnect(false).SetWill(prefix+"/device/w/"+randHex(4)+"/presence", "gone", 1, true)
			c := paho.NewClient(opts)
			if tok := c.Connect(); !tok.WaitTimeout(sigtest.Timeout) || tok.Error() != nil {
				t.Errorf("connect: %v", tok.Error())
				return
			}
			for j := 0; j < 10; j++ {
				c.Subscribe(prefix+"/device/+/+/presence", 1, nil).WaitTimeout(sigtest.Timeout)
				// The same few topics again and again, as presence is.
				c.Publish(fmt.Sprintf("%s/device/d/%d/presence", prefix, j%3), 1, true, []byte("on")).WaitTimeout(sigtest.Timeout)
			}
			if i%2 == 0 {
				c.Disconnect(0)
			} else {
				_ = b.KickClient(id) // fires the retained will
			}
		}()
	}
	for i := 0; i < n; i++ {
		recv(t, done, "stress client")
	}
	newRaw(t, b.URL()).sub(prefix + "/device/+/+/presence") // the broker still serves
}
