package media

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/intercomd/intercomd/device"
)

// audioFrameTicks is 20 ms at the 8 kHz RTP clock that PCMU, PCMA and (by
// RFC 3551's quirk) G.722 all use: one packet.
const audioFrameTicks = 160

// camera is a running video source and its writer goroutine.
type camera struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startCameraLocked starts the video source and its writer; it reports
// whether video can be sent. A failure is reported through CameraFailed and
// the call goes on without video.
func (s *Session) startCameraLocked() bool {
	if s.cam != nil {
		return true
	}
	if !s.wantSendVideo() || s.cameraBroken.Load() {
		return false
	}
	ctx, cancel := context.WithCancel(s.ctx)
	if err := s.dev.Video.Start(ctx, s.opts.Video); err != nil {
		cancel()
		s.cameraLost(fmt.Errorf("media: start camera: %w", err))
		return false
	}
	c := &camera{cancel: cancel, done: make(chan struct{})}
	s.cam = c
	s.wg.Go(func() {
		defer close(c.done)
		s.videoWriter(ctx)
	})
	return true
}

// stopCameraLocked stops the writer, then the source.
func (s *Session) stopCameraLocked() {
	c := s.cam
	if c == nil {
		return
	}
	s.cam = nil
	c.cancel()
	<-c.done
	if err := s.dev.Video.Stop(); err != nil {
		s.log.Warn("stop camera", "err", err)
	}
}

func (s *Session) cameraLost(err error) {
	if s.cameraBroken.Swap(true) {
		return
	}
	s.videoTrack.Store(nil)
	s.log.Warn("camera failed, continuing audio-only", "err", err, "unavailable", errors.Is(err, device.ErrUnavailable))
	s.post(func() {
		if s.cb.CameraFailed != nil {
			s.cb.CameraFailed(err)
		}
	})
}

// videoWriter sends the camera's access units. It drops units while not
// connected, muted or unbound, and then resumes only at a keyframe: a
// P-frame the receiver has no reference for is wasted bandwidth.
func (s *Session) videoWriter(ctx context.Context) {
	src := s.dev.Video
	pk := newH264Packetizer()
	pace := newPacer()
	interval := time.Second / 15
	if s.opts.Video.FPS > 0 {
		interval = time.Second / time.Duration(s.opts.Video.FPS)
	}
	waitKey := true
	for {
		au, err := src.ReadAccessUnit(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.cameraLost(fmt.Errorf("media: read camera: %w", err))
			return
		}
		capture := au.CaptureTime
		if capture.IsZero() {
			capture = time.Now()
		}
		track := s.videoTrack.Load()
		if track == nil || !s.connected.Load() || s.videoMuted.Load() {
			waitKey = true
			continue
		}
		_, absID, bound := track.binding()
		if !bound {
			waitKey = true
			continue
		}
		if waitKey && !au.Keyframe {
			if time.Since(time.Unix(0, s.kfRequestedAt.Load())) > 500*time.Millisecond {
				s.RequestKeyframe()
			}
			continue
		}
		if waitKey {
			s.log.Debug("video sending from keyframe", "since_answer", s.sinceAnswer(time.Now()), "capture_age", time.Since(capture))
		}
		waitKey = false
		pace.frame(len(au.Data), interval)
		for _, p := range pk.packetize(au.Data, capture, absID) {
			if err := pace.wait(ctx, p.MarshalSize()); err != nil {
				return
			}
			if err := track.writeRTP(p); err != nil {
				if ctx.Err() != nil || isClosedErr(err) {
					return
				}
				s.log.Debug("video write", "err", err)
				continue
			}
			s.video.pktsSent.Add(1)
			s.video.bytesSent.Add(uint64(p.MarshalSize()))
		}
		s.video.framesSent.Add(1)
		if au.Keyframe {
			s.video.keysSent.Add(1)
		}
		if s.rec != nil {
			s.rec.localVideo.write(au.Data, s.log)
		}
	}
}

