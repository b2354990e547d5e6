package media

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/intercomd/intercomd/device"
	"github.com/intercomd/intercomd/signaling"
)

// Call types as in the seed's invite.
const (
	CallTypeAudio = 1
	CallTypeVideo = 2
)

// Failure reasons carried by a Failed state, for the bill's hangup reason.
const (
	// ReasonICEFailed: connectivity checks never succeeded (or DTLS failed).
	ReasonICEFailed = "ice_failed"
	// ReasonICETimeout: the call was connected, then the peer went silent
	// past ICEDisconnectedTimeout + ICEFailedTimeout.
	ReasonICETimeout = "ice_timeout"
)

// ErrClosed is returned by methods of a closed Session.
var ErrClosed = errors.New("media session closed")

// SessionOptions shape one call's media.
type SessionOptions struct {
	CallType  int                // CallTypeAudio or CallTypeVideo
	Video     device.VideoConfig // from sessionConfig videoQuality/videoFrameRate/videoBitrate
	SendVideo bool               // a door station sends video; an indoor unit may send none
	// Preview starts with video one way and no audio either way until
	// EnableAudio: audio is negotiated sendrecv from the start but not fed,
	// and what arrives is not played, so accepting needs no new negotiation.
	Preview bool
	// RecordDir, RecordAudio, RecordVideo: record the remote and local
	// tracks into files under RecordDir (see record.go for the formats).
	RecordDir   string
	RecordAudio bool
	RecordVideo bool
	// RecordName is the recording's file name without ".mkv" (the call
	// engine uses the channelId, so a recording matches its bill); empty
	// means the session id. A name already taken gets the session id
	// appended rather than overwriting.
	RecordName string
}

// Devices are the session's media devices; any may be nil.
type Devices struct {
	Video   device.VideoSource
	Audio   device.AudioSource
	Speaker device.AudioSink
}

// Callbacks report to the call engine. They are delivered in order on one
// goroutine per session, never while the session holds a lock, so they may
// call back into the Session (Close included).
type Callbacks struct {
	// LocalCandidate trickles ICE candidates out; an empty Candidate ends
	// gathering. Candidates gathered before CreateOffer/AcceptOffer took its
	// SDP are in that SDP and are not repeated; later ones are queued from
	// the moment it returns, so they can race the engine's publishing of the
	// invite/response: queue them until that is out (a candidate for a call
	// the peer does not know yet is dropped there).
	LocalCandidate func(signaling.Candidate)
	// Renegotiate carries an offer or answer for the peer after the initial
	// exchange (upgrade, downgrade, or our answer to the peer's offer).
	Renegotiate  func(signaling.SDP)
	StateChanged func(State)
	// CameraFailed: the camera could not start or went away; the call goes
	// on audio-only and the engine sends SELF_CAMERA_INVALID.
	CameraFailed func(error)
	// FirstFrame: the first decodable (key)frame arrived, d after the answer.
	FirstFrame func(d time.Duration)
}

// StateKind is a session's connection state.
type StateKind int

const (
	StateConnecting StateKind = iota
	StateConnected
	StateFailed
	StateClosed
)

func (k StateKind) String() string {
	switch k {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateFailed:
		return "failed"
	case StateClosed:
		return "closed"
	}
	return "unknown"
}

// State is reported through Callbacks.StateChanged; Reason is set for
// StateFailed (ReasonICEFailed or ReasonICETimeout).
type State struct {
	Kind   StateKind
	Reason string
}

func (s State) String() string {
	if s.Reason != "" {
		return s.Kind.String() + "(" + s.Reason + ")"
	}
	return s.Kind.String()
}

