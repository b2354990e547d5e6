package media

import (
	"math"
	"testing"
	"time"
)

func TestRecvStatLossAndJitter(t *testing.T) {
	r := &recvStat{clock: 8000}
	t0 := time.Now()
	seq, ts := uint16(65530), uint32(math.MaxUint32-800) // both wrap during the run
	for i := range 100 {
		if i == 50 || i == 51 { // two lost
			seq++
			ts += 160
			continue
		}
		r.update(seq, ts, t0.Add(time.Duration(i)*20*time.Millisecond))
		seq++
		ts += 160
	}
	lost, jit := r.snapshot()
	if lost != 2 || jit > 0.01 {
		t.Fatalf("steady stream: lost %d jitter %.3f ms, want 2 and 0", lost, jit)
	}
	// A stream arriving alternately 10 ms early and late: RFC 3550 jitter
	// converges to the mean deviation, 20 ms between neighbours.
	r = &recvStat{clock: 8000}
	for i := range 400 {
		off := time.Duration(0)
		if i%2 == 1 {
			off = 20 * time.Millisecond
		}
		r.update(uint16(i), uint32(i*160), t0.Add(time.Duration(i)*20*time.Millisecond+off))
	}
	if _, jit := r.snapshot(); math.Abs(jit-20) > 1 {
		t.Fatalf("alternating stream: jitter %.2f ms, want ~20", jit)
	}
}

func TestNTPMiddle(t *testing.T) {
	now := time.Now()
	later := now.Add(250 * time.Millisecond)
	if d := ntpMiddle(later) - ntpMiddle(now); d < 16383 || d > 16385 {
		t.Fatalf("250 ms = %d/65536 s, want 16384", d)
	}
}
