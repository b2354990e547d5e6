// Package mediatest has test tooling for code that runs media sessions:
// a network whose paths a test can cut (media.Config.Net).
package mediatest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// CutNet is the host's network with a switch that silently drops every
// packet of the UDP sockets opened so far, both ways, as a changed path
// does to a roaming client's old candidates; sockets opened later (the
// candidates an ICE restart gathers) work.
type CutNet struct {
	*stdnet.Net
	mu    sync.Mutex
	conns []*cutConn
}

// NewCutNet wraps the host network; nothing is cut yet.
func NewCutNet(tb testing.TB) *CutNet {
	tb.Helper()
	n, err := stdnet.NewNet()
	if err != nil {
		tb.Fatal(err)
	}
	return &CutNet{Net: n}
}

// ListenUDP opens a socket that a later Cut silences.
func (n *CutNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
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

// Cut drops, from now on, all traffic of the sockets opened so far.
func (n *CutNet) Cut() {
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