// Session is one call's PeerConnection and the goroutines that feed and
// drain it. All goroutines belong to the session's context; Close stops them.
type Session struct {
	e    *Engine
	id   string
	opts SessionOptions
	dev  Devices
	cb   Callbacks
	log  *slog.Logger
	pc   *webrtc.PeerConnection

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	notify *notifier

	created time.Time
	t0      atomic.Int64 // unix ns of the answer (AcceptOffer/SetAnswer)

	// negMu serialises negotiation: SDP, transceivers, camera start/stop.
	negMu          sync.Mutex
	initialOfferer bool
	pendingCands   []webrtc.ICECandidateInit
	audioTrack     *localTrack
	videoTracks    []*localTrack // one per video transceiver we send on
	renegPending   bool          // a change waits for the current negotiation; offer again after
	restartPending bool          // the next offer restarts ICE
	// pendingOffer is the initial answerer's renegotiation offer, sent but
	// not yet applied locally: pion cannot roll back a local offer, so the
	// side that must yield on glare commits its offer only when the answer
	// comes, and stays "stable" meanwhile so it can take the peer's offer.
	pendingOffer *webrtc.SessionDescription
	cam          *camera

	candMu   sync.Mutex
	sdpTaken bool                  // the initial SDP was snapshotted; trickle from now on
	heldCand []signaling.Candidate // trickle held until the initial SDP call returned
	released bool

	videoTrack    atomic.Pointer[localTrack] // the track the camera writer feeds
	connected     atomic.Bool
	everConnected atomic.Bool
	failed        atomic.Bool
	iceRestarts   atomic.Int64
	audioEnabled  atomic.Bool
	audioMuted    atomic.Bool
	videoMuted    atomic.Bool
	firstFrame    atomic.Bool
	closed        atomic.Bool

	audio, video  streamCounters
	latency       latencyRing
	connectAt     atomic.Int64 // ns after t0
	firstFrameAt  atomic.Int64 // ns after t0
	closeOnce     sync.Once
	workMu        sync.Mutex // orders onTrack's workers before Close's wait
	closeErr      error
	finalMu       sync.Mutex
	final         *Stats
	rec           *recorders
	lastPLI       atomic.Int64
	kfRequestedAt atomic.Int64
	cameraBroken  atomic.Bool

	audioCodec          atomic.Pointer[string] // negotiated audio codec, for the bill
	recvMu              sync.Mutex
	recvStats           map[webrtc.RTPCodecType][]*recvStat
	audioSend, videoSnd sendStat
}

// NewSession creates a call's PeerConnection. Sources start at once (a door
// camera warms up while the call rings), but nothing is sent until the
// PeerConnection connects.
func (e *Engine) NewSession(opts SessionOptions, dev Devices, cb Callbacks) (*Session, error) {
	if opts.CallType != CallTypeAudio && opts.CallType != CallTypeVideo {
		return nil, fmt.Errorf("media: call type %d is neither audio (1) nor video (2)", opts.CallType)
	}
	pc, err := e.api.NewPeerConnection(e.rtcConfig())
	if err != nil {
		return nil, fmt.Errorf("media: new peer connection: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{
		e: e, id: newID(), opts: opts, dev: dev, cb: cb, pc: pc,
		ctx: ctx, cancel: cancel, created: time.Now(),
	}
	s.log = e.log.With("media_session", s.id)
	s.notify = newNotifier()
	s.wg.Go(s.notify.run)
	s.audioEnabled.Store(!opts.Preview)

	rec, err := openRecorders(opts, s.id, e.audioRate)
	if err != nil {
		s.log.Warn("recording disabled", "err", err)
	}
	s.rec = rec

	pc.OnICECandidate(s.onICECandidate)
	pc.OnICEConnectionStateChange(s.onICEState)
	pc.OnConnectionStateChange(s.onPCState)
	pc.OnTrack(s.onTrack)

	if dev.Audio != nil {
		s.audioTrack = newLocalTrack(webrtc.RTPCodecTypeAudio, "audio", "intercom-"+s.id, e.audioPref...)
		if err := dev.Audio.Start(ctx, device.AudioFormat{SampleRate: e.audioRate, Channels: 1}); err != nil {
			s.log.Warn("microphone unavailable, receiving audio only", "err", err)
			s.audioTrack = nil
		} else {
			s.wg.Go(s.audioWriter)
		}
	}
	if dev.Speaker != nil {
		if err := dev.Speaker.Start(ctx, device.AudioFormat{SampleRate: e.audioRate, Channels: 1}); err != nil {
			s.log.Warn("speaker unavailable", "err", err)
			s.dev.Speaker = nil
		}
	}
	if opts.CallType == CallTypeVideo && s.wantSendVideo() {
		s.negMu.Lock()
		s.startCameraLocked()
		s.negMu.Unlock()
	}
	s.log.Debug("media session created", "call_type", opts.CallType, "send_video", opts.SendVideo, "preview", opts.Preview)
	return s, nil
}

// ID names the session in logs and recordings.
func (s *Session) ID() string { return s.id }

func (s *Session) wantSendVideo() bool { return s.opts.SendVideo && s.dev.Video != nil }

// CreateOffer is the caller's side: the offer goes into the invite.
func (s *Session) CreateOffer() (string, error) {
	s.negMu.Lock()
	defer s.negMu.Unlock()
	if s.closed.Load() {
		return "", ErrClosed
	}
	s.initialOfferer = true
	if err := s.addAudioTransceiverLocked(); err != nil {
		return "", err
	}
	if s.opts.CallType == CallTypeVideo {
		if err := s.addVideoTransceiverLocked(); err != nil {
			return "", err
		}
	}
	offer, err := s.pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("media: create offer: %w", err)
	}
	return s.setLocalInitialLocked(offer)
}

