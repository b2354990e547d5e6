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
	// Preview: one-way video from the caller to a ringing device, no audio
	// either way until EnableAudio (the device answered on it).
	Preview bool
}

// MediaProvider creates sessions; nil in Config means signalling only.
type MediaProvider interface {
	NewSession(p MediaParams, hooks MediaHooks) (MediaSession, error)
}

// MediaInfo is the data of a "media" event.
type MediaInfo struct {
	ChannelID    string          `json:"channelId"`
	State        string          `json:"state"`             // connected, firstFrame, failed, cameraFailed, stats
	Preview      bool            `json:"preview,omitempty"` // about a preview session
	Reason       string          `json:"reason,omitempty"`
	FirstFrameMs float64         `json:"firstFrameMs,omitempty"`
	Stats        json.RawMessage `json:"stats,omitempty"`
}

// mediaState is one media session of a call: the call's own, or a
// preview session between the caller and one ringing device.
type mediaState struct {
	session  MediaSession
	preview  bool
	promoted bool                             // was a preview, now the call's session
	device   string                           // caller's preview sessions: the ringing device
	remote   map[string][]signaling.Candidate // candidates by sending device, until its SDP is applied
	applied  string                           // device whose SDP is applied
	stats    json.RawMessage
}

// attached reports whether ms still belongs to call c.
func (c *call) attached(ms *mediaState) bool {
	if c.media == ms {
		return true
	}
	return ms.preview && ms.device != "" && c.previews[ms.device] == ms
}

// newMedia creates a media session for c. device is the ringing device a
// caller's preview session serves ("" otherwise).
func (e *Engine) newMedia(c *call, outgoing, preview bool, device string) *mediaState {
	if e.cfg.Media == nil {
		return nil
	}
	ms := &mediaState{preview: preview, device: device, remote: make(map[string][]signaling.Candidate)}
	// Hooks come from the session's goroutine: hop onto ours, and ignore
	// reports of a session that no longer belongs to the call.
	guard := func(f func()) {
		e.post(func() {
			if e.call == c && c.attached(ms) {
				f()
			}
		})
	}
	// Messages about a preview carry the "preview" tag; once promoted, the
	// session is the call's and its messages go untagged.
	tag := func() string {
		if ms.preview {
			return signaling.SessionPreview
		}
		return ""
	}
	hooks := MediaHooks{
		LocalCandidate: func(cand signaling.Candidate) {
			guard(func() {
				cand.Session = tag()
				e.sendCandidate(c, ms, cand)
			})
		},
		Renegotiate: func(d signaling.SDP) {
			guard(func() {
				d.Session = tag()
				e.send(e.mediaPeer(c, ms), signaling.TypeSDP, c.channel, &d)
			})
		},
		Connected: func() {
			guard(func() {
				e.emit(EvMedia, &MediaInfo{ChannelID: c.channel, State: "connected", Preview: ms.preview})
			})
		},
		Failed: func(reason string) { guard(func() { e.onMediaFailed(c, ms, reason) }) },
		CameraFailed: func(err error) {
			guard(func() {
				e.log.Warn("camera failed; the call goes on audio-only", "channelId", c.channel, "err", err)
				e.emit(EvMedia, &MediaInfo{ChannelID: c.channel, State: "cameraFailed", Reason: err.Error()})
				if c.state == StateInCall && c.media == ms {
					e.send(c.peer, signaling.TypeControl, c.channel, &signaling.Control{Command: CmdSelfCameraInvalid})
				}
			})
		},
		FirstFrame: func(d time.Duration) {
			guard(func() {
				e.emit(EvMedia, &MediaInfo{ChannelID: c.channel, State: "firstFrame", Preview: ms.preview, FirstFrameMs: float64(d) / float64(time.Millisecond)})
			})
		},
	}
	sess, err := e.cfg.Media.NewSession(MediaParams{
		ChannelID: c.channel, CallType: c.callType, Outgoing: outgoing, Session: c.session, Preview: preview,
	}, hooks)
	if err != nil {
		e.log.Error("media session not created; the call carries no media", "channelId", c.channel, "preview", preview, "err", err)
		return nil
	}
	ms.session = sess
	return ms
}

