package media

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/intercomd/intercomd/device"
)

type side struct {
	cam  *fixtureSource
	mic  *toneSource
	spk  *countSink
	opts SessionOptions
}

func newSide(tb testing.TB, callType int, sendVideo bool) *side {
	tb.Helper()
	cam, err := newFixtureSource()
	if err != nil {
		tb.Fatalf("fixture: %v", err)
	}
	return &side{
		cam: cam, mic: &toneSource{}, spk: &countSink{},
		opts: SessionOptions{CallType: callType, SendVideo: sendVideo, Video: fixtureVideoConfig},
	}
}

var fixtureVideoConfig = device.VideoConfig{Width: 640, Height: 480, FPS: 15}

func (sd *side) devices() Devices {
	return Devices{Video: sd.cam, Audio: sd.mic, Speaker: sd.spk}
}

func startCall(t *testing.T, e *Engine, a, b *side) *call {
	t.Helper()
	ea := newEndpoint(t, e, "caller", a.opts, a.devices())
	eb := newEndpoint(t, e, "callee", b.opts, b.devices())
	c := connect(t, ea, eb)
	t.Cleanup(func() { c.close(t) })
	waitState(t, ea, StateConnected, 5*time.Second)
	waitState(t, eb, StateConnected, 5*time.Second)
	return c
}

// A video call where both sides send video (door ↔ door-like) carries
// frames and audio both ways, and stats agree across the two ends.
func TestVideoCallBothWays(t *testing.T) {
	e := testEngine(t)
	a, b := newSide(t, CallTypeVideo, true), newSide(t, CallTypeVideo, true)
	c := startCall(t, e, a, b)

	select {
	case d := <-c.b.first:
		t.Logf("callee first frame %v after answer", d)
	case <-time.After(5 * time.Second):
		t.Fatal("callee: no first frame")
	}
	select {
	case <-c.a.first:
	case <-time.After(5 * time.Second):
		t.Fatal("caller: no first frame")
	}
	eventually(t, 5*time.Second, "frames and audio both ways", func() bool {
		sa, sb := c.a.s.Stats(), c.b.s.Stats()
		return sa.Video.FramesReceived >= 10 && sb.Video.FramesReceived >= 10 &&
			sa.Audio.PacketsReceived >= 20 && sb.Audio.PacketsReceived >= 20 &&
			a.spk.samples.Load() > 0 && b.spk.samples.Load() > 0
	})
	if a.spk.nonZero.Load() == 0 || b.spk.nonZero.Load() == 0 {
		t.Error("speaker got only silence: G.711 path broken")
	}

	// Stop sending, let what is in flight land, then compare both ends.
	c.a.s.SetAudioMuted(true)
	c.a.s.SetVideoMuted(true)
	c.b.s.SetAudioMuted(true)
	c.b.s.SetVideoMuted(true)
	waitFrames(t, a.cam, 3)
	eventually(t, 3*time.Second, "counters to settle", func() bool {
		sa, sb := c.a.s.Stats(), c.b.s.Stats()
		return sa.Video.PacketsSent == sb.Video.PacketsReceived && sb.Video.PacketsSent == sa.Video.PacketsReceived &&
			sa.Audio.PacketsSent == sb.Audio.PacketsReceived && sb.Audio.PacketsSent == sa.Audio.PacketsReceived
	})
	sa, sb := c.a.s.Stats(), c.b.s.Stats()
	if sa.Video.BytesSent != sb.Video.BytesReceived || sa.Audio.BytesSent != sb.Audio.BytesReceived {
		t.Errorf("bytes disagree: a sent v%d a%d, b received v%d a%d", sa.Video.BytesSent, sa.Audio.BytesSent, sb.Video.BytesReceived, sb.Audio.BytesReceived)
	}
	if sb.Video.FramesReceived > sa.Video.FramesSent || sb.Video.FramesReceived+sb.Video.FramesDropped < sa.Video.FramesSent-1 {
		t.Errorf("frames: a sent %d, b received %d dropped %d", sa.Video.FramesSent, sb.Video.FramesReceived, sb.Video.FramesDropped)
	}
	if sb.Video.KeyframesReceived == 0 || sb.FirstFrameMs <= 0 || sb.ConnectMs <= 0 {
		t.Errorf("callee stats missing keyframes/first frame/connect: %+v", sb)
	}
	if sb.LatencySamples == 0 || sb.CaptureLatencyP50Ms <= 0 || sb.CaptureLatencyP50Ms > 200 {
		t.Errorf("capture latency p50 %.2f ms over %d samples", sb.CaptureLatencyP50Ms, sb.LatencySamples)
	}
	if sb.Video.PacketsLost != 0 || sa.Audio.PacketsLost != 0 {
		t.Errorf("loss on loopback: %+v / %+v", sa, sb)
	}
	js, _ := json.Marshal(sb)
	t.Logf("callee stats: %s", js)
}

