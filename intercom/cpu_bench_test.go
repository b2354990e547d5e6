package intercom

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/intercomd/intercomd/device"
	"github.com/intercomd/intercomd/intercom/media"
	"github.com/intercomd/intercomd/signaling/sigtest"
)

// BenchmarkCallCPU measures one 640x480@15 video call of 5 s between two
// endpoints in this process (door: test pattern + tone; indoor: tone):
// the whole process's CPU during the call, the CPU of the bare encoder on
// the same number of frames, their ratio, and RSS idle and in the call.
//
//	go test -run '^$' -bench CallCPU -benchtime 1x ./intercom/
func BenchmarkCallCPU(b *testing.B) {
	const talk = 5 * time.Second
	me, err := media.NewEngine(media.Config{LoopbackOnly: true, Logger: quietLogger})
	if err != nil {
		b.Fatal(err)
	}
	door, stopDoor := startBenchNodeMedia(b, sigtest.Broker(b), "cpu", "door", "d1", &PionMedia{Engine: me, SendVideo: true, Devices: func() media.Devices {
		return media.Devices{Video: &device.TestPattern{}, Audio: device.NewSineTone(440), Speaker: &device.NullSink{}}
	}})
	defer stopDoor()
	for i := 0; i < b.N; i++ {
		runCallCPU(b, me, door, talk)
	}
}

func runCallCPU(b *testing.B, me *media.Engine, door *Endpoint, talk time.Duration) {
	broker := door.cfg.Client.Broker
	flat, stopFlat := startBenchNodeMedia(b, broker, "cpu", "flat1", "tablet", &PionMedia{Engine: me, Devices: func() media.Devices {
		return media.Devices{Audio: device.NewSineTone(330), Speaker: &device.NullSink{}}
	}})
	defer stopFlat()
	waitSeen(b, door, "flat1")
	doorEv, cancelDoor := door.Engine.Subscribe()
	defer cancelDoor()
	flatEv, cancelFlat := flat.Engine.Subscribe()
	defer cancelFlat()
	ctx := context.Background()
	idleRSS := rssKB()
	if _, err := door.Engine.Call(ctx, CallOptions{Type: TypeVideo, Account: "flat1"}); err != nil {
		b.Fatal(err)
	}
	info := waitEvent(flatEv, EvBeCalling).Data.(*BeCallingInfo)
	if err := flat.Engine.Response(ctx, *info, true); err != nil {
		b.Fatal(err)
	}
	for waitEvent(flatEv, EvMedia).Data.(*MediaInfo).State != "firstFrame" {
	}
	cpu0 := cpuTime()
	time.Sleep(talk)
	callCPU := cpuTime() - cpu0
	callRSS := rssKB()
	if err := door.Engine.Hangup(ctx); err != nil {
		b.Fatal(err)
	}
	waitEvent(doorEv, EvBill)
	frames := int(talk.Seconds() * 15)

	// The bare encoder on the same frames (render + encode, as the
	// pattern does in the call).
	bare := &device.TestPattern{Clock: device.NewVirtualClock(time.Now())}
	if err := bare.Start(ctx, device.VideoConfig{Width: 640, Height: 480, FPS: 15}); err != nil {
		b.Fatal(err)
	}
	cpu1 := cpuTime()
	for i := 0; i < frames; i++ {
		if _, err := bare.ReadAccessUnit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	encCPU := cpuTime() - cpu1
	_ = bare.Stop()
	b.ReportMetric(float64(callCPU.Milliseconds())/talk.Seconds(), "call-cpu-ms/s")
	b.ReportMetric(float64(encCPU.Milliseconds())/talk.Seconds(), "encoder-cpu-ms/s")
	if encCPU > 0 {
		b.ReportMetric(float64(callCPU)/float64(encCPU), "call/encoder")
	}
	b.ReportMetric(float64(idleRSS)/1024, "rss-idle-MB")
	b.ReportMetric(float64(callRSS)/1024, "rss-in-call-MB")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssKB() int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return n
		}
	}
	return 0
}
