//go:build cgo && swenc

package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// swencQuietLog keeps the encoder's Info lines out of benchmark output.
var swencQuietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// swencSliceSource replays prepared raw frames, cycling, unpaced; each
// frame gets the read time as CaptureTime unless it has one.
type swencSliceSource struct {
	mu      sync.Mutex
	frames  []RawFrame
	i       int
	running bool
	starts  int
}

func (s *swencSliceSource) Start(context.Context, VideoConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = true
	s.starts++
	return nil
}

func (s *swencSliceSource) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = false
	return nil
}

func (s *swencSliceSource) ReadFrame(ctx context.Context) (RawFrame, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return RawFrame{}, ErrSourceStopped
	}
	if err := ctx.Err(); err != nil {
		return RawFrame{}, err
	}
	f := s.frames[s.i%len(s.frames)]
	s.i++
	if f.CaptureTime.IsZero() {
		f.CaptureTime = time.Now()
	}
	return f, nil
}

// swencFrames renders n distinct synthetic I420 frames (copies, so they can
// be compared with what a decoder returns).
func swencFrames(t testing.TB, w, h, n, noise int) []RawFrame {
	t.Helper()
	src := &SyntheticRawSource{Unpaced: true, Noise: noise}
	if err := src.Start(context.Background(), VideoConfig{Width: w, Height: h, FPS: 15}); err != nil {
		t.Fatal(err)
	}
	out := make([]RawFrame, n)
	for i := range out {
		f, err := src.ReadFrame(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		f.Data = bytes.Clone(f.Data)
		f.CaptureTime = time.Time{}
		out[i] = f
	}
	return out
}

func swencStart(t testing.TB, src RawFrameSource, cfg VideoConfig) *SoftwareEncoder {
	t.Helper()
	e, err := NewSoftwareEncoder(src, SoftwareEncoderOptions{Logger: swencQuietLog})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop() })
	return e
}

func swencReadAU(t testing.TB, e *SoftwareEncoder) AccessUnit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	au, err := e.ReadAccessUnit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return au
}

// nalTypes lists the NAL unit types of an access unit.
func swencNALTypes(au []byte) []byte {
	var ts []byte
	for _, nal := range SplitAnnexB(au) {
		ts = append(ts, H264NALType(nal))
	}
	return ts
}

// checkKeyframe fails unless au is an IDR access unit with SPS and PPS, and
// returns the parsed SPS.
func swencCheckKeyframe(t testing.TB, au AccessUnit) H264SPSInfo {
	t.Helper()
	if !au.Keyframe {
		t.Fatalf("not a keyframe: NAL types %v", swencNALTypes(au.Data))
	}
	var sps H264SPSInfo
	var haveSPS, havePPS, haveIDR bool
	for _, nal := range SplitAnnexB(au.Data) {
		switch H264NALType(nal) {
		case swencNALSPS:
			s, err := ParseH264SPS(nal)
			if err != nil {
				t.Fatal(err)
			}
			sps, haveSPS = s, true
		case swencNALPPS:
			havePPS = true
		case swencNALIDR:
			if !haveSPS || !havePPS {
				t.Fatalf("IDR before SPS/PPS: NAL types %v", swencNALTypes(au.Data))
			}
			haveIDR = true
		case 1:
			t.Fatalf("keyframe with a non-IDR slice: NAL types %v", swencNALTypes(au.Data))
		}
	}
	if !haveIDR {
		t.Fatalf("keyframe without IDR slice: NAL types %v", swencNALTypes(au.Data))
	}
	return sps
}

func TestSoftwareEncoderKeyframeFirstAndProfile(t *testing.T) {
	frames := swencFrames(t, 640, 480, 15, 4)
	e := swencStart(t, &swencSliceSource{frames: frames}, VideoConfig{Width: 640, Height: 480, FPS: 15, KeyframeEvery: time.Hour})
	first := swencReadAU(t, e)
	sps := swencCheckKeyframe(t, first)
	plid := fmt.Sprintf("%02x%02x%02x", sps.ProfileIDC, sps.ConstraintFlags, sps.LevelIDC)
	t.Logf("%s SPS: profile_idc %d constraint flags %08b level_idc %d (profile-level-id %s), POC type %d, %d ref frames",
		e.Codec(), sps.ProfileIDC, sps.ConstraintFlags, sps.LevelIDC, plid, sps.POCType, sps.MaxNumRefFrames)
	// intercom/media signals profile-level-id=42e01f: Constrained Baseline,
	// level 3.1. A receiver decodes any Constrained Baseline stream up to
	// the signalled level, so the stream must be profile_idc 66 with
	// constraint_set1 (what makes Baseline "constrained"; set0 and set2
	// are implied by it) at level 3.1 or lower.
	if sps.ProfileIDC != 66 || sps.ConstraintFlags&0x40 == 0 {
		t.Errorf("SPS is not Constrained Baseline: profile-level-id %s", plid)
	}
	if sps.LevelIDC > 31 {
		t.Errorf("level_idc %d above the signalled 3.1", sps.LevelIDC)
	}
	if sps.Width != 640 || sps.Height != 480 || sps.MaxNumRefFrames > 1 {
		t.Errorf("SPS %+v", sps)
	}
	if got := e.ProfileLevelID(); got != plid {
		t.Errorf("ProfileLevelID() = %q, SPS says %s", got, plid)
	}
	if first.Duration != time.Second/15 || first.CaptureTime.IsZero() {
		t.Errorf("duration %v capture %v", first.Duration, first.CaptureTime)
	}
	var total int
	for i := 1; i < 45; i++ {
		au := swencReadAU(t, e)
		if au.Keyframe {
			t.Fatalf("frame %d is a keyframe without a request", i)
		}
		if len(au.Data) == 0 {
			t.Fatalf("frame %d empty", i)
		}
		total += len(au.Data)
	}
	t.Logf("P frames: %d bytes on average, %.0f kbit/s at 15 fps (target %.0f kbit/s)", total/44,
		float64(total*8)/44*15/1000, math.Round(640*480*15*swencBitsPerPixel/1000))
}

