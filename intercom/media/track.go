package media

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

var errNoCodec = errors.New("no acceptable codec negotiated")

// localTrack is a TrackLocal that takes ready-made RTP packets. We packetize
// ourselves rather than use TrackLocalStaticSample because (a) the RTP
// timestamp must follow the capture clock, not a running sum of durations,
// so muted gaps and camera hiccups keep A/V timing honest; (b) the first
// packet of a frame carries the abs-capture-time extension, whose negotiated
// ID only Bind sees; (c) audio must know whether PCMU or PCMA was negotiated
// to encode correctly, and a static track fixes the codec up front.
//
// One localTrack is bound to at most one PeerConnection at a time.
type localTrack struct {
	id, streamID string
	kind         webrtc.RTPCodecType
	prefer       []string // MIME types in order of preference

	mu     sync.RWMutex
	bindID string
	writer webrtc.TrackLocalWriter
	ssrc   uint32
	pt     uint8
	absID  uint8
}

func newLocalTrack(kind webrtc.RTPCodecType, id, streamID string, prefer ...string) *localTrack {
	return &localTrack{id: id, streamID: streamID, kind: kind, prefer: prefer}
}

// Bind picks the first preferred codec the peer accepted.
func (t *localTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var chosen *webrtc.RTPCodecParameters
	params := ctx.CodecParameters()
	for _, mime := range t.prefer {
		for i := range params {
			c := &params[i]
			if !strings.EqualFold(c.MimeType, mime) {
				continue
			}
			// FU-A is needed for frames above the MTU; mode 0 would
			// make every keyframe undeliverable.
			if strings.EqualFold(mime, webrtc.MimeTypeH264) && !strings.Contains(c.SDPFmtpLine, "packetization-mode=1") {
				continue
			}
			chosen = c
			break
		}
		if chosen != nil {
			break
		}
	}
	if chosen == nil {
		return webrtc.RTPCodecParameters{}, fmt.Errorf("media: bind %s track: %w", t.kind, errNoCodec)
	}
	var absID uint8
	for _, h := range ctx.HeaderExtensions() {
		if h.URI == AbsCaptureTimeURI {
			absID = uint8(h.ID)
		}
	}
	t.mu.Lock()
	t.bindID = ctx.ID()
	t.writer = ctx.WriteStream()
	t.ssrc = uint32(ctx.SSRC())
	t.pt = uint8(chosen.PayloadType)
	t.absID = absID
	t.mu.Unlock()
	return *chosen, nil
}

// Unbind runs when the sender stops (close, transceiver stopped).
func (t *localTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bindID == ctx.ID() {
		t.bindID, t.writer = "", nil
	}
	return nil
}

func (t *localTrack) ID() string                { return t.id }
func (t *localTrack) RID() string               { return "" }
func (t *localTrack) StreamID() string          { return t.streamID }
func (t *localTrack) Kind() webrtc.RTPCodecType { return t.kind }

// binding reports the negotiated payload type and extension ID, and whether
// the track is bound at all (unbound tracks drop what they are given).
func (t *localTrack) binding() (pt, absID uint8, ok bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.pt, t.absID, t.writer != nil
}

// writeRTP stamps SSRC and payload type and hands the packet to the
// interceptor chain (NACK cache, sender reports, stats) and SRTP.
func (t *localTrack) writeRTP(p *rtp.Packet) error {
	t.mu.RLock()
	w, ssrc, pt := t.writer, t.ssrc, t.pt
	t.mu.RUnlock()
	if w == nil {
		return nil
	}
	p.SSRC = ssrc
	p.PayloadType = pt
	if _, err := w.WriteRTP(&p.Header, p.Payload); err != nil {
		return fmt.Errorf("media: write rtp: %w", err)
	}
	return nil
}
