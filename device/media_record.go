package device

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"
)

// RecordAudioCodec is how a recorded audio track is stored.
type RecordAudioCodec int

const (
	// RecordPCM16 stores 16-bit little-endian PCM (A_PCM/INT/LIT): plays
	// everywhere, 2 bytes per sample.
	RecordPCM16 RecordAudioCodec = iota
	// RecordPCMU stores G.711 µ-law (A_MS/ACM, format tag 7): what a PCMU
	// call carries, stored without transcoding.
	RecordPCMU
	// RecordPCMA stores G.711 A-law (A_MS/ACM, format tag 6).
	RecordPCMA
)

// RecordTrack declares one track of a recording.
type RecordTrack struct {
	Name  string // shown by players, e.g. "remote video", "local audio"
	Video bool   // H.264 access units; otherwise audio
	// Audio only:
	Codec      RecordAudioCodec
	SampleRate int // default 8000
	Channels   int // default 1
}

// MKVRecorder writes H.264 access units and audio into a Matroska file
// that ffmpeg, VLC, mpv and browsers' media players open: video as
// V_MPEG4/ISO/AVC (avcC CodecPrivate, length-prefixed NAL units), audio as
// PCM or G.711. It is for recordAudio/recordVideo: several tracks (remote
// and local, audio and video) in one file, written as they arrive from
// different goroutines (safe for concurrent use).
//
// Timestamps come from the caller (capture times) and are stored in
// milliseconds from the earliest one. The Segment and Clusters are written
// with "unknown" sizes so a recording cut short by a crash stays playable;
// Close fills in their sizes and the Duration when the file can seek. There
// are no Cues: players seek by scanning clusters (one per keyframe, at
// least every 5 s).
//
// The track header needs each video track's SPS/PPS, so blocks are held in
// memory until every video track has delivered a keyframe, or for at most
// HeaderWait of media time; a video track that has not started by then
// (camera failed, video never negotiated) is left out of the file. Video
// before a track's first keyframe is dropped.
type MKVRecorder struct {
	// HeaderWait bounds how long (in media time) blocks are held waiting
	// for the video tracks' first keyframes; set before the first write.
	// Default 3 s.
	HeaderWait time.Duration

	mu      sync.Mutex
	w       io.Writer
	closer  io.Closer
	tracks  []recTrack
	pending []recBlock
	started bool // header written
	closed  bool
	err     error // sticky write error

	t0          time.Time
	haveT0      bool
	clusterTS   int64
	haveCluster bool
	maxTS       int64

	segDataStart int64   // offset of the Segment payload, for the size patch
	clusterAt    []int64 // offsets of Cluster payloads, for the size patches
	durationPos  int64   // offset of the Duration float payload
	written      int64
	scratch      []byte
}

type recTrack struct {
	RecordTrack
	number   int // Matroska track number; 0 = left out
	lastTS   int64
	haveTS   bool
	sps, pps []byte
	width    int
	height   int
	keyed    bool // a keyframe has arrived
}

type recBlock struct {
	track int
	t     time.Time
	key   bool
	data  []byte
}

// NewMKVRecorder starts a recording of tracks on w. If w is an
// io.WriteSeeker, Close finalises sizes and duration.
func NewMKVRecorder(w io.Writer, tracks []RecordTrack) (*MKVRecorder, error) {
	if len(tracks) == 0 {
		return nil, errors.New("mkv recorder: no tracks")
	}
	r := &MKVRecorder{w: w}
	for i, t := range tracks {
		if !t.Video {
			if t.SampleRate == 0 {
				t.SampleRate = 8000
			}
			if t.Channels == 0 {
				t.Channels = 1
			}
			if t.SampleRate < 8000 || t.SampleRate > 192000 || t.Channels < 1 || t.Channels > 8 {
				return nil, fmt.Errorf("mkv recorder: track %d: invalid audio format %d Hz x %d", i, t.SampleRate, t.Channels)
			}
			if t.Codec < RecordPCM16 || t.Codec > RecordPCMA {
				return nil, fmt.Errorf("mkv recorder: track %d: unknown audio codec %d", i, t.Codec)
			}
		}
		r.tracks = append(r.tracks, recTrack{RecordTrack: t})
	}
	return r, nil
}

// CreateMKVRecording creates (or truncates) path and records tracks into
// it; Close closes the file.
func CreateMKVRecording(path string, tracks []RecordTrack) (*MKVRecorder, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("mkv recorder: %w", err)
	}
	r, err := NewMKVRecorder(f, tracks)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	r.closer = f
	return r, nil
}