func TestSoftwareEncoderRequestKeyframe(t *testing.T) {
	frames := swencFrames(t, 320, 240, 10, 2)
	e := swencStart(t, &swencSliceSource{frames: frames}, VideoConfig{Width: 320, Height: 240, FPS: 15, KeyframeEvery: time.Hour})
	swencCheckKeyframe(t, swencReadAU(t, e))
	for round := 0; round < 3; round++ {
		for i := 0; i < 4; i++ {
			if au := swencReadAU(t, e); au.Keyframe {
				t.Fatalf("round %d frame %d: unrequested keyframe", round, i)
			}
		}
		e.RequestKeyframe()
		// The very next access unit, not one some frames later.
		swencCheckKeyframe(t, swencReadAU(t, e))
		if au := swencReadAU(t, e); au.Keyframe {
			t.Fatalf("round %d: keyframe after the requested one too", round)
		}
	}
}

func TestSoftwareEncoderPeriodicKeyframes(t *testing.T) {
	// Capture times 100 ms apart and a keyframe every 500 ms: frames 0, 5,
	// 10 are keyframes whatever rate the codec thinks it runs at.
	frames := swencFrames(t, 320, 240, 12, 2)
	base := time.Unix(1_700_000_000, 0)
	for i := range frames {
		frames[i].CaptureTime = base.Add(time.Duration(i) * 100 * time.Millisecond)
	}
	e := swencStart(t, &swencSliceSource{frames: frames}, VideoConfig{Width: 320, Height: 240, FPS: 10, KeyframeEvery: 500 * time.Millisecond})
	for i := 0; i < 12; i++ {
		au := swencReadAU(t, e)
		if want := i%5 == 0; au.Keyframe != want {
			t.Fatalf("frame %d keyframe %v, want %v", i, au.Keyframe, want)
		}
		if !au.CaptureTime.Equal(frames[i].CaptureTime) {
			t.Fatalf("frame %d capture time %v, want the raw frame's %v", i, au.CaptureTime, frames[i].CaptureTime)
		}
	}
}

func TestSoftwareEncoderStopUnblocksAndRestarts(t *testing.T) {
	src := &SyntheticRawSource{} // paced
	e := swencStart(t, src, VideoConfig{Width: 320, Height: 240, FPS: 1})
	swencCheckKeyframe(t, swencReadAU(t, e)) // the first frame comes at once
	errc := make(chan error, 1)
	go func() {
		_, err := e.ReadAccessUnit(context.Background()) // waits ~1 s for the next
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrSourceStopped) {
			t.Fatalf("blocked read returned %v, want ErrSourceStopped", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Stop did not unblock ReadAccessUnit")
	}
	if _, err := e.ReadAccessUnit(context.Background()); !errors.Is(err, ErrSourceStopped) {
		t.Fatalf("read after Stop: %v", err)
	}
	if err := e.Start(context.Background(), VideoConfig{Width: 320, Height: 240, FPS: 30}); err != nil {
		t.Fatal(err)
	}
	swencCheckKeyframe(t, swencReadAU(t, e))
	if au := swencReadAU(t, e); au.Keyframe {
		t.Fatal("second frame after restart is a keyframe")
	}
	// ctx ending returns ctx's error, not ErrSourceStopped.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if err := e.Start(context.Background(), VideoConfig{}); err == nil {
		t.Fatal("second Start without Stop succeeded")
	}
	_, _ = e.ReadAccessUnit(context.Background()) // consume the frame that is due
	if _, err := e.ReadAccessUnit(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read with an ending ctx: %v", err)
	}
}

