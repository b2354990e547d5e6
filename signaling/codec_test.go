package signaling_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/intercomd/intercomd/signaling"
)

func u16(v uint16) *uint16 { return &v }
func str(s string) *string { return &s }

// validEnvelopes has one envelope of every type.
func validEnvelopes() []signaling.Envelope {
	from := signaling.Address{Account: "door", Device: "d1"}
	to := signaling.Address{Account: "flat1", Device: "a"}
	acct := signaling.Address{Account: "flat1"}
	mk := func(typ signaling.MsgType, to signaling.Address, p any) signaling.Envelope {
		return signaling.Envelope{Type: typ, ID: "id-" + string(typ), From: from, To: to, Channel: "chan-1", Time: 1700000000000, Payload: p}
	}
	return []signaling.Envelope{
		mk(signaling.TypeInvite, acct, &signaling.Invite{CallType: 2, PushConfig: &signaling.PushConfig{ForceKeepCalling: true, Custom: "x"}, SessionConfig: &signaling.SessionConfig{VideoQuality: 3}, Attempt: 1, Offer: "v=0\r\n", Preview: true}),
		mk(signaling.TypeControl, to, &signaling.Control{Command: 5}),
		mk(signaling.TypeResponse, to, &signaling.Response{Accepted: true, ClientType: "indoor", Answer: "v=0\r\n"}),
		mk(signaling.TypeResponseAck, to, &signaling.ResponseAck{OK: false, Code: 9103, Msg: "answered elsewhere"}),
		mk(signaling.TypeAckSync, acct, &signaling.AckSync{Accepted: true, Device: "b", CallType: 1}),
		mk(signaling.TypeHangup, to, &signaling.Hangup{Type: -1, Reason: "peer_lost"}),
		mk(signaling.TypeSDP, to, &signaling.SDP{Kind: "offer", SDP: "v=0\r\n"}),
		mk(signaling.TypeCandidate, to, &signaling.Candidate{Candidate: "candidate:1 1 udp 1 10.0.0.1 5000 typ host", SDPMid: str("0"), SDPMLineIndex: u16(0)}),
		mk(signaling.TypeCandidate, to, &signaling.Candidate{}), // end of candidates
	}
}

func TestCodecRoundTripEveryType(t *testing.T) {
	for _, env := range validEnvelopes() {
		t.Run(string(env.Type), func(t *testing.T) {
			data, err := signaling.Encode(env)
			if err != nil {
				t.Fatal(err)
			}
			got, err := signaling.Decode(data)
			if err != nil {
				t.Fatalf("Decode(%s): %v", data, err)
			}
			if got.V != signaling.Version || got.Type != env.Type || got.ID != env.ID || got.From != env.From || got.To != env.To || got.Channel != env.Channel || got.Time != env.Time {
				t.Fatalf("header %+v, want %+v", got, env)
			}
			want, _ := json.Marshal(env.Payload)
			have, _ := json.Marshal(got.Payload)
			if !bytes.Equal(want, have) {
				t.Fatalf("payload %s, want %s", have, want)
			}
			if again, _ := signaling.Encode(got); !bytes.Equal(again, data) {
				t.Fatalf("re-encoding changed the bytes:\n%s\n%s", again, data)
			}
		})
	}
}

