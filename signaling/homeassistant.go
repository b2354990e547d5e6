package signaling

import (
	"encoding/json"
	"fmt"
)

// DefaultDiscoveryPrefix is Home Assistant's MQTT discovery prefix.
const DefaultDiscoveryPrefix = "homeassistant"

// DiscoveryMessage is one retained Home Assistant discovery config.
type DiscoveryMessage struct {
	Topic   string
	Payload []byte
}

// HomeAssistantDiscovery returns the discovery configs that make a device
// appear in Home Assistant: its call state, a ringing sensor, the last
// call record, and buttons that answer, reject and hang up through the
// request topic. Availability follows the device's presence (last will).
func HomeAssistantDiscovery(t Topics, self Address, version, discoveryPrefix string) ([]DiscoveryMessage, error) {
	if discoveryPrefix == "" {
		discoveryPrefix = DefaultDiscoveryPrefix
	}
	id := "intercomd_" + sanitizeID(self.Account) + "_" + sanitizeID(self.Device)
	dev := map[string]any{
		"identifiers":  []string{id},
		"name":         "Intercom " + self.String(),
		"manufacturer": "intercomd",
		"model":        "intercomd",
		"sw_version":   version,
	}
	avail := []map[string]string{{
		"topic":                 t.Device(self, LeafPresence),
		"value_template":        "{{ value_json.state }}",
		"payload_available":     Online,
		"payload_not_available": Offline,
	}}
	base := func(name, key string) map[string]any {
		return map[string]any{
			"name":         name,
			"unique_id":    id + "_" + key,
			"object_id":    id + "_" + key,
			"device":       dev,
			"availability": avail,
		}
	}
	var out []DiscoveryMessage
	add := func(component, key string, cfg map[string]any) error {
		b, err := json.Marshal(cfg)
		if err != nil {
			return fmt.Errorf("home assistant discovery %s: %w", key, err)
		}
		out = append(out, DiscoveryMessage{Topic: fmt.Sprintf("%s/%s/%s/%s/config", discoveryPrefix, component, id, key), Payload: b})
		return nil
	}

	state := base("Call state", "state")
	state["state_topic"] = t.Device(self, LeafState)
	state["value_template"] = "{{ value_json.state }}"
	state["json_attributes_topic"] = t.Device(self, LeafState)
	state["device_class"] = "enum"
	state["options"] = []string{"idle", "calling", "ringing", "in_call"}
	state["icon"] = "mdi:doorbell-video"
	if err := add("sensor", "state", state); err != nil {
		return nil, err
	}

	ringing := base("Ringing", "ringing")
	ringing["state_topic"] = t.Device(self, LeafState)
	ringing["value_template"] = "{{ 'ON' if value_json.state == 'ringing' else 'OFF' }}"
	ringing["device_class"] = "sound"
	if err := add("binary_sensor", "ringing", ringing); err != nil {
		return nil, err
	}

	last := base("Last call", "last_call")
	last["state_topic"] = t.Device(self, LeafBill)
	last["value_template"] = "{{ value_json.disposition }}"
	last["json_attributes_topic"] = t.Device(self, LeafBill)
	last["icon"] = "mdi:phone-log"
	if err := add("sensor", "last_call", last); err != nil {
		return nil, err
	}

	for _, b := range []struct{ key, name, action, icon string }{
		{"answer", "Answer", "answer", "mdi:phone"},
		{"reject", "Reject", "reject", "mdi:phone-cancel"},
		{"hangup", "Hang up", "hangup", "mdi:phone-hangup"},
	} {
		cfg := base(b.name, b.key)
		cfg["command_topic"] = t.Device(self, LeafRequest)
		cfg["payload_press"] = fmt.Sprintf(`{"action":%q,"transaction":"homeassistant"}`, b.action)
		cfg["icon"] = b.icon
		if err := add("button", b.key, cfg); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sanitizeID keeps what Home Assistant accepts in ids: [a-zA-Z0-9_-].
func sanitizeID(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}