// AcceptOffer is the callee's side: the answer goes into the response.
// FirstFrame and ConnectMs are measured from here.
func (s *Session) AcceptOffer(offer string) (string, error) {
	s.t0.Store(time.Now().UnixNano())
	s.negMu.Lock()
	defer s.negMu.Unlock()
	if s.closed.Load() {
		return "", ErrClosed
	}
	if err := s.setRemoteLocked(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", err
	}
	if err := s.attachTracksLocked(); err != nil {
		return "", err
	}
	answer, err := s.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("media: create answer: %w", err)
	}
	return s.setLocalInitialLocked(answer)
}

// SetAnswer applies the winning device's answer on the caller's side.
func (s *Session) SetAnswer(answer string) error {
	s.t0.Store(time.Now().UnixNano())
	s.negMu.Lock()
	defer s.negMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.setRemoteLocked(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return err
	}
	s.syncCameraLocked()
	return nil
}

// HandleSDP applies a renegotiation offer or answer from the peer. An offer
// is answered through Callbacks.Renegotiate.
func (s *Session) HandleSDP(d signaling.SDP) error {
	s.negMu.Lock()
	defer s.negMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	switch d.Kind {
	case "answer":
		if s.pendingOffer != nil {
			// Our deferred offer was answered: commit it, then the answer.
			if err := s.pc.SetLocalDescription(*s.pendingOffer); err != nil {
				s.pendingOffer = nil
				return fmt.Errorf("media: set local offer: %w", err)
			}
			s.pendingOffer = nil
		}
		if err := s.setRemoteLocked(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: d.SDP}); err != nil {
			return err
		}
		s.syncCameraLocked()
		if s.renegPending {
			s.renegPending = false
			return s.offerLocked()
		}
		return nil
	case "offer":
		if s.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
			// Glare, seen by the initial offerer: our offer stands and the
			// peer (which deferred its own) will answer it and offer again.
			s.log.Info("renegotiation glare: ignoring the peer's offer, ours stands")
			return nil
		}
		if s.pendingOffer != nil {
			// Glare, seen by the initial answerer: drop our uncommitted
			// offer, answer the peer's, and offer again afterwards.
			s.log.Info("renegotiation glare: answering the peer's offer, ours follows")
			s.pendingOffer = nil
			s.renegPending = true
		}
		if err := s.setRemoteLocked(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: d.SDP}); err != nil {
			return err
		}
		if err := s.attachTracksLocked(); err != nil {
			return err
		}
		answer, err := s.pc.CreateAnswer(nil)
		if err != nil {
			return fmt.Errorf("media: create answer: %w", err)
		}
		if err := s.pc.SetLocalDescription(answer); err != nil {
			return fmt.Errorf("media: set local answer: %w", err)
		}
		s.syncCameraLocked()
		sdpAnswer := s.pc.LocalDescription().SDP
		s.post(func() {
			if s.cb.Renegotiate != nil {
				s.cb.Renegotiate(signaling.SDP{Kind: "answer", SDP: sdpAnswer})
			}
		})
		if s.renegPending {
			s.renegPending = false
			return s.offerLocked()
		}
		return nil
	}
	return fmt.Errorf("media: sdp kind %q is neither offer nor answer", d.Kind)
}

