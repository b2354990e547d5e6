// Package intercom is the call engine: the netcall point-to-point state
// machine (call, ringing ack, accept/reject, busy, multi-device ringing,
// hangup, control), its timers, the call bills and the media session of a
// call. It talks to the network only through a Transport.
package intercom

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/intercomd/intercomd/signaling"
)

// Transport sends envelopes; signaling.Client implements it. Send must not
// block on the network.
type Transport interface {
	Send(env signaling.Envelope) error
}

// BillSink stores a bill durably (the outbox) before it is published.
type BillSink interface {
	AddBill(Bill) error
}

// Config configures an Engine. Zero durations take the defaults.
type Config struct {
	Self       signaling.Address
	ClientType string

	CallTimeout         time.Duration // caller gives up (default 30 s, the seed's)
	RingTimeout         time.Duration // callee stops ringing (default 60 s)
	MaxCallDuration     time.Duration // a connected call is ended after this (default 2 h)
	ResponseTimeout     time.Duration // callee waits this long for the caller to confirm its response (default 5 s)
	KeepCallingInterval time.Duration // forceKeepCalling re-invite period (default 2.5 s)
	// PeerOfflineGrace is how long a peer may stay offline before its call
	// ends (default 3 s): a broker restart or a network blip makes
	// presence flap without the peer losing its call; a restart (new
	// presence session) ends the call at once.
	PeerOfflineGrace time.Duration

	// Media creates each call's media session; nil means signalling only.
	Media MediaProvider
	// SessionConfig is this device's own sessionConfig (video size, frame
	// rate, bitrate, recording) for calls it answers, and for calls it makes
	// without one. The caller's copy in an invite is informative only.
	SessionConfig *signaling.SessionConfig
	// Preview asks the caller for its video while this device rings (see
	// who is at the door before answering); audio starts on answer.
	Preview bool
	// AutoAgreeVideo answers a peer's SWITCH_AUDIO_TO_VIDEO with agree (6):
	// a door station or unattended unit has nobody to ask.
	AutoAgreeVideo bool

	Clock  Clock
	Logger *slog.Logger
	Bills  BillSink
	// OnEvent sees every event synchronously on the engine goroutine, in
	// order; it must not block (publish through a queue).
	OnEvent func(Event)
}