// An audio call negotiates no video and carries G.711 both ways.
func TestAudioCallBothWays(t *testing.T) {
	e := testEngine(t)
	a, b := newSide(t, CallTypeAudio, true), newSide(t, CallTypeAudio, false)
	c := startCall(t, e, a, b)
	eventually(t, 5*time.Second, "audio both ways", func() bool {
		return c.a.s.Stats().Audio.PacketsReceived >= 10 && c.b.s.Stats().Audio.PacketsReceived >= 10 &&
			a.spk.nonZero.Load() > 0 && b.spk.nonZero.Load() > 0
	})
	if a.cam.starts.Load() != 0 {
		t.Error("camera started for an audio call")
	}
	sa, sb := c.a.s.Stats(), c.b.s.Stats()
	if sa.Video.PacketsSent+sb.Video.PacketsSent+sa.Video.PacketsReceived+sb.Video.PacketsReceived != 0 {
		t.Errorf("video packets in an audio call: %+v %+v", sa.Video, sb.Video)
	}
}

// The usual intercom call: the door sends video, the indoor unit sends
// none; audio flows both ways.
func TestDoorToIndoorVideo(t *testing.T) {
	e := testEngine(t)
	door, indoor := newSide(t, CallTypeVideo, true), newSide(t, CallTypeVideo, false)
	c := startCall(t, e, door, indoor)
	select {
	case <-c.b.first:
	case <-time.After(5 * time.Second):
		t.Fatal("indoor: no first frame")
	}
	eventually(t, 5*time.Second, "door video and audio both ways", func() bool {
		return c.b.s.Stats().Video.FramesReceived >= 5 &&
			c.a.s.Stats().Audio.PacketsReceived >= 10 && c.b.s.Stats().Audio.PacketsReceived >= 10
	})
	if n := c.a.s.Stats().Video.PacketsReceived; n != 0 {
		t.Errorf("door received %d video packets from an indoor unit that sends none", n)
	}
	if indoor.cam.starts.Load() != 0 {
		t.Error("indoor camera started although SendVideo is false")
	}
	// RTT comes from RTCP receiver reports, sent about once a second.
	eventually(t, 4*time.Second, "RTT from receiver reports on both sides", func() bool {
		return c.a.s.Stats().RTTMs > 0 && c.b.s.Stats().RTTMs > 0
	})
	if rtt := c.a.s.Stats().RTTMs; rtt > 100 {
		t.Errorf("loopback RTT %.2f ms", rtt)
	}
}

// Mute stops the packets (the peer's counters stop growing) and unmute
// resumes them; video resumes at a keyframe.
func TestMuteUnmute(t *testing.T) {
	e := testEngine(t)
	a, b := newSide(t, CallTypeVideo, true), newSide(t, CallTypeVideo, false)
	c := startCall(t, e, a, b)
	eventually(t, 5*time.Second, "media flowing", func() bool {
		st := c.b.s.Stats()
		return st.Video.FramesReceived >= 3 && st.Audio.PacketsReceived >= 10
	})

	c.a.s.SetAudioMuted(true)
	c.a.s.SetVideoMuted(true)
	// What was sent before the mute lands; after that nothing more arrives
	// while the camera and microphone keep producing.
	eventually(t, 3*time.Second, "in-flight packets to land", func() bool {
		sa, sb := c.a.s.Stats(), c.b.s.Stats()
		return sb.Audio.PacketsReceived == sa.Audio.PacketsSent && sb.Video.PacketsReceived == sa.Video.PacketsSent
	})
	muted := c.b.s.Stats()
	waitFrames(t, a.cam, 6)
	waitTone(t, a.mic, 20)
	after := c.b.s.Stats()
	if after.Audio.PacketsReceived != muted.Audio.PacketsReceived || after.Video.PacketsReceived != muted.Video.PacketsReceived {
		t.Fatalf("packets kept arriving while muted: audio %d→%d video %d→%d",
			muted.Audio.PacketsReceived, after.Audio.PacketsReceived, muted.Video.PacketsReceived, after.Video.PacketsReceived)
	}
	// The other direction is unaffected.
	before := c.a.s.Stats().Audio.PacketsReceived
	eventually(t, 3*time.Second, "indoor audio still flowing", func() bool { return c.a.s.Stats().Audio.PacketsReceived > before+5 })

	c.a.s.SetAudioMuted(false)
	c.a.s.SetVideoMuted(false)
	eventually(t, 3*time.Second, "media resumed", func() bool {
		st := c.b.s.Stats()
		return st.Audio.PacketsReceived > after.Audio.PacketsReceived+5 && st.Video.KeyframesReceived > after.Video.KeyframesReceived &&
			st.Video.FramesReceived > after.Video.FramesReceived+2
	})
}