// mediaPeer is where a session's messages go.
func (e *Engine) mediaPeer(c *call, ms *mediaState) signaling.Address {
	if ms.device != "" {
		return signaling.Address{Account: c.peer.Account, Device: ms.device}
	}
	return c.peer
}

// sendCandidate trickles a local candidate: the caller's call-session
// candidates go to every ringing device of the callee account until one
// answered; everything else goes to the session's peer device.
func (e *Engine) sendCandidate(c *call, ms *mediaState, cand signaling.Candidate) {
	to := e.mediaPeer(c, ms)
	if c.dir == outgoing && c.state == StateCalling && ms == c.media {
		to = signaling.Address{Account: c.peer.Account}
	}
	e.send(to, signaling.TypeCandidate, c.channel, &cand)
}

func (e *Engine) onMediaFailed(c *call, ms *mediaState, reason string) {
	e.emit(EvMedia, &MediaInfo{ChannelID: c.channel, State: "failed", Reason: reason, Preview: ms.preview})
	if c.state != StateInCall || c.media != ms {
		return // a preview, or media before the answer: nothing to end yet
	}
	e.log.Warn("media failed; ending the call", "channelId", c.channel, "reason", reason)
	e.endLocal(HangupAbnormal, reason, "system")
}

// onMediaMessage handles sdp and candidate envelopes for the current call.
func (e *Engine) onMediaMessage(env signaling.Envelope) {
	c := e.call
	if c == nil || c.channel != env.Channel {
		return
	}
	if env.From.Account != c.peer.Account || (c.peer.Device != "" && env.From.Device != c.peer.Device) {
		return
	}
	switch p := env.Payload.(type) {
	case *signaling.Candidate:
		ms := e.sessionFor(c, env.From.Device, p.Session)
		if ms == nil {
			return
		}
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
		if p.Session == signaling.SessionPreview && (c.media == nil || !c.media.promoted) {
			e.onPreviewSDP(c, env.From.Device, p)
			return
		}
		if c.state != StateInCall || c.media == nil {
			return
		}
		if err := c.media.session.HandleSDP(*p); err != nil {
			e.log.Warn("renegotiation failed", "channelId", c.channel, "kind", p.Kind, "err", err)
		}
	}
}

// sessionFor finds the session a message from device is about.
func (e *Engine) sessionFor(c *call, device, tag string) *mediaState {
	if tag != signaling.SessionPreview {
		if c.media != nil && !c.media.preview {
			return c.media
		}
		if c.dir == incoming {
			// Ringing (maybe with a preview): keep the caller's call-session
			// candidates for when this device answers the offer.
			if c.held == nil {
				c.held = &mediaState{remote: make(map[string][]signaling.Candidate)}
			}
			return c.held
		}
		return nil
	}
	if c.media != nil && (c.media.preview || c.media.promoted) {
		// A peer may still tag candidates of a promoted preview.
		if c.dir == incoming || c.media.promoted {
			return c.media
		}
	}
	if c.dir == outgoing {
		return c.previews[device]
	}
	return nil
}

// startPreview: a ringing device that wants to see who is at the door
// offers a preview session to the caller.
func (e *Engine) startPreview(c *call) {
	if !e.cfg.Preview || c.invite == nil || c.invite.Offer == "" {
		return // no media on the caller's side, or previews not wanted here
	}
	ms := e.newMedia(c, false, true, "")
	if ms == nil {
		return
	}
	offer, err := ms.session.CreateOffer()
	if err != nil {
		e.log.Warn("preview offer failed", "channelId", c.channel, "err", err)
		_ = ms.session.Close()
		return
	}
	c.media = ms
	e.send(c.peer, signaling.TypeSDP, c.channel, &signaling.SDP{Kind: "offer", SDP: offer, Session: signaling.SessionPreview})
}

