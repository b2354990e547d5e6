package signaling

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestHomeAssistantDiscovery(t *testing.T) {
	top := Topics{Prefix: "intercom"}
	self := Address{Account: "flat1", Device: "tab.let"}
	msgs, err := HomeAssistantDiscovery(top, self, "v1", "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]map[string]any{}
	for _, m := range msgs {
		if !strings.HasPrefix(m.Topic, "homeassistant/") || !strings.HasSuffix(m.Topic, "/config") {
			t.Fatalf("topic %s", m.Topic)
		}
		var cfg map[string]any
		if err := json.Unmarshal(m.Payload, &cfg); err != nil {
			t.Fatal(err)
		}
		uid := cfg["unique_id"].(string)
		if strings.ContainsAny(uid, "./") {
			t.Fatalf("unique_id %q has characters Home Assistant rejects", uid)
		}
		if seen[uid] != nil {
			t.Fatalf("duplicate unique_id %s", uid)
		}
		seen[uid] = cfg
	}
	state := seen["intercomd_flat1_tab_let_state"]
	if state == nil || state["state_topic"] != "intercom/device/flat1/tab.let/state" {
		t.Fatalf("state sensor %v", state)
	}
	answer := seen["intercomd_flat1_tab_let_answer"]
	if answer == nil || answer["command_topic"] != "intercom/device/flat1/tab.let/request" {
		t.Fatalf("answer button %v", answer)
	}
	// The button payload must be a request the device accepts.
	if _, err := DecodeRequest([]byte(answer["payload_press"].(string))); err != nil {
		t.Fatalf("answer payload rejected by the device: %v", err)
	}
	avail := state["availability"].([]any)[0].(map[string]any)
	if avail["topic"] != "intercom/device/flat1/tab.let/presence" {
		t.Fatalf("availability %v", avail)
	}
}
