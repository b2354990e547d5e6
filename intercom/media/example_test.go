package media_test

import (
	"log/slog"
	"time"

	"github.com/intercomd/intercomd/device"
	"github.com/intercomd/intercomd/intercom/media"
	"github.com/intercomd/intercomd/signaling"
)

// How the call engine drives a session on each side. Signalling (publish)
// is the engine's MQTT path; errors are elided.
func Example() {
	engine, _ := media.NewEngine(media.Config{ // once per process
		ICEServers:             []media.ICEServer{{URLs: []string{"stun:stun.example.org:3478"}}},
		ICEDisconnectedTimeout: 5 * time.Second,
		ICEFailedTimeout:       10 * time.Second,
		Logger:                 slog.Default(),
	})
	publish := func(any) {}
	cb := media.Callbacks{
		LocalCandidate: func(c signaling.Candidate) { publish(c) }, // after the invite/response is out
		Renegotiate:    func(d signaling.SDP) { publish(d) },
		StateChanged: func(st media.State) {
			if st.Kind == media.StateFailed {
				_ = st.Reason // hang up with type -1 and this reason ("ice_failed" / "ice_timeout")
			}
		},
		CameraFailed: func(error) { /* send SELF_CAMERA_INVALID (10) */ },
		FirstFrame:   func(d time.Duration) { /* event stream */ },
	}

	// Door (caller): the offer goes in the invite.
	door, _ := engine.NewSession(media.SessionOptions{CallType: media.CallTypeVideo, SendVideo: true,
		Video: device.VideoConfig{Width: 640, Height: 480, FPS: 15}},
		media.Devices{Video: &device.TestPattern{}, Audio: device.NewSineTone(440)}, cb)
	offer, _ := door.CreateOffer()

	// Indoor unit (callee): answer goes in the response.
	indoor, _ := engine.NewSession(media.SessionOptions{CallType: media.CallTypeVideo},
		media.Devices{Speaker: &device.NullSink{}}, cb)
	answer, _ := indoor.AcceptOffer(offer)

	// Door: apply only the winning device's answer; candidates and SDP
	// messages from the peer go to AddCandidate / HandleSDP.
	_ = door.SetAnswer(answer)

	// Hang-up: the bill takes the final stats.
	_ = door.Close()
	_ = indoor.Close()
	_ = door.Stats()
}