// onPreviewSDP: the caller answers a ringing device's preview offer with a
// session of its own for that device; the device applies the answer.
func (e *Engine) onPreviewSDP(c *call, device string, d *signaling.SDP) {
	switch {
	case c.dir == outgoing && d.Kind == "offer" && c.state == StateCalling && !c.decided:
		if c.previews[device] != nil || len(c.previews) >= 8 {
			return
		}
		ms := e.newMedia(c, true, true, device)
		if ms == nil {
			return
		}
		answer, err := ms.session.AcceptOffer(d.SDP)
		if err != nil {
			e.log.Warn("preview answer failed", "channelId", c.channel, "device", device, "err", err)
			_ = ms.session.Close()
			return
		}
		if c.previews == nil {
			c.previews = make(map[string]*mediaState)
		}
		c.previews[device] = ms
		ms.applied = device
		e.send(signaling.Address{Account: c.peer.Account, Device: device}, signaling.TypeSDP, c.channel,
			&signaling.SDP{Kind: "answer", SDP: answer, Session: signaling.SessionPreview})
	case c.dir == incoming && d.Kind == "answer" && c.media != nil && c.media.preview && c.media.applied == "":
		if err := c.media.session.SetAnswer(d.SDP); err != nil {
			e.log.Warn("preview answer rejected", "channelId", c.channel, "err", err)
			return
		}
		e.applyRemote(c.media, c.peer.Device)
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
	ms := e.newMedia(c, true, false, "")
	if ms == nil {
		return ""
	}
	offer, err := ms.session.CreateOffer()
	if err != nil {
		e.log.Error("media offer failed; calling without media", "channelId", c.channel, "err", err)
		_ = ms.session.Close()
		return ""
	}
	c.media = ms
	return offer
}

// mediaAnswer prepares the callee's media for accepting. With a connected
// preview session the call continues on it (audio switched on, no new
// negotiation: preview is true); otherwise a new session answers the
// invite's offer.
func (e *Engine) mediaAnswer(c *call) (answer string, preview bool) {
	if ms := c.media; ms != nil && ms.preview {
		if ms.applied != "" {
			if err := ms.session.EnableAudio(); err == nil {
				ms.preview, ms.promoted = false, true
				return "", true
			}
		}
		// The preview never got its answer: fall back to the call's offer.
		_ = ms.session.Close()
		c.media = nil
	}
	if c.invite == nil || c.invite.Offer == "" {
		return "", false
	}
	ms := e.newMedia(c, false, false, "")
	if ms == nil {
		return "", false
	}
	answer, err := ms.session.AcceptOffer(c.invite.Offer)
	if err != nil {
		e.log.Error("media answer failed; answering without media", "channelId", c.channel, "err", err)
		_ = ms.session.Close()
		return "", false
	}
	c.media = ms
	if c.held != nil {
		ms.remote = c.held.remote
		c.held = nil
	}
	e.applyRemote(ms, c.peer.Device)
	return answer, false
}

// onMediaAnswer sets up the caller's media for the winning device: its
// preview session becomes the call's, or its answer is applied to the
// call's offer. Every other session is closed.
func (e *Engine) onMediaAnswer(c *call, r *signaling.Response) {
	winner := c.peer.Device
	if r.Preview {
		if ms := c.previews[winner]; ms != nil {
			delete(c.previews, winner)
			if c.media != nil {
				_ = c.media.session.Close()
			}
			if err := ms.session.EnableAudio(); err != nil {
				e.log.Warn("enabling audio on the preview failed", "channelId", c.channel, "err", err)
			}
			ms.preview, ms.promoted = false, true
			c.media = ms
		} else {
			e.log.Warn("the callee answered on a preview we do not have", "channelId", c.channel, "device", winner)
		}
	} else if c.media != nil {
		if r.Answer == "" {
			e.log.Warn("the callee answered without media", "channelId", c.channel)
		} else if err := c.media.session.SetAnswer(r.Answer); err != nil {
			e.log.Error("applying the callee's answer failed", "channelId", c.channel, "err", err)
			e.onMediaFailed(c, c.media, ReasonMediaFailed)
		} else {
			e.applyRemote(c.media, winner)
		}
	}
	e.closePreviews(c)
}

func (e *Engine) closePreviews(c *call) {
	for dev, ms := range c.previews {
		_ = ms.session.Close()
		delete(c.previews, dev)
	}
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
	e.closePreviews(c)
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