func (c *Config) setDefaults() {
	if c.CallTimeout == 0 {
		c.CallTimeout = 30 * time.Second
	}
	if c.RingTimeout == 0 {
		c.RingTimeout = 60 * time.Second
	}
	if c.MaxCallDuration == 0 {
		c.MaxCallDuration = 2 * time.Hour
	}
	if c.ResponseTimeout == 0 {
		c.ResponseTimeout = 5 * time.Second
	}
	if c.KeepCallingInterval == 0 {
		c.KeepCallingInterval = 2500 * time.Millisecond
	}
	if c.PeerOfflineGrace == 0 {
		c.PeerOfflineGrace = 3 * time.Second
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ClientType == "" {
		c.ClientType = "intercomd"
	}
}

// Engine runs the call state machine of one device. All state is owned by
// the goroutine in Run; API methods and inputs post closures to it.
type Engine struct {
	cfg Config
	tr  Transport
	log *slog.Logger

	in   chan func()
	done chan struct{}

	// Owned by the Run goroutine.
	call     *call
	presence map[signaling.Address]signaling.Presence
	seenChan *lru[struct{}] // channelIds this device has handled (duplicate invites)
	seenMsg  *lru[struct{}] // envelope ids (duplicate deliveries)
	// ended holds the channelIds of calls that ended here, with the callee
	// devices whose responses were confirmed: a repeat from one of them
	// (its confirmation was lost) is confirmed again, any other late
	// response gets 9103.
	ended      *lru[map[string]bool]
	state      StateInfo
	subsMu     sync.Mutex
	subs       map[int]chan Event
	nextSub    int
	timerGen   uint64
	msgCounter uint64
}

type direction int

const (
	outgoing direction = iota + 1
	incoming
)

func (d direction) String() string {
	if d == outgoing {
		return "outgoing"
	}
	return "incoming"
}

// call is the one call this device is part of.
type call struct {
	channel  string
	dir      direction
	state    State
	callType int
	peer     signaling.Address // outgoing: callee account (+ answering device); incoming: caller device
	start    time.Time
	answer   time.Time
	push     *signaling.PushConfig
	session  *signaling.SessionConfig
	invite   *signaling.Invite
	attempts int

	// outgoing
	acked   map[string]bool // callee devices that sent START_NOTIFY_RECEIVED
	busy    map[string]bool // callee devices that answered busy
	decided bool            // the first decisive response arrived
	// confirmed are the callee devices whose response we confirmed with
	// ok (busy ones and the decisive one).
	confirmed map[string]bool

	peerOffline Timer // grace timer while the peer's presence is offline
	media       *mediaState
	previews    map[string]*mediaState // caller: preview sessions by ringing device
	held        *mediaState            // callee: caller's candidates kept until answering (no session)
	syncing     bool                   // a sync is out and unanswered

	// incoming
	responding *pendingResponse
	autoAccept bool // glare: accept as soon as ringing starts

	timers []Timer
}

type pendingResponse struct {
	accepted bool
	reply    chan error
	timer    Timer
}

// New creates an engine; call Run to start it.
func New(cfg Config, tr Transport) (*Engine, error) {
	if err := signaling.ValidateName("self.account", cfg.Self.Account); err != nil {
		return nil, fmt.Errorf("intercom: %w", err)
	}
	if err := signaling.ValidateName("self.device", cfg.Self.Device); err != nil {
		return nil, fmt.Errorf("intercom: %w", err)
	}
	if tr == nil {
		return nil, errors.New("intercom: nil transport")
	}
	cfg.setDefaults()
	e := &Engine{
		cfg:      cfg,
		tr:       tr,
		log:      cfg.Logger.With("account", cfg.Self.Account, "device", cfg.Self.Device),
		in:       make(chan func(), 1024),
		done:     make(chan struct{}),
		presence: make(map[signaling.Address]signaling.Presence),
		seenChan: newLRU[struct{}](1024),
		seenMsg:  newLRU[struct{}](4096),
		ended:    newLRU[map[string]bool](256),
		subs:     make(map[int]chan Event),
	}
	e.state = StateInfo{State: StateIdle, Since: cfg.Clock.Now().UnixMilli()}
	return e, nil
}

// Run processes inputs until ctx ends. On the way out an active call is
// hung up (reason shutdown) so the peer and the bill know.
func (e *Engine) Run(ctx context.Context) error {
	defer close(e.done)
	for {
		select {
		case <-ctx.Done():
			e.drain()
			if e.call != nil {
				e.endLocal(HangupNormal, ReasonShutdown, "system")
			}
			return nil
		case f := <-e.in:
			f()
		}
	}
}

// drain runs whatever was posted before shutdown so no input is lost.
func (e *Engine) drain() {
	for {
		select {
		case f := <-e.in:
			f()
		default:
			return
		}
	}
}

// post queues f for the engine goroutine; it fails once the engine stopped.
func (e *Engine) post(f func()) bool {
	select {
	case e.in <- f:
		return true
	case <-e.done:
		return false
	}
}

// exec runs f on the engine goroutine and waits for it.
func (e *Engine) exec(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	if !e.post(func() { f(); close(ran) }) {
		return errors.New("intercom: engine stopped")
	}
	select {
	case <-ran:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		return errors.New("intercom: engine stopped")
	}
}

// Ping returns once the engine goroutine has processed everything posted
// before it: a liveness probe for the watchdog, and a barrier for tests.
func (e *Engine) Ping(ctx context.Context) error { return e.exec(ctx, func() {}) }

// Subscribe returns a channel of every event from now on. Events are
// dropped (with a warning) for a subscriber that falls 1024 behind.
func (e *Engine) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 1024)
	e.subsMu.Lock()
	id := e.nextSub
	e.nextSub++
	e.subs[id] = ch
	e.subsMu.Unlock()
	return ch, func() {
		e.subsMu.Lock()
		delete(e.subs, id)
		e.subsMu.Unlock()
	}
}

func (e *Engine) emit(name string, data any) {
	ev := Event{Name: name, Time: e.cfg.Clock.Now(), Data: data}
	if e.cfg.OnEvent != nil {
		e.cfg.OnEvent(ev)
	}
	e.subsMu.Lock()
	defer e.subsMu.Unlock()
	for _, ch := range e.subs {
		select {
		case ch <- ev:
		default:
			e.log.Warn("event subscriber is behind; event dropped", "event", name)
		}
	}
}

// State returns the current call state.
func (e *Engine) State(ctx context.Context) (StateInfo, error) {
	var s StateInfo
	err := e.exec(ctx, func() { s = e.state })
	return s, err
}

func (e *Engine) setState(s State) {
	info := StateInfo{State: s, Since: e.cfg.Clock.Now().UnixMilli()}
	if c := e.call; c != nil && s != StateIdle {
		info.ChannelID = c.channel
		peer := c.peer
		info.Peer = &peer
		info.Type = c.callType
		c.state = s
	}
	e.state = info
	e.emit(EvState, info)
}

// --- outgoing messages ---

func (e *Engine) newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewChannelID returns a random call id; ids are compared to break glare.
func NewChannelID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (e *Engine) send(to signaling.Address, typ signaling.MsgType, channel string, payload any) {
	env := signaling.Envelope{
		V:       signaling.Version,
		Type:    typ,
		ID:      e.newID(),
		From:    e.cfg.Self,
		To:      to,
		Channel: channel,
		Time:    e.cfg.Clock.Now().UnixMilli(),
		Payload: payload,
	}
	if err := e.tr.Send(env); err != nil {
		e.log.Error("send failed", "type", typ, "to", to.String(), "channelId", channel, "err", err)
	}
}

// --- timers ---

// after runs f on the engine goroutine after d, unless the call it belongs
// to has ended or the timer was stopped by then (a fired timer's closure
// may already be queued behind the input that stopped it).
func (e *Engine) after(c *call, d time.Duration, f func()) Timer {
	t := &engineTimer{}
	t.t = e.cfg.Clock.AfterFunc(d, func() {
		e.post(func() {
			if e.call == c && !t.stopped {
				f()
			}
		})
	})
	c.timers = append(c.timers, t)
	return t
}