// WriteVideo records an access unit (Annex-B, as from a VideoSource) on
// video track index track, stamped with au.CaptureTime.
func (r *MKVRecorder) WriteVideo(track int, au AccessUnit) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	tr, err := r.track(track, true)
	if err != nil {
		return err
	}
	nals := SplitAnnexB(au.Data)
	var data []byte
	key := false
	for _, n := range nals {
		switch H264NALType(n) {
		case h264NALAUD, 12:
			continue
		case h264NALSPS:
			if !r.started || tr.sps == nil {
				if info, err := ParseH264SPS(n); err == nil {
					tr.sps = append([]byte(nil), n...)
					tr.width, tr.height = info.Width, info.Height
				}
			}
		case h264NALPPS:
			if !r.started || tr.pps == nil {
				tr.pps = append([]byte(nil), n...)
			}
		case h264NALIDR:
			key = true
		}
		data = binary.BigEndian.AppendUint32(data, uint32(len(n)))
		data = append(data, n...)
	}
	if len(data) == 0 {
		return nil
	}
	if !tr.keyed {
		if !key || tr.sps == nil || tr.pps == nil {
			return nil // undecodable until the first keyframe with parameter sets
		}
		tr.keyed = true
	}
	return r.add(recBlock{track: track, t: au.CaptureTime, key: key, data: data})
}

// WritePCM records interleaved 16-bit samples captured at t on audio track
// index track, converting them to the track's codec.
func (r *MKVRecorder) WritePCM(track int, t time.Time, pcm []int16) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	tr, err := r.track(track, false)
	if err != nil {
		return err
	}
	var data []byte
	switch tr.Codec {
	case RecordPCMU:
		data = AppendMuLaw(nil, pcm)
	case RecordPCMA:
		data = AppendALaw(nil, pcm)
	default:
		data = make([]byte, 2*len(pcm))
		for i, s := range pcm {
			binary.LittleEndian.PutUint16(data[2*i:], uint16(s))
		}
	}
	return r.add(recBlock{track: track, t: t, key: true, data: data})
}

// WriteG711 records an already encoded G.711 payload (an RTP PCMU/PCMA
// payload, say) on an audio track whose codec is the same law.
func (r *MKVRecorder) WriteG711(track int, t time.Time, payload []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	tr, err := r.track(track, false)
	if err != nil {
		return err
	}
	if tr.Codec != RecordPCMU && tr.Codec != RecordPCMA {
		return fmt.Errorf("mkv recorder: track %d is not a G.711 track", track)
	}
	return r.add(recBlock{track: track, t: t, key: true, data: append([]byte(nil), payload...)})
}

func (r *MKVRecorder) track(i int, video bool) (*recTrack, error) {
	if r.closed {
		return nil, errors.New("mkv recorder: closed")
	}
	if r.err != nil {
		return nil, r.err
	}
	if i < 0 || i >= len(r.tracks) || r.tracks[i].Video != video {
		return nil, fmt.Errorf("mkv recorder: no %s track %d", map[bool]string{true: "video", false: "audio"}[video], i)
	}
	return &r.tracks[i], nil
}

func (r *MKVRecorder) add(b recBlock) error {
	if r.started {
		if r.tracks[b.track].number == 0 {
			return nil // left out of the header
		}
		return r.writeBlock(b)
	}
	r.pending = append(r.pending, b)
	ready := true
	for _, t := range r.tracks {
		if t.Video && !t.keyed {
			ready = false
		}
	}
	wait := r.HeaderWait
	if wait <= 0 {
		wait = 3 * time.Second
	}
	if !ready && b.t.Sub(r.pending[0].t) < wait {
		return nil
	}
	return r.start()
}

// start writes the header and the held blocks.
func (r *MKVRecorder) start() error {
	r.started = true
	n := 0
	for i := range r.tracks {
		if t := &r.tracks[i]; !t.Video || t.keyed {
			n++
			t.number = n
		}
	}
	if n == 0 {
		return r.fail(errors.New("mkv recorder: no track has data"))
	}
	for _, b := range r.pending {
		if r.tracks[b.track].number != 0 && (!r.haveT0 || b.t.Before(r.t0)) {
			r.t0, r.haveT0 = b.t, true
		}
	}
	if err := r.writeHeader(); err != nil {
		return err
	}
	pending := r.pending
	r.pending = nil
	for _, b := range pending {
		if r.tracks[b.track].number == 0 {
			continue
		}
		if err := r.writeBlock(b); err != nil {
			return err
		}
	}
	return nil
}

func (r *MKVRecorder) fail(err error) error {
	if r.err == nil {
		r.err = err
	}
	return r.err
}