func TestSoftwareEncoderSizeChangeReopens(t *testing.T) {
	small := swencFrames(t, 320, 240, 3, 0)
	large := swencFrames(t, 640, 360, 3, 0)
	src := &swencSliceSource{frames: append(append([]RawFrame(nil), small...), large...)}
	e := swencStart(t, src, VideoConfig{FPS: 15, KeyframeEvery: time.Hour})
	for i := 0; i < 6; i++ {
		au := swencReadAU(t, e)
		if want := i == 0 || i == 3; au.Keyframe != want {
			t.Fatalf("frame %d keyframe %v want %v", i, au.Keyframe, want)
		}
		if au.Keyframe {
			sps := swencCheckKeyframe(t, au)
			if w := src.frames[i].Width; sps.Width != w || sps.Height != src.frames[i].Height {
				t.Fatalf("frame %d SPS %dx%d, frame %dx%d", i, sps.Width, sps.Height, w, src.frames[i].Height)
			}
		}
	}
}

// TestSoftwareEncoderPixelFormats checks the conversions to packed I420
// against the I420 picture the other formats were made from.
func TestSoftwareEncoderPixelFormats(t *testing.T) {
	const w, h = 64, 32
	ref := swencFrames(t, w, h, 1, 3)[0].Data
	y, cb, cr := ref[:w*h], ref[w*h:w*h+w*h/4], ref[w*h+w*h/4:]

	const pad = 16
	strided := make([]byte, (w+pad)*h+2*((w+pad)/2)*(h/2))
	swencCopyPlane(strided, w+pad, y, w, w, h)
	swencCopyPlane(strided[(w+pad)*h:], (w+pad)/2, cb, w/2, w/2, h/2)
	swencCopyPlane(strided[(w+pad)*h+((w+pad)/2)*(h/2):], (w+pad)/2, cr, w/2, w/2, h/2)

	nv12 := make([]byte, (w+pad)*h*3/2)
	swencCopyPlane(nv12, w+pad, y, w, w, h)
	for j := 0; j < h/2; j++ {
		for i := 0; i < w/2; i++ {
			nv12[(w+pad)*h+j*(w+pad)+2*i] = cb[j*w/2+i]
			nv12[(w+pad)*h+j*(w+pad)+2*i+1] = cr[j*w/2+i]
		}
	}
	// YUYV with the same chroma on both lines of a pair, so averaging them
	// gives the reference back exactly.
	yuyv := make([]byte, 2*w*h)
	for j := 0; j < h; j++ {
		for i := 0; i < w/2; i++ {
			o := j*2*w + 4*i
			yuyv[o], yuyv[o+2] = y[j*w+2*i], y[j*w+2*i+1]
			yuyv[o+1], yuyv[o+3] = cb[(j/2)*(w/2)+i], cr[(j/2)*(w/2)+i]
		}
	}
	for _, tc := range []struct {
		name string
		f    RawFrame
	}{
		{"I420 packed", RawFrame{Data: ref, FourCC: FourCCYU12, Width: w, Height: h, Stride: w}},
		{"I420 strided", RawFrame{Data: strided, FourCC: FourCCYU12, Width: w, Height: h, Stride: w + pad}},
		{"NV12", RawFrame{Data: nv12, FourCC: FourCCNV12, Width: w, Height: h, Stride: w + pad}},
		{"YUYV", RawFrame{Data: yuyv, FourCC: FourCCYUYV, Width: w, Height: h}},
	} {
		var r swencRun
		if err := r.setPicture(tc.f); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !bytes.Equal(r.pic.Y, y) || !bytes.Equal(r.pic.Cb, cb) || !bytes.Equal(r.pic.Cr, cr) ||
			r.pic.YStride != w || r.pic.CStride != w/2 {
			t.Errorf("%s: converted picture differs from the reference", tc.name)
		}
	}
	var r swencRun
	for _, bad := range []RawFrame{
		{Data: ref[:100], FourCC: FourCCYU12, Width: w, Height: h},
		{Data: ref, FourCC: FourCCYU12, Width: w + 1, Height: h},
		{Data: ref, FourCC: FourCCH264, Width: w, Height: h},
		{Data: []byte{0xff, 0xd8}, FourCC: FourCCMJPG, Width: w, Height: h},
	} {
		if err := r.setPicture(bad); err == nil {
			t.Errorf("%s %dx%d %d bytes accepted", FourCCString(bad.FourCC), bad.Width, bad.Height, len(bad.Data))
		}
	}
}

func TestSoftwareEncoderUnknownCodec(t *testing.T) {
	if _, err := NewSoftwareEncoder(&SyntheticRawSource{}, SoftwareEncoderOptions{Codec: "vp8"}); err == nil {
		t.Fatal("unknown codec accepted")
	}
	if _, err := NewSoftwareEncoder(nil, SoftwareEncoderOptions{}); err == nil {
		t.Fatal("nil source accepted")
	}
	t.Logf("codecs compiled in: %v", SoftwareCodecs())
}