// engineTimer is only touched on the engine goroutine.
type engineTimer struct {
	t       Timer
	stopped bool
}

func (t *engineTimer) Stop() bool {
	t.stopped = true
	return t.t.Stop()
}

func (c *call) stopTimers() {
	for _, t := range c.timers {
		t.Stop()
	}
	c.timers = nil
}

// --- presence ---

// HandlePresence records a device's presence; called by the transport.
func (e *Engine) HandlePresence(p signaling.Presence) {
	e.post(func() { e.onPresence(p) })
}

func (e *Engine) onPresence(p signaling.Presence) {
	addr := signaling.Address{Account: p.Account, Device: p.Device}
	if addr == e.cfg.Self {
		return
	}
	old, had := e.presence[addr]
	e.presence[addr] = p
	restarted := had && old.Session != "" && p.Session != old.Session
	wentOnline := p.State == signaling.Online && (!had || old.State != signaling.Online || restarted)
	c := e.call
	if c == nil {
		return
	}
	offline := p.State == signaling.Offline
	isPeer := (c.state == StateInCall || c.state == StateRinging) && addr == c.peer
	switch {
	case isPeer && restarted:
		e.log.Warn("peer restarted: its side of the call is gone", "peer", addr.String())
		e.endLocal(HangupAbnormal, ReasonPeerLost, "system")
	case isPeer && offline:
		if c.peerOffline == nil {
			e.log.Warn("peer went offline; ending the call unless it returns", "peer", addr.String(), "grace", e.cfg.PeerOfflineGrace)
			c.peerOffline = e.after(c, e.cfg.PeerOfflineGrace, func() {
				e.log.Warn("peer lost", "peer", addr.String())
				e.endLocal(HangupAbnormal, ReasonPeerLost, "system")
			})
		}
	case isPeer && c.peerOffline != nil:
		c.peerOffline.Stop()
		c.peerOffline = nil
		e.log.Info("peer back online; call continues", "peer", addr.String())
	case c.state == StateCalling && addr.Account == c.peer.Account:
		if wentOnline {
			if c.peerOffline != nil {
				c.peerOffline.Stop()
				c.peerOffline = nil
			}
			// A device that came online (or restarted) missed the invite.
			e.sendInvite(c)
			return
		}
		if offline && c.peerOffline == nil && !e.accountOnline(c.peer.Account) && !c.forceKeepCalling() {
			// Every device of the callee went away: fail the call unless one
			// comes back within the grace (a broker restart, a blip).
			c.peerOffline = e.after(c, e.cfg.PeerOfflineGrace, func() {
				if !e.accountOnline(c.peer.Account) {
					e.endLocal(HangupAbnormal, ReasonPeerLost, "system")
				}
			})
		}
	}
}

func (e *Engine) accountOnline(account string) bool {
	for a, p := range e.presence {
		if a.Account == account && p.State == signaling.Online {
			return true
		}
	}
	return false
}

func (e *Engine) onlineDevices(account string) []string {
	var out []string
	for a, p := range e.presence {
		if a.Account == account && p.State == signaling.Online {
			out = append(out, a.Device)
		}
	}
	return out
}

func (c *call) confirm(device string) {
	if c.confirmed == nil {
		c.confirmed = make(map[string]bool)
	}
	c.confirmed[device] = true
}

func (c *call) forceKeepCalling() bool { return c.push != nil && c.push.ForceKeepCalling }

// --- API: caller ---

// CallOptions are the seed's call() parameters.
type CallOptions struct {
	Type          int
	Account       string
	PushConfig    *signaling.PushConfig
	SessionConfig *signaling.SessionConfig
}

// CallResult is what a successful Call returns.
type CallResult struct {
	ChannelID string `json:"channelId"`
	Account   string `json:"account"`
	Type      int    `json:"type"`
}

// Call invites every online device of opts.Account. It returns once the
// invite is sent; callAccepted / callRejected / hangup events follow. An
// account with no online device fails with code 11001 unless
// PushConfig.ForceKeepCalling is set, in which case the invite is repeated
// until a device acknowledges it or the call timer fires.
func (e *Engine) Call(ctx context.Context, opts CallOptions) (CallResult, error) {
	if opts.Type != TypeAudio && opts.Type != TypeVideo {
		return CallResult{}, errorf(CodeInvalidArgument, "call type %d is neither 1 (audio) nor 2 (video)", opts.Type)
	}
	if err := signaling.ValidateName("account", opts.Account); err != nil {
		return CallResult{}, errorf(CodeInvalidArgument, "%v", err)
	}
	var res CallResult
	var callErr error
	err := e.exec(ctx, func() { res, callErr = e.startCall(opts) })
	if err != nil {
		return CallResult{}, err
	}
	return res, callErr
}

