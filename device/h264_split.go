package device

import (
	"bytes"
)

// h264AUSplitter cuts an Annex-B byte stream arriving in arbitrary chunks
// into access units (ITU-T H.264 7.4.1.2.3, simplified): a new access unit
// begins at an access unit delimiter, SPS, PPS, SEI or NAL types 14-18 that
// follow a coded slice, or at a coded slice with first_mb_in_slice == 0
// after one. It also
//   - drops AUDs and filler data (RTP packetisers drop them anyway),
//   - remembers the latest SPS/PPS and puts them in front of an IDR that
//     arrives without them, so every keyframe is decodable on its own,
//   - drops everything before the first IDR (a receiver cannot start there).
//
// A NAL unit's end is only certain when the next start code arrives, so by
// default an access unit is emitted when the first NAL of the next one is
// seen: one frame interval late. With early set, flushAtReadEnd emits the
// pending picture as soon as a read from the encoder ends right after a
// coded slice, which for encoders that write each frame in one go (rpicam-vid,
// ffmpeg -flush_packets 1) is the moment the frame is complete. If that guess
// is ever proven wrong (the next bytes do not begin with a start code, or
// continue the same picture) the splitter logs through onAnomaly, waits for
// the next IDR and stays in the safe mode.
type h264AUSplitter struct {
	buf      []byte   // bytes not yet cut into NAL units
	nals     [][]byte // NAL units of the access unit being collected
	hasVCL   bool
	hasIDR   bool
	sps, pps []byte
	haveKey  bool // an IDR has been emitted since reset
	dropped  int  // access units dropped while waiting for an IDR

	early         bool
	earlyFlushed  bool // the last AU was emitted by flushAtReadEnd
	checkNextVCL  bool // the next slice must start a new picture
	onAnomaly     func(reason string)
	emit          func(data []byte, keyframe bool)
	missingParams bool // an IDR arrived before any SPS/PPS
}

// reset forgets the stream (a restarted encoder is a new stream) but keeps
// nothing from it either: parameter sets will be re-sent by the new process.
func (s *h264AUSplitter) reset() {
	s.buf = s.buf[:0]
	s.nals = nil
	s.hasVCL, s.hasIDR = false, false
	s.sps, s.pps = nil, nil
	s.haveKey = false
	s.earlyFlushed, s.checkNextVCL = false, false
}

// write consumes a chunk of the byte stream.
func (s *h264AUSplitter) write(p []byte) {
	s.buf = append(s.buf, p...)
	if s.earlyFlushed {
		// The emitted picture was complete only if the stream goes on with
		// a start code (possibly preceded by zero bytes).
		i := 0
		for i < len(s.buf) && s.buf[i] == 0 {
			i++
		}
		if i == len(s.buf) {
			return // only zeros so far: undecided
		}
		s.earlyFlushed = false
		if i < 2 || s.buf[i] != 1 {
			s.anomaly("frame continued after an early flush: the encoder splits frames across writes")
			// Skip the tail of the NAL that was cut.
			j := nextStartCode(s.buf, 0)
			if j < 0 {
				s.buf = s.buf[:0]
				return
			}
			s.buf = s.buf[j:]
		}
	}
	start := nextStartCode(s.buf, 0)
	if start < 0 {
		// Keep at most a possible partial start code of garbage.
		if len(s.buf) > 2 {
			s.buf = append(s.buf[:0], s.buf[len(s.buf)-2:]...)
		}
		return
	}
	for {
		next := nextStartCode(s.buf, start+3)
		if next < 0 {
			break
		}
		s.nal(s.buf[start+3 : next])
		start = next
	}
	// Keep the incomplete last NAL (with its start code) for later.
	n := copy(s.buf, s.buf[start:])
	s.buf = s.buf[:n]
}

