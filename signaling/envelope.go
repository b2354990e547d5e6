// Package signaling is intercomd's MQTT transport: the topic layout, the
// message envelope and its strict codec, presence, the client that keeps a
// broker connection alive, the durable bill outbox and the embedded broker.
// It is the only package that knows MQTT.
package signaling

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Version is the envelope version this build speaks. A message with another
// version is dropped: a newer peer must keep speaking 1 to older ones.
const Version = 1

// MaxMessageSize bounds every payload we accept; SDP with many candidates is
// well under 16 KiB, so 64 KiB leaves room without letting a peer make us
// allocate without limit.
const MaxMessageSize = 64 << 10

// MsgType names what an envelope carries.
type MsgType string

const (
	TypeInvite      MsgType = "invite"      // caller → callee account: ring every device
	TypeControl     MsgType = "control"     // either side: a netcall control command
	TypeResponse    MsgType = "response"    // callee device → caller device: accept / reject
	TypeResponseAck MsgType = "responseAck" // caller → the responding device: you won, or 9103
	TypeAckSync     MsgType = "ackSync"     // caller → callee account: answered on device X, stop ringing
	TypeHangup      MsgType = "hangup"      // either side: the call is over (or cancelled while ringing)
	TypeSDP         MsgType = "sdp"         // either side: a session description (renegotiation)
	TypeCandidate   MsgType = "candidate"   // either side: a trickled ICE candidate
	TypeSync        MsgType = "sync"        // after a reconnect: is our call still alive on your side?
	TypeSyncAck     MsgType = "syncAck"     // answer to sync
)

// Address names an endpoint: an account (a flat, a door) and one of its
// devices. An empty Device addresses every device of the account.
type Address struct {
	Account string `json:"account"`
	Device  string `json:"device,omitempty"`
}

func (a Address) String() string {
	if a.Device == "" {
		return a.Account
	}
	return a.Account + "/" + a.Device
}

// Envelope is the one message shape on the call and inbox topics.
type Envelope struct {
	V       int             `json:"v"`
	Type    MsgType         `json:"type"`
	ID      string          `json:"id"`
	From    Address         `json:"from"`
	To      Address         `json:"to"`
	Channel string          `json:"channelId"`
	Time    int64           `json:"time"` // sender's clock, Unix ms
	Body    json.RawMessage `json:"body,omitempty"`

	// Payload is the decoded body, set by Decode: *Invite, *Control,
	// *Response, *ResponseAck, *AckSync, *Hangup, *SDP, *Candidate, *Sync or *SyncAck.
	Payload any `json:"-"`
}

// PushConfig is the seed's pushConfig, carried to the callee.
type PushConfig struct {
	Enable           bool   `json:"enable,omitempty"`
	NeedBadge        bool   `json:"needBadge,omitempty"`
	NeedPushNick     bool   `json:"needPushNick,omitempty"`
	PushContent      string `json:"pushContent,omitempty"`
	Custom           string `json:"custom,omitempty"`
	PushPayload      string `json:"pushPayload,omitempty"`
	Sound            string `json:"sound,omitempty"`
	ForceKeepCalling bool   `json:"forceKeepCalling,omitempty"`
}

// SessionConfig is the seed's sessionConfig. It is local to each side; the
// caller's copy travels in the invite only so the callee can see what was
// asked for.
type SessionConfig struct {
	VideoQuality   int    `json:"videoQuality,omitempty"`
	VideoFrameRate int    `json:"videoFrameRate,omitempty"`
	VideoBitrate   int    `json:"videoBitrate,omitempty"`
	RecordVideo    bool   `json:"recordVideo,omitempty"`
	RecordAudio    bool   `json:"recordAudio,omitempty"`
	HighAudio      bool   `json:"highAudio,omitempty"`
	BypassRtmp     bool   `json:"bypassRtmp,omitempty"`
	RtmpURL        string `json:"rtmpUrl,omitempty"`
	RtmpRecord     bool   `json:"rtmpRecord,omitempty"`
	SplitMode      int    `json:"splitMode,omitempty"`
}

