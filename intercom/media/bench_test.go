package media

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"math/big"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/intercomd/intercomd/device"
)

// Run: go test ./intercom/media -run '^$' -bench . -benchtime=60x
// (each iteration of the first three is one whole call).

// BenchmarkAcceptToFirstFrame: the callee (indoor unit) accepts the door's
// offer; measured from AcceptOffer to the first decodable keyframe
// reassembled at the callee. The door's session and camera start at the
// invite, and the call rings for a random 0-200 ms first, so the camera's
// frame phase at answer time is random as in real calls.
func BenchmarkAcceptToFirstFrame(b *testing.B) {
	b.Run("x264-fixture-640x480", func(b *testing.B) {
		benchFirstFrame(b, func() device.VideoSource {
			src, err := newFixtureSource()
			if err != nil {
				b.Fatal(err)
			}
			return src
		})
	})
	// The demo's pure-Go source: I_PCM keyframes are ~460 kB at 640x480,
	// about 400 RTP packets, so this shows the cost of a fat keyframe.
	b.Run("testpattern-640x480", func(b *testing.B) {
		benchFirstFrame(b, func() device.VideoSource { return &device.TestPattern{Logger: testLogger()} })
	})
}

func benchFirstFrame(b *testing.B, newSource func() device.VideoSource) {
	e := testEngine(b)
	var firsts, connects []time.Duration
	for b.Loop() {
		door, indoor := newSide(b, CallTypeVideo, true), newSide(b, CallTypeVideo, false)
		dev := door.devices()
		dev.Video = newSource()
		ea := newEndpoint(b, e, "door", door.opts, dev)
		eb := newEndpoint(b, e, "indoor", indoor.opts, indoor.devices())
		offer, err := ea.s.CreateOffer()
		if err != nil {
			b.Fatal(err)
		}
		ring(b)
		answer, err := eb.s.AcceptOffer(offer)
		if err != nil {
			b.Fatal(err)
		}
		if err := ea.s.SetAnswer(answer); err != nil {
			b.Fatal(err)
		}
		select {
		case d := <-eb.first:
			firsts = append(firsts, d)
		case <-time.After(5 * time.Second):
			b.Fatal("no first frame")
		}
		connects = append(connects, time.Duration(eb.s.Stats().ConnectMs*float64(time.Millisecond)))
		_ = ea.s.Close()
		_ = eb.s.Close()
	}
	reportPercentiles(b, "first_frame", firsts)
	reportPercentiles(b, "connect", connects)
}

func ring(b *testing.B) {
	n, _ := rand.Int(rand.Reader, big.NewInt(200))
	time.Sleep(time.Duration(n.Int64()) * time.Millisecond) // simulated ringing, not synchronisation
}

// BenchmarkCaptureToReceiveLatency: one 640x480@15 door → indoor call; each
// iteration is one received frame; the figure is capture (the source's
// CaptureTime, carried in abs-capture-time) → last packet of the frame
// reassembled at the receiver.
func BenchmarkCaptureToReceiveLatency(b *testing.B) {
	e := testEngine(b)
	door, indoor := newSide(b, CallTypeVideo, true), newSide(b, CallTypeVideo, false)
	ea := newEndpoint(b, e, "door", door.opts, door.devices())
	eb := newEndpoint(b, e, "indoor", indoor.opts, indoor.devices())
	c := connect(b, ea, eb)
	defer c.close(b)
	<-eb.first
	start := eb.s.Stats().Video.FramesReceived
	cpu0, wall0 := cpuTime(), time.Now()
	b.ResetTimer()
	// Poll slowly: Stats() sorts the latency ring, and polling every few ms
	// would bill the benchmark's own CPU to the call.
	deadline := time.Now().Add(time.Duration(b.N) * time.Second)
	for eb.s.Stats().Video.FramesReceived < start+uint64(b.N) {
		if time.Now().After(deadline) {
			b.Fatal("frames stopped arriving")
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.StopTimer()
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	// Both endpoints (door sending 640x480@15 ~500 kb/s + G.711, indoor
	// receiving and sending G.711) run in this process: an upper bound on
	// one call's media-path CPU, encoder excluded (pre-encoded fixture).
	b.ReportMetric(ms(cpu)/wall.Seconds(), "cpu_ms_per_s")
	st := eb.s.Stats()
	b.ReportMetric(st.CaptureLatencyP50Ms, "p50_capture_ms")
	b.ReportMetric(st.CaptureLatencyP95Ms, "p95_capture_ms")
	b.ReportMetric(float64(st.LatencySamples), "samples")
}

// BenchmarkSessionSetup: two sessions from NewSession to both connected
// (offer, answer, ICE, DTLS with the engine's shared certificate) and
// closed. Compare with BenchmarkDTLSCertificate, the per-call cost a fresh
// certificate would add.
func BenchmarkSessionSetup(b *testing.B) {
	e := testEngine(b)
	b.ReportAllocs()
	for b.Loop() {
		a := newEndpoint(b, e, "a", SessionOptions{CallType: CallTypeAudio}, Devices{})
		c := newEndpoint(b, e, "b", SessionOptions{CallType: CallTypeAudio}, Devices{})
		call := connect(b, a, c)
		waitState(b, a, StateConnected, 5*time.Second)
		waitState(b, c, StateConnected, 5*time.Second)
		call.close(b)
	}
}

// BenchmarkDTLSCertificate is what NewEngine pays once instead of per call.
func BenchmarkDTLSCertificate(b *testing.B) {
	for b.Loop() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := webrtc.GenerateCertificate(key); err != nil {
			b.Fatal(err)
		}
	}
}

func reportPercentiles(b *testing.B, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	b.ReportMetric(ms(ds[len(ds)/2]), "p50_"+name+"_ms")
	b.ReportMetric(ms(ds[min(len(ds)-1, len(ds)*95/100)]), "p95_"+name+"_ms")
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
