package device

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// WAVWriter writes 16-bit PCM as a RIFF/WAVE stream. The header is written
// first with the largest sizes so that a file cut short by a crash still
// plays to its end in ffmpeg/VLC/mpv; Close writes the real sizes when the
// destination can seek.
type WAVWriter struct {
	w       io.Writer
	f       AudioFormat
	n       int64 // data bytes written
	scratch []byte
	closed  bool
}

const wavHeaderSize = 44

// NewWAVWriter writes the header for f to w.
func NewWAVWriter(w io.Writer, f AudioFormat) (*WAVWriter, error) {
	if f.SampleRate <= 0 || f.Channels < 1 || f.Channels > 8 {
		return nil, fmt.Errorf("wav: invalid format %+v", f)
	}
	ww := &WAVWriter{w: w, f: f}
	if _, err := w.Write(ww.header(0xFFFFFFFF - wavHeaderSize + 8)); err != nil {
		return nil, fmt.Errorf("wav: write header: %w", err)
	}
	return ww, nil
}

func (ww *WAVWriter) header(dataBytes int64) []byte {
	h := make([]byte, wavHeaderSize)
	le := binary.LittleEndian
	copy(h[0:], "RIFF")
	le.PutUint32(h[4:], uint32(min(dataBytes+wavHeaderSize-8, 0xFFFFFFFF)))
	copy(h[8:], "WAVEfmt ")
	le.PutUint32(h[16:], 16)
	le.PutUint16(h[20:], 1) // WAVE_FORMAT_PCM
	le.PutUint16(h[22:], uint16(ww.f.Channels))
	le.PutUint32(h[24:], uint32(ww.f.SampleRate))
	le.PutUint32(h[28:], uint32(ww.f.SampleRate*ww.f.Channels*2))
	le.PutUint16(h[32:], uint16(ww.f.Channels*2))
	le.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	le.PutUint32(h[40:], uint32(min(dataBytes, 0xFFFFFFFF-wavHeaderSize+8)))
	return h
}

// Write appends interleaved samples.
func (ww *WAVWriter) Write(samples []int16) error {
	if ww.closed {
		return errors.New("wav: write after close")
	}
	if cap(ww.scratch) < 2*len(samples) {
		ww.scratch = make([]byte, 2*len(samples))
	}
	b := ww.scratch[:2*len(samples)]
	for i, s := range samples {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(s))
	}
	n, err := ww.w.Write(b)
	ww.n += int64(n)
	if err != nil {
		return fmt.Errorf("wav: write samples: %w", err)
	}
	return nil
}

// Samples returns how many samples (all channels) were written.
func (ww *WAVWriter) Samples() int64 { return ww.n / 2 }

// Close patches the RIFF and data sizes if the destination is an
// io.WriteSeeker; it does not close the destination.
func (ww *WAVWriter) Close() error {
	if ww.closed {
		return nil
	}
	ww.closed = true
	ws, ok := ww.w.(io.WriteSeeker)
	if !ok {
		return nil
	}
	end, err := ws.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("wav: seek: %w", err)
	}
	if _, err := ws.Seek(end-ww.n-wavHeaderSize, io.SeekStart); err != nil {
		return fmt.Errorf("wav: seek to header: %w", err)
	}
	if _, err := ws.Write(ww.header(ww.n)); err != nil {
		return fmt.Errorf("wav: rewrite header: %w", err)
	}
	if _, err := ws.Seek(end, io.SeekStart); err != nil {
		return fmt.Errorf("wav: seek to end: %w", err)
	}
	return nil
}