// Invite asks every device of the callee account to ring.
type Invite struct {
	CallType      int            `json:"type"`
	PushConfig    *PushConfig    `json:"pushConfig,omitempty"`
	SessionConfig *SessionConfig `json:"sessionConfig,omitempty"`
	// Attempt counts re-sends of the same invite (forceKeepCalling); the
	// callee answers START_NOTIFY_RECEIVED to each but rings once.
	Attempt int `json:"attempt,omitempty"`
	// Offer is the caller's SDP offer, so the accepting device can answer
	// with its own SDP in the response and media starts at once.
	Offer string `json:"offer,omitempty"`
	// Preview asks ringing devices for one-way video before answering.
	Preview bool `json:"preview,omitempty"`
}

// Control carries a netcall control command (see the Cmd* constants).
type Control struct {
	Command int `json:"command"`
}

// Response is a callee device's accept or reject.
type Response struct {
	Accepted   bool   `json:"accepted"`
	Busy       bool   `json:"busy,omitempty"`
	Reason     string `json:"reason,omitempty"`
	ClientType string `json:"clientType,omitempty"`
	Answer     string `json:"answer,omitempty"` // SDP answer to the invite's offer
	// Preview: the device accepts on the preview session it already has
	// with the caller (no Answer); the caller promotes that session.
	Preview bool `json:"preview,omitempty"`
}

// ResponseAck tells a responding device whether its response won.
type ResponseAck struct {
	OK   bool   `json:"ok"`
	Code int    `json:"code,omitempty"` // 9103 answered elsewhere, 9102 channel gone
	Msg  string `json:"message,omitempty"`
}

// AckSync tells every device of the callee account that one of them
// responded (the seed's callerAckSync).
type AckSync struct {
	Accepted   bool   `json:"accepted"`
	Device     string `json:"device"`
	ClientType string `json:"clientType,omitempty"`
	CallType   int    `json:"type"`
}

// Hangup ends a call, or cancels it while ringing.
type Hangup struct {
	Type   int    `json:"type"` // 0 normal, -1 abnormal
	Reason string `json:"reason,omitempty"`
}

// SDP is a session description sent outside the invite/response pair.
type SDP struct {
	Kind string `json:"kind"` // "offer" or "answer"
	SDP  string `json:"sdp"`
	// Session is "" for the call's session and "preview" for a ringing
	// device's preview session with the caller.
	Session string `json:"session,omitempty"`
}

// SessionPreview names a preview session in SDP and Candidate.
const SessionPreview = "preview"

// Sync asks the peer whether the call (the envelope's channelId) is
// still alive on its side: messages sent while one side was disconnected
// may have been lost with its clean session.
type Sync struct {
	State string `json:"state"` // the sender's call state
}

// SyncAck answers Sync: Alive false means the call is over on this side.
type SyncAck struct {
	Alive bool   `json:"alive"`
	State string `json:"state,omitempty"`
}

// Candidate is a trickled ICE candidate; an empty Candidate ends gathering.
type Candidate struct {
	Candidate     string  `json:"candidate"`
	SDPMid        *string `json:"sdpMid,omitempty"`
	SDPMLineIndex *uint16 `json:"sdpMLineIndex,omitempty"`
	Session       string  `json:"session,omitempty"` // as in SDP
}

// Errors Decode wraps, so callers and tests can tell the causes apart.
var (
	ErrTooLarge    = errors.New("message too large")
	ErrMalformed   = errors.New("malformed message")
	ErrVersion     = errors.New("unsupported envelope version")
	ErrUnknownType = errors.New("unknown message type")
)

func newPayload(t MsgType) any {
	switch t {
	case TypeInvite:
		return &Invite{}
	case TypeControl:
		return &Control{}
	case TypeResponse:
		return &Response{}
	case TypeResponseAck:
		return &ResponseAck{}
	case TypeAckSync:
		return &AckSync{}
	case TypeHangup:
		return &Hangup{}
	case TypeSDP:
		return &SDP{}
	case TypeCandidate:
		return &Candidate{}
	case TypeSync:
		return &Sync{}
	case TypeSyncAck:
		return &SyncAck{}
	}
	return nil
}

