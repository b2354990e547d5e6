package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// Recording writes each track to its own file in formats ordinary players
// open without a muxer of ours:
//
//	<dir>/<session>-remote.h264, <session>-local.h264  H.264 Annex-B
//	                                                   (ffplay, mpv, VLC)
//	<dir>/<session>-remote.wav,  <session>-local.wav   mono PCM WAV (8 kHz,
//	                                                   16 kHz with G.722)
//
// A single MP4/MKV with A/V sync is left for later; `ffmpeg -r 15 -i x.h264
// -i x.wav -c:v copy x.mp4` joins them.
type recorders struct {
	remoteVideo, localVideo *h264File
	remoteAudio, localAudio *wavFile
}

func openRecorders(opts SessionOptions, id string, audioRate int) (*recorders, error) {
	if opts.RecordDir == "" || (!opts.RecordAudio && !opts.RecordVideo) {
		return nil, nil
	}
	if err := os.MkdirAll(opts.RecordDir, 0o750); err != nil {
		return nil, fmt.Errorf("media: record dir: %w", err)
	}
	r := &recorders{}
	var errs []error
	base := filepath.Join(opts.RecordDir, id)
	if opts.RecordVideo {
		var err error
		if r.remoteVideo, err = createH264File(base + "-remote.h264"); err != nil {
			errs = append(errs, err)
		}
		if r.localVideo, err = createH264File(base + "-local.h264"); err != nil {
			errs = append(errs, err)
		}
	}
	if opts.RecordAudio {
		var err error
		if r.remoteAudio, err = createWAV(base+"-remote.wav", audioRate); err != nil {
			errs = append(errs, err)
		}
		if r.localAudio, err = createWAV(base+"-local.wav", audioRate); err != nil {
			errs = append(errs, err)
		}
	}
	return r, errors.Join(errs...)
}

func (r *recorders) close(log *slog.Logger) {
	for _, c := range []interface{ close() error }{r.remoteVideo, r.localVideo, r.remoteAudio, r.localAudio} {
		if err := c.close(); err != nil {
			log.Warn("close recording", "err", err)
		}
	}
}

// h264File is an Annex-B elementary stream; a nil *h264File ignores writes.
type h264File struct {
	mu      sync.Mutex
	f       *os.File
	started bool // the file starts at a keyframe so it plays from byte 0
	err     error
}

func createH264File(path string) (*h264File, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("media: create %s: %w", path, err)
	}
	return &h264File{f: f}, nil
}

func (h *h264File) write(au []byte, log *slog.Logger) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil || h.err != nil {
		return
	}
	if !h.started {
		if !hasIDR(au) {
			return
		}
		h.started = true
	}
	if _, err := h.f.Write(au); err != nil {
		h.err = err
		log.Warn("video recording stopped", "file", h.f.Name(), "err", err)
	}
}

func (h *h264File) close() error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		return nil
	}
	err := h.f.Close()
	h.f = nil
	return err
}

// wavFile is 16-bit mono PCM; the RIFF sizes are patched on close.
type wavFile struct {
	mu   sync.Mutex
	f    *os.File
	n    uint32 // data bytes
	rate uint32
	buf  []byte
	err  error
}

func createWAV(path string, rate int) (*wavFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("media: create %s: %w", path, err)
	}
	w := &wavFile{f: f, rate: uint32(rate)}
	if _, err := f.Write(w.header()); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("media: write %s: %w", path, err)
	}
	return w, nil
}

func (w *wavFile) header() []byte {
	h := make([]byte, 44)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], 36+w.n)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:], 1) // mono
	binary.LittleEndian.PutUint32(h[24:], w.rate)
	binary.LittleEndian.PutUint32(h[28:], w.rate*2)
	binary.LittleEndian.PutUint16(h[32:], 2)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], w.n)
	return h
}

func (w *wavFile) write(pcm []int16, log *slog.Logger) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil || w.err != nil {
		return
	}
	w.buf = w.buf[:0]
	for _, s := range pcm {
		w.buf = binary.LittleEndian.AppendUint16(w.buf, uint16(s))
	}
	if _, err := w.f.Write(w.buf); err != nil {
		w.err = err
		log.Warn("audio recording stopped", "file", w.f.Name(), "err", err)
		return
	}
	w.n += uint32(len(w.buf))
}

func (w *wavFile) close() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	_, err := w.f.WriteAt(w.header(), 0)
	err = errors.Join(err, w.f.Close())
	w.f = nil
	return err
}