// SWITCH_AUDIO_TO_VIDEO: an audio call renegotiates to video and the door's
// video then flows; SWITCH_VIDEO_TO_AUDIO stops it again.
func TestUpgradeAndDowngrade(t *testing.T) {
	e := testEngine(t)
	indoor, door := newSide(t, CallTypeAudio, false), newSide(t, CallTypeAudio, true)
	c := startCall(t, e, indoor, door) // the indoor unit calls the door
	eventually(t, 5*time.Second, "audio", func() bool { return c.b.s.Stats().Audio.PacketsReceived >= 5 })
	if door.cam.starts.Load() != 0 {
		t.Fatal("door camera started in an audio call")
	}

	if err := c.a.s.UpgradeToVideo(); err != nil {
		t.Fatalf("UpgradeToVideo: %v", err)
	}
	select {
	case <-c.a.first:
	case <-time.After(5 * time.Second):
		t.Fatal("no video after the upgrade")
	}
	eventually(t, 5*time.Second, "video after upgrade", func() bool { return c.a.s.Stats().Video.FramesReceived >= 5 })
	if door.cam.starts.Load() != 1 {
		t.Errorf("door camera started %d times", door.cam.starts.Load())
	}

	if err := c.a.s.DowngradeToAudio(); err != nil {
		t.Fatalf("DowngradeToAudio: %v", err)
	}
	eventually(t, 5*time.Second, "door camera stopped", func() bool { return door.cam.stops.Load() >= 1 })
	eventually(t, 3*time.Second, "in-flight video to land", func() bool {
		return c.a.s.Stats().Video.PacketsReceived == c.b.s.Stats().Video.PacketsSent
	})
	v := c.a.s.Stats().Video.PacketsReceived
	a0 := c.a.s.Stats().Audio.PacketsReceived
	waitTone(t, door.mic, 20)
	st := c.a.s.Stats()
	if st.Video.PacketsReceived != v {
		t.Errorf("video kept flowing after downgrade: %d → %d", v, st.Video.PacketsReceived)
	}
	if st.Audio.PacketsReceived <= a0 {
		t.Error("audio stopped after downgrade")
	}

	// And up again: a fresh video m-line.
	if err := c.b.s.UpgradeToVideo(); err != nil {
		t.Fatalf("second UpgradeToVideo: %v", err)
	}
	eventually(t, 5*time.Second, "video after second upgrade", func() bool { return c.a.s.Stats().Video.PacketsReceived > v+10 })
}

// Preview before answer: video one way at once, no audio either way until
// EnableAudio on both sides, then audio both ways without renegotiation.
func TestPreviewThenAccept(t *testing.T) {
	e := testEngine(t)
	door, indoor := newSide(t, CallTypeVideo, true), newSide(t, CallTypeVideo, false)
	door.opts.Preview, indoor.opts.Preview = true, true
	c := startCall(t, e, door, indoor)
	select {
	case <-c.b.first:
	case <-time.After(5 * time.Second):
		t.Fatal("no preview video")
	}
	waitTone(t, door.mic, 15)
	waitTone(t, indoor.mic, 15)
	sa, sb := c.a.s.Stats(), c.b.s.Stats()
	if sa.Audio.PacketsSent+sb.Audio.PacketsSent+sa.Audio.PacketsReceived+sb.Audio.PacketsReceived != 0 {
		t.Fatalf("audio during preview: door %+v indoor %+v", sa.Audio, sb.Audio)
	}
	if door.spk.samples.Load()+indoor.spk.samples.Load() != 0 {
		t.Fatal("speaker played during preview")
	}
	if sa.Video.PacketsReceived != 0 {
		t.Fatal("preview video went the wrong way")
	}

	// Accept: the lead enables audio on both sides.
	if err := c.b.s.EnableAudio(); err != nil {
		t.Fatal(err)
	}
	if err := c.a.s.EnableAudio(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "audio both ways after accept", func() bool {
		return c.a.s.Stats().Audio.PacketsReceived >= 10 && c.b.s.Stats().Audio.PacketsReceived >= 10 &&
			door.spk.nonZero.Load() > 0 && indoor.spk.nonZero.Load() > 0
	})
}

