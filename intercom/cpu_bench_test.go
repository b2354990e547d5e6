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

// BenchmarkCallCPU measures what a door station spends on one
// 640x480@15 video call: the door (test pattern + tone, with the embedded
// broker) runs in this process and the indoor unit (tone, null speaker)
// in a child process, so each side's CPU is its own. Reported: the door's
// CPU per second of call, the indoor unit's, the bare encoder's on the
// same number of frames, door/encoder, and this process's RSS idle and in
// the call.
//
//	go test -run '^$' -bench CallCPU -benchtime 1x ./intercom/
func BenchmarkCallCPU(b *testing.B) {
	benchCallCPU(b,
		func() device.VideoSource { return &device.TestPattern{} },
		// The bare run renders on a virtual clock: as fast as it can.
		func() device.VideoSource { return &device.TestPattern{Clock: device.NewVirtualClock(time.Now())} })
}

// benchCallCPU runs the calls with the door's camera from newVideo and
// the bare-encoder run on an unpaced source from newBare, which must
// produce the same kind of frames.
func benchCallCPU(b *testing.B, newVideo, newBare func() device.VideoSource) {
	me, err := media.NewEngine(media.Config{LoopbackOnly: true, Logger: quietLogger})
	if err != nil {
		b.Fatal(err)
	}
	broker := sigtest.Broker(b)
	prefix := sigtest.Prefix(b)
	door, stopDoor := startBenchNodeMedia(b, broker, prefix, "door", "d1", &PionMedia{Engine: me, SendVideo: true, Devices: func() media.Devices {
		return media.Devices{Video: newVideo(), Audio: device.NewSineTone(440), Speaker: &device.NullSink{}}
	}})
	defer stopDoor()
	indoor := startChild(b, childSpec{Broker: broker, Prefix: prefix, Account: "flat1", Device: "tablet", Mode: "answerMedia", Dir: b.TempDir()})
	waitSeen(b, door, "flat1")
	for i := 0; i < b.N; i++ {
		runCallCPU(b, door, indoor.cmd.Process.Pid, newBare, 10*time.Second)
	}
}

func runCallCPU(b *testing.B, door *Endpoint, indoorPID int, newBare func() device.VideoSource, talk time.Duration) {
	doorEv, cancelDoor := door.Engine.Subscribe()
	defer cancelDoor()
	ctx := context.Background()
	idleRSS := rssKB()
	if _, err := door.Engine.Call(ctx, CallOptions{Type: TypeVideo, Account: "flat1"}); err != nil {
		b.Fatal(err)
	}
	for waitEvent(doorEv, EvMedia).Data.(*MediaInfo).State != "connected" {
	}
	time.Sleep(time.Second) // past the keyframe and the first RTCP
	doorCPU0, indoorCPU0 := cpuTime(), processCPU(b, indoorPID)
	time.Sleep(talk)
	doorCPU, indoorCPU := cpuTime()-doorCPU0, processCPU(b, indoorPID)-indoorCPU0
	callRSS := rssKB()
	if err := door.Engine.Hangup(ctx); err != nil {
		b.Fatal(err)
	}
	waitEvent(doorEv, EvBill)
	frames := int(talk.Seconds() * 15)

	// The bare encoder on the same number of frames of the same source
	// (capture/render + encode, as in the call).
	bare := newBare()
	vc, err := VideoConfigFor(nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := bare.Start(ctx, vc); err != nil {
		b.Fatal(err)
	}
	// The call's figure starts a second in, past codec set-up and the
	// first keyframe; so does this one.
	if _, err := bare.ReadAccessUnit(ctx); err != nil {
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
	perSec := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / talk.Seconds() }
	b.ReportMetric(perSec(doorCPU), "door-cpu-ms/s")
	b.ReportMetric(perSec(indoorCPU), "indoor-cpu-ms/s")
	b.ReportMetric(perSec(encCPU), "encoder-cpu-ms/s")
	if encCPU > 0 {
		b.ReportMetric(float64(doorCPU)/float64(encCPU), "door/encoder")
	}
	b.ReportMetric(float64(idleRSS)/1024, "rss-idle-MB")
	b.ReportMetric(float64(callRSS)/1024, "rss-in-call-MB")
}

// processCPU is another process's user+system CPU from /proc/PID/stat.
func processCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line, in clock ticks (USER_HZ, 100).
	rest := string(data[strings.LastIndexByte(string(data), ')')+2:])
	f := strings.Fields(rest)
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
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
