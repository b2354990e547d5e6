package device

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var (
	_ AudioSink = (*WAVSink)(nil)
	_ AudioSink = (*NullSink)(nil)
)

func TestWAVSinkRoundTripAndFFprobe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "remote.wav")
	sink := NewWAVSink(path)
	ctx := context.Background()
	f := AudioFormat{SampleRate: 16000, Channels: 2}
	if err := sink.Start(ctx, f); err != nil {
		t.Fatal(err)
	}
	var want []int16
	for i := 0; i < 50; i++ { // 50 x 20 ms = 1 s
		chunk := make([]int16, 640)
		for j := range chunk {
			chunk[j] = int16((i*640 + j) * 7)
		}
		want = append(want, chunk...)
		if err := sink.WritePCM(ctx, chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Stop(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 44+2*len(want) {
		t.Fatalf("file is %d bytes, want %d", len(data), 44+2*len(want))
	}
	gotF, got, err := ReadWAV(bytes.NewReader(data))
	if err != nil || gotF != f || !equalInt16(got, want) {
		t.Fatalf("read back %+v, %d samples, %v", gotF, len(got), err)
	}
	if err := sink.WritePCM(ctx, want[:2]); err == nil {
		t.Fatal("write after Stop succeeded")
	}
	t.Run("ffprobe", func(t *testing.T) {
		requireFFmpeg(t)
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate,channels,duration",
			"-of", "default=nw=1", path).CombinedOutput()
		if err != nil {
			t.Fatalf("ffprobe: %v\n%s", err, out)
		}
		for _, w := range []string{"codec_name=pcm_s16le", "sample_rate=16000", "channels=2", "duration=1.000000"} {
			if !strings.Contains(string(out), w) {
				t.Errorf("ffprobe lacks %q:\n%s", w, out)
			}
		}
	})
}

// A WAV written to a stream that cannot seek (or cut short by a crash)
// keeps its streaming header and still reads to the end.
func TestWAVWriterUnseekable(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWAVWriter(&buf, AudioFormat{SampleRate: 8000, Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	samples := []int16{1, -2, 3, -32768, 32767}
	if err := w.Write(samples); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Samples() != 5 {
		t.Fatalf("Samples() = %d", w.Samples())
	}
	_, got, err := ReadWAV(bytes.NewReader(buf.Bytes()))
	if err != nil || !equalInt16(got, samples) {
		t.Fatalf("got %v %v", got, err)
	}
	if _, _, err := ReadWAV(strings.NewReader("RIFF\x00\x00\x00\x00WAVE")); err == nil {
		t.Fatal("truncated WAV accepted")
	}
	if _, err := NewWAVWriter(&buf, AudioFormat{}); err == nil {
		t.Fatal("zero format accepted")
	}
}

func TestNullSinkCounts(t *testing.T) {
	var n NullSink
	ctx := context.Background()
	_ = n.Start(ctx, AudioFormat{SampleRate: 8000, Channels: 1})
	for i := 0; i < 3; i++ {
		_ = n.WritePCM(ctx, make([]int16, 160))
	}
	if n.Samples() != 480 || n.Writes() != 3 {
		t.Fatalf("samples %d writes %d", n.Samples(), n.Writes())
	}
}

func equalInt16(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