func (e *Engine) startCall(opts CallOptions) (CallResult, error) {
	if e.call != nil {
		return CallResult{}, errorf(CodeBusy, "already in a call (%s, channel %s)", e.call.state, e.call.channel)
	}
	now := e.cfg.Clock.Now()
	c := &call{
		channel:  NewChannelID(),
		dir:      outgoing,
		callType: opts.Type,
		peer:     signaling.Address{Account: opts.Account},
		start:    now,
		push:     opts.PushConfig,
		session:  cmp.Or(opts.SessionConfig, e.cfg.SessionConfig),
		acked:    make(map[string]bool),
		busy:     make(map[string]bool),
	}
	c.invite = &signaling.Invite{CallType: opts.Type, PushConfig: opts.PushConfig, SessionConfig: opts.SessionConfig}
	if !e.accountOnline(opts.Account) && !c.forceKeepCalling() {
		e.ended.add(c.channel)
		e.writeBill(c, finishInfo{disposition: DispFailed, hangupType: HangupAbnormal, reason: ReasonCalleeOffline, by: "system"}, now)
		return CallResult{}, errorf(CodeCalleeOffline, "callee %q is offline", opts.Account)
	}
	e.call = c
	e.seenChan.add(c.channel)
	e.setState(StateCalling)
	c.invite.Offer = e.mediaOffer(c)
	e.sendInvite(c)
	e.after(c, e.cfg.CallTimeout, func() { e.onCallTimeout(c) })
	if c.forceKeepCalling() {
		e.scheduleKeepCalling(c)
	}
	e.log.Info("calling", "callee", opts.Account, "channelId", c.channel, "type", opts.Type)
	return CallResult{ChannelID: c.channel, Account: opts.Account, Type: opts.Type}, nil
}

func (e *Engine) sendInvite(c *call) {
	inv := *c.invite
	inv.Attempt = c.attempts
	c.attempts++
	e.send(signaling.Address{Account: c.peer.Account}, signaling.TypeInvite, c.channel, &inv)
}

func (e *Engine) scheduleKeepCalling(c *call) {
	e.after(c, e.cfg.KeepCallingInterval, func() {
		if c.state != StateCalling || c.decided {
			return
		}
		if len(c.acked) == 0 {
			e.sendInvite(c)
		}
		e.scheduleKeepCalling(c)
	})
}

func (e *Engine) onCallTimeout(c *call) {
	if c.state != StateCalling {
		return
	}
	e.log.Info("callee did not answer in time", "channelId", c.channel, "timeout", e.cfg.CallTimeout)
	e.send(signaling.Address{Account: c.peer.Account}, signaling.TypeHangup, c.channel,
		&signaling.Hangup{Type: HangupAbnormal, Reason: ReasonInviteTimeout})
	e.emitHangup(c, HangupAbnormal, ReasonInviteTimeout, "local")
	e.finish(c, finishInfo{disposition: DispNoAnswer, hangupType: HangupAbnormal, reason: ReasonInviteTimeout, by: "caller"})
}

// --- API: callee ---

// Response accepts or rejects the call described by info (the beCalling
// object). It returns once the caller confirmed: a device of the same
// account that responded first makes it fail with code 9103; a call that
// is gone fails with 9102.
func (e *Engine) Response(ctx context.Context, info BeCallingInfo, accepted bool) error {
	reply := make(chan error, 1)
	if err := e.exec(ctx, func() { e.startResponse(info.ChannelID, accepted, "", reply) }); err != nil {
		return err
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		return errors.New("intercom: engine stopped")
	}
}

func (e *Engine) startResponse(channel string, accepted bool, reason string, reply chan error) {
	c := e.call
	if c == nil || c.channel != channel || c.dir != incoming {
		if e.ended.has(channel) {
			reply <- errorf(CodeAnsweredElsewhere, "call %s was already handled", channel)
		} else {
			reply <- errorf(CodeChannelInvalid, "no ringing call with channel %s", channel)
		}
		return
	}
	if c.state != StateRinging || c.responding != nil {
		reply <- errorf(CodeChannelInvalid, "call %s is %s, not ringing", channel, c.state)
		return
	}
	if reason == "" && !accepted {
		reason = ReasonRejected
	}
	p := &pendingResponse{accepted: accepted, reply: reply}
	p.timer = e.after(c, e.cfg.ResponseTimeout, func() { e.onResponseTimeout(c, p) })
	c.responding = p
	resp := &signaling.Response{Accepted: accepted, Reason: reason, ClientType: e.cfg.ClientType}
	if accepted {
		resp.Answer, resp.Preview = e.mediaAnswer(c)
	}
	e.send(c.peer, signaling.TypeResponse, c.channel, resp)
	e.retransmitResponse(c, p, resp)
}

// responseRetransmit is how often an unconfirmed response is sent again:
// it (or its confirmation) may have been lost while either side was
// reconnecting, and the caller answers a repeat of the winning response
// with the same confirmation (as SIP retransmits a 200 OK).
const responseRetransmit = time.Second

func (e *Engine) retransmitResponse(c *call, p *pendingResponse, resp *signaling.Response) {
	e.after(c, responseRetransmit, func() {
		if c.responding != p {
			return
		}
		e.send(c.peer, signaling.TypeResponse, c.channel, resp)
		e.retransmitResponse(c, p, resp)
	})
}