// audioWriter encodes 20 ms microphone frames with the negotiated codec.
// The RTP timestamp advances through muted or preview time too, so it
// tracks real time.
func (s *Session) audioWriter() {
	src := s.dev.Audio
	rate := s.e.audioRate
	frame := make([]int16, rate/50)
	narrow := make([]int16, 0, audioFrameTicks)
	var g722 *g722Encoder
	var down downsampler
	fill := 0
	seq, ts := uint16(randUint32()), randUint32()
	marker := true
	for {
		n, err := src.ReadPCM(s.ctx, frame[fill:])
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("microphone read failed, no more audio sent", "err", err)
			}
			return
		}
		fill += n
		if fill < len(frame) {
			continue
		}
		fill = 0
		frameTS := ts
		ts += audioFrameTicks
		if !s.connected.Load() || !s.audioEnabled.Load() || s.audioMuted.Load() {
			marker = true // the next packet starts a talkspurt
			continue
		}
		pt, _, bound := s.audioTrack.binding()
		if !bound {
			continue
		}
		var payload []byte
		switch {
		case pt == ptG722:
			if g722 == nil {
				g722 = newG722Encoder()
				s.noteAudioCodec("G722")
			}
			payload = g722.encode(make([]byte, 0, len(frame)/2), frame)
		default:
			pcm := frame
			if rate == 16000 {
				narrow = down.process(narrow[:0], frame)
				pcm = narrow
			}
			payload = encodeG711(make([]byte, 0, len(pcm)), pcm, pt)
		}
		p := &rtp.Packet{
			Header:  rtp.Header{Version: 2, Marker: marker, SequenceNumber: seq, Timestamp: frameTS},
			Payload: payload,
		}
		if err := s.audioTrack.writeRTP(p); err != nil {
			if s.ctx.Err() != nil || isClosedErr(err) {
				return
			}
			s.log.Debug("audio write", "err", err)
			continue
		}
		seq++
		marker = false
		s.audio.pktsSent.Add(1)
		s.audio.bytesSent.Add(uint64(p.MarshalSize()))
		if s.rec != nil {
			s.rec.localAudio.write(frame, s.log)
		}
	}
}

func (s *Session) noteAudioCodec(name string) {
	if s.audioCodec.Load() == nil {
		s.audioCodec.Store(&name)
	}
}

// audioReader decodes the peer's audio to the speaker at the engine's
// rate. While previewing, packets are counted but not played: no audio
// reaches the user before they accept, whatever the peer sends.
func (s *Session) audioReader(tr *webrtc.TrackRemote) {
	mime := tr.Codec().MimeType
	var g722 *g722Decoder
	var up upsampler
	pt := uint8(ptPCMU)
	switch {
	case strings.EqualFold(mime, webrtc.MimeTypeG722):
		g722 = newG722Decoder()
		s.noteAudioCodec("G722")
	case strings.EqualFold(mime, webrtc.MimeTypePCMA):
		pt = ptPCMA
		s.noteAudioCodec("PCMA")
	default:
		s.noteAudioCodec("PCMU")
	}
	wide := s.e.audioRate == 16000
	rs := s.newRecvStat(webrtc.RTPCodecTypeAudio, tr.Codec().ClockRate)
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		rs.update(p.SequenceNumber, p.Timestamp, time.Now())
		s.audio.pktsRecv.Add(1)
		s.audio.bytesRecv.Add(uint64(p.MarshalSize()))
		if !s.audioEnabled.Load() {
			continue
		}
		if s.dev.Speaker == nil && s.rec == nil {
			continue
		}
		// A fresh slice per packet: a sink may keep it (queue to ALSA).
		var pcm []int16
		switch {
		case g722 != nil:
			pcm = g722.decode(make([]int16, 0, 2*len(p.Payload)), p.Payload)
		case wide:
			narrow := decodeG711(make([]int16, 0, len(p.Payload)), p.Payload, pt)
			pcm = up.process(make([]int16, 0, 2*len(narrow)), narrow)
		default:
			pcm = decodeG711(make([]int16, 0, len(p.Payload)), p.Payload, pt)
		}
		if s.rec != nil {
			s.rec.remoteAudio.write(pcm, s.log)
		}
		if s.dev.Speaker != nil {
			if err := s.dev.Speaker.WritePCM(s.ctx, pcm); err != nil {
				if s.ctx.Err() != nil {
					return
				}
				s.log.Debug("speaker write", "err", err)
			}
		}
	}
}