// AddCandidate applies a trickled remote candidate; candidates that arrive
// before the remote description are buffered (the callee may see the
// caller's candidates before it accepts).
func (s *Session) AddCandidate(c signaling.Candidate) error {
	if c.Candidate == "" {
		return nil // end of the peer's gathering: nothing to do for pion
	}
	init := webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex}
	s.negMu.Lock()
	defer s.negMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	if s.pc.RemoteDescription() == nil {
		if len(s.pendingCands) < 64 {
			s.pendingCands = append(s.pendingCands, init)
		}
		return nil
	}
	if err := s.pc.AddICECandidate(init); err != nil {
		return fmt.Errorf("media: add candidate: %w", err)
	}
	return nil
}

// EnableAudio turns a preview into the full call: audio starts flowing both
// ways on the already negotiated transceivers.
func (s *Session) EnableAudio() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if !s.audioEnabled.Swap(true) {
		s.log.Info("audio enabled")
	}
	return nil
}

// SetAudioMuted stops (or resumes) sending audio packets.
func (s *Session) SetAudioMuted(muted bool) {
	if s.audioMuted.Swap(muted) != muted {
		s.log.Info("audio mute changed", "muted", muted)
	}
}

// SetVideoMuted stops (or resumes) sending video packets. Unmuting resumes
// at a fresh keyframe so the peer's picture recovers at once.
func (s *Session) SetVideoMuted(muted bool) {
	if s.videoMuted.Swap(muted) != muted {
		s.log.Info("video mute changed", "muted", muted)
		if !muted {
			s.RequestKeyframe()
		}
	}
}

// RequestKeyframe asks the local camera for a keyframe.
func (s *Session) RequestKeyframe() {
	s.video.keyRequests.Add(1)
	s.kfRequestedAt.Store(time.Now().UnixNano())
	if src := s.dev.Video; src != nil {
		src.RequestKeyframe()
	}
}

// UpgradeToVideo adds video to an audio call and renegotiates
// (SWITCH_AUDIO_TO_VIDEO). We send video if we have a camera and
// SendVideo; we always offer to receive it.
func (s *Session) UpgradeToVideo() error {
	s.negMu.Lock()
	defer s.negMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	if s.activeVideoTransceiverLocked() != nil {
		return nil
	}
	if err := s.addVideoTransceiverLocked(); err != nil {
		return err
	}
	if s.pc.SignalingState() != webrtc.SignalingStateStable || s.pendingOffer != nil {
		s.renegPending = true
		return nil
	}
	return s.offerLocked()
}

// DowngradeToAudio stops video both ways and renegotiates
// (SWITCH_VIDEO_TO_AUDIO): the video m-line goes inactive, and the peer's
// pion stops its side of it on applying our offer.
func (s *Session) DowngradeToAudio() error {
	s.negMu.Lock()
	defer s.negMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	stopped := false
	for _, t := range s.pc.GetTransceivers() {
		if t.Kind() == webrtc.RTPCodecTypeVideo && t.Direction() != webrtc.RTPTransceiverDirectionInactive {
			if err := t.Stop(); err != nil {
				return fmt.Errorf("media: stop video transceiver: %w", err)
			}
			stopped = true
		}
	}
	s.videoTrack.Store(nil)
	s.stopCameraLocked()
	if !stopped {
		return nil
	}
	if s.pc.SignalingState() != webrtc.SignalingStateStable || s.pendingOffer != nil {
		s.renegPending = true
		return nil
	}
	return s.offerLocked()
}

// Close ends the session: the PeerConnection first, then the goroutines and
// devices (mediadevices deadlocks when a track closes before its
// PeerConnection). It is idempotent; the final Stats stay readable.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.workMu.Lock()
		s.closed.Store(true)
		s.workMu.Unlock()
		st := s.liveStats()
		s.finalMu.Lock()
		s.final = &st
		s.finalMu.Unlock()

		// GracefulClose also waits for pion's own goroutines, so a closed
		// session leaves none behind.
		if err := s.pc.GracefulClose(); err != nil {
			s.closeErr = fmt.Errorf("media: close peer connection: %w", err)
		}
		s.cancel()
		s.negMu.Lock()
		s.stopCameraLocked()
		s.negMu.Unlock()
		if s.dev.Audio != nil && s.audioTrack != nil {
			if err := s.dev.Audio.Stop(); err != nil {
				s.log.Warn("stop microphone", "err", err)
			}
		}
		if s.dev.Speaker != nil {
			if err := s.dev.Speaker.Stop(); err != nil {
				s.log.Warn("stop speaker", "err", err)
			}
		}
		s.post(func() {
			if s.cb.StateChanged != nil {
				s.cb.StateChanged(State{Kind: StateClosed})
			}
		})
		s.notify.close()
		// Not waiting for the notifier: Close may be running on it (a
		// callback that closes the session); it exits once drained.
		s.waitWorkers()
		if s.rec != nil {
			s.rec.close(s.log)
		}
		s.log.Info("media session closed", "stats", st)
	})
	return s.closeErr
}

