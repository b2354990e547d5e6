package intercom

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/intercomd/intercomd/signaling"
	"github.com/intercomd/intercomd/signaling/sigtest"
)

// Benchmarks of the signalling path through a real broker (embedded, or
// mosquitto with INTERCOMD_TEST_BROKER). Latencies are reported as
// percentiles over all calls of the run: go test -bench Signalling
// -benchtime 1000x ./intercom/

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

func reportLatency(b *testing.B, name string, d []time.Duration) {
	b.ReportMetric(float64(percentile(d, 0.50).Microseconds()), name+"-p50-µs")
	b.ReportMetric(float64(percentile(d, 0.99).Microseconds()), name+"-p99-µs")
}

// benchNode is a real endpoint on the benchmark's broker with a quiet log,
// stopped when the benchmark ends.
func benchNode(b *testing.B, broker, prefix, account, device string, dir string) *Endpoint {
	ep, stop := startBenchNode(b, broker, prefix, account, device, dir)
	b.Cleanup(stop)
	return ep
}

func startBenchNode(b *testing.B, broker, prefix, account, device string, dir string) (*Endpoint, func()) {
	return startBenchNodeWith(b, broker, prefix, account, device, dir)
}

func startBenchNodeWith(b *testing.B, broker, prefix, account, device string, dir string, tweak ...func(*EndpointConfig)) (*Endpoint, func()) {
	b.Helper()
	self := signaling.Address{Account: account, Device: device}
	cfg := EndpointConfig{
		Engine:    Config{Self: self, Logger: quietLogger},
		Client:    signaling.ClientConfig{Broker: broker, Topics: signaling.Topics{Prefix: prefix}, Self: self, Logger: quietLogger},
		OutboxDir: dir,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	ep, err := NewEndpoint(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = ep.Run(ctx) }()
	if err := ep.Client.WaitConnected(context.Background()); err != nil {
		b.Fatal(err)
	}
	return ep, func() { cancel(); <-done }
}

func waitSeen(b *testing.B, ep *Endpoint, account string) {
	for {
		devs, _ := ep.Engine.OnlineDevices(context.Background(), account)
		if len(devs) > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func waitEvent(ch <-chan Event, name string) Event {
	for ev := range ch {
		if ev.Name == name {
			return ev
		}
	}
	return Event{}
}

// BenchmarkSignalling measures, per call, press-to-ring (Call → beCalling
// at the callee) and signalling setup (Call → callAccepted at the caller)
// with a callee that answers as soon as it rings.
func BenchmarkSignalling(b *testing.B) {
	broker := sigtest.Broker(b)
	prefix := sigtest.Prefix(b)
	door := benchNode(b, broker, prefix, "door", "d1", b.TempDir())
	flat := benchNode(b, broker, prefix, "flat1", "tablet", b.TempDir())
	waitSeen(b, door, "flat1")
	doorEv, _ := door.Engine.Subscribe()
	flatEv, _ := flat.Engine.Subscribe()
	ctx := context.Background()
	ring := make([]time.Duration, 0, b.N)
	setup := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := door.Engine.Call(ctx, CallOptions{Type: TypeVideo, Account: "flat1"}); err != nil {
			b.Fatal(err)
		}
		info := waitEvent(flatEv, EvBeCalling).Data.(*BeCallingInfo)
		ring = append(ring, time.Since(start))
		go func() { _ = flat.Engine.Response(ctx, *info, true) }()
		waitEvent(doorEv, EvCallAccepted)
		setup = append(setup, time.Since(start))
		if err := door.Engine.Hangup(ctx); err != nil {
			b.Fatal(err)
		}
		waitEvent(flatEv, EvBill)
		waitEvent(doorEv, EvBill)
	}
	b.StopTimer()
	reportLatency(b, "ring", ring)
	reportLatency(b, "setup", setup)
}

// BenchmarkIdleEndpointMemory reports the heap held per idle endpoint
// (engine, MQTT client, outbox), with 100 endpoints on one broker.
func BenchmarkIdleEndpointMemory(b *testing.B) {
	const n = 100
	for i := 0; i < b.N; i++ {
		broker := sigtest.Broker(b)
		prefix := sigtest.Prefix(b)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		var stops []func()
		for j := 0; j < n; j++ {
			_, stop := startBenchNode(b, broker, prefix, fmt.Sprintf("flat%d", j), "unit", b.TempDir())
			stops = append(stops, stop)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		// The embedded broker runs in this process: its per-client state is
		// included (with mosquitto it is not).
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/endpoint")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/endpoint")
		for _, stop := range stops {
			stop()
		}
	}
}

// BenchmarkSiteLoad runs 1000 endpoints (500 door/flat pairs) on one
// broker and places calls at 50 per second across random pairs, each
// answered at once and hung up 200 ms later; it reports setup latency.
func BenchmarkSiteLoad(b *testing.B) {
	if testing.Short() {
		b.Skip("1000 endpoints: not in -short runs")
	}
	const pairs = 500
	const rate = 50 // calls per second
	broker := sigtest.Broker(b)
	prefix := sigtest.Prefix(b)
	type pair struct {
		door, flat *Endpoint
		doorEv     <-chan Event
		busy       sync.Mutex
	}
	ps := make([]*pair, pairs)
	var wg sync.WaitGroup
	for i := range ps {
		p := &pair{}
		p.door = benchNode(b, broker, prefix, fmt.Sprintf("door%d", i), "d", b.TempDir())
		p.flat = benchNode(b, broker, prefix, fmt.Sprintf("flat%d", i), "t", b.TempDir())
		p.doorEv, _ = p.door.Engine.Subscribe()
		flatEv, _ := p.flat.Engine.Subscribe()
		// Every flat answers as soon as it rings.
		go func() {
			for ev := range flatEv {
				if ev.Name == EvBeCalling {
					info := *ev.Data.(*BeCallingInfo)
					go func() { _ = p.flat.Engine.Response(context.Background(), info, true) }()
				}
			}
		}()
		ps[i] = p
	}
	for i, p := range ps {
		waitSeen(b, p.door, fmt.Sprintf("flat%d", i))
	}
	var mu sync.Mutex
	var setup []time.Duration
	var failed int
	b.ResetTimer()
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	for i := 0; i < b.N; i++ {
		<-tick.C
		p := ps[rand.IntN(pairs)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.busy.Lock()
			defer p.busy.Unlock()
			start := time.Now()
			account := ""
			for j, q := range ps {
				if q == p {
					account = fmt.Sprintf("flat%d", j)
				}
			}
			if _, err := p.door.Engine.Call(context.Background(), CallOptions{Type: TypeAudio, Account: account}); err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
				return
			}
			waitEvent(p.doorEv, EvCallAccepted)
			d := time.Since(start)
			mu.Lock()
			setup = append(setup, d)
			mu.Unlock()
			time.Sleep(200 * time.Millisecond)
			_ = p.door.Engine.Hangup(context.Background())
			waitEvent(p.doorEv, EvBill)
		}()
	}
	wg.Wait()
	b.StopTimer()
	reportLatency(b, "setup", setup)
	b.ReportMetric(float64(failed), "failed-calls")
}
