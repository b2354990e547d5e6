package device

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// recordCall writes 3 s of a call into rec: test-pattern video (track 0),
// tone as PCM16 (track 1) and as G.711 µ-law payloads (track 2), audio
// starting before the first video frame. It returns the source frames and
// the audio written.
func recordCall(t *testing.T, rec *MKVRecorder) (frames []*I420Frame, pcm []int16, ulaw []byte) {
	t.Helper()
	start := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	clk := NewVirtualClock(start)
	video := &TestPattern{Clock: clk, Lossless: true} // the tests compare exact pixels
	ctx := context.Background()
	if err := video.Start(ctx, VideoConfig{Width: 320, Height: 240, FPS: 15, KeyframeEvery: time.Second}); err != nil {
		t.Fatal(err)
	}
	defer video.Stop()
	render := newPatternRenderer(320, 240, 15)
	tone := NewChimeTone()
	if err := tone.Start(ctx, AudioFormat{SampleRate: 8000, Channels: 1}); err != nil {
		t.Fatal(err)
	}
	defer tone.Stop()
	// 150 chunks of 20 ms audio, 45 frames of video, interleaved by time
	// as they would arrive from two goroutines.
	buf := make([]int16, 160)
	vi := 0
	for ai := 0; ai < 150; ai++ {
		at := start.Add(time.Duration(ai) * 20 * time.Millisecond)
		n, _ := tone.ReadPCM(ctx, buf)
		chunk := append([]int16(nil), buf[:n]...)
		if err := rec.WritePCM(1, at, chunk); err != nil {
			t.Fatal(err)
		}
		payload := AppendMuLaw(nil, chunk)
		if err := rec.WriteG711(2, at, payload); err != nil {
			t.Fatal(err)
		}
		pcm = append(pcm, chunk...)
		ulaw = append(ulaw, payload...)
		for ai >= 5 && vi < 45 && start.Add(100*time.Millisecond+time.Duration(vi)*time.Second/15).Before(at) {
			au, err := video.ReadAccessUnit(ctx)
			if err != nil {
				t.Fatal(err)
			}
			f := NewI420Frame(320, 240)
			render.render(f, uint64(vi), au.CaptureTime)
			frames = append(frames, f)
			au.CaptureTime = au.CaptureTime.Add(100 * time.Millisecond) // video starts 100 ms into the call
			if err := rec.WriteVideo(0, au); err != nil {
				t.Fatal(err)
			}
			vi++
		}
	}
	return frames, pcm, ulaw
}

var recordTracks = []RecordTrack{
	{Name: "door video", Video: true},
	{Name: "door audio", Codec: RecordPCM16, SampleRate: 8000},
	{Name: "door audio (PCMU)", Codec: RecordPCMU, SampleRate: 8000},
}

type probeOut struct {
	Streams []struct {
		CodecName  string `json:"codec_name"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
		SampleRate string `json:"sample_rate"`
		Channels   int    `json:"channels"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobeJSON(t *testing.T, path string) probeOut {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var p probeOut
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMKVRecorderFFmpeg records video and audio and has ffmpeg read it back:
// stream layout, duration, every video frame pixel-exact (the test pattern
// is lossless) and every audio sample exact.
func TestMKVRecorderFFmpeg(t *testing.T) {
	requireFFmpeg(t)
	path := filepath.Join(t.TempDir(), "call.mkv")
	rec, err := CreateMKVRecording(path, recordTracks)
	if err != nil {
		t.Fatal(err)
	}
	frames, pcm, ulaw := recordCall(t, rec)
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if len(frames) < 40 {
		t.Fatalf("recorded %d frames", len(frames))
	}
	// The container read alone must raise no warning (only ffmpeg's note
	// that it guessed the mono channel layout)...
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "warning", "-i", path, "-map", "0", "-c", "copy", "-f", "null", "-").CombinedOutput()
	out = bytes.ReplaceAll(out, []byte("Guessed Channel Layout for Input Stream #0.1 : mono\n"), nil)
	out = bytes.ReplaceAll(out, []byte("Guessed Channel Layout for Input Stream #0.2 : mono\n"), nil)
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("ffmpeg reading the recording: %v\n%s", err, out)
	}
	// ...and decoding every stream no error. The millisecond time base is
	// kept for the output: ffmpeg's default 1/fps encoder time base would
	// round 15 fps millisecond stamps onto its own duplicates.
	out, err = exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0", "-fps_mode", "passthrough",
		"-enc_time_base:v", "1:1000", "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("ffmpeg decoding the recording: %v\n%s", err, out)
	}
	p := ffprobeJSON(t, path)
	if len(p.Streams) != 3 || p.Streams[0].CodecName != "h264" || p.Streams[0].Width != 320 || p.Streams[0].Height != 240 ||
		p.Streams[1].CodecName != "pcm_s16le" || p.Streams[1].SampleRate != "8000" || p.Streams[1].Channels != 1 ||
		p.Streams[2].CodecName != "pcm_mulaw" || p.Streams[2].SampleRate != "8000" {
		t.Fatalf("ffprobe streams: %+v", p.Streams)
	}
	if d, _ := strconv.ParseFloat(p.Format.Duration, 64); d < 2.9 || d > 3.1 {
		t.Fatalf("duration %q, want about 3 s", p.Format.Duration)
	}
	raw := ffmpegDecodeRaw(t, path)
	size := 320 * 240 * 3 / 2
	if len(raw) != size*len(frames) {
		t.Fatalf("decoded %d frames, want %d", len(raw)/size, len(frames))
	}
	for i, f := range frames {
		if !bytes.Equal(raw[i*size:i*size+320*240], f.Y) || !bytes.Equal(raw[i*size+320*240:(i+1)*size], append(append([]byte(nil), f.Cb...), f.Cr...)) {
			t.Fatalf("frame %d differs from the source", i)
		}
	}
	for _, c := range []struct {
		stream string
		want   []int16
	}{{"0:a:0", pcm}, {"0:a:1", AppendMuLawPCM(nil, ulaw)}} {
		cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", c.stream, "-f", "s16le", "-")
		b, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		got := make([]int16, len(b)/2)
		for i := range got {
			got[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
		}
		if !equalInt16(got, c.want) {
			t.Fatalf("stream %s: %d samples back, %d written, or content differs", c.stream, len(got), len(c.want))
		}
	}
}

// Without seeking (a pipe, or a file cut short) the recording still plays.
func TestMKVRecorderUnseekable(t *testing.T) {
	var buf bytes.Buffer
	rec, err := NewMKVRecorder(&buf, recordTracks)
	if err != nil {
		t.Fatal(err)
	}
	frames, _, _ := recordCall(t, rec)
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte{0x1A, 0x45, 0xDF, 0xA3}) {
		t.Fatal("no EBML header")
	}
	requireFFmpeg(t)
	// Cut the file in the middle of a block, as a crash would.
	cut := buf.Bytes()[:buf.Len()*2/3]
	path := filepath.Join(t.TempDir(), "cut.mkv")
	if err := os.WriteFile(path, cut, 0o644); err != nil {
		t.Fatal(err)
	}
	raw := ffmpegDecodeRawLenient(t, path)
	size := 320 * 240 * 3 / 2
	n := len(raw) / size
	if n < 10 || n >= len(frames) {
		t.Fatalf("decoded %d frames from a truncated recording", n)
	}
	for i := 0; i < n; i++ {
		if !bytes.Equal(raw[i*size:i*size+320*240], frames[i].Y) {
			t.Fatalf("frame %d differs", i)
		}
	}
}