// waitWorkers waits for every goroutine but the notifier.
func (s *Session) waitWorkers() {
	done := make(chan struct{})
	go func() {
		// The notifier is in wg too; it finishes on its own after close.
		s.wg.Wait()
		close(done)
	}()
	if s.notify.onNotifier() {
		return // called from a callback: waiting would deadlock on ourselves
	}
	<-done
}

// Stats returns the session's media statistics (the final figures after
// Close).
func (s *Session) Stats() Stats {
	s.finalMu.Lock()
	f := s.final
	s.finalMu.Unlock()
	if f != nil {
		return *f
	}
	return s.liveStats()
}

func (s *Session) liveStats() Stats {
	st := Stats{Audio: s.audio.snapshot(), Video: s.video.snapshot()}
	if c := s.audioCodec.Load(); c != nil {
		st.AudioCodec = *c
	}
	s.recvMu.Lock()
	for kind, list := range s.recvStats {
		ss := &st.Audio
		if kind == webrtc.RTPCodecTypeVideo {
			ss = &st.Video
		}
		for _, r := range list {
			lost, jit := r.snapshot()
			ss.PacketsLost += lost
			ss.JitterMs = max(ss.JitterMs, jit)
		}
	}
	s.recvMu.Unlock()
	for _, x := range []struct {
		ss *StreamStats
		sn *sendStat
	}{{&st.Audio, &s.audioSend}, {&st.Video, &s.videoSnd}} {
		x.ss.RemotePacketsLost = x.sn.lost.Load()
		x.ss.RemoteFractionLost = float64(x.sn.fraction.Load()) / 256
		st.RTTMs = max(st.RTTMs, ms(time.Duration(x.sn.rttNs.Load())))
	}
	if d := s.connectAt.Load(); d > 0 {
		st.ConnectMs = ms(time.Duration(d))
	}
	if d := s.firstFrameAt.Load(); d > 0 {
		st.FirstFrameMs = ms(time.Duration(d))
	}
	st.ICERestarts = int(s.iceRestarts.Load())
	p50, p95, n := s.latency.percentiles()
	st.CaptureLatencyP50Ms, st.CaptureLatencyP95Ms, st.LatencySamples = ms(p50), ms(p95), n
	return st
}

// sinceAnswer is the time since AcceptOffer/SetAnswer (or creation).
func (s *Session) sinceAnswer(now time.Time) time.Duration {
	if t := s.t0.Load(); t != 0 {
		return now.Sub(time.Unix(0, t))
	}
	return now.Sub(s.created)
}

// --- negotiation helpers (negMu held) ---

func (s *Session) addAudioTransceiverLocked() error {
	if s.audioTrack != nil {
		t, err := s.pc.AddTransceiverFromTrack(s.audioTrack, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
		if err != nil {
			return fmt.Errorf("media: add audio transceiver: %w", err)
		}
		s.watchSender(t.Sender())
		return nil
	}
	if _, err := s.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return fmt.Errorf("media: add audio transceiver: %w", err)
	}
	return nil
}

func (s *Session) addVideoTransceiverLocked() error {
	if s.wantSendVideo() && s.startCameraLocked() {
		t := s.newVideoTrack()
		tr, err := s.pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
		if err != nil {
			return fmt.Errorf("media: add video transceiver: %w", err)
		}
		s.watchSender(tr.Sender())
		s.videoTrack.Store(t)
		return nil
	}
	if _, err := s.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return fmt.Errorf("media: add video transceiver: %w", err)
	}
	return nil
}