func (r *MKVRecorder) out(p []byte) error {
	n, err := r.w.Write(p)
	r.written += int64(n)
	if err != nil {
		return r.fail(fmt.Errorf("mkv recorder: write: %w", err))
	}
	return nil
}

func (r *MKVRecorder) writeHeader() error {
	var h []byte
	var eb []byte
	eb = ebmlUint(eb, ebmlVersionID, 1)
	eb = ebmlUint(eb, ebmlReadVersionID, 1)
	eb = ebmlUint(eb, ebmlMaxIDLengthID, 4)
	eb = ebmlUint(eb, ebmlMaxSizeLengthID, 8)
	eb = ebmlString(eb, ebmlDocTypeID, "matroska")
	eb = ebmlUint(eb, ebmlDocTypeVersionID, 4)
	eb = ebmlUint(eb, ebmlDocTypeReadVerID, 2)
	h = ebmlElem(h, ebmlHeaderID, eb)

	h = ebmlAppendID(h, mkvSegmentID)
	h = append(h, ebmlUnknownSize...)
	r.segDataStart = int64(len(h))

	var info []byte
	info = ebmlUint(info, mkvTimestampScaleID, 1_000_000) // 1 ms
	info = ebmlString(info, mkvMuxingAppID, "intercomd")
	info = ebmlString(info, mkvWritingAppID, "intercomd")
	info = ebmlInt(info, mkvDateUTCID, r.t0.Sub(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)).Nanoseconds())
	durOff := len(info) + 3 // ID (2) + size (1)
	info = ebmlFloat(info, mkvDurationID, 0)
	h = ebmlAppendID(h, mkvInfoID)
	h = ebmlAppendSize(h, uint64(len(info)))
	r.durationPos = int64(len(h) + durOff)
	h = append(h, info...)

	var tracks []byte
	for i, t := range r.tracks {
		if t.number == 0 {
			continue
		}
		var e []byte
		e = ebmlUint(e, mkvTrackNumberID, uint64(t.number))
		e = ebmlUint(e, mkvTrackUIDID, uint64(t.number)<<32|uint64(i+1))
		e = ebmlUint(e, mkvFlagLacingID, 0)
		e = ebmlUint(e, mkvFlagDefaultID, 1)
		if t.Name != "" {
			e = ebmlString(e, mkvNameID, t.Name)
		}
		if t.Video {
			e = ebmlUint(e, mkvTrackTypeID, 1)
			e = ebmlString(e, mkvCodecIDID, "V_MPEG4/ISO/AVC")
			e = ebmlElem(e, mkvCodecPrivateID, avcDecoderConfig(t.sps, t.pps))
			var v []byte
			v = ebmlUint(v, mkvPixelWidthID, uint64(t.width))
			v = ebmlUint(v, mkvPixelHeightID, uint64(t.height))
			e = ebmlElem(e, mkvVideoID, v)
		} else {
			e = ebmlUint(e, mkvTrackTypeID, 2)
			bits := 16
			switch t.Codec {
			case RecordPCMU, RecordPCMA:
				bits = 8
				e = ebmlString(e, mkvCodecIDID, "A_MS/ACM")
				e = ebmlElem(e, mkvCodecPrivateID, waveFormatEx(t.Codec, t.SampleRate, t.Channels))
			default:
				e = ebmlString(e, mkvCodecIDID, "A_PCM/INT/LIT")
			}
			var a []byte
			a = ebmlFloat(a, mkvSamplingFreqID, float64(t.SampleRate))
			a = ebmlUint(a, mkvChannelsID, uint64(t.Channels))
			a = ebmlUint(a, mkvBitDepthID, uint64(bits))
			e = ebmlElem(e, mkvAudioID, a)
		}
		tracks = ebmlElem(tracks, mkvTrackEntryID, e)
	}
	h = ebmlElem(h, mkvTracksID, tracks)
	return r.out(h)
}

// avcDecoderConfig builds the AVCDecoderConfigurationRecord (ISO/IEC
// 14496-15) with 4-byte NAL lengths.
func avcDecoderConfig(sps, pps []byte) []byte {
	c := []byte{1, sps[1], sps[2], sps[3], 0xFF, 0xE1}
	c = binary.BigEndian.AppendUint16(c, uint16(len(sps)))
	c = append(c, sps...)
	c = append(c, 1)
	c = binary.BigEndian.AppendUint16(c, uint16(len(pps)))
	return append(c, pps...)
}