// videoReader reassembles the peer's video, counts decodable frames, notes
// the first one and the capture → receive latency, and asks for a keyframe
// whenever the picture cannot be decoded.
func (s *Session) videoReader(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	ssrc := uint32(tr.SSRC())
	var absID uint8
	for _, h := range recv.GetParameters().HeaderExtensions {
		if h.URI == AbsCaptureTimeURI {
			absID = uint8(h.ID)
		}
	}
	asm := newH264Assembler(absID)
	rs := s.newRecvStat(webrtc.RTPCodecTypeVideo, 90000)
	decodable := false
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		now := time.Now()
		rs.update(p.SequenceNumber, p.Timestamp, now)
		s.video.pktsRecv.Add(1)
		s.video.bytesRecv.Add(uint64(p.MarshalSize()))
		frames, lost := asm.push(p, now)
		if lost > 0 {
			s.video.framesDropped.Add(uint64(lost))
			decodable = false
			s.sendPLI(ssrc)
		}
		for _, f := range frames {
			if f.keyframe {
				decodable = true
			}
			if !decodable {
				s.log.Debug("undecodable frame dropped", "since_answer", s.sinceAnswer(now), "bytes", len(f.data))
				s.video.framesDropped.Add(1)
				s.sendPLI(ssrc)
				continue
			}
			s.video.framesRecv.Add(1)
			if f.keyframe {
				s.video.keysRecv.Add(1)
			}
			if !f.capture.IsZero() {
				s.latency.add(f.complete.Sub(f.capture))
			}
			if f.keyframe && !s.firstFrame.Swap(true) {
				d := s.sinceAnswer(now)
				s.firstFrameAt.Store(int64(d))
				s.log.Info("first video frame", "since_answer", d)
				s.post(func() {
					if s.cb.FirstFrame != nil {
						s.cb.FirstFrame(d)
					}
				})
			}
			if s.rec != nil {
				s.rec.remoteVideo.write(f.data, s.log)
			}
		}
	}
}

// readRTCP drains a sender's RTCP (the interceptors act on it as it is
// read: NACKs are answered from here) and turns PLI/FIR into keyframe
// requests to the camera.
func (s *Session) readRTCP(sender *webrtc.RTPSender, kind webrtc.RTPCodecType) {
	st := &s.audioSend
	if kind == webrtc.RTPCodecTypeVideo {
		st = &s.videoSnd
	}
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		now := time.Now()
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				if kind == webrtc.RTPCodecTypeVideo {
					s.RequestKeyframe()
				}
			case *rtcp.ReceiverReport:
				s.noteReports(st, p.Reports, now)
			case *rtcp.SenderReport:
				s.noteReports(st, p.Reports, now)
			}
		}
	}
}

// noteReports takes loss and RTT from the peer's reception reports about
// our stream (RFC 3550 §6.4.1: RTT = now − LSR − DLSR).
func (s *Session) noteReports(st *sendStat, reports []rtcp.ReceptionReport, now time.Time) {
	for _, r := range reports {
		st.lost.Store(int64(r.TotalLost))
		st.fraction.Store(uint32(r.FractionLost))
		if r.LastSenderReport == 0 {
			continue
		}
		rtt := ntpMiddle(now) - r.LastSenderReport - r.Delay
		if rtt < 1<<31 { // not negative: clocks and rounding can make it so on loopback
			st.rttNs.Store(int64(time.Duration(rtt) * time.Second / 65536))
		}
	}
}

// notifier delivers callbacks in order on one goroutine, so pion's internal
// goroutines never run call-engine code and callbacks never run under the
// session's locks.
type notifier struct {
	mu      sync.Mutex
	q       []func()
	closed  bool
	wake    chan struct{}
	running atomic.Bool
}

func newNotifier() *notifier { return &notifier{wake: make(chan struct{}, 1)} }

func (n *notifier) post(f func()) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.q = append(n.q, f)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// onNotifier reports whether a callback is running right now — used by
// Close to avoid waiting for the notifier from inside one of its callbacks.
func (n *notifier) onNotifier() bool { return n.running.Load() }

func (n *notifier) run() {
	for {
		n.mu.Lock()
		q, closed := n.q, n.closed
		n.q = nil
		n.mu.Unlock()
		for _, f := range q {
			n.running.Store(true)
			f()
			n.running.Store(false)
		}
		if len(q) > 0 {
			continue
		}
		if closed {
			return
		}
		<-n.wake
	}
}