// mutate encodes a valid control envelope as a map, applies fn and
// returns the JSON.
func mutate(t *testing.T, fn func(m map[string]any)) []byte {
	t.Helper()
	data, err := signaling.Encode(validEnvelopes()[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDecodeRejects(t *testing.T) {
	body := func(typ string, b string) func(m map[string]any) {
		return func(m map[string]any) { m["type"] = typ; m["body"] = json.RawMessage(b) }
	}
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"oversized", append([]byte(`{"v":1,"x":"`), bytes.Repeat([]byte("a"), signaling.MaxMessageSize)...), signaling.ErrTooLarge},
		{"empty", nil, signaling.ErrMalformed},
		{"not json", []byte("hello"), signaling.ErrMalformed},
		{"array", []byte(`[1,2]`), signaling.ErrMalformed},
		{"null", []byte(`null`), signaling.ErrVersion},
		{"trailing data", append(mutate(t, func(map[string]any) {}), []byte(` {}`)...), signaling.ErrMalformed},
		{"unknown field", mutate(t, func(m map[string]any) { m["extra"] = 1 }), signaling.ErrMalformed},
		{"wrong field type", mutate(t, func(m map[string]any) { m["time"] = "now" }), signaling.ErrMalformed},
		{"version 0", mutate(t, func(m map[string]any) { delete(m, "v") }), signaling.ErrVersion},
		{"version 2", mutate(t, func(m map[string]any) { m["v"] = 2 }), signaling.ErrVersion},
		{"unknown type", mutate(t, func(m map[string]any) { m["type"] = "teleport" }), signaling.ErrUnknownType},
		{"no type", mutate(t, func(m map[string]any) { delete(m, "type") }), signaling.ErrUnknownType},
		{"no id", mutate(t, func(m map[string]any) { delete(m, "id") }), signaling.ErrMalformed},
		{"long id", mutate(t, func(m map[string]any) { m["id"] = strings.Repeat("i", 65) }), signaling.ErrMalformed},
		{"no from", mutate(t, func(m map[string]any) { delete(m, "from") }), signaling.ErrMalformed},
		{"from device missing", mutate(t, func(m map[string]any) { m["from"] = map[string]any{"account": "door"} }), signaling.ErrMalformed},
		{"from wildcard", mutate(t, func(m map[string]any) { m["from"] = map[string]any{"account": "do+or", "device": "d"} }), signaling.ErrMalformed},
		{"from slash", mutate(t, func(m map[string]any) { m["from"] = map[string]any{"account": "door", "device": "d/1"} }), signaling.ErrMalformed},
		{"to missing", mutate(t, func(m map[string]any) { delete(m, "to") }), signaling.ErrMalformed},
		{"to device hash", mutate(t, func(m map[string]any) { m["to"] = map[string]any{"account": "flat1", "device": "#"} }), signaling.ErrMalformed},
		{"to long account", mutate(t, func(m map[string]any) { m["to"] = map[string]any{"account": strings.Repeat("a", 65)} }), signaling.ErrMalformed},
		{"no channel", mutate(t, func(m map[string]any) { delete(m, "channelId") }), signaling.ErrMalformed},
		{"long channel", mutate(t, func(m map[string]any) { m["channelId"] = strings.Repeat("c", 65) }), signaling.ErrMalformed},
		{"zero time", mutate(t, func(m map[string]any) { m["time"] = 0 }), signaling.ErrMalformed},
		{"negative time", mutate(t, func(m map[string]any) { m["time"] = -1 }), signaling.ErrMalformed},
		{"body not object", mutate(t, body("control", `"x"`)), signaling.ErrMalformed},
		{"body unknown field", mutate(t, body("control", `{"command":1,"x":2}`)), signaling.ErrMalformed},
		{"invite without type", mutate(t, body("invite", `{}`)), signaling.ErrMalformed},
		{"invite type 3", mutate(t, body("invite", `{"type":3}`)), signaling.ErrMalformed},
		{"ackSync without device", mutate(t, body("ackSync", `{"accepted":true}`)), signaling.ErrMalformed},
		{"hangup type 1", mutate(t, body("hangup", `{"type":1}`)), signaling.ErrMalformed},
		{"sdp bad kind", mutate(t, body("sdp", `{"kind":"pranswer","sdp":""}`)), signaling.ErrMalformed},
		{"candidate index too big", mutate(t, body("candidate", `{"candidate":"c","sdpMLineIndex":70000}`)), signaling.ErrMalformed},
		{"response wrong type", mutate(t, body("response", `{"accepted":"yes"}`)), signaling.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := signaling.Decode(tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode(%.200s) = %v, want %v", tc.data, err, tc.want)
			}
		})
	}
}

func TestEncodeRejects(t *testing.T) {
	env := validEnvelopes()[6]
	env.Payload = &signaling.SDP{Kind: "offer", SDP: strings.Repeat("a", signaling.MaxMessageSize)}
	if _, err := signaling.Encode(env); !errors.Is(err, signaling.ErrTooLarge) {
		t.Fatalf("Encode of an oversized SDP: %v", err)
	}
	env.Payload = func() {}
	if _, err := signaling.Encode(env); err == nil {
		t.Fatal("Encode of an unencodable payload succeeded")
	}
}