func (e *Engine) onResponseTimeout(c *call, p *pendingResponse) {
	if c.responding != p {
		return
	}
	c.responding = nil
	e.log.Warn("caller did not confirm our response", "channelId", c.channel)
	p.reply <- errorf(CodeTimeout, "caller did not confirm the response within %s", e.cfg.ResponseTimeout)
	e.emitHangup(c, HangupAbnormal, ReasonResponseFailed, "system")
	e.finish(c, finishInfo{disposition: DispFailed, hangupType: HangupAbnormal, reason: ReasonResponseFailed, by: "system"})
}

// --- API: both ---

// Control sends a control command to the peer of the current call.
func (e *Engine) Control(ctx context.Context, channel string, command int) error {
	if command <= 0 || command > 255 {
		return errorf(CodeInvalidArgument, "control command %d out of range", command)
	}
	var cErr error
	err := e.exec(ctx, func() {
		c := e.call
		if c == nil || (channel != "" && c.channel != channel) {
			cErr = errorf(CodeChannelInvalid, "no current call with channel %q", channel)
			return
		}
		if c.dir == outgoing && c.state == StateCalling {
			cErr = errorf(CodeChannelInvalid, "call %s is not answered yet", c.channel)
			return
		}
		e.applyLocalControl(c, command)
		e.send(c.peer, signaling.TypeControl, c.channel, &signaling.Control{Command: command})
	})
	if err != nil {
		return err
	}
	return cErr
}

// Hangup ends the current call: cancels it while calling, rejects it while
// ringing, hangs up when connected. Without a call it returns 9102.
func (e *Engine) Hangup(ctx context.Context) error {
	var hErr error
	err := e.exec(ctx, func() {
		c := e.call
		if c == nil {
			hErr = errorf(CodeChannelInvalid, "no current call")
			return
		}
		switch {
		case c.state == StateRinging:
			if c.responding == nil {
				// Hanging up a ringing call is rejecting it; the outcome
				// arrives through the normal response path.
				e.startResponse(c.channel, false, ReasonUserHangup, make(chan error, 1))
			}
		default:
			e.endLocal(HangupNormal, ReasonUserHangup, "local")
		}
	})
	if err != nil {
		return err
	}
	return hErr
}

// endLocal ends the current call from this side, telling the peer.
func (e *Engine) endLocal(hangupType int, reason, by string) {
	c := e.call
	if c == nil {
		return
	}
	role := e.role(c)
	if by == "local" {
		by = role
	}
	fi := finishInfo{hangupType: hangupType, reason: reason, by: by}
	switch c.state {
	case StateCalling:
		// Cancel: every ringing device of the callee stops.
		e.send(signaling.Address{Account: c.peer.Account}, signaling.TypeHangup, c.channel,
			&signaling.Hangup{Type: hangupType, Reason: reason})
		fi.disposition = DispCancelled
		if reason == ReasonPeerLost {
			fi.disposition = DispFailed
		}
	case StateRinging:
		// A device that shuts down or lost the caller says nothing: other
		// devices of the account may still answer.
		if reason != ReasonPeerLost && reason != ReasonShutdown {
			e.send(c.peer, signaling.TypeResponse, c.channel,
				&signaling.Response{Accepted: false, Reason: reason, ClientType: e.cfg.ClientType})
		}
		fi.disposition = DispNoAnswer
		if reason == ReasonPeerLost {
			fi.disposition = DispCancelled
		}
	case StateInCall:
		if reason != ReasonPeerLost {
			e.send(c.peer, signaling.TypeHangup, c.channel, &signaling.Hangup{Type: hangupType, Reason: reason})
		}
		fi.disposition = DispAnswered
	}
	e.emitHangup(c, hangupType, reason, "local")
	e.finish(c, fi)
}

func (e *Engine) role(c *call) string {
	if c.dir == outgoing {
		return "caller"
	}
	return "callee"
}

func (e *Engine) emitHangup(c *call, hangupType int, reason, by string) {
	e.emit(EvHangup, &HangupInfo{
		Timetag: e.cfg.Clock.Now().UnixMilli(), ChannelID: c.channel, Account: c.peer.Account,
		Type: hangupType, Reason: reason, By: by,
	})
}

// --- incoming messages ---

// HandleMessage processes one decoded envelope addressed to this device;
// called by the transport. Messages for other channels than the current
// call are ignored, duplicates dropped.
func (e *Engine) HandleMessage(env signaling.Envelope) {
	e.post(func() { e.onMessage(env) })
}

func (e *Engine) onMessage(env signaling.Envelope) {
	if env.From == e.cfg.Self || env.To.Account != e.cfg.Self.Account ||
		(env.To.Device != "" && env.To.Device != e.cfg.Self.Device) {
		return
	}
	if e.seenMsg.has(env.ID) {
		return
	}
	e.seenMsg.add(env.ID)
	switch p := env.Payload.(type) {
	case *signaling.Invite:
		e.onInvite(env, p)
	case *signaling.Control:
		e.onControl(env, p)
	case *signaling.Response:
		e.onResponse(env, p)
	case *signaling.ResponseAck:
		e.onResponseAck(env, p)
	case *signaling.AckSync:
		e.onAckSync(env, p)
	case *signaling.Hangup:
		e.onHangup(env, p)
	case *signaling.Sync:
		e.onSync(env, p)
	case *signaling.SyncAck:
		e.onSyncAck(env, p)
	case *signaling.SDP, *signaling.Candidate:
		// Media negotiation is handled by the media session (media.go).
		e.onMediaMessage(env)
	default:
		e.log.Warn("message without payload dropped", "type", env.Type, "id", env.ID)
	}
}