// A peer whose PeerConnection goes away (closed, or its network gone) ends
// the call on our side with ice_timeout within the configured timeouts.
func TestPeerLossFailsWithinTimeout(t *testing.T) {
	e := testEngine(t) // 1 s disconnected + 1 s failed
	a, b := newSide(t, CallTypeVideo, true), newSide(t, CallTypeVideo, false)
	c := startCall(t, e, a, b)
	eventually(t, 5*time.Second, "media", func() bool { return c.b.s.Stats().Video.FramesReceived >= 2 })

	start := time.Now()
	if err := c.b.s.Close(); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, c.a, StateFailed, 4*time.Second)
	took := time.Since(start)
	t.Logf("caller failed %v after the callee vanished: %v", took, st)
	if st.Reason != ReasonICETimeout {
		t.Errorf("reason %q, want %q", st.Reason, ReasonICETimeout)
	}
	if took < time.Second {
		t.Errorf("failed after %v: faster than the disconnected timeout, so not ICE", took)
	}
	if c.a.s.Stats().Video.PacketsSent == 0 {
		t.Error("stats lost")
	}
}

// ICE that never connects (the peer's answer arrives but the peer is gone
// before any check) fails with ice_failed.
func TestNeverConnectedFailsICEFailed(t *testing.T) {
	e := testEngine(t)
	a, b := newSide(t, CallTypeAudio, true), newSide(t, CallTypeAudio, true)
	ea := newEndpoint(t, e, "caller", a.opts, a.devices())
	eb := newEndpoint(t, e, "callee", b.opts, b.devices())
	defer ea.s.Close()
	offer, err := ea.s.CreateOffer()
	if err != nil {
		t.Fatal(err)
	}
	answer, err := eb.s.AcceptOffer(offer)
	if err != nil {
		t.Fatal(err)
	}
	if err := eb.s.Close(); err != nil { // gone before the caller applies the answer
		t.Fatal(err)
	}
	if err := ea.s.SetAnswer(answer); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, ea, StateFailed, 30*time.Second)
	if st.Reason != ReasonICEFailed {
		t.Errorf("reason %q, want %q", st.Reason, ReasonICEFailed)
	}
}

// A camera that fails mid-call is reported once; audio goes on.
func TestCameraFailureContinuesAudioOnly(t *testing.T) {
	e := testEngine(t)
	door, indoor := newSide(t, CallTypeVideo, true), newSide(t, CallTypeVideo, false)
	door.cam.failAt.Store(20)
	c := startCall(t, e, door, indoor)
	select {
	case err := <-c.a.camErr:
		if !errors.Is(err, device.ErrUnavailable) {
			t.Errorf("camera error %v does not wrap ErrUnavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no CameraFailed")
	}
	a0 := c.b.s.Stats().Audio.PacketsReceived
	eventually(t, 3*time.Second, "audio after camera failure", func() bool { return c.b.s.Stats().Audio.PacketsReceived > a0+10 })
}

// A camera that cannot start makes a video call audio-only from the start.
func TestCameraStartFailure(t *testing.T) {
	e := testEngine(t)
	door, indoor := newSide(t, CallTypeVideo, true), newSide(t, CallTypeVideo, false)
	door.cam.startErr = fmt.Errorf("no /dev/video0: %w", device.ErrUnavailable)
	ea := newEndpoint(t, e, "door", door.opts, door.devices())
	select {
	case <-ea.camErr:
	case <-time.After(2 * time.Second):
		t.Fatal("no CameraFailed")
	}
	eb := newEndpoint(t, e, "indoor", indoor.opts, indoor.devices())
	c := connect(t, ea, eb)
	defer c.close(t)
	eventually(t, 5*time.Second, "audio", func() bool { return c.b.s.Stats().Audio.PacketsReceived > 10 })
}