func ffmpegDecodeRawLenient(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := exec.Command("ffmpeg", "-nostdin", "-v", "quiet", "-i", path, "-map", "0:v", "-fps_mode", "passthrough",
		"-f", "rawvideo", "-pix_fmt", "yuv420p", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	return raw
}

// A video track that never starts is left out after HeaderWait; the audio
// held meanwhile is all kept. Video before a keyframe is dropped.
func TestMKVRecorderHeaderWait(t *testing.T) {
	var buf bytes.Buffer
	rec, err := NewMKVRecorder(&buf, []RecordTrack{{Video: true}, {Codec: RecordPCMA}})
	if err != nil {
		t.Fatal(err)
	}
	rec.HeaderWait = 500 * time.Millisecond
	enc, _ := NewH264PCMEncoder(32, 32, 15)
	f := NewI420Frame(32, 32)
	key, _, _ := enc.Encode(nil, f, false)
	p, _, _ := enc.Encode(nil, f, false)
	// A P frame alone is dropped (nothing to decode it from).
	if err := rec.WriteVideo(0, AccessUnit{Data: p, CaptureTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(100, 0)
	for i := 0; i < 50; i++ {
		if err := rec.WritePCM(1, t0.Add(time.Duration(i)*20*time.Millisecond), make([]int16, 160)); err != nil {
			t.Fatal(err)
		}
	}
	if buf.Len() == 0 {
		t.Fatal("header still held after HeaderWait of media time")
	}
	// The late video track is not in the file; writing to it is harmless.
	if err := rec.WriteVideo(0, AccessUnit{Data: key, Keyframe: true, CaptureTime: t0.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte("V_MPEG4/ISO/AVC")) || !bytes.Contains(buf.Bytes(), []byte("A_MS/ACM")) {
		t.Fatal("track layout wrong")
	}
	// 50 blocks of 160 A-law bytes each.
	if got := bytes.Count(buf.Bytes(), []byte{mkvSimpleBlockID, 0x40, 0xA4}); got != 50 {
		t.Fatalf("%d audio blocks, want 50", got)
	}
	if err := rec.WritePCM(1, t0, make([]int16, 10)); err == nil {
		t.Fatal("write after Close accepted")
	}
	if err := (&MKVRecorder{}).WriteVideo(5, AccessUnit{}); err == nil {
		t.Fatal("write to a missing track accepted")
	}
	if _, err := NewMKVRecorder(&buf, []RecordTrack{{Codec: RecordAudioCodec(9)}}); err == nil {
		t.Fatal("unknown codec accepted")
	}
}

func TestEBMLSizes(t *testing.T) {
	for _, c := range []struct {
		n    uint64
		want []byte
	}{{0, []byte{0x80}}, {126, []byte{0xFE}}, {127, []byte{0x40, 0x7F}}, {16382, []byte{0x7F, 0xFE}}, {16383, []byte{0x20, 0x3F, 0xFF}}} {
		if got := ebmlAppendSize(nil, c.n); !bytes.Equal(got, c.want) {
			t.Errorf("size %d: %x, want %x", c.n, got, c.want)
		}
	}
}