func (e *Engine) onInvite(env signaling.Envelope, inv *signaling.Invite) {
	if e.seenChan.has(env.Channel) {
		return // a re-sent invite we already answered
	}
	c := e.call
	// Glare: we are calling the account that is calling us. The call whose
	// channelId sorts lower survives; the other side cancels its own.
	if c != nil && c.dir == outgoing && c.state == StateCalling && !c.decided && c.peer.Account == env.From.Account {
		if c.channel < env.Channel {
			e.log.Info("glare: keeping our call, ignoring theirs", "ours", c.channel, "theirs", env.Channel)
			e.seenChan.add(env.Channel)
			return
		}
		e.log.Info("glare: cancelling our call, accepting theirs", "ours", c.channel, "theirs", env.Channel)
		e.endLocal(HangupNormal, ReasonGlare, "system")
		e.seenChan.add(env.Channel)
		e.ring(env, inv, true)
		return
	}
	e.seenChan.add(env.Channel)
	from := env.From
	e.send(from, signaling.TypeControl, env.Channel, &signaling.Control{Command: CmdStartNotifyReceived})
	if c != nil {
		e.log.Info("busy: rejecting invite", "caller", from.String(), "channelId", env.Channel, "current", c.channel)
		e.send(from, signaling.TypeControl, env.Channel, &signaling.Control{Command: CmdBusy})
		e.send(from, signaling.TypeResponse, env.Channel, &signaling.Response{Accepted: false, Busy: true, Reason: ReasonUserBusy, ClientType: e.cfg.ClientType})
		now := e.cfg.Clock.Now()
		e.writeBill(&call{channel: env.Channel, dir: incoming, callType: inv.CallType, peer: from, start: now},
			finishInfo{disposition: DispBusy, hangupType: HangupNormal, reason: ReasonUserBusy, by: "callee"}, now)
		return
	}
	e.ring(env, inv, false)
}

func (e *Engine) ring(env signaling.Envelope, inv *signaling.Invite, autoAccept bool) {
	if autoAccept {
		e.send(env.From, signaling.TypeControl, env.Channel, &signaling.Control{Command: CmdStartNotifyReceived})
	}
	c := &call{
		channel: env.Channel, dir: incoming, callType: inv.CallType, peer: env.From,
		start: e.cfg.Clock.Now(), push: inv.PushConfig, session: e.cfg.SessionConfig, invite: inv,
	}
	e.call = c
	e.setState(StateRinging)
	e.after(c, e.cfg.RingTimeout, func() { e.onRingTimeout(c) })
	info := &BeCallingInfo{
		Account: env.From.Account, Device: env.From.Device, Type: inv.CallType, ChannelID: env.Channel,
		Timetag: env.Time, PushConfig: inv.PushConfig, SessionConfig: inv.SessionConfig,
	}
	if inv.PushConfig != nil {
		info.Custom = inv.PushConfig.Custom
	}
	e.emit(EvBeCalling, info)
	if !autoAccept {
		e.startPreview(c)
	}
	if autoAccept {
		e.startResponse(c.channel, true, "", make(chan error, 1))
	}
}

func (e *Engine) onRingTimeout(c *call) {
	if c.state != StateRinging || c.responding != nil {
		return
	}
	e.log.Info("stopped ringing: nobody answered", "channelId", c.channel, "timeout", e.cfg.RingTimeout)
	e.endLocal(HangupAbnormal, ReasonRingTimeout, "system")
}

func (e *Engine) onControl(env signaling.Envelope, p *signaling.Control) {
	c := e.call
	if c == nil || c.channel != env.Channel {
		return
	}
	if c.dir == incoming && env.From != c.peer {
		return
	}
	if c.dir == outgoing {
		if env.From.Account != c.peer.Account || (c.peer.Device != "" && env.From.Device != c.peer.Device) {
			return
		}
		switch p.Command {
		case CmdStartNotifyReceived:
			c.acked[env.From.Device] = true
		case CmdBusy:
			c.busy[env.From.Device] = true
		}
	}
	e.onMediaControl(c, p.Command)
	e.emit(EvControl, &ControlInfo{ChannelID: c.channel, Account: env.From.Account, Device: env.From.Device, Command: p.Command})
}

