package signaling

import "encoding/json"

// Presence is the retained payload of a device's presence topic. The broker
// publishes the same shape with State "offline" as the device's last will.
type Presence struct {
	V          int    `json:"v"`
	State      string `json:"state"` // "online" or "offline"
	Account    string `json:"account"`
	Device     string `json:"device"`
	Session    string `json:"session"` // random per process start: a changed session means the peer restarted
	ClientType string `json:"clientType,omitempty"`
	Version    string `json:"version,omitempty"`
	Since      int64  `json:"since"` // Unix ms
}

// Presence states.
const (
	Online  = "online"
	Offline = "offline"
)

// CallState is the retained payload of a device's state topic.
type CallState struct {
	V        int      `json:"v"`
	State    string   `json:"state"` // idle, calling, ringing, in_call
	Channel  string   `json:"channelId,omitempty"`
	Peer     *Address `json:"peer,omitempty"`
	CallType int      `json:"type,omitempty"`
	Since    int64    `json:"since"` // Unix ms
}

// Event is one message of a device's event stream: the engine's events
// (beCalling, callAccepted, …, bill) with their seed-shaped objects in Data.
type Event struct {
	V     int             `json:"v"`
	Event string          `json:"event"`
	Time  int64           `json:"time"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// Request is a command sent to a device's request topic. Transaction is
// echoed in the Response so a client can match them (as Zigbee2MQTT does).
type Request struct {
	Transaction string `json:"transaction,omitempty"`
	Action      string `json:"action"` // call, answer, reject, hangup, control, status, press, unlock
	Account     string `json:"account,omitempty"`
	Type        int    `json:"type,omitempty"`
	Command     int    `json:"command,omitempty"`
	Channel     string `json:"channelId,omitempty"`
	// ForceKeepCalling and Custom map to the invite's pushConfig.
	ForceKeepCalling bool   `json:"forceKeepCalling,omitempty"`
	Custom           string `json:"custom,omitempty"`
	// Button and Long are for "press": act as if that button was pressed.
	Button string `json:"button,omitempty"`
	Long   bool   `json:"long,omitempty"`
}

// CommandResponse answers one Request on the device's response topic.
type CommandResponse struct {
	Transaction string          `json:"transaction,omitempty"`
	Status      string          `json:"status"` // "ok" or "error"
	Error       string          `json:"error,omitempty"`
	Code        int             `json:"code,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
}