// ReadWAV reads a 16-bit PCM WAVE stream (as WAVWriter writes it, or any
// canonical PCM file) and returns its format and samples. Unknown chunks
// are skipped; a data size larger than the stream (a streaming header)
// reads to the end.
func ReadWAV(r io.Reader) (AudioFormat, []int16, error) {
	var f AudioFormat
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return f, nil, fmt.Errorf("wav: read RIFF header: %w", err)
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return f, nil, errors.New("wav: not a RIFF/WAVE stream")
	}
	haveFmt := false
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return f, nil, fmt.Errorf("wav: no data chunk: %w", err)
		}
		size := int64(binary.LittleEndian.Uint32(ch[4:]))
		switch string(ch[0:4]) {
		case "fmt ":
			if size < 16 || size > 1<<16 {
				return f, nil, fmt.Errorf("wav: fmt chunk of %d bytes", size)
			}
			b := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, b); err != nil {
				return f, nil, fmt.Errorf("wav: read fmt: %w", err)
			}
			format := binary.LittleEndian.Uint16(b[0:])
			bitsPer := binary.LittleEndian.Uint16(b[14:])
			if (format != 1 && format != 0xFFFE) || bitsPer != 16 {
				return f, nil, fmt.Errorf("wav: format %#x with %d bits, want 16-bit PCM", format, bitsPer)
			}
			f.Channels = int(binary.LittleEndian.Uint16(b[2:]))
			f.SampleRate = int(binary.LittleEndian.Uint32(b[4:]))
			haveFmt = true
		case "data":
			if !haveFmt {
				return f, nil, errors.New("wav: data before fmt")
			}
			data, err := io.ReadAll(io.LimitReader(r, size))
			if err != nil {
				return f, nil, fmt.Errorf("wav: read data: %w", err)
			}
			pcm := make([]int16, len(data)/2)
			for i := range pcm {
				pcm[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
			}
			return f, pcm, nil
		default:
			if _, err := io.CopyN(io.Discard, r, size+size%2); err != nil {
				return f, nil, fmt.Errorf("wav: skip %q chunk: %w", ch[0:4], err)
			}
		}
	}
}

// WAVSink is an AudioSink that records what it is given to a WAV file
// (remote audio in tests and the demo). Each Start creates or truncates Path.
type WAVSink struct {
	Path string

	mu sync.Mutex
	f  *os.File
	w  *WAVWriter
}

// NewWAVSink returns a sink writing to path.
func NewWAVSink(path string) *WAVSink { return &WAVSink{Path: path} }

// Start creates the file and writes the header.
func (s *WAVSink) Start(_ context.Context, f AudioFormat) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		return errors.New("wav sink: already started")
	}
	file, err := os.Create(s.Path)
	if err != nil {
		return fmt.Errorf("wav sink: %w", err)
	}
	w, err := NewWAVWriter(file, f)
	if err != nil {
		file.Close()
		return fmt.Errorf("wav sink %s: %w", s.Path, err)
	}
	s.f, s.w = file, w
	return nil
}

// WritePCM appends samples to the file.
func (s *WAVSink) WritePCM(_ context.Context, samples []int16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return errors.New("wav sink: not started")
	}
	return s.w.Write(samples)
}

// Stop finalises the header and closes the file.
func (s *WAVSink) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := errors.Join(s.w.Close(), s.f.Close())
	s.f, s.w = nil, nil
	if err != nil {
		return fmt.Errorf("wav sink %s: %w", s.Path, err)
	}
	return nil
}

// NullSink is an AudioSink that discards audio and counts it.
type NullSink struct {
	samples atomic.Int64
	writes  atomic.Int64
}

// Start accepts any format.
func (n *NullSink) Start(context.Context, AudioFormat) error { return nil }

// WritePCM counts and discards samples.
func (n *NullSink) WritePCM(_ context.Context, samples []int16) error {
	n.samples.Add(int64(len(samples)))
	n.writes.Add(1)
	return nil
}

// Stop does nothing.
func (n *NullSink) Stop() error { return nil }

// Samples returns the number of samples written so far.
func (n *NullSink) Samples() int64 { return n.samples.Load() }

// Writes returns the number of WritePCM calls so far.
func (n *NullSink) Writes() int64 { return n.writes.Load() }
