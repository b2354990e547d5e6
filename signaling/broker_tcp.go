package signaling

import (
	"errors"
	"log/slog"
	"net"
	"sync"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// tcpListener serves MQTT over TCP. It replaces mochi's TCP listener so
// connections pass through the connGate (see broker_guard.go).
type tcpListener struct {
	id, addr string
	gate     *connGate
	ln       net.Listener
	log      *slog.Logger
	once     sync.Once
}

var _ listeners.Listener = (*tcpListener)(nil)

func (l *tcpListener) ID() string       { return l.id }
func (l *tcpListener) Protocol() string { return "tcp" }

func (l *tcpListener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

func (l *tcpListener) Init(log *slog.Logger) error {
	l.log = log
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return err
	}
	l.ln = ln
	return nil
}

func (l *tcpListener) Serve(establish listeners.EstablishFn) {
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				l.log.Error("tcp listener stopped", "error", err)
			}
			return
		}
		go func() {
			if err := l.gate.run(l.id, conn, establish); err != nil {
				l.log.Debug("mqtt client ended", "remote", conn.RemoteAddr().String(), "error", err)
			}
		}()
	}
}

func (l *tcpListener) Close(closeClients listeners.CloseFn) {
	l.once.Do(func() { _ = l.ln.Close() })
	closeClients(l.id)
}
