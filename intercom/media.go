package intercom

import (
	"encoding/json"
	"time"

	"github.com/intercomd/intercomd/signaling"
)

// MediaSession is the media of one call (*media.Session through
// PionMedia). The engine drives it from its goroutine; the session reports
// back through MediaHooks, which the engine re-posts onto its goroutine.
type MediaSession interface {
	CreateOffer() (string, error)
	AcceptOffer(offer string) (string, error)
	SetAnswer(answer string) error
	HandleSDP(signaling.SDP) error
	AddCandidate(signaling.Candidate) error
	EnableAudio() error
	SetAudioMuted(bool)
	SetVideoMuted(bool)
	UpgradeToVideo() error
	DowngradeToAudio() error
	Close() error
	// StatsJSON returns the session's statistics for the bill and events.
	StatsJSON() json.RawMessage
}

// MediaHooks are the session's reports.
type MediaHooks struct {
	LocalCandidate func(signaling.Candidate)
	Renegotiate    func(signaling.SDP)
	Connected      func()
	Failed         func(reason string)
	CameraFailed   func(error)
	FirstFrame     func(time.Duration)
}

// MediaParams describe the call a session is for.
type MediaParams struct {
	ChannelID string
	CallType  int
	Outgoing  bool
	Session   *signaling.SessionConfig // this side's sessionConfig
}

// MediaProvider creates sessions; nil in Config means signalling only.
type MediaProvider interface {
	NewSession(p MediaParams, hooks MediaHooks) (MediaSession, error)
}

// MediaInfo is the data of a "media" event.
type MediaInfo struct {
	ChannelID    string          `json:"channelId"`
	State        string          `json:"state"` // connected, firstFrame, failed, cameraFailed, stats
	Reason       string          `json:"reason,omitempty"`
	FirstFrameMs float64         `json:"firstFrameMs,omitempty"`
	Stats        json.RawMessage `json:"stats,omitempty"`
}

// mediaState is the media part of a call.
type mediaState struct {
	session    MediaSession
	localCands []signaling.Candidate            // caller: gathered before the invite went out
	remote     map[string][]signaling.Candidate // candidates by sending device, until its SDP is applied
	applied    string                           // device whose SDP is applied
	stats      json.RawMessage
}

func (e *Engine) newMedia(c *call, outgoing bool) bool {
	if e.cfg.Media == nil {
		return false
	}
	// Hooks come from the session's goroutine: hop onto ours, and ignore
	// reports of a session that is no longer the current call's.
	var ms *mediaState
	guard := func(f func()) {
		e.post(func() {
			if e.call == c && c.media == ms {
				f()
			}
		})
	}
	hooks := MediaHooks{
		LocalCandidate: func(cand signaling.Candidate) { guard(func() { e.sendCandidate(c, cand) }) },
		Renegotiate: func(d signaling.SDP) {
			guard(func() { e.send(c.peer, signaling.TypeSDP, c.channel, &d) })
		},
		Connected: func() {
			guard(func() { e.emit(EvMedia, &MediaInfo{ChannelID: c.channel, State: "connected"}) })
		},
		Failed: func(reason string) { guard(func() { e.onMediaFailed(c, reason) }) },
		CameraFailed: func(err error) {
			guard(func() {
				e.log.Warn("camera failed; the call goes on audio-only", "channelId", c.channel, "err", err)
				e.emit(EvMedia, &MediaInfo{ChannelID: c.channel, State: "cameraFailed", Reason: err.Error()})
				if c.state == StateInCall {
					e.send(c.peer, signaling.TypeControl, c.channel, &signaling.Control{Command: CmdSelfCameraInvalid})
				}
			})
		},
		FirstFrame: func(d time.Duration) {
			guard(func() {
				e.emit(EvMedia, &MediaInfo{ChannelID: c.channel, State: "firstFrame", FirstFrameMs: float64(d) / float64(time.Millisecond)})
			})
		},
	}
	sess, err := e.cfg.Media.NewSession(MediaParams{ChannelID: c.channel, CallType: c.callType, Outgoing: outgoing, Session: c.session}, hooks)
	if err != nil {
		e.log.Error("media session not created; the call carries no media", "channelId", c.channel, "err", err)
		return false
	}
	ms = &mediaState{session: sess, remote: make(map[string][]signaling.Candidate)}
	c.media = ms
	return true
}

// sendCandidate trickles a local candidate: to every ringing device of the
// callee account until one answered, then to the peer device only.
func (e *Engine) sendCandidate(c *call, cand signaling.Candidate) {
	to := c.peer
	if c.dir == outgoing && c.state == StateCalling {
		to = signaling.Address{Account: c.peer.Account}
	}
	e.send(to, signaling.TypeCandidate, c.channel, &cand)
}

func (e *Engine) onMediaFailed(c *call, reason string) {
	e.emit(EvMedia, &MediaInfo{ChannelID: c.channel, State: "failed", Reason: reason})
	if c.state != StateInCall {
		return // before the answer there is no media to lose yet
	}
	e.log.Warn("media failed; ending the call", "channelId", c.channel, "reason", reason)
	e.endLocal(HangupAbnormal, reason, "system")
}

