package media

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intercomd/intercomd/signaling"
)

// Multi-device: the invite's one offer rings two devices, both answer, the
// caller applies only the winner's answer. The winner connects and gets
// video; the loser never connects (the lead closes it on ackSync).
func TestOnlyWinningAnswerConnects(t *testing.T) {
	e := testEngine(t)
	door := newSide(t, CallTypeVideo, true)
	ea := newEndpoint(t, e, "door", door.opts, door.devices())
	defer ea.s.Close()
	offer, err := ea.s.CreateOffer()
	if err != nil {
		t.Fatal(err)
	}
	var devs []*endpoint
	var answers []string
	for _, name := range []string{"flat-tablet", "flat-panel"} {
		sd := newSide(t, CallTypeVideo, false)
		ep := newEndpoint(t, e, name, sd.opts, sd.devices())
		defer ep.s.Close()
		ans, err := ep.s.AcceptOffer(offer)
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, ep)
		answers = append(answers, ans)
	}
	// The panel won.
	if err := ea.s.SetAnswer(answers[1]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	pump(t, ctx, &wg, ea, devs[1])
	pump(t, ctx, &wg, devs[1], ea)
	waitState(t, devs[1], StateConnected, 5*time.Second)
	select {
	case <-devs[1].first:
	case <-time.After(5 * time.Second):
		t.Fatal("winner: no video")
	}
	// The loser's answer was never applied: its checks carry credentials the
	// door does not know, so it cannot connect.
	select {
	case st := <-devs[0].states:
		if st.Kind == StateConnected {
			t.Fatal("losing device connected")
		}
	case <-time.After(500 * time.Millisecond):
	}
	if n := devs[0].s.Stats().Video.PacketsReceived; n != 0 {
		t.Fatalf("losing device received %d video packets", n)
	}
}

// Candidates that reach the callee before the invite's offer is applied
// are buffered and used, and trickled candidates are well-formed.
func TestCandidatesBeforeOfferAreBuffered(t *testing.T) {
	e := testEngine(t)
	a, b := newSide(t, CallTypeAudio, true), newSide(t, CallTypeAudio, true)
	ea := newEndpoint(t, e, "caller", a.opts, a.devices())
	eb := newEndpoint(t, e, "callee", b.opts, b.devices())
	defer ea.s.Close()
	defer eb.s.Close()
	offer, err := ea.s.CreateOffer()
	if err != nil {
		t.Fatal(err)
	}
	// Strip the candidates from the offer and deliver them first, as
	// trickle messages overtaking the invite would.
	cands, kept := splitCandidates(offer)
	if len(cands) == 0 {
		t.Fatal("offer carries no candidates: the initial gather wait did not work")
	}
	mid := "0"
	for _, c := range cands {
		if err := eb.s.AddCandidate(signaling.Candidate{Candidate: c, SDPMid: &mid}); err != nil {
			t.Fatalf("AddCandidate before offer: %v", err)
		}
	}
	answer, err := eb.s.AcceptOffer(kept)
	if err != nil {
		t.Fatal(err)
	}
	// The answer goes without candidates, so the caller cannot find the
	// callee by itself: only the callee's checks to the buffered caller
	// candidates can connect.
	_, answerOnly := splitCandidates(answer)
	if err := ea.s.SetAnswer(answerOnly); err != nil {
		t.Fatal(err)
	}
	waitState(t, ea, StateConnected, 5*time.Second)
	waitState(t, eb, StateConnected, 5*time.Second)
}

// Both sides renegotiate at once (glare): the caller's offer wins, the
// callee rolls back, answers, then makes its own change; both changes land.
func TestRenegotiationGlare(t *testing.T) {
	e := testEngine(t)
	a, b := newSide(t, CallTypeAudio, true), newSide(t, CallTypeAudio, true)
	c := startCall(t, e, a, b)
	// Both ask for video before either sees the other's offer: hold the
	// pumps by calling both upgrades back to back; offers cross in flight.
	if err := c.a.s.UpgradeToVideo(); err != nil {
		t.Fatal(err)
	}
	if err := c.b.s.UpgradeToVideo(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "video both ways after glare", func() bool {
		return c.a.s.Stats().Video.FramesReceived >= 3 && c.b.s.Stats().Video.FramesReceived >= 3
	})
}

// splitCandidates removes the a=candidate lines from an SDP.
func splitCandidates(sdp string) (cands []string, rest string) {
	var kept []string
	for _, line := range strings.Split(sdp, "\r\n") {
		if strings.HasPrefix(line, "a=candidate:") {
			cands = append(cands, strings.TrimPrefix(line, "a="))
			continue
		}
		kept = append(kept, line)
	}
	return cands, strings.Join(kept, "\r\n")
}
