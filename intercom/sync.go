package intercom

import (
	"time"

	"github.com/intercomd/intercomd/signaling"
)

// Reconnect repair. With clean MQTT sessions a message sent to a device
// while it was disconnected (or before it re-subscribed) is lost: a hangup
// sent during a broker restart, say. So after every reconnect a device in
// a call asks its peer whether the call is still alive there, repeating
// until the peer answers; a peer that no longer has the call ends it here.

const (
	syncInterval = 2 * time.Second
	syncAttempts = 5
)

// Reconnected tells the engine its transport is back (subscriptions in
// place). The endpoint calls it after every reconnect.
func (e *Engine) Reconnected() {
	e.post(func() {
		c := e.call
		if c == nil || c.peer.Device == "" || c.syncing {
			return // nothing to check, or a caller still waiting for any device
		}
		c.syncing = true
		e.sendSync(c, syncAttempts)
	})
}

func (e *Engine) sendSync(c *call, left int) {
	if !c.syncing {
		return
	}
	if left == 0 {
		// The peer never answered: its presence (grace timer) and the
		// media decide; the sync just stops.
		c.syncing = false
		e.log.Warn("peer did not answer the call check after reconnecting", "channelId", c.channel, "peer", c.peer.String())
		return
	}
	e.send(c.peer, signaling.TypeSync, c.channel, &signaling.Sync{State: string(c.state)})
	e.after(c, syncInterval, func() { e.sendSync(c, left-1) })
}

func (e *Engine) onSync(env signaling.Envelope, s *signaling.Sync) {
	c := e.call
	alive := c != nil && c.channel == env.Channel && (env.From == c.peer || (c.dir == outgoing && c.state == StateCalling && env.From.Account == c.peer.Account))
	ack := &signaling.SyncAck{Alive: alive}
	if c != nil && alive {
		ack.State = string(c.state)
	}
	e.send(env.From, signaling.TypeSyncAck, env.Channel, ack)
}

func (e *Engine) onSyncAck(env signaling.Envelope, a *signaling.SyncAck) {
	c := e.call
	if c == nil || c.channel != env.Channel || env.From != c.peer || !c.syncing {
		return
	}
	c.syncing = false
	if !a.Alive {
		e.log.Warn("the peer ended this call while we were disconnected", "channelId", c.channel, "peer", c.peer.String())
		e.emitHangup(c, HangupAbnormal, ReasonPeerLost, "system")
		e.finishAfterLostPeer(c)
	}
}

// finishAfterLostPeer ends a call the peer no longer has, without telling
// the peer (it already forgot it).
func (e *Engine) finishAfterLostPeer(c *call) {
	disp := DispAnswered
	switch c.state {
	case StateRinging:
		disp = DispCancelled
	case StateCalling:
		disp = DispFailed
	}
	e.finish(c, finishInfo{disposition: disp, hangupType: HangupAbnormal, reason: ReasonPeerLost, by: "system"})
}