func (e *Engine) onResponse(env signaling.Envelope, r *signaling.Response) {
	c := e.call
	from := env.From
	ack := func(ok bool, code int, msg string) {
		e.send(from, signaling.TypeResponseAck, env.Channel, &signaling.ResponseAck{OK: ok, Code: code, Msg: msg})
	}
	if c == nil || c.channel != env.Channel || c.dir != outgoing {
		if confirmed, ok := e.ended.get(env.Channel); ok {
			if confirmed[from.Device] {
				ack(true, 0, "") // a repeat: our confirmation was lost
				return
			}
			ack(false, CodeAnsweredElsewhere, "the call was already answered, rejected or ended")
		}
		return
	}
	if from.Account != c.peer.Account {
		return
	}
	if c.decided {
		if c.confirmed[from.Device] {
			ack(true, 0, "") // a repeat: our confirmation was lost
			return
		}
		ack(false, CodeAnsweredElsewhere, "another device responded first")
		return
	}
	if r.Busy {
		c.busy[from.Device] = true
		c.confirm(from.Device)
		ack(true, 0, "")
		if !e.allBusy(c) {
			return // another device of the account may still answer
		}
		c.decided = true
		e.send(signaling.Address{Account: c.peer.Account}, signaling.TypeAckSync, c.channel,
			&signaling.AckSync{Accepted: false, Device: from.Device, ClientType: r.ClientType, CallType: c.callType})
		e.emit(EvCallRejected, &CallRejectedInfo{Account: from.Account, Device: from.Device, Type: c.callType, ChannelID: c.channel, Busy: true, Reason: ReasonUserBusy})
		e.finish(c, finishInfo{disposition: DispBusy, hangupType: HangupNormal, reason: ReasonUserBusy, by: "callee"})
		return
	}
	c.decided = true
	c.confirm(from.Device)
	ack(true, 0, "")
	e.send(signaling.Address{Account: c.peer.Account}, signaling.TypeAckSync, c.channel,
		&signaling.AckSync{Accepted: r.Accepted, Device: from.Device, ClientType: r.ClientType, CallType: c.callType})
	if !r.Accepted {
		reason := r.Reason
		if reason == "" {
			reason = ReasonRejected
		}
		disp := DispRejected
		if reason == ReasonRingTimeout {
			disp = DispNoAnswer
		}
		e.emit(EvCallRejected, &CallRejectedInfo{Account: from.Account, Device: from.Device, Type: c.callType, ChannelID: c.channel, Reason: reason})
		e.finish(c, finishInfo{disposition: disp, hangupType: HangupNormal, reason: reason, by: "callee"})
		return
	}
	c.peer = from
	c.answer = e.cfg.Clock.Now()
	e.setState(StateInCall)
	e.after(c, e.cfg.MaxCallDuration, func() { e.onMaxDuration(c) })
	e.onMediaAnswer(c, r)
	e.log.Info("call accepted", "channelId", c.channel, "by", from.String())
	e.emit(EvCallAccepted, &CallAcceptedInfo{Account: from.Account, Device: from.Device, Type: c.callType, ChannelID: c.channel})
}

// allBusy reports whether every online device of the callee account (and
// every device that acknowledged the invite) answered busy.
func (e *Engine) allBusy(c *call) bool {
	for dev := range c.acked {
		if !c.busy[dev] {
			return false
		}
	}
	for _, dev := range e.onlineDevices(c.peer.Account) {
		if !c.busy[dev] {
			return false
		}
	}
	return true
}

func (e *Engine) onResponseAck(env signaling.Envelope, a *signaling.ResponseAck) {
	c := e.call
	if c == nil || c.channel != env.Channel || c.dir != incoming || env.From != c.peer {
		return
	}
	p := c.responding
	if p == nil {
		return
	}
	c.responding = nil
	p.timer.Stop()
	if !a.OK {
		code := a.Code
		if code == 0 {
			code = CodeChannelInvalid
		}
		p.reply <- errorf(code, "response refused by the caller: %s", a.Msg)
		e.emit(EvCallerAckSync, &CallerAckSyncInfo{Timetag: env.Time, ChannelID: c.channel, Type: c.callType})
		e.finish(c, finishInfo{disposition: DispNoAnswer, hangupType: HangupNormal, reason: ReasonAnsweredElse, by: "callee"})
		return
	}
	p.reply <- nil
	if !p.accepted {
		e.emitHangup(c, HangupNormal, ReasonRejected, "local")
		e.finish(c, finishInfo{disposition: DispRejected, hangupType: HangupNormal, reason: ReasonRejected, by: "callee"})
		return
	}
	c.answer = e.cfg.Clock.Now()
	e.setState(StateInCall)
	e.after(c, e.cfg.MaxCallDuration, func() { e.onMaxDuration(c) })
	e.log.Info("call accepted", "channelId", c.channel, "caller", c.peer.String())
	e.emit(EvCallAccepted, &CallAcceptedInfo{Account: c.peer.Account, Device: c.peer.Device, Type: c.callType, ChannelID: c.channel})
}

func (e *Engine) onAckSync(env signaling.Envelope, a *signaling.AckSync) {
	c := e.call
	if c == nil || c.channel != env.Channel || c.dir != incoming || env.From != c.peer {
		return
	}
	if a.Device == e.cfg.Self.Device {
		return // about our own response; the responseAck settles it
	}
	if p := c.responding; p != nil {
		c.responding = nil
		p.timer.Stop()
		p.reply <- errorf(CodeAnsweredElsewhere, "answered on device %s first", a.Device)
	}
	e.emit(EvCallerAckSync, &CallerAckSyncInfo{
		Timetag: env.Time, ChannelID: c.channel, Type: a.CallType, Accepted: a.Accepted,
		FromClientType: a.ClientType, Device: a.Device,
	})
	e.finish(c, finishInfo{disposition: DispNoAnswer, hangupType: HangupNormal, reason: ReasonAnsweredElse, by: "callee", answeredBy: a.Device})
}