func (s *Session) newVideoTrack() *localTrack {
	t := newLocalTrack(webrtc.RTPCodecTypeVideo, fmt.Sprintf("video%d", len(s.videoTracks)), "intercom-"+s.id, webrtc.MimeTypeH264)
	s.videoTracks = append(s.videoTracks, t)
	return t
}

// attachTracksLocked puts our tracks on the transceivers a remote offer
// created: the microphone on audio, the camera on video when we send video.
func (s *Session) attachTracksLocked() error {
	var audioOK, videoOK bool
	for _, t := range s.pc.GetTransceivers() {
		if t.Direction() == webrtc.RTPTransceiverDirectionInactive {
			continue
		}
		switch t.Kind() {
		case webrtc.RTPCodecTypeAudio:
			if t.Sender() != nil {
				audioOK = true
			}
		case webrtc.RTPCodecTypeVideo:
			if t.Sender() != nil {
				videoOK = true
			}
		}
	}
	if !audioOK && s.audioTrack != nil && s.hasLiveTransceiver(webrtc.RTPCodecTypeAudio) {
		sender, err := s.pc.AddTrack(s.audioTrack)
		if err != nil {
			return fmt.Errorf("media: add audio track: %w", err)
		}
		s.watchSender(sender)
	}
	if !videoOK && s.wantSendVideo() && s.hasLiveTransceiver(webrtc.RTPCodecTypeVideo) && s.startCameraLocked() {
		t := s.newVideoTrack()
		sender, err := s.pc.AddTrack(t)
		if err != nil {
			return fmt.Errorf("media: add video track: %w", err)
		}
		s.watchSender(sender)
		s.videoTrack.Store(t)
	}
	return nil
}

func (s *Session) hasLiveTransceiver(kind webrtc.RTPCodecType) bool {
	for _, t := range s.pc.GetTransceivers() {
		if t.Kind() == kind && t.Direction() != webrtc.RTPTransceiverDirectionInactive && t.Sender() == nil {
			return true
		}
	}
	return false
}

func (s *Session) activeVideoTransceiverLocked() *webrtc.RTPTransceiver {
	for _, t := range s.pc.GetTransceivers() {
		if t.Kind() == webrtc.RTPCodecTypeVideo && t.Direction() != webrtc.RTPTransceiverDirectionInactive {
			return t
		}
	}
	return nil
}

// syncCameraLocked stops the camera when, after a negotiation, no video is
// being sent any more (the peer downgraded or refused video).
func (s *Session) syncCameraLocked() {
	if s.cam == nil {
		return
	}
	if s.remoteAcceptsVideo() {
		return
	}
	s.videoTrack.Store(nil)
	s.stopCameraLocked()
}

// remoteAcceptsVideo reports whether the remote description has a live
// video m-line that receives.
func (s *Session) remoteAcceptsVideo() bool {
	rd := s.pc.RemoteDescription()
	if rd == nil {
		return true
	}
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(rd.SDP); err != nil {
		return true
	}
	for _, m := range parsed.MediaDescriptions {
		if m.MediaName.Media != "video" || m.MediaName.Port.Value == 0 {
			continue
		}
		dir := "sendrecv"
		for _, a := range m.Attributes {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				dir = a.Key
			}
		}
		if dir == "sendrecv" || dir == "recvonly" {
			return true
		}
	}
	return false
}

func (s *Session) setRemoteLocked(d webrtc.SessionDescription) error {
	if err := s.pc.SetRemoteDescription(d); err != nil {
		return fmt.Errorf("media: set remote %s: %w", d.Type, err)
	}
	for _, c := range s.pendingCands {
		if err := s.pc.AddICECandidate(c); err != nil {
			s.log.Warn("buffered remote candidate rejected", "candidate", c.Candidate, "err", err)
		}
	}
	s.pendingCands = nil
	return nil
}