// strictUnmarshal decodes exactly one JSON value, refusing unknown fields
// and trailing data.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

// Decode parses and validates one envelope. Every error wraps one of
// ErrTooLarge, ErrMalformed, ErrVersion or ErrUnknownType.
func Decode(data []byte) (Envelope, error) {
	var env Envelope
	if len(data) > MaxMessageSize {
		return env, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxMessageSize)
	}
	if err := strictUnmarshal(data, &env); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if env.V != Version {
		return Envelope{}, fmt.Errorf("%w: %d (this build speaks %d)", ErrVersion, env.V, Version)
	}
	payload := newPayload(env.Type)
	if payload == nil {
		return Envelope{}, fmt.Errorf("%w: %q", ErrUnknownType, env.Type)
	}
	if err := env.validate(); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	body := env.Body
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := strictUnmarshal(body, payload); err != nil {
		return Envelope{}, fmt.Errorf("%w: %s body: %v", ErrMalformed, env.Type, err)
	}
	if err := validatePayload(payload); err != nil {
		return Envelope{}, fmt.Errorf("%w: %s body: %v", ErrMalformed, env.Type, err)
	}
	env.Payload = payload
	return env, nil
}

func (e *Envelope) validate() error {
	if e.ID == "" || len(e.ID) > 64 {
		return errors.New("id must be 1-64 characters")
	}
	if err := ValidateName("from.account", e.From.Account); err != nil {
		return err
	}
	if err := ValidateName("from.device", e.From.Device); err != nil {
		return err
	}
	if err := ValidateName("to.account", e.To.Account); err != nil {
		return err
	}
	if e.To.Device != "" {
		if err := ValidateName("to.device", e.To.Device); err != nil {
			return err
		}
	}
	if e.Channel == "" || len(e.Channel) > 64 {
		return errors.New("channelId must be 1-64 characters")
	}
	if e.Time <= 0 {
		return errors.New("time must be a positive Unix millisecond timestamp")
	}
	return nil
}

func validatePayload(p any) error {
	switch p := p.(type) {
	case *Invite:
		if p.CallType != 1 && p.CallType != 2 {
			return fmt.Errorf("type %d is neither 1 (audio) nor 2 (video)", p.CallType)
		}
	case *AckSync:
		if p.Device == "" {
			return errors.New("device is required")
		}
	case *Hangup:
		if p.Type != 0 && p.Type != -1 {
			return fmt.Errorf("hangup type %d is neither 0 nor -1", p.Type)
		}
	case *SDP:
		if p.Kind != "offer" && p.Kind != "answer" {
			return fmt.Errorf("sdp kind %q is neither offer nor answer", p.Kind)
		}
		if p.Session != "" && p.Session != SessionPreview {
			return fmt.Errorf("sdp session %q is neither empty nor %q", p.Session, SessionPreview)
		}
	case *Candidate:
		if p.Session != "" && p.Session != SessionPreview {
			return fmt.Errorf("candidate session %q is neither empty nor %q", p.Session, SessionPreview)
		}
	}
	return nil
}

// ValidateName checks an account or device name: it becomes a topic level,
// so it must not hold MQTT wildcards or separators.
func ValidateName(field, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", field)
	}
	if len(s) > 64 {
		return fmt.Errorf("%s %q is longer than 64 bytes", field, s)
	}
	if strings.ContainsAny(s, "/+#\x00 ") {
		return fmt.Errorf("%s %q contains one of / + # NUL or space", field, s)
	}
	return nil
}

// Encode marshals env.Payload into the body and the envelope to JSON.
func Encode(env Envelope) ([]byte, error) {
	body, err := json.Marshal(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s body: %w", env.Type, err)
	}
	env.V = Version
	env.Body = body
	out, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode %s envelope: %w", env.Type, err)
	}
	if len(out) > MaxMessageSize {
		return nil, fmt.Errorf("encode %s: %w: %d bytes", env.Type, ErrTooLarge, len(out))
	}
	return out, nil
}
