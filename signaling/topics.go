package signaling

import (
	"fmt"
	"strings"
)

// DefaultPrefix is the first topic level of every intercomd topic.
const DefaultPrefix = "intercom"

// Topics builds and parses the topic layout under one prefix. The sender's
// account and device are the last two levels of the call and inbox topics so
// a broker ACL can pin each device to publishing as itself, and receivers
// drop envelopes whose From disagrees with the topic.
//
//	{p}/account/{acct}/call/{fromAcct}/{fromDev}     invites, ackSync, cancels
//	{p}/device/{acct}/{dev}/inbox/{fromAcct}/{fromDev}  direct messages
//	{p}/device/{acct}/{dev}/presence                 retained, last will "offline"
//	{p}/device/{acct}/{dev}/state                    retained call state
//	{p}/device/{acct}/{dev}/event                    event stream
//	{p}/device/{acct}/{dev}/bill                     call records (QoS 1)
//	{p}/device/{acct}/{dev}/request                  commands in
//	{p}/device/{acct}/{dev}/response                 command results out
type Topics struct {
	Prefix string
}

func (t Topics) p() string {
	if t.Prefix == "" {
		return DefaultPrefix
	}
	return t.Prefix
}

// AccountCall is where an account's devices receive invites from `from`.
func (t Topics) AccountCall(account string, from Address) string {
	return fmt.Sprintf("%s/account/%s/call/%s/%s", t.p(), account, from.Account, from.Device)
}

// AccountCallFilter subscribes to every sender's messages for account.
func (t Topics) AccountCallFilter(account string) string {
	return fmt.Sprintf("%s/account/%s/call/+/+", t.p(), account)
}

// Inbox is where device `to` receives direct messages from `from`.
func (t Topics) Inbox(to, from Address) string {
	return fmt.Sprintf("%s/device/%s/%s/inbox/%s/%s", t.p(), to.Account, to.Device, from.Account, from.Device)
}

// InboxFilter subscribes to every sender's direct messages for device.
func (t Topics) InboxFilter(device Address) string {
	return fmt.Sprintf("%s/device/%s/%s/inbox/+/+", t.p(), device.Account, device.Device)
}

// Device returns the per-device topic for leaf: presence, state, event,
// bill, request or response.
func (t Topics) Device(device Address, leaf string) string {
	return fmt.Sprintf("%s/device/%s/%s/%s", t.p(), device.Account, device.Device, leaf)
}

// PresenceFilter subscribes to the presence of every device.
func (t Topics) PresenceFilter() string {
	return t.p() + "/device/+/+/presence"
}

// Leaf names of per-device topics.
const (
	LeafPresence = "presence"
	LeafState    = "state"
	LeafEvent    = "event"
	LeafBill     = "bill"
	LeafRequest  = "request"
	LeafResponse = "response"
)

// Sender returns the publishing device encoded in a call or inbox topic.
func (t Topics) Sender(topic string) (Address, bool) {
	levels := strings.Split(topic, "/")
	if len(levels) < 2 {
		return Address{}, false
	}
	return Address{Account: levels[len(levels)-2], Device: levels[len(levels)-1]}, true
}

// PresenceDevice returns the device a presence topic belongs to.
func (t Topics) PresenceDevice(topic string) (Address, bool) {
	rest, ok := strings.CutPrefix(topic, t.p()+"/device/")
	if !ok {
		return Address{}, false
	}
	levels := strings.Split(rest, "/")
	if len(levels) != 3 || levels[2] != LeafPresence {
		return Address{}, false
	}
	return Address{Account: levels[0], Device: levels[1]}, true
}