// setLocalInitialLocked applies the first local description and waits
// briefly for gathering so the SDP carries the host candidates: the peer can
// start connectivity checks on receipt instead of waiting for trickle.
func (s *Session) setLocalInitialLocked(d webrtc.SessionDescription) (string, error) {
	gathered := webrtc.GatheringCompletePromise(s.pc)
	if err := s.pc.SetLocalDescription(d); err != nil {
		return "", fmt.Errorf("media: set local %s: %w", d.Type, err)
	}
	timer := time.NewTimer(s.e.cfg.InitialGatherWait)
	select {
	case <-gathered:
	case <-timer.C:
	}
	timer.Stop()
	s.candMu.Lock()
	s.sdpTaken = true
	s.candMu.Unlock()
	local := s.pc.LocalDescription()
	if local == nil {
		return "", fmt.Errorf("media: no local description after %s", d.Type)
	}
	// Release trickle only after the caller has the SDP in hand.
	defer s.releaseCandidates()
	return local.SDP, nil
}

// offerLocked sends a renegotiation offer. Glare (both sides offering at
// once) resolves in the initial offerer's favour: it applies its offer at
// once, the initial answerer defers its own (see pendingOffer).
func (s *Session) offerLocked() error {
	var opts *webrtc.OfferOptions
	if s.restartPending && s.initialOfferer {
		// CreateOffer restarts our ICE agent at once: new credentials and
		// freshly gathered candidates (new sockets), which trickle out.
		s.restartPending = false
		opts = &webrtc.OfferOptions{ICERestart: true}
	}
	offer, err := s.pc.CreateOffer(opts)
	if err != nil {
		return fmt.Errorf("media: create offer: %w", err)
	}
	if !s.initialOfferer {
		s.pendingOffer = &offer
		s.post(func() {
			if s.cb.Renegotiate != nil {
				s.cb.Renegotiate(signaling.SDP{Kind: "offer", SDP: offer.SDP})
			}
		})
		return nil
	}
	if err := s.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("media: set local offer: %w", err)
	}
	sdpOffer := s.pc.LocalDescription().SDP
	s.post(func() {
		if s.cb.Renegotiate != nil {
			s.cb.Renegotiate(signaling.SDP{Kind: "offer", SDP: sdpOffer})
		}
	})
	return nil
}

// --- pion callbacks ---

func (s *Session) onICECandidate(c *webrtc.ICECandidate) {
	var out signaling.Candidate
	if c != nil {
		init := c.ToJSON()
		out = signaling.Candidate{Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex}
	}
	s.candMu.Lock()
	defer s.candMu.Unlock()
	if c != nil && !s.sdpTaken {
		return // gathered before the SDP snapshot: it is in the SDP
	}
	if !s.released {
		s.heldCand = append(s.heldCand, out)
		return
	}
	s.postCandidate(out)
}

func (s *Session) releaseCandidates() {
	s.candMu.Lock()
	defer s.candMu.Unlock()
	if s.released {
		return
	}
	s.released = true
	for _, c := range s.heldCand {
		s.postCandidate(c)
	}
	s.heldCand = nil
}

func (s *Session) postCandidate(c signaling.Candidate) {
	s.post(func() {
		if s.cb.LocalCandidate != nil {
			s.cb.LocalCandidate(c)
		}
	})
}

// restartICE renegotiates with fresh ICE credentials and candidates. ICE
// on its own only retries the candidate pairs it has, which is not enough
// when the path itself changed (an indoor unit's Wi-Fi roamed, an address
// changed). Only the initial offerer restarts, so the two sides never
// restart at once; the peer's pion restarts on seeing the new credentials.
// If the restart does not connect, ICE fails and the call ends as before.
func (s *Session) restartICE() {
	s.negMu.Lock()
	defer s.negMu.Unlock()
	if s.closed.Load() || s.failed.Load() || !s.initialOfferer {
		return
	}
	s.iceRestarts.Add(1)
	s.log.Warn("media path lost, restarting ICE")
	s.restartPending = true
	if s.pc.SignalingState() != webrtc.SignalingStateStable {
		s.renegPending = true // offered once the current negotiation ends
		return
	}
	if err := s.offerLocked(); err != nil {
		s.log.Warn("ICE restart offer failed", "err", err)
	}
}