// flushAtReadEnd emits the pending picture if early flushing is on and the
// buffered bytes end in a coded slice.
func (s *h264AUSplitter) flushAtReadEnd() {
	if !s.early || len(s.buf) < 4 {
		return
	}
	start := nextStartCode(s.buf, 0)
	if start < 0 || start+3 >= len(s.buf) {
		return
	}
	switch H264NALType(s.buf[start+3:]) {
	case h264NALSlice, h264NALIDR:
	default:
		return
	}
	s.nal(s.buf[start+3:])
	s.buf = s.buf[:0]
	if s.hasVCL {
		s.flush()
		s.earlyFlushed = true
		s.checkNextVCL = true
	}
}

// end emits what is left at the end of the stream.
func (s *h264AUSplitter) end() {
	if start := nextStartCode(s.buf, 0); start >= 0 {
		s.nal(s.buf[start+3:])
	}
	s.buf = s.buf[:0]
	s.flush()
}

func (s *h264AUSplitter) anomaly(reason string) {
	s.early = false
	s.haveKey = false // wait for the next IDR: the last picture is broken
	s.nals = nil
	s.hasVCL, s.hasIDR = false, false
	if s.onAnomaly != nil {
		s.onAnomaly(reason)
	}
}

func (s *h264AUSplitter) nal(nal []byte) {
	nal = bytes.TrimRight(nal, "\x00") // trailing_zero_8bits
	if len(nal) == 0 {
		return
	}
	typ := H264NALType(nal)
	vcl := typ == h264NALSlice || typ == h264NALIDR
	if vcl && s.checkNextVCL {
		s.checkNextVCL = false
		if mb, err := h264FirstMBInSlice(nal); err == nil && mb != 0 {
			s.anomaly("picture has several slices: early flush cut it")
			return
		}
	}
	if s.hasVCL {
		boundary := false
		switch {
		case typ == h264NALAUD, typ == h264NALSPS, typ == h264NALPPS, typ == h264NALSEI, typ >= 14 && typ <= 18:
			boundary = true
		case vcl:
			if mb, err := h264FirstMBInSlice(nal); err == nil && mb == 0 {
				boundary = true
			}
		}
		if boundary {
			s.flush()
		}
	}
	switch typ {
	case h264NALAUD, 12: // access unit delimiter, filler data
		return
	case h264NALSPS:
		s.sps = append([]byte(nil), nal...)
	case h264NALPPS:
		s.pps = append([]byte(nil), nal...)
	}
	s.nals = append(s.nals, append([]byte(nil), nal...))
	if vcl {
		s.hasVCL = true
		s.hasIDR = s.hasIDR || typ == h264NALIDR
	}
}

func (s *h264AUSplitter) flush() {
	nals, hasVCL, idr := s.nals, s.hasVCL, s.hasIDR
	s.nals, s.hasVCL, s.hasIDR = nil, false, false
	if !hasVCL {
		// Parameter sets or SEI without a picture (end of stream): keep
		// the parameter sets cached, emit nothing.
		return
	}
	if !idr && !s.haveKey {
		s.dropped++
		return
	}
	var haveSPS, havePPS bool
	size := 0
	for _, n := range nals {
		haveSPS = haveSPS || H264NALType(n) == h264NALSPS
		havePPS = havePPS || H264NALType(n) == h264NALPPS
		size += 4 + len(n)
	}
	var out []byte
	if idr {
		if (!haveSPS && s.sps == nil) || (!havePPS && s.pps == nil) {
			s.missingParams = true
		}
		out = make([]byte, 0, size+8+len(s.sps)+len(s.pps))
		if !haveSPS && s.sps != nil {
			out = append(append(out, annexBStartCode...), s.sps...)
		}
		if !havePPS && s.pps != nil {
			out = append(append(out, annexBStartCode...), s.pps...)
		}
		s.haveKey = true
	} else {
		out = make([]byte, 0, size)
	}
	for _, n := range nals {
		out = append(append(out, annexBStartCode...), n...)
	}
	s.emit(out, idr)
}
