package signaling

import (
	"errors"
	"net"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// connGate works around a mochi-mqtt v2.7.9 race: every connection does
// ClientsWg.Add inside the server while Server.Close runs ClientsWg.Wait,
// so a client connecting during Close is a data race (and a WaitGroup
// misuse). Our listeners run each connection through the gate, which
// holds one count on ClientsWg for the connection's lifetime, taken under
// a lock that Close also takes: no count can go from 0 to 1 concurrently
// with Wait.
type connGate struct {
	mu     sync.Mutex
	closed bool
	wg     *sync.WaitGroup
}

var errBrokerClosing = errors.New("broker is closing")

func (g *connGate) run(id string, conn net.Conn, establish func(string, net.Conn) error) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		_ = conn.Close()
		return errBrokerClosing
	}
	g.wg.Add(1)
	g.mu.Unlock()
	defer g.wg.Done()
	return establish(id, conn)
}

func (g *connGate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// retainGuard works around a mochi-mqtt v2.7.9 data race: a wildcard
// SUBSCRIBE scans the topic tree's retained paths without a lock while a
// retained PUBLISH (or a retained will) writes them. A torn read of that
// string could crash the broker, and every intercomd device subscribes to
// presence with wildcards while others publish retained presence. The
// guard serialises the two: subscribes share a read lock, retained writes
// take the write lock. Non-retained publishes, the hot path, are not
// affected.
type retainGuard struct {
	mqtt.HookBase
	rw   sync.RWMutex
	mu   sync.Mutex
	held map[*mqtt.Client]lockKind // lock held by a client's packet in flight
}

type lockKind uint8

const (
	readLock lockKind = iota + 1
	writeLock
)

func newRetainGuard() *retainGuard {
	return &retainGuard{held: map[*mqtt.Client]lockKind{}}
}

func (g *retainGuard) ID() string { return "intercomd-retain-guard" }

func (g *retainGuard) Provides(b byte) bool {
	switch b {
	case mqtt.OnPacketRead, mqtt.OnPacketProcessed, mqtt.OnWill, mqtt.OnWillSent, mqtt.OnDisconnect:
		return true
	}
	return false
}

// OnPacketRead runs on the client's read goroutine just before the packet
// is processed; OnPacketProcessed just after, except when mochi rejects
// the packet during validation and drops the connection, where OnWill or
// OnDisconnect release the lock instead.
func (g *retainGuard) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	switch {
	case pk.FixedHeader.Type == packets.Subscribe:
		if acquire(g.rw.TryRLock) {
			g.setHeld(cl, readLock)
		}
	case pk.FixedHeader.Type == packets.Publish && pk.FixedHeader.Retain:
		if acquire(g.rw.TryLock) {
			g.setHeld(cl, writeLock)
		}
	}
	return pk, nil
}

// guardWait bounds how long a packet waits for the guard. The guard only
// narrows a race inside mochi; it must never stall the broker, so a packet
// that cannot get the lock in time (a holder stuck in a shutdown, say)
// goes ahead unguarded.
const guardWait = 2 * time.Second

func acquire(try func() bool) bool {
	deadline := time.Now().Add(guardWait)
	for !try() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Microsecond)
	}
	return true
}

func (g *retainGuard) OnPacketProcessed(cl *mqtt.Client, _ packets.Packet, _ error) {
	g.release(cl)
}

func (g *retainGuard) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	g.release(cl) // a packet rejected by validation ends here
	// A delayed will (MQTT 5) is retained later by the event loop without
	// OnWillSent pairing; only immediate wills are guarded.
	if will.Retain && cl.Properties.Will.WillDelayInterval == 0 && acquire(g.rw.TryLock) {
		g.setHeld(cl, writeLock)
	}
	return will, nil
}

func (g *retainGuard) OnWillSent(cl *mqtt.Client, _ packets.Packet) { g.release(cl) }

func (g *retainGuard) OnDisconnect(cl *mqtt.Client, _ error, _ bool) { g.release(cl) }

func (g *retainGuard) setHeld(cl *mqtt.Client, k lockKind) {
	g.mu.Lock()
	g.held[cl] = k
	g.mu.Unlock()
}

func (g *retainGuard) release(cl *mqtt.Client) {
	g.mu.Lock()
	k := g.held[cl]
	delete(g.held, cl)
	g.mu.Unlock()
	switch k {
	case readLock:
		g.rw.RUnlock()
	case writeLock:
		g.rw.Unlock()
	}
}
