package intercom

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/intercomd/intercomd/device"
	"github.com/intercomd/intercomd/intercom/media"
	"github.com/intercomd/intercomd/signaling/sigtest"
)

// BenchmarkSequentialMediaCalls places b.N full calls (signalling, WebRTC
// with the test pattern and tones, bills) one after another between two
// endpoints and reports what is left over afterwards: goroutines, open
// file descriptors and heap growth per call. Leaks show up as growth.
//
//	go test -run '^$' -bench SequentialMediaCalls -benchtime 1000x ./intercom/
func BenchmarkSequentialMediaCalls(b *testing.B) {
	me, err := media.NewEngine(media.Config{LoopbackOnly: true, Logger: quietLogger})
	if err != nil {
		b.Fatal(err)
	}
	withDevices := func(door bool) *PionMedia {
		return &PionMedia{Engine: me, SendVideo: door, Devices: func() media.Devices {
			d := media.Devices{Audio: device.NewSineTone(440), Speaker: &device.NullSink{}}
			if door {
				d.Video = &device.TestPattern{}
			}
			return d
		}}
	}
	broker := sigtest.Broker(b)
	prefix := sigtest.Prefix(b)
	door, stopDoor := startBenchNodeMedia(b, broker, prefix, "door", "d1", withDevices(true))
	flat, stopFlat := startBenchNodeMedia(b, broker, prefix, "flat1", "tablet", withDevices(false))
	defer stopDoor()
	defer stopFlat()
	waitSeen(b, door, "flat1")
	doorEv, _ := door.Engine.Subscribe()
	flatEv, _ := flat.Engine.Subscribe()
	ctx := context.Background()
	oneCall := func() {
		if _, err := door.Engine.Call(ctx, CallOptions{Type: TypeVideo, Account: "flat1"}); err != nil {
			b.Fatal(err)
		}
		info := waitEvent(flatEv, EvBeCalling).Data.(*BeCallingInfo)
		if err := flat.Engine.Response(ctx, *info, true); err != nil {
			b.Fatal(err)
		}
		for {
			ev := waitEvent(flatEv, EvMedia)
			if ev.Data.(*MediaInfo).State == "firstFrame" {
				break
			}
		}
		if err := door.Engine.Hangup(ctx); err != nil {
			b.Fatal(err)
		}
		waitEvent(doorEv, EvBill)
		waitEvent(flatEv, EvBill)
	}
	oneCall() // warm up pools and caches before the baseline
	settle := func() (int, int, uint64) {
		var ms runtime.MemStats
		for i := 0; i < 20; i++ {
			runtime.GC()
			time.Sleep(50 * time.Millisecond)
		}
		debug.FreeOSMemory()
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), openFDs(), ms.HeapAlloc
	}
	g0, fd0, h0 := settle()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		oneCall()
	}
	b.StopTimer()
	g1, fd1, h1 := settle()
	b.ReportMetric(float64(g1-g0), "goroutines-leaked")
	b.ReportMetric(float64(fd1-fd0), "fds-leaked")
	b.ReportMetric(float64(int64(h1)-int64(h0))/float64(b.N), "heap-growth-B/call")
}

func openFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

func startBenchNodeMedia(b *testing.B, broker, prefix, account, dev string, m MediaProvider) (*Endpoint, func()) {
	b.Helper()
	ep, stop := startBenchNodeWith(b, broker, prefix, account, dev, b.TempDir(), func(c *EndpointConfig) { c.Engine.Media = m })
	return ep, stop
}