func TestCheckRoute(t *testing.T) {
	self := signaling.Address{Account: "flat1", Device: "a"}
	door := signaling.Address{Account: "door", Device: "d1"}
	env := validEnvelopes()[1] // door/d1 → flat1/a
	cases := []struct {
		name   string
		sender signaling.Address
		to     signaling.Address
		want   error
	}{
		{"direct", door, self, nil},
		{"account", door, signaling.Address{Account: "flat1"}, nil},
		{"topic sender is someone else", signaling.Address{Account: "door", Device: "d2"}, self, signaling.ErrSenderMismatch},
		{"topic sender other account", signaling.Address{Account: "evil", Device: "d1"}, self, signaling.ErrSenderMismatch},
		{"other account", door, signaling.Address{Account: "flat2"}, signaling.ErrNotForUs},
		{"other device", door, signaling.Address{Account: "flat1", Device: "b"}, signaling.ErrNotForUs},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := env
			e.To = tc.to
			if err := signaling.CheckRoute(e, tc.sender, self); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("CheckRoute = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDecodePresenceAndRequest(t *testing.T) {
	dev := signaling.Address{Account: "flat1", Device: "a"}
	ok := `{"v":1,"state":"online","account":"flat1","device":"a","session":"s1","since":5}`
	if p, err := signaling.DecodePresence([]byte(ok), dev); err != nil || p.Session != "s1" || p.State != signaling.Online {
		t.Fatalf("valid presence: %+v %v", p, err)
	}
	presence := []struct {
		name, data string
		want       error
	}{
		{"oversized", `{"v":1,"x":"` + strings.Repeat("a", signaling.MaxMessageSize) + `"}`, signaling.ErrTooLarge},
		{"garbage", `{`, signaling.ErrMalformed},
		{"unknown field", strings.Replace(ok, `"v":1`, `"v":1,"x":1`, 1), signaling.ErrMalformed},
		{"version", strings.Replace(ok, `"v":1`, `"v":3`, 1), signaling.ErrVersion},
		{"state", strings.Replace(ok, `online`, `away`, 1), signaling.ErrMalformed},
		{"other device", strings.Replace(ok, `"device":"a"`, `"device":"b"`, 1), signaling.ErrSenderMismatch},
		{"other account", strings.Replace(ok, `"account":"flat1"`, `"account":"flat2"`, 1), signaling.ErrSenderMismatch},
		{"no session", strings.Replace(ok, `"session":"s1"`, `"session":""`, 1), signaling.ErrMalformed},
	}
	for _, tc := range presence {
		if _, err := signaling.DecodePresence([]byte(tc.data), dev); !errors.Is(err, tc.want) {
			t.Errorf("presence %s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if r, err := signaling.DecodeRequest([]byte(`{"transaction":"1","action":"hangup"}`)); err != nil || r.Action != "hangup" {
		t.Fatalf("valid request: %+v %v", r, err)
	}
	requests := []struct {
		name, data string
		want       error
	}{
		{"oversized", `{"action":"` + strings.Repeat("a", signaling.MaxMessageSize) + `"}`, signaling.ErrTooLarge},
		{"garbage", `nope`, signaling.ErrMalformed},
		{"no action", `{"transaction":"1"}`, signaling.ErrMalformed},
		{"unknown field", `{"action":"call","to":"x"}`, signaling.ErrMalformed},
		{"trailing", `{"action":"call"}{}`, signaling.ErrMalformed},
		{"long transaction", `{"action":"call","transaction":"` + strings.Repeat("t", 129) + `"}`, signaling.ErrMalformed},
	}
	for _, tc := range requests {
		if _, err := signaling.DecodeRequest([]byte(tc.data)); !errors.Is(err, tc.want) {
			t.Errorf("request %s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, env := range validEnvelopes() {
		data, err := signaling.Encode(env)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"type":"invite","body":{"type":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := signaling.Decode(data)
		if err != nil {
			if env.Payload != nil || env.Type != "" {
				t.Fatalf("rejected message returned a non-zero envelope: %+v", env)
			}
			return
		}
		if env.Payload == nil {
			t.Fatal("accepted message without a payload")
		}
		b1, err := signaling.Encode(env)
		if err != nil {
			// Re-encoding may grow a message near the limit (invalid UTF-8
			// becomes U+FFFD): that must be the only reason.
			if !errors.Is(err, signaling.ErrTooLarge) {
				t.Fatalf("accepted message does not re-encode: %v", err)
			}
			return
		}
		env2, err := signaling.Decode(b1)
		if err != nil {
			t.Fatalf("re-encoded message rejected: %v\n%s", err, b1)
		}
		b2, err := signaling.Encode(env2)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("round trip not stable (%v):\n%s\n%s", err, b1, b2)
		}
	})
}
