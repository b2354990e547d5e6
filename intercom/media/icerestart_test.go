package media

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// cutNet is the host's network with a switch that silently drops every
// packet of the UDP sockets opened so far, both ways, as a changed path
// does to a roaming client's old candidates; sockets opened later (the
// candidates an ICE restart gathers) work.
type cutNet struct {
	*stdnet.Net
	mu    sync.Mutex
	conns []*cutConn
}

func newCutNet(tb testing.TB) *cutNet {
	tb.Helper()
	n, err := stdnet.NewNet()
	if err != nil {
		tb.Fatal(err)
	}
	return &cutNet{Net: n}
}

func (n *cutNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	cc := &cutConn{UDPConn: c}
	n.mu.Lock()
	n.conns = append(n.conns, cc)
	n.mu.Unlock()
	return cc, nil
}

// cut drops, from now on, all traffic of the sockets opened so far.
func (n *cutNet) cut() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.conns {
		c.cut.Store(true)
	}
}

// cutConn hides its UDPConn's fast paths (pion then uses ReadFrom and
// WriteTo) and drops traffic once cut.
type cutConn struct {
	transport.UDPConn
	cut atomic.Bool
}

func (c *cutConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.UDPConn.ReadFrom(b)
		if err != nil || !c.cut.Load() {
			return n, addr, err
		}
	}
}

func (c *cutConn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	for {
		n, addr, err := c.UDPConn.ReadFromUDP(b)
		if err != nil || !c.cut.Load() {
			return n, addr, err
		}
	}
}

func (c *cutConn) ReadMsgUDP(b, oob []byte) (int, int, int, *net.UDPAddr, error) {
	for {
		n, oobn, flags, addr, err := c.UDPConn.ReadMsgUDP(b, oob)
		if err != nil || !c.cut.Load() {
			return n, oobn, flags, addr, err
		}
	}
}

func (c *cutConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.cut.Load() {
		return len(b), nil
	}
	return c.UDPConn.WriteTo(b, addr)
}

func (c *cutConn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	if c.cut.Load() {
		return len(b), nil
	}
	return c.UDPConn.WriteToUDP(b, addr)
}

func (c *cutConn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (int, int, error) {
	if c.cut.Load() {
		return len(b), len(oob), nil
	}
	return c.UDPConn.WriteMsgUDP(b, oob, addr)
}

func (c *cutConn) Write(b []byte) (int, error) {
	if c.cut.Load() {
		return len(b), nil
	}
	return c.UDPConn.Write(b)
}

// A call whose path dies (every socket of both sides goes silent) is
// restarted by the caller with new ICE credentials and candidates: it
// connects again, audio and video flow again, and nothing fails.
func TestICERestartAfterPathLoss(t *testing.T) {
	nets := []*cutNet{newCutNet(t), newCutNet(t)}
	var engines []*Engine
	for _, n := range nets {
		e, err := NewEngine(Config{
			LoopbackOnly:           true,
			ICEDisconnectedTimeout: time.Second,
			ICEFailedTimeout:       10 * time.Second,
			Net:                    n,
			Logger:                 testLogger(),
		})
		if err != nil {
			t.Fatal(err)
		}
		engines = append(engines, e)
	}
	door, indoor := newSide(t, CallTypeVideo, true), newSide(t, CallTypeVideo, false)
	a := newEndpoint(t, engines[0], "door", door.opts, door.devices())
	b := newEndpoint(t, engines[1], "indoor", indoor.opts, indoor.devices())
	c := connect(t, a, b)
	t.Cleanup(func() { c.close(t) })
	waitState(t, a, StateConnected, 5*time.Second)
	waitState(t, b, StateConnected, 5*time.Second)
	eventually(t, 5*time.Second, "first frames", func() bool { return b.s.Stats().Video.FramesReceived >= 2 })

	for _, n := range nets {
		n.cut()
	}
	cutAt := time.Now()
	// waitState fails on StateFailed: the call must not end.
	waitState(t, a, StateConnected, 20*time.Second)
	waitState(t, b, StateConnected, 20*time.Second)
	t.Logf("reconnected %v after the cut", time.Since(cutAt))

	frames, audioIn, audioOut := b.s.Stats().Video.FramesReceived, b.s.Stats().Audio.PacketsReceived, a.s.Stats().Audio.PacketsReceived
	eventually(t, 10*time.Second, "media after the restart", func() bool {
		sb, sa := b.s.Stats(), a.s.Stats()
		return sb.Video.FramesReceived >= frames+10 && sb.Audio.PacketsReceived >= audioIn+25 && sa.Audio.PacketsReceived >= audioOut+25
	})
	if got := a.s.Stats().ICERestarts; got != 1 {
		t.Errorf("door ICE restarts %d, want 1", got)
	}
	if got := b.s.Stats().ICERestarts; got != 0 {
		t.Errorf("indoor unit ICE restarts %d, want 0 (it follows the caller's)", got)
	}
}
