package signaling

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// wsListener serves MQTT over WebSocket. It replaces mochi's listener
// because that one binds inside Serve and cannot report the port chosen
// for ":0", and it answers both subprotocol names browsers' MQTT.js sends
// ("mqtt", and "mqttv3.1" from old versions).
type wsListener struct {
	id, addr  string
	gate      *connGate
	ln        net.Listener
	srv       *http.Server
	establish listeners.EstablishFn // set in Serve before it accepts
	log       *slog.Logger
	once      sync.Once
	upgrader  websocket.Upgrader
}

var _ listeners.Listener = (*wsListener)(nil)

func newWSListener(id, addr string, gate *connGate) *wsListener {
	return &wsListener{
		id:   id,
		addr: addr,
		gate: gate,
		upgrader: websocket.Upgrader{
			Subprotocols: []string{"mqtt", "mqttv3.1"},
			// Browsers on any origin (a local web UI) may connect; the
			// broker's own authentication is what protects it.
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
}

func (l *wsListener) ID() string       { return l.id }
func (l *wsListener) Protocol() string { return "ws" }

func (l *wsListener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

func (l *wsListener) Init(log *slog.Logger) error {
	l.log = log
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return err
	}
	l.ln = ln
	// Built here, not in Serve, so Close (another goroutine) never races
	// with its creation.
	l.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := l.upgrader.Upgrade(w, r, nil)
			if err != nil {
				l.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "error", err)
				return
			}
			defer c.Close()
			if err := l.gate.run(l.id, &wsConn{Conn: c.UnderlyingConn(), c: c}, l.establish); err != nil {
				l.log.Debug("websocket mqtt client ended", "remote", r.RemoteAddr, "error", err)
			}
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	return nil
}

func (l *wsListener) Serve(establish listeners.EstablishFn) {
	l.establish = establish
	if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		l.log.Error("websocket listener stopped", "error", err)
	}
}

func (l *wsListener) Close(closeClients listeners.CloseFn) {
	l.once.Do(func() {
		// Hijacked websocket connections are not tracked by the http
		// server; closeClients below ends them.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = l.srv.Shutdown(ctx)
		cancel()
		_ = l.ln.Close()
	})
	closeClients(l.id)
}

// wsConn presents a websocket as the byte stream MQTT expects: every
// binary message is a chunk of the stream.
type wsConn struct {
	net.Conn
	c  *websocket.Conn
	r  io.Reader
	wm sync.Mutex
}

var errNotBinary = errors.New("websocket message is not binary")

func (ws *wsConn) Read(p []byte) (int, error) {
	for {
		if ws.r == nil {
			op, r, err := ws.c.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, errNotBinary
			}
			ws.r = r
		}
		n, err := ws.r.Read(p)
		if errors.Is(err, io.EOF) {
			ws.r = nil
			if n == 0 {
				continue // empty message: read the next one
			}
			return n, nil
		}
		return n, err
	}
}

func (ws *wsConn) Write(p []byte) (int, error) {
	// gorilla allows one concurrent writer; mochi writes from one loop but
	// be safe.
	ws.wm.Lock()
	defer ws.wm.Unlock()
	if err := ws.c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (ws *wsConn) Close() error { return ws.c.Close() }
