package media

import (
	"encoding/json"
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
