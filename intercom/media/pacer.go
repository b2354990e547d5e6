package media

import (
	"context"
	"time"
)

// pacer spreads large frames over time. A keyframe leaves the encoder as
// one burst; hundreds of packets at once overflow the receiver's socket
// buffer (or a Wi-Fi queue) and the frame is lost, again and again on every
// keyframe retry — measured with the I_PCM test pattern at 640x480 (~460 kB
// keyframes): 45 % loss and no picture at all without pacing. Ordinary
// frames fit in the burst allowance and go out at once, so pacing adds no
// latency to them.
type pacer struct {
	burst  float64 // bytes that may go out back to back
	credit float64
	rate   float64 // bytes per second for the current frame
	last   time.Time
}

const (
	pacerBurst   = 64 << 10
	pacerMinRate = 30e6 / 8 // 30 Mbit/s: well below any LAN, above any sane video bitrate
)

func newPacer() *pacer { return &pacer{burst: pacerBurst, credit: pacerBurst, rate: pacerMinRate} }

// frame sets the rate for a frame of n bytes due within interval: at least
// pacerMinRate, and fast enough to finish before the next frame.
func (p *pacer) frame(n int, interval time.Duration) {
	p.rate = pacerMinRate
	if interval > 0 {
		p.rate = max(p.rate, float64(n)/interval.Seconds())
	}
}

// wait blocks until n more bytes may be sent.
func (p *pacer) wait(ctx context.Context, n int) error {
	now := time.Now()
	if !p.last.IsZero() {
		p.credit = min(p.burst, p.credit+now.Sub(p.last).Seconds()*p.rate)
	}
	p.last = now
	p.credit -= float64(n)
	if p.credit >= 0 {
		return nil
	}
	d := time.Duration(-p.credit / p.rate * float64(time.Second))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