func (s *Session) onICEState(st webrtc.ICEConnectionState) {
	s.log.Debug("ice state", "state", st.String())
	switch st {
	case webrtc.ICEConnectionStateDisconnected:
		if s.everConnected.Load() && s.initialOfferer {
			// Not under pion's callback: restartICE takes negMu.
			s.post(s.restartICE)
		}
	case webrtc.ICEConnectionStateConnected:
		// Ask for a keyframe as soon as ICE works: DTLS still takes a round
		// trip or two, and the camera can produce the IDR meanwhile.
		if !s.everConnected.Load() && s.videoTrack.Load() != nil {
			s.RequestKeyframe()
		}
	case webrtc.ICEConnectionStateFailed:
		reason := ReasonICEFailed
		if s.everConnected.Load() {
			reason = ReasonICETimeout
		}
		s.fail(reason)
	}
}

func (s *Session) onPCState(st webrtc.PeerConnectionState) {
	s.log.Debug("peer connection state", "state", st.String())
	switch st {
	case webrtc.PeerConnectionStateConnected:
		s.connected.Store(true)
		if !s.everConnected.Swap(true) {
			s.connectAt.Store(int64(s.sinceAnswer(time.Now())))
			s.log.Info("media connected", "since_answer", s.sinceAnswer(time.Now()))
		}
		s.RequestKeyframe()
		s.post(func() {
			if s.cb.StateChanged != nil {
				s.cb.StateChanged(State{Kind: StateConnected})
			}
		})
	case webrtc.PeerConnectionStateDisconnected:
		s.log.Warn("media disconnected, waiting for ICE to recover")
	case webrtc.PeerConnectionStateFailed:
		reason := ReasonICEFailed
		if s.everConnected.Load() {
			reason = ReasonICETimeout
		}
		s.fail(reason)
	}
}

func (s *Session) fail(reason string) {
	if s.closed.Load() || s.failed.Swap(true) {
		return
	}
	s.connected.Store(false)
	s.log.Warn("media failed", "reason", reason)
	s.post(func() {
		if s.cb.StateChanged != nil {
			s.cb.StateChanged(State{Kind: StateFailed, Reason: reason})
		}
	})
}

func (s *Session) onTrack(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	// pion calls this on its own goroutine, possibly while Close runs:
	// check closed and add workers under workMu, which Close takes to set
	// closed, so no worker is added once Close may be waiting for them.
	s.workMu.Lock()
	defer s.workMu.Unlock()
	if s.closed.Load() {
		return
	}
	s.log.Debug("remote track", "kind", tr.Kind().String(), "codec", tr.Codec().MimeType, "ssrc", uint32(tr.SSRC()))
	// Drain the receiver's RTCP: pion's report interceptor only sees the
	// peer's sender reports as they are read, and without them our receiver
	// reports carry no LSR and the peer can compute no RTT.
	s.wg.Go(func() {
		for {
			if _, _, err := recv.ReadRTCP(); err != nil {
				return
			}
		}
	})
	switch tr.Kind() {
	case webrtc.RTPCodecTypeAudio:
		s.wg.Go(func() { s.audioReader(tr) })
	case webrtc.RTPCodecTypeVideo:
		s.wg.Go(func() { s.videoReader(tr, recv) })
	}
}

func (s *Session) post(f func()) { s.notify.post(f) }

// newRecvStat registers the receive statistics of a remote track.
func (s *Session) newRecvStat(kind webrtc.RTPCodecType, clock uint32) *recvStat {
	r := &recvStat{clock: float64(clock)}
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	if s.recvStats == nil {
		s.recvStats = map[webrtc.RTPCodecType][]*recvStat{}
	}
	s.recvStats[kind] = append(s.recvStats[kind], r)
	return r
}

// watchSender starts the RTCP reader of a sender we created.
func (s *Session) watchSender(sender *webrtc.RTPSender) {
	if sender == nil || sender.Track() == nil {
		return
	}
	kind := sender.Track().Kind()
	s.wg.Go(func() { s.readRTCP(sender, kind) })
}

// sendPLI asks the peer for a keyframe, at most every 250 ms.
func (s *Session) sendPLI(ssrc uint32) {
	now := time.Now().UnixNano()
	last := s.lastPLI.Load()
	if now-last < int64(250*time.Millisecond) || !s.lastPLI.CompareAndSwap(last, now) {
		return
	}
	if err := s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
		s.log.Debug("send PLI", "err", err)
		return
	}
	s.video.plisSent.Add(1)
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// isClosedErr reports errors that just mean the session is going away.
func isClosedErr(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "closed") || strings.Contains(s, "EOF")
}