// onMediaMessage handles sdp and candidate envelopes for the current call.
func (e *Engine) onMediaMessage(env signaling.Envelope) {
	c := e.call
	if c == nil || c.channel != env.Channel || c.media == nil {
		return
	}
	if env.From.Account != c.peer.Account || (c.peer.Device != "" && env.From.Device != c.peer.Device) {
		return
	}
	ms := c.media
	switch p := env.Payload.(type) {
	case *signaling.Candidate:
		if ms.applied != env.From.Device {
			// Before this device's SDP is applied (a ringing callee, or a
			// caller that has not picked the winner yet): keep it.
			if len(ms.remote[env.From.Device]) < 64 {
				ms.remote[env.From.Device] = append(ms.remote[env.From.Device], *p)
			}
			return
		}
		if err := ms.session.AddCandidate(*p); err != nil {
			e.log.Debug("remote candidate rejected", "channelId", c.channel, "err", err)
		}
	case *signaling.SDP:
		if c.state != StateInCall {
			return
		}
		if err := ms.session.HandleSDP(*p); err != nil {
			e.log.Warn("renegotiation failed", "channelId", c.channel, "kind", p.Kind, "err", err)
		}
	}
}

// applyRemote marks device's SDP as applied and feeds its held candidates.
func (e *Engine) applyRemote(ms *mediaState, device string) {
	ms.applied = device
	for _, cand := range ms.remote[device] {
		if err := ms.session.AddCandidate(cand); err != nil {
			e.log.Debug("held candidate rejected", "err", err)
		}
	}
	ms.remote = make(map[string][]signaling.Candidate)
}

// mediaOffer creates the caller's session and offer for the invite.
func (e *Engine) mediaOffer(c *call) string {
	if !e.newMedia(c, true) {
		return ""
	}
	offer, err := c.media.session.CreateOffer()
	if err != nil {
		e.log.Error("media offer failed; calling without media", "channelId", c.channel, "err", err)
		e.closeMedia(c)
		return ""
	}
	return offer
}

// mediaAnswer creates the callee's session and answers the invite's offer.
func (e *Engine) mediaAnswer(c *call) string {
	if c.invite == nil || c.invite.Offer == "" || !e.newMedia(c, false) {
		return ""
	}
	answer, err := c.media.session.AcceptOffer(c.invite.Offer)
	if err != nil {
		e.log.Error("media answer failed; answering without media", "channelId", c.channel, "err", err)
		e.closeMedia(c)
		return ""
	}
	e.applyRemote(c.media, c.peer.Device)
	return answer
}

// onMediaAnswer applies the winning device's answer on the caller's side.
func (e *Engine) onMediaAnswer(c *call, answer string) {
	if c.media == nil {
		return
	}
	if answer == "" {
		e.log.Warn("the callee answered without media", "channelId", c.channel)
		return
	}
	if err := c.media.session.SetAnswer(answer); err != nil {
		e.log.Error("applying the callee's answer failed", "channelId", c.channel, "err", err)
		e.onMediaFailed(c, ReasonMediaFailed)
		return
	}
	e.applyRemote(c.media, c.peer.Device)
}

// onMediaControl applies a control command received from the peer.
func (e *Engine) onMediaControl(c *call, command int) {
	if c.media == nil || c.state != StateInCall {
		return
	}
	s := c.media.session
	switch command {
	case CmdSwitchAudioToVideo:
		if e.cfg.AutoAgreeVideo {
			e.send(c.peer, signaling.TypeControl, c.channel, &signaling.Control{Command: CmdSwitchAudioToVideoOK})
			c.callType = TypeVideo
		}
	case CmdSwitchAudioToVideoOK:
		// We asked; the peer agreed: we renegotiate.
		c.callType = TypeVideo
		if err := s.UpgradeToVideo(); err != nil {
			e.log.Warn("upgrade to video failed", "channelId", c.channel, "err", err)
		}
	case CmdSwitchVideoToAudio:
		c.callType = TypeAudio
	}
}

// applyLocalControl applies a command this side sends to its own media.
func (e *Engine) applyLocalControl(c *call, command int) {
	if c.media == nil {
		return
	}
	s := c.media.session
	switch command {
	case CmdNotifyAudioOn, CmdNotifyAudioOff:
		s.SetAudioMuted(command == CmdNotifyAudioOff)
	case CmdNotifyVideoOn, CmdNotifyVideoOff:
		s.SetVideoMuted(command == CmdNotifyVideoOff)
	case CmdSwitchVideoToAudio:
		c.callType = TypeAudio
		if err := s.DowngradeToAudio(); err != nil {
			e.log.Warn("downgrade to audio failed", "channelId", c.channel, "err", err)
		}
	}
}

func (e *Engine) closeMedia(c *call) {
	if c.media == nil {
		return
	}
	ms := c.media
	if err := ms.session.Close(); err != nil {
		e.log.Debug("media close", "channelId", c.channel, "err", err)
	}
	ms.stats = ms.session.StatsJSON()
	if ms.stats != nil {
		e.emit(EvMedia, &MediaInfo{ChannelID: c.channel, State: "stats", Stats: ms.stats})
	}
}

func (e *Engine) mediaStats(c *call) json.RawMessage {
	if c.media == nil {
		return nil
	}
	return c.media.stats
}