func (e *Engine) onHangup(env signaling.Envelope, h *signaling.Hangup) {
	c := e.call
	if c == nil || c.channel != env.Channel {
		return
	}
	switch c.dir {
	case incoming:
		if env.From != c.peer {
			return
		}
	case outgoing:
		if env.From.Account != c.peer.Account || (c.peer.Device != "" && env.From.Device != c.peer.Device) {
			return
		}
		if c.state == StateCalling {
			return // a callee device declines by responding, not by hanging up
		}
	}
	if p := c.responding; p != nil {
		c.responding = nil
		p.timer.Stop()
		p.reply <- errorf(CodeChannelInvalid, "the caller hung up")
	}
	fi := finishInfo{hangupType: h.Type, reason: h.Reason, by: e.peerRole(c)}
	if fi.reason == "" {
		fi.reason = ReasonUserHangup
	}
	switch c.state {
	case StateRinging:
		fi.disposition = DispCancelled
		if h.Reason == ReasonInviteTimeout {
			fi.disposition = DispNoAnswer
		}
	case StateInCall:
		fi.disposition = DispAnswered
	}
	e.log.Info("peer hung up", "channelId", c.channel, "type", h.Type, "reason", fi.reason)
	e.emitHangup(c, h.Type, fi.reason, "remote")
	e.finish(c, fi)
}

func (e *Engine) peerRole(c *call) string {
	if c.dir == outgoing {
		return "callee"
	}
	return "caller"
}

func (e *Engine) onMaxDuration(c *call) {
	if c.state != StateInCall {
		return
	}
	e.log.Info("maximum call duration reached", "channelId", c.channel, "max", e.cfg.MaxCallDuration)
	e.endLocal(HangupNormal, ReasonMaxDuration, "system")
}

// --- the end of a call ---

type finishInfo struct {
	disposition string
	hangupType  int
	reason      string
	by          string
	answeredBy  string
}

// finish clears the current call, writes its bill and returns to idle.
func (e *Engine) finish(c *call, fi finishInfo) {
	c.stopTimers()
	e.closeMedia(c)
	if p := c.responding; p != nil {
		c.responding = nil
		p.reply <- errorf(CodeChannelInvalid, "call ended: %s", fi.reason)
	}
	e.ended.put(c.channel, c.confirmed)
	if e.call == c {
		e.call = nil
		e.setState(StateIdle)
	}
	e.writeBill(c, fi, e.cfg.Clock.Now())
}

// roundSeconds rounds to the nearest second, as the vendor's bills show
// durations (a 3.2 s call is 3 s, not 4).
func roundSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(d.Round(time.Second) / time.Second)
}

func (e *Engine) writeBill(c *call, fi finishInfo, end time.Time) {
	b := Bill{
		ChannelID:    c.channel,
		NetcallType:  c.callType,
		Time:         end.UnixMilli(),
		ID:           c.channel + "-" + e.cfg.Self.Account + "-" + e.cfg.Self.Device,
		Account:      e.cfg.Self.Account,
		Device:       e.cfg.Self.Device,
		Direction:    c.dir.String(),
		Start:        c.start.UnixMilli(),
		End:          end.UnixMilli(),
		TotalSeconds: roundSeconds(end.Sub(c.start)),
		Disposition:  fi.disposition,
		HangupType:   fi.hangupType,
		HangupReason: fi.reason,
		HungUpBy:     fi.by,
		AnsweredBy:   fi.answeredBy,
	}
	if c.dir == outgoing {
		b.Caller, b.CallerDevice, b.Callee = e.cfg.Self.Account, e.cfg.Self.Device, c.peer.Account
		if !c.answer.IsZero() {
			b.AnsweredBy = c.peer.Device
		}
	} else {
		b.Caller, b.CallerDevice, b.Callee = c.peer.Account, c.peer.Device, e.cfg.Self.Account
		if !c.answer.IsZero() {
			b.AnsweredBy = e.cfg.Self.Device
		}
	}
	b.Accounts = []string{b.Caller, b.Callee}
	if !c.answer.IsZero() {
		b.Answer = c.answer.UnixMilli()
		b.Billsec = roundSeconds(end.Sub(c.answer))
		b.Duration = b.Billsec
	}
	switch fi.disposition {
	case DispAnswered:
		b.Type = BillAnswered
	case DispRejected, DispBusy:
		b.Type = BillRejected
	default:
		b.Type = BillMissed
	}
	b.Media = e.mediaStats(c)
	if e.cfg.Bills != nil {
		if err := e.cfg.Bills.AddBill(b); err != nil {
			// The outbox failed (disk full?): the bill still goes out on
			// the event stream, and the failure is loud.
			e.log.Error("bill not stored durably", "id", b.ID, "err", err)
		}
	}
	e.log.Info("call ended", "channelId", b.ChannelID, "disposition", b.Disposition, "reason", b.HangupReason, "billsec", b.Billsec)
	e.emit(EvBill, &b)
}
