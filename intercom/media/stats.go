package media

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// StreamStats are one media kind's figures for the bill.
type StreamStats struct {
	PacketsSent     uint64 `json:"packetsSent"`
	BytesSent       uint64 `json:"bytesSent"` // RTP header + payload, before SRTP
	PacketsReceived uint64 `json:"packetsReceived"`
	BytesReceived   uint64 `json:"bytesReceived"`
	// PacketsLost is what we failed to receive (RFC 3550 cumulative loss,
	// from our receiver); RemotePacketsLost and RemoteFractionLost are what
	// the peer reported losing of ours in its receiver reports.
	PacketsLost        int64   `json:"packetsLost"`
	RemotePacketsLost  int64   `json:"remotePacketsLost"`
	RemoteFractionLost float64 `json:"remoteFractionLost"`
	JitterMs           float64 `json:"jitterMs"`
	// Video only.
	FramesSent        uint64 `json:"framesSent,omitempty"`
	KeyframesSent     uint64 `json:"keyframesSent,omitempty"`
	FramesReceived    uint64 `json:"framesReceived,omitempty"`    // decodable frames
	KeyframesReceived uint64 `json:"keyframesReceived,omitempty"` // of FramesReceived
	FramesDropped     uint64 `json:"framesDropped,omitempty"`     // lost or undecodable until the next keyframe
	PLIsSent          uint64 `json:"plisSent,omitempty"`
	KeyframeRequests  uint64 `json:"keyframeRequests,omitempty"` // PLI/FIR from the peer + our own on connect
}

// Stats is a session's media statistics: JSON-tagged for the bill and the
// event stream.
type Stats struct {
	AudioCodec string      `json:"audioCodec,omitempty"` // PCMU, PCMA or G722
	Audio      StreamStats `json:"audio"`
	Video      StreamStats `json:"video"`
	// RTTMs is the latest round trip time from the peer's RTCP receiver
	// reports (LSR/DLSR); 0 until the first report (about a second in).
	RTTMs float64 `json:"rttMs"`
	// ConnectMs is from the session's answer (AcceptOffer / SetAnswer) to
	// the PeerConnection connecting (ICE + DTLS).
	ConnectMs float64 `json:"connectMs,omitempty"`
	// FirstFrameMs is from the answer to the first decodable (key)frame
	// received.
	FirstFrameMs float64 `json:"firstFrameMs,omitempty"`
	// CaptureLatency* are capture → fully received per video frame, from the
	// sender's abs-capture-time stamps (meaningful when both clocks are the
	// same or synchronised, as on one host or NTP-synced devices).
	CaptureLatencyP50Ms float64 `json:"captureLatencyP50Ms,omitempty"`
	CaptureLatencyP95Ms float64 `json:"captureLatencyP95Ms,omitempty"`
	LatencySamples      int     `json:"latencySamples,omitempty"`
	// ICERestarts counts the restarts this side started after the media
	// path was lost (0 on the initial answerer, which follows the peer's).
	ICERestarts int `json:"iceRestarts,omitempty"`
}

type streamCounters struct {
	pktsSent, bytesSent, pktsRecv, bytesRecv atomic.Uint64
	framesSent, keysSent                     atomic.Uint64
	framesRecv, keysRecv, framesDropped      atomic.Uint64
	plisSent, keyRequests                    atomic.Uint64
}

func (c *streamCounters) snapshot() StreamStats {
	return StreamStats{
		PacketsSent:       c.pktsSent.Load(),
		BytesSent:         c.bytesSent.Load(),
		PacketsReceived:   c.pktsRecv.Load(),
		BytesReceived:     c.bytesRecv.Load(),
		FramesSent:        c.framesSent.Load(),
		KeyframesSent:     c.keysSent.Load(),
		FramesReceived:    c.framesRecv.Load(),
		KeyframesReceived: c.keysRecv.Load(),
		FramesDropped:     c.framesDropped.Load(),
		PLIsSent:          c.plisSent.Load(),
		KeyframeRequests:  c.keyRequests.Load(),
	}
}

// latencyRing keeps the most recent capture → receive samples; a call's
// latency is a steady-state figure, and a bounded ring keeps memory flat on
// hour-long calls.
type latencyRing struct {
	mu   sync.Mutex
	buf  []time.Duration
	next int
	full bool
}

const latencyRingSize = 2048

func (r *latencyRing) add(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.buf == nil {
		r.buf = make([]time.Duration, latencyRingSize)
	}
	r.buf[r.next] = d
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

// percentiles returns p50, p95 and the sample count.
func (r *latencyRing) percentiles() (p50, p95 time.Duration, n int) {
	r.mu.Lock()
	n = r.next
	if r.full {
		n = len(r.buf)
	}
	s := slices.Clone(r.buf[:n])
	r.mu.Unlock()
	if n == 0 {
		return 0, 0, 0
	}
	slices.Sort(s)
	return s[n/2], s[min(n-1, n*95/100)], n
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// recvStat measures one received RTP stream as RFC 3550 receivers do:
// cumulative loss from the extended highest sequence number, interarrival
// jitter from arrival time against RTP timestamp. Computed here rather than
// via pion's GetStats, which races with pion's receiver start-up (seen under
// -race) and costs more than these few operations per packet.
type recvStat struct {
	clock float64 // RTP clock rate

	mu          sync.Mutex
	started     bool
	base        time.Time
	baseExt     int64
	lastExt     int64
	maxExt      int64
	received    int64
	jitter      float64 // RTP timestamp units
	lastTransit float64
}

func (r *recvStat) update(seq uint16, ts uint32, arrival time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		r.started = true
		r.base = arrival
		r.baseExt, r.lastExt, r.maxExt = int64(seq), int64(seq), int64(seq)
		r.received = 1
		r.lastTransit = arrival.Sub(r.base).Seconds()*r.clock - float64(ts)
		return
	}
	ext := r.lastExt + int64(int16(seq-uint16(r.lastExt)))
	r.lastExt = ext
	r.maxExt = max(r.maxExt, ext)
	r.received++
	t := arrival.Sub(r.base).Seconds()*r.clock - float64(ts)
	// RTP timestamps wrap at 2^32; unwrap the difference against the last
	// transit so a wrap does not show up as a jitter spike.
	d := t - r.lastTransit
	if d > 1<<31 {
		d -= 1 << 32
	} else if d < -(1 << 31) {
		d += 1 << 32
	}
	r.lastTransit = t
	if d < 0 {
		d = -d
	}
	r.jitter += (d - r.jitter) / 16
}

// snapshot returns cumulative loss and jitter in milliseconds.
func (r *recvStat) snapshot() (lost int64, jitterMs float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return 0, 0
	}
	expected := r.maxExt - r.baseExt + 1
	return max(0, expected-r.received), r.jitter / r.clock * 1000
}

// sendStat is what the peer's receiver reports say about one of our
// streams, and the round trip time they let us compute.
type sendStat struct {
	lost     atomic.Int64
	fraction atomic.Uint32 // FractionLost × 256, as on the wire
	rttNs    atomic.Int64
}

// ntpMiddle is the middle 32 bits of the NTP time of t, the unit of the
// LSR and DLSR fields (1/65536 s).
func ntpMiddle(t time.Time) uint32 {
	secs := uint64(t.Unix()) + 2208988800
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return uint32((secs<<32 | frac) >> 16)
}

func kindStats(st *Stats, kind string) *StreamStats {
	switch kind {
	case "audio":
		return &st.Audio
	case "video":
		return &st.Video
	}
	return nil
}
