package media

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
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
	Audio StreamStats `json:"audio"`
	Video StreamStats `json:"video"`
	// RTTMs is the round trip time: from RTCP receiver reports when the peer
	// sent any, else from the selected ICE candidate pair's STUN checks.
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

// addPionStats folds loss, jitter and RTT from pion's stats report into st.
func addPionStats(st *Stats, report webrtc.StatsReport) {
	var rrRTT, pairRTT float64
	for _, v := range report {
		switch s := v.(type) {
		case webrtc.InboundRTPStreamStats:
			ss := kindStats(st, s.Kind)
			if ss == nil {
				continue
			}
			ss.PacketsLost += int64(s.PacketsLost)
			ss.JitterMs = max(ss.JitterMs, s.Jitter*1000)
		case webrtc.RemoteInboundRTPStreamStats:
			ss := kindStats(st, s.Kind)
			if ss == nil {
				continue
			}
			ss.RemotePacketsLost += int64(s.PacketsLost)
			ss.RemoteFractionLost = max(ss.RemoteFractionLost, s.FractionLost)
			if s.RoundTripTime > 0 {
				rrRTT = max(rrRTT, s.RoundTripTime)
			}
		case webrtc.ICECandidatePairStats:
			if s.Nominated && s.CurrentRoundTripTime > 0 {
				pairRTT = s.CurrentRoundTripTime
			}
		}
	}
	switch {
	case rrRTT > 0:
		st.RTTMs = rrRTT * 1000
	case pairRTT > 0:
		st.RTTMs = pairRTT * 1000
	}
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
