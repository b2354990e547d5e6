package media

import (
	"testing"
	"time"
)

// Preview to two ringing indoor devices from one door camera: one session
// per device, both see video, none hears audio; at accept the winner gains
// audio without renegotiation, the loser's session closes, the camera keeps
// running for the winner and stops with it.
func TestSharedCameraPreviewToTwoDevices(t *testing.T) {
	e := testEngine(t)
	cam, err := newFixtureSource()
	if err != nil {
		t.Fatal(err)
	}
	shared := NewSharedVideo(cam, testLogger())
	doorMic := &toneSource{}
	var calls []*call
	for i := range 2 {
		indoor := newSide(t, CallTypeVideo, false)
		indoor.opts.Preview = true
		// A microphone cannot be shared either; the door's second session
		// gets its own tone here, as a real door would fan audio out too.
		mic := doorMic
		if i == 1 {
			mic = &toneSource{}
		}
		door := newEndpoint(t, e, "door", SessionOptions{CallType: CallTypeVideo, SendVideo: true, Preview: true, Video: fixtureVideoConfig},
			Devices{Video: shared.Source(), Audio: mic})
		in := newEndpoint(t, e, "indoor", indoor.opts, indoor.devices())
		c := connect(t, door, in)
		calls = append(calls, c)
	}
	for i, c := range calls {
		select {
		case <-c.b.first:
		case <-time.After(5 * time.Second):
			t.Fatalf("indoor %d: no preview video", i)
		}
	}
	if cam.starts.Load() != 1 {
		t.Fatalf("camera started %d times for two viewers", cam.starts.Load())
	}
	waitTone(t, doorMic, 10)
	for i, c := range calls {
		if n := c.b.s.Stats().Audio.PacketsReceived; n != 0 {
			t.Errorf("indoor %d got %d audio packets during preview", i, n)
		}
	}

	// Indoor 0 answers.
	calls[1].close(t)
	win := calls[0]
	defer win.close(t)
	if err := win.a.s.EnableAudio(); err != nil {
		t.Fatal(err)
	}
	if err := win.b.s.EnableAudio(); err != nil {
		t.Fatal(err)
	}
	f0 := win.b.s.Stats().Video.FramesReceived
	eventually(t, 5*time.Second, "winner: audio both ways and video on", func() bool {
		st := win.b.s.Stats()
		return st.Audio.PacketsReceived > 10 && win.a.s.Stats().Audio.PacketsReceived > 10 && st.Video.FramesReceived > f0+5
	})
	if cam.stops.Load() != 0 {
		t.Fatal("camera stopped while the winner still watches")
	}
	win.close(t)
	if cam.stops.Load() != 1 {
		t.Fatalf("camera stopped %d times after the last viewer left", cam.stops.Load())
	}
}