// waveFormatEx is the WAVEFORMATEX that A_MS/ACM carries.
func waveFormatEx(codec RecordAudioCodec, rate, ch int) []byte {
	tag := uint16(7) // WAVE_FORMAT_MULAW
	if codec == RecordPCMA {
		tag = 6 // WAVE_FORMAT_ALAW
	}
	w := binary.LittleEndian.AppendUint16(nil, tag)
	w = binary.LittleEndian.AppendUint16(w, uint16(ch))
	w = binary.LittleEndian.AppendUint32(w, uint32(rate))
	w = binary.LittleEndian.AppendUint32(w, uint32(rate*ch))
	w = binary.LittleEndian.AppendUint16(w, uint16(ch))
	w = binary.LittleEndian.AppendUint16(w, 8)
	return binary.LittleEndian.AppendUint16(w, 0)
}

// Clusters start at video keyframes (at most one per second) and at least
// every 5 s, and whenever a relative timestamp would leave int16 range.
const (
	mkvClusterMin = 1000
	mkvClusterMax = 5000
)

func (r *MKVRecorder) writeBlock(b recBlock) error {
	ts := max(b.t.Sub(r.t0).Milliseconds(), 0)
	// Timestamps are whole milliseconds; two blocks of a track in the same
	// millisecond (a burst from a subprocess, say) would be read as
	// duplicates, so each track's timestamps are kept strictly increasing.
	tr := &r.tracks[b.track]
	if tr.haveTS && ts <= tr.lastTS {
		ts = tr.lastTS + 1
	}
	tr.lastTS, tr.haveTS = ts, true
	rel := ts - r.clusterTS
	if !r.haveCluster || rel > mkvClusterMax || rel < -30000 ||
		(b.key && r.tracks[b.track].Video && rel >= mkvClusterMin) {
		c := ebmlAppendID(r.scratch[:0], mkvClusterID)
		c = append(c, ebmlUnknownSize...)
		r.clusterAt = append(r.clusterAt, r.written+int64(len(c)))
		c = ebmlUint(c, mkvClusterTimestampID, uint64(ts))
		r.scratch = c
		if err := r.out(c); err != nil {
			return err
		}
		r.clusterTS, r.haveCluster, rel = ts, true, 0
	}
	c := ebmlAppendID(r.scratch[:0], mkvSimpleBlockID)
	c = ebmlAppendSize(c, uint64(4+len(b.data)))
	c = append(c, 0x80|byte(r.tracks[b.track].number)) // track number as a 1-byte vint
	c = binary.BigEndian.AppendUint16(c, uint16(int16(rel)))
	if b.key {
		c = append(c, 0x80)
	} else {
		c = append(c, 0)
	}
	r.scratch = c
	if err := r.out(c); err != nil {
		return err
	}
	r.maxTS = max(r.maxTS, ts)
	return r.out(b.data)
}

// Close writes any held blocks, finalises the Segment size and Duration if
// the destination can seek, and closes the file CreateMKVRecording opened.
func (r *MKVRecorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	var errs []error
	if !r.started && len(r.pending) > 0 && r.err == nil {
		errs = append(errs, r.start())
	}
	if ws, ok := r.w.(io.WriteSeeker); ok && r.started && r.err == nil {
		errs = append(errs, r.finalise(ws))
	}
	if r.closer != nil {
		errs = append(errs, r.closer.Close())
	}
	return errors.Join(errs...)
}

func (r *MKVRecorder) finalise(ws io.WriteSeeker) error {
	end, err := ws.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("mkv recorder: %w", err)
	}
	base := end - r.written // the recording may not start at offset 0
	patch := func(off int64, p []byte) error {
		if _, err := ws.Seek(base+off, io.SeekStart); err != nil {
			return err
		}
		_, err := ws.Write(p)
		return err
	}
	var dur [8]byte
	binary.BigEndian.PutUint64(dur[:], math.Float64bits(float64(r.maxTS)))
	if err := patch(r.durationPos, dur[:]); err != nil {
		return fmt.Errorf("mkv recorder: patch duration: %w", err)
	}
	// Known sizes for the Segment and every Cluster (players warn about
	// unknown-sized Clusters inside a sized Segment).
	size := ebmlAppendSize8(nil, uint64(r.written-r.segDataStart))
	if err := patch(r.segDataStart-8, size); err != nil {
		return fmt.Errorf("mkv recorder: patch segment size: %w", err)
	}
	for i, at := range r.clusterAt {
		next := r.written
		if i+1 < len(r.clusterAt) {
			next = r.clusterAt[i+1] - 12 // the next Cluster's ID (4) and size (8)
		}
		if err := patch(at-8, ebmlAppendSize8(nil, uint64(next-at))); err != nil {
			return fmt.Errorf("mkv recorder: patch cluster size: %w", err)
		}
	}
	if _, err := ws.Seek(end, io.SeekStart); err != nil {
		return fmt.Errorf("mkv recorder: %w", err)
	}
	return nil
}
