package intercom

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/intercomd/intercomd/signaling"
)

// Call types (the seed's NETCALL_TYPE_*).
const (
	TypeAudio = 1
	TypeVideo = 2
)

// Control commands (the seed's NETCALL_CONTROL_COMMAND_*).
const (
	CmdNotifyAudioOn        = 1
	CmdNotifyAudioOff       = 2
	CmdNotifyVideoOn        = 3
	CmdNotifyVideoOff       = 4
	CmdSwitchAudioToVideo   = 5
	CmdSwitchAudioToVideoOK = 6
	CmdSwitchAudioToVideoNo = 7
	CmdSwitchVideoToAudio   = 8
	CmdBusy                 = 9
	CmdSelfCameraInvalid    = 10
	CmdSelfOnBackground     = 11
	CmdStartNotifyReceived  = 12
	CmdNotifyRecordStart    = 13
	CmdNotifyRecordStop     = 14
	CmdSelfAudioInvalid     = 16
)

// Error codes returned to API callers (the vendor's codes where one exists).
const (
	CodeChannelInvalid    = 9102  // the call already ended or never existed
	CodeAnsweredElsewhere = 9103  // another device of the account responded first
	CodeCalleeOffline     = 11001 // no device of the callee account is online
	CodeBusy              = 9001  // local: this device is already in a call
	CodeInvalidArgument   = 9002  // local: bad parameters
	CodeTimeout           = 9003  // local: the peer did not confirm in time
	CodeNotConnected      = 9004  // local: no broker connection to send on
)

// Error is an API error with a numeric code, like the seed's err.event.code.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("intercom: %s (code %d)", e.Msg, e.Code) }

func errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of an *Error in err's chain, or 0.
func ErrorCode(err error) int {
	for err != nil {
		if e, ok := err.(*Error); ok {
			return e.Code
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return 0
		}
		err = u.Unwrap()
	}
	return 0
}

// State is a device's call state, as published on its retained state topic.
type State string

const (
	StateIdle    State = "idle"
	StateCalling State = "calling" // outgoing, the callee's devices ring
	StateRinging State = "ringing" // incoming, this device rings
	StateInCall  State = "in_call"
)

// Hangup types.
const (
	HangupNormal   = 0
	HangupAbnormal = -1
)

// Hangup reasons (Matrix's vocabulary, extended).
const (
	ReasonUserHangup     = "user_hangup"
	ReasonCancelled      = "cancelled" // caller hung up before an answer
	ReasonInviteTimeout  = "invite_timeout"
	ReasonRingTimeout    = "ring_timeout"
	ReasonUserBusy       = "user_busy"
	ReasonRejected       = "rejected"
	ReasonAnsweredElse   = "answered_elsewhere"
	ReasonCalleeOffline  = "callee_offline"
	ReasonPeerLost       = "peer_lost"
	ReasonICEFailed      = "ice_failed"
	ReasonICETimeout     = "ice_timeout"
	ReasonMediaFailed    = "user_media_failed"
	ReasonMaxDuration    = "max_duration"
	ReasonGlare          = "glare"
	ReasonShutdown       = "shutdown"
	ReasonResponseFailed = "response_failed"
)

// Dispositions, as Asterisk CDRs name them.
const (
	DispAnswered  = "ANSWERED"
	DispNoAnswer  = "NO ANSWER"
	DispBusy      = "BUSY"
	DispRejected  = "REJECTED"
	DispCancelled = "CANCELLED"
	DispFailed    = "FAILED"
)

// Event names: the seed's netcall events plus "state" and "bill".
const (
	EvBeCalling     = "beCalling"
	EvCallAccepted  = "callAccepted"
	EvCallRejected  = "callRejected"
	EvCallerAckSync = "callerAckSync"
	EvControl       = "control"
	EvHangup        = "hangup"
	EvBill          = "bill"
	EvState         = "state"
	EvMedia         = "media"
)

// Event is one thing the engine reports. Data is one of the *…Info types.
type Event struct {
	Name string
	Time time.Time
	Data any
}

// MarshalData renders Data as JSON for the event stream.
func (e Event) MarshalData() json.RawMessage {
	b, err := json.Marshal(e.Data)
	if err != nil {
		return nil
	}
	return b
}