// TestSoftwareEncoderFFmpegDecode has ffmpeg decode the stream (with a
// requested keyframe in the middle) and compares the pictures with the
// source.
func TestSoftwareEncoderFFmpegDecode(t *testing.T) {
	if os.Getenv("INTERCOMD_QEMU_USER") == "1" {
		t.Skip("INTERCOMD_QEMU_USER=1: os/exec is unreliable under qemu-user")
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not on PATH (apt-get install -y ffmpeg): external decode check not run")
	}
	const w, h, n = 640, 480, 30
	frames := swencFrames(t, w, h, n, 4)
	e := swencStart(t, &swencSliceSource{frames: frames}, VideoConfig{Width: w, Height: h, FPS: 15, BitrateKbps: 1500, KeyframeEvery: time.Hour})
	var stream bytes.Buffer
	keys := 0
	for i := 0; i < n; i++ {
		if i == n/2 {
			e.RequestKeyframe()
		}
		au := swencReadAU(t, e)
		if au.Keyframe {
			keys++
		}
		stream.Write(au.Data)
	}
	if keys != 2 {
		t.Fatalf("%d keyframes, want 2", keys)
	}
	path := filepath.Join(t.TempDir(), "swenc.h264")
	if err := os.WriteFile(path, stream.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "h264", "-i", path, "-fps_mode", "passthrough",
		"-f", "rawvideo", "-pix_fmt", "yuv420p", "-")
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil || stderr.Len() != 0 {
		t.Fatalf("ffmpeg: %v\n%s", err, stderr.String())
	}
	size := w * h * 3 / 2
	if len(raw) != n*size {
		t.Fatalf("ffmpeg decoded %d bytes = %.2f frames, want %d frames", len(raw), float64(len(raw))/float64(size), n)
	}
	worst := math.Inf(1)
	for i := 0; i < n; i++ {
		if p := swencPSNR(frames[i].Data[:w*h], raw[i*size:i*size+w*h]); p < worst {
			worst = p
		}
	}
	t.Logf("ffmpeg decoded %d frames (%d bytes of H.264), worst luma PSNR %.1f dB", n, stream.Len(), worst)
	if worst < 30 {
		t.Errorf("worst luma PSNR %.1f dB: the decoded pictures are not the source", worst)
	}
}

func swencPSNR(a, b []byte) float64 {
	var se float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		se += d * d
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255*float64(len(a))/se)
}

func swencCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSoftwareEncoder640x480 encodes camera-like 640x480 frames (a
// moving box on a drifting gradient with sensor noise) at the default
// bitrate for 15 fps. cpu-ms/frame is the process CPU time per frame (what
// the encoder costs a core); the reference is x264
// ultrafast/zerolatency at 0.9 ms/frame.
func BenchmarkSoftwareEncoder640x480(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads%d", threads), func(b *testing.B) {
			frames := swencFrames(b, 640, 480, 30, 4)
			e, err := NewSoftwareEncoder(&swencSliceSource{frames: frames}, SoftwareEncoderOptions{Threads: threads, Logger: swencQuietLog})
			if err != nil {
				b.Fatal(err)
			}
			if err := e.Start(context.Background(), VideoConfig{Width: 640, Height: 480, FPS: 15}); err != nil {
				b.Fatal(err)
			}
			defer e.Stop()
			swencReadAU(b, e) // codec set-up and the first IDR are not per-frame costs
			var bytesOut int
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := swencCPUTime()
			for i := 0; i < b.N; i++ {
				if i%30 == 29 {
					e.RequestKeyframe() // one IDR a 2 s GOP at 15 fps
				}
				bytesOut += len(swencReadAU(b, e).Data)
			}
			cpu := swencCPUTime() - cpu0
			b.StopTimer()
			b.ReportMetric(float64(cpu)/float64(b.N)/1e6, "cpu-ms/frame")
			b.ReportMetric(float64(bytesOut)/float64(b.N), "bytes/frame")
		})
	}
}

// Replay delivers the frames the renderer makes, in a loop.
func TestSyntheticReplayLoopsRenderedFrames(t *testing.T) {
	rendered := swencFrames(t, 64, 48, 3, 4)
	src := &SyntheticRawSource{Unpaced: true, Noise: 4, Replay: 3}
	if err := src.Start(context.Background(), VideoConfig{Width: 64, Height: 48}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 7; i++ {
		f, err := src.ReadFrame(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if f.Sequence != uint64(i) || !bytes.Equal(f.Data, rendered[i%3].Data) {
			t.Fatalf("frame %d (sequence %d) is not rendered frame %d", i, f.Sequence, i%3)
		}
	}
}
