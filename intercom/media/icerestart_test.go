package media

import (
	"testing"
	"time"

	"github.com/intercomd/intercomd/intercom/media/mediatest"
)

// A call whose path dies (every socket of both sides goes silent) is
// restarted by the caller with new ICE credentials and candidates: it
// connects again, audio and video flow again, and nothing fails.
func TestICERestartAfterPathLoss(t *testing.T) {
	nets := []*mediatest.CutNet{mediatest.NewCutNet(t), mediatest.NewCutNet(t)}
	var engines []*Engine
	for _, n := range nets {
		e, err := NewEngine(Config{
			LoopbackOnly:           true,
			ICEDisconnectedTimeout: time.Second,
			ICEFailedTimeout:       10 * time.Second,
			Net:                    n,
			Logger:                 testLogger(),
		})
		if err != nil {
			t.Fatal(err)
		}
		engines = append(engines, e)
	}
	door, indoor := newSide(t, CallTypeVideo, true), newSide(t, CallTypeVideo, false)
	a := newEndpoint(t, engines[0], "door", door.opts, door.devices())
	b := newEndpoint(t, engines[1], "indoor", indoor.opts, indoor.devices())
	c := connect(t, a, b)
	t.Cleanup(func() { c.close(t) })
	waitState(t, a, StateConnected, 5*time.Second)
	waitState(t, b, StateConnected, 5*time.Second)
	eventually(t, 5*time.Second, "first frames", func() bool { return b.s.Stats().Video.FramesReceived >= 2 })

	for _, n := range nets {
		n.Cut()
	}
	cutAt := time.Now()
	// waitState fails on StateFailed: the call must not end.
	waitState(t, a, StateConnected, 20*time.Second)
	waitState(t, b, StateConnected, 20*time.Second)
	t.Logf("reconnected %v after the cut", time.Since(cutAt))

	frames, audioIn, audioOut := b.s.Stats().Video.FramesReceived, b.s.Stats().Audio.PacketsReceived, a.s.Stats().Audio.PacketsReceived
	eventually(t, 10*time.Second, "media after the restart", func() bool {
		sb, sa := b.s.Stats(), a.s.Stats()
		return sb.Video.FramesReceived >= frames+10 && sb.Audio.PacketsReceived >= audioIn+25 && sa.Audio.PacketsReceived >= audioOut+25
	})
	if got := a.s.Stats().ICERestarts; got != 1 {
		t.Errorf("door ICE restarts %d, want 1", got)
	}
	if got := b.s.Stats().ICERestarts; got != 0 {
		t.Errorf("indoor unit ICE restarts %d, want 0 (it follows the caller's)", got)
	}
}