// BeCallingInfo is the seed's beCalling object; pass it back to Response.
type BeCallingInfo struct {
	Account       string                   `json:"account"` // caller
	Device        string                   `json:"device"`  // caller's device
	Type          int                      `json:"type"`
	ChannelID     string                   `json:"channelId"`
	Timetag       int64                    `json:"timetag"`
	Custom        string                   `json:"custom,omitempty"`
	PushConfig    *signaling.PushConfig    `json:"pushConfig,omitempty"`
	SessionConfig *signaling.SessionConfig `json:"sessionConfig,omitempty"`
}

// CallAcceptedInfo is the seed's callAccepted object.
type CallAcceptedInfo struct {
	Account   string `json:"account"` // the peer
	Device    string `json:"device"`
	Type      int    `json:"type"`
	ChannelID string `json:"channelId"`
}

// CallRejectedInfo is the seed's callRejected object.
type CallRejectedInfo struct {
	Account   string `json:"account"`
	Device    string `json:"device,omitempty"`
	Type      int    `json:"type"`
	ChannelID string `json:"channelId"`
	Busy      bool   `json:"busy,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// CallerAckSyncInfo is the seed's callerAckSync object.
type CallerAckSyncInfo struct {
	Timetag        int64  `json:"timetag"`
	ChannelID      string `json:"channelId"`
	Type           int    `json:"type"`
	Accepted       bool   `json:"accepted"`
	FromClientType string `json:"fromClientType,omitempty"`
	Device         string `json:"device"` // the device that responded
}

// ControlInfo is the seed's control event object.
type ControlInfo struct {
	ChannelID string `json:"channelId"`
	Account   string `json:"account"`
	Device    string `json:"device"`
	Command   int    `json:"command"`
}

// HangupInfo is the seed's hangup object, with a reason and who ended it.
type HangupInfo struct {
	Timetag   int64  `json:"timetag"`
	ChannelID string `json:"channelId"`
	Account   string `json:"account"` // the peer
	Type      int    `json:"type"`
	Reason    string `json:"reason"`
	By        string `json:"by"` // "local", "remote" or "system"
}

// StateInfo is a call-state change.
type StateInfo struct {
	State     State              `json:"state"`
	ChannelID string             `json:"channelId,omitempty"`
	Peer      *signaling.Address `json:"peer,omitempty"`
	Type      int                `json:"type,omitempty"`
	Since     int64              `json:"since"`
}

// Bill is the record of one call attempt, published by each endpoint when
// it ends. The first six fields are the seed's netcallBill; the rest are
// CDR fields.
type Bill struct {
	Type        string   `json:"type"` // netcallBill (answered), netcallMiss, netcallReject
	Accounts    []string `json:"accounts"`
	ChannelID   string   `json:"channelId"`
	Duration    int64    `json:"duration"` // seconds talked (answer → end), rounded to the nearest second
	NetcallType int      `json:"netcallType"`
	Time        int64    `json:"time"` // end, Unix ms

	ID           string `json:"id"` // unique per call and reporting device: de-duplicate on it
	Account      string `json:"account"`
	Device       string `json:"device"`
	Direction    string `json:"direction"` // outgoing or incoming
	Caller       string `json:"caller"`
	CallerDevice string `json:"callerDevice"`
	Callee       string `json:"callee"`
	AnsweredBy   string `json:"answeredBy,omitempty"` // the callee device that answered
	Start        int64  `json:"start"`                // invite sent / received, Unix ms
	Answer       int64  `json:"answer,omitempty"`     // Unix ms
	End          int64  `json:"end"`                  // Unix ms
	TotalSeconds int64  `json:"totalDuration"`        // start → end, rounded
	Billsec      int64  `json:"billsec"`              // answer → end, rounded
	Disposition  string `json:"disposition"`
	HangupType   int    `json:"hangupType"`
	HangupReason string `json:"hangupReason"`
	HungUpBy     string `json:"hungUpBy"` // caller, callee or system

	Media json.RawMessage `json:"media,omitempty"`
}

// Bill family types.
const (
	BillAnswered = "netcallBill"
	BillMissed   = "netcallMiss"
	BillRejected = "netcallReject"
)
