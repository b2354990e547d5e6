package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRawCamera serves a fixed list of raw frames, then err (or blocks
// until ctx ends when err is nil).
type fakeRawCamera struct {
	mu      sync.Mutex
	frames  []RawFrame
	next    int
	err     error
	starts  int
	stops   int
	lastCfg VideoConfig
}

func (c *fakeRawCamera) Start(_ context.Context, cfg VideoConfig) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.starts++
	c.lastCfg = cfg
	return nil
}

func (c *fakeRawCamera) ReadFrame(ctx context.Context) (RawFrame, error) {
	c.mu.Lock()
	if c.next < len(c.frames) {
		f := c.frames[c.next]
		c.next++
		c.mu.Unlock()
		return f, nil
	}
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return RawFrame{}, err
	}
	<-ctx.Done()
	return RawFrame{}, ctx.Err()
}

func (c *fakeRawCamera) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stops++
	return nil
}

// fakeH264Camera is a RawFrameSource that negotiated H.264, like a UVC
// H.264 webcam behind V4L2Camera.
type fakeH264Camera struct {
	fakeRawCamera
	keyReqs int
}

func (c *fakeH264Camera) Mode() CameraMode {
	return CameraMode{Card: "fake h264", FourCC: FourCCH264, Width: 64, Height: 48, FPS: 30}
}

func (c *fakeH264Camera) ReadAccessUnit(ctx context.Context) (AccessUnit, error) {
	f, err := c.ReadFrame(ctx)
	if err != nil {
		return AccessUnit{}, err
	}
	return AccessUnit{Data: f.Data, CaptureTime: f.CaptureTime, Keyframe: true}, nil
}

func (c *fakeH264Camera) RequestKeyframe() {
	c.mu.Lock()
	c.keyReqs++
	c.mu.Unlock()
}

// randomI420 is a picture whose chroma is what a 4:2:2 source averaged
// over line pairs gives back exactly (each chroma sample is used for two
// lines), so every format round-trips bit-exactly.
func randomI420(w, h int, seed int64) *I420Frame {
	r := rand.New(rand.NewSource(seed))
	f := NewI420Frame(w, h)
	r.Read(f.Y)
	r.Read(f.Cb)
	r.Read(f.Cr)
	return f
}

// pack writes f in a V4L2 layout with stride bytes per (luma) line and
// extra junk columns/lines beyond w x h (an odd camera size is cropped).
func pack(t *testing.T, f *I420Frame, fourcc uint32, camW, camH, stride int) []byte {
	t.Helper()
	w, h, cw := f.Width, f.Height, f.Width/2
	junk := func(n int) []byte { return bytes.Repeat([]byte{0xEE}, n) }
	switch fourcc {
	case FourCCYUYV, fourccUYVY:
		b := junk(stride * camH)
		for y := 0; y < h; y++ {
			for x := 0; x < cw; x++ {
				y0, y1 := f.Y[y*w+2*x], f.Y[y*w+2*x+1]
				u, v := f.Cb[y/2*cw+x], f.Cr[y/2*cw+x]
				p := b[y*stride+4*x:]
				if fourcc == FourCCYUYV {
					p[0], p[1], p[2], p[3] = y0, u, y1, v
				} else {
					p[0], p[1], p[2], p[3] = u, y0, v, y1
				}
			}
		}
		return b
	case FourCCNV12:
		b := junk(stride*camH + stride*(camH/2))
		for y := 0; y < h; y++ {
			copy(b[y*stride:], f.Y[y*w:y*w+w])
		}
		for y := 0; y < h/2; y++ {
			for x := 0; x < cw; x++ {
				b[stride*camH+y*stride+2*x] = f.Cb[y*cw+x]
				b[stride*camH+y*stride+2*x+1] = f.Cr[y*cw+x]
			}
		}
		return b
	case FourCCYU12:
		cs := stride / 2
		b := junk(stride*camH + 2*cs*(camH/2))
		for y := 0; y < h; y++ {
			copy(b[y*stride:], f.Y[y*w:y*w+w])
		}
		for y := 0; y < h/2; y++ {
			copy(b[stride*camH+y*cs:], f.Cb[y*cw:y*cw+cw])
			copy(b[stride*camH+cs*(camH/2)+y*cs:], f.Cr[y*cw:y*cw+cw])
		}
		return b
	}
	t.Fatalf("pack: %s", FourCCString(fourcc))
	return nil
}

func TestToI420Formats(t *testing.T) {
	for _, fc := range []uint32{FourCCYUYV, fourccUYVY, FourCCNV12, FourCCYU12} {
		for _, sz := range [][4]int{ // camera w, h, stride (0: packed), padding
			{64, 48, 0, 0}, {67, 49, 0, 0}, {64, 48, 1, 32}, {320, 180, 1, 64},
		} {
			camW, camH := sz[0], sz[1]
			w, h := camW&^1, camH&^1
			bpp := 1
			if fc == FourCCYUYV || fc == fourccUYVY {
				bpp = 2
			}
			stride := camW * bpp
			if fc == FourCCYU12 && stride%2 == 1 {
				stride++ // V4L2 YU12 lines are even
			}
			if sz[2] == 1 {
				stride += sz[3]
			}
			name := fmt.Sprintf("%s/%dx%d/stride%d", FourCCString(fc), camW, camH, stride)
			t.Run(name, func(t *testing.T) {
				src := randomI420(w, h, int64(camW*camH+int(fc)))
				f := RawFrame{Data: pack(t, src, fc, camW, camH, stride), FourCC: fc, Width: camW, Height: camH, Stride: stride}
				if sz[2] == 0 && camW%2 == 0 && fc != FourCCYU12 {
					f.Stride = 0 // tightly packed, stride implied
				}
				dst := NewI420Frame(w, h)
				if err := ToI420(dst, f); err != nil {
					t.Fatal(err)
				}
				if !framesEqual(dst, src) {
					t.Fatal("converted picture differs from the source")
				}
			})
		}
	}
}

// 4:2:2 chroma of two lines is averaged (rounding up), not dropped.
func TestToI420AveragesLinePairs(t *testing.T) {
	data := []byte{
		16, 100, 17, 200, // line 0: Y Y, U=100 V=200
		18, 103, 19, 50, // line 1: U=103 V=50
	}
	dst := NewI420Frame(2, 2)
	if err := ToI420(dst, RawFrame{Data: data, FourCC: FourCCYUYV, Width: 2, Height: 2}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.Y, []byte{16, 17, 18, 19}) || dst.Cb[0] != 102 || dst.Cr[0] != 125 {
		t.Fatalf("Y %v Cb %d Cr %d", dst.Y, dst.Cb[0], dst.Cr[0])
	}
}

func TestToI420Rejects(t *testing.T) {
	dst := NewI420Frame(64, 48)
	for _, c := range []struct {
		f    RawFrame
		want string
	}{
		{RawFrame{Data: make([]byte, 64*48*2-1), FourCC: FourCCYUYV, Width: 64, Height: 48}, "bytes"},
		{RawFrame{Data: make([]byte, 64*48), FourCC: FourCCNV12, Width: 64, Height: 48}, "bytes"},
		{RawFrame{Data: make([]byte, 64*48*3/2-1), FourCC: FourCCYU12, Width: 64, Height: 48}, "bytes"},
		{RawFrame{Data: make([]byte, 64*48*2), FourCC: FourCCYUYV, Width: 66, Height: 48}, "into 64x48"},
		{RawFrame{Data: make([]byte, 64*48*3), FourCC: 'R' | 'G'<<8 | 'B'<<16 | '3'<<24, Width: 64, Height: 48}, "RGB3 is not supported"},
		{RawFrame{Data: []byte{0xff, 0xd8}, FourCC: FourCCMJPG, Width: 64, Height: 48}, "MJPEG frame (2 bytes)"},
		{RawFrame{Data: []byte{0, 0, 1}, FourCC: FourCCH264, Width: 64, Height: 48}, "H.264 already"},
	} {
		if err := ToI420(dst, c.f); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %dx%d %d bytes: err %v, want %q", FourCCString(c.f.FourCC), c.f.Width, c.f.Height, len(c.f.Data), err, c.want)
		}
	}
}

func nalTypes(au []byte) []byte {
	var ts []byte
	for _, n := range SplitAnnexB(au) {
		if len(n) > 0 {
			ts = append(ts, n[0]&0x1f)
		}
	}
	return ts
}

// Raw YUYV frames through EncodedCamera decode back to the exact source
// (lossless mode), with IDRs first, on request, periodically and on a size
// change, and each access unit keeps its frame's capture time.
func TestEncodedCameraEncodesRawFrames(t *testing.T) {
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var srcs []*I420Frame
	cam := &fakeRawCamera{err: fmt.Errorf("camera \"fake\": %w", ErrUnavailable)}
	for i := 0; i < 8; i++ {
		w, h := 64, 48
		if i >= 6 {
			w, h = 96, 64 // the camera was re-negotiated
		}
		var s *I420Frame
		if i > 0 && i < 6 {
			// Mostly static: one macroblock row changes.
			s = NewI420Frame(w, h)
			s.copyFrom(srcs[i-1])
			for x := 0; x < w; x++ {
				s.Y[(i%3)*16*w+x] = byte(i * 40)
			}
		} else {
			s = randomI420(w, h, int64(i))
		}
		srcs = append(srcs, s)
		cam.frames = append(cam.frames, RawFrame{Data: pack(t, s, FourCCYUYV, w, h, w*2), FourCC: FourCCYUYV,
			Width: w, Height: h, Stride: w * 2, CaptureTime: base.Add(time.Duration(i) * 40 * time.Millisecond), Sequence: uint64(i)})
	}
	e := NewEncodedCamera(cam, EncodedCameraOptions{Encoder: H264EncoderOptions{PCM: true}, Logger: quietLog()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.ReadAccessUnit(ctx); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Fatalf("read before Start: %v", err)
	}
	if err := e.Start(ctx, VideoConfig{Width: 64, Height: 48, FPS: 20}); err != nil {
		t.Fatal(err)
	}
	if cam.starts != 1 || cam.lastCfg.FPS != 20 {
		t.Fatalf("camera started %d times with %+v", cam.starts, cam.lastCfg)
	}
	dec := &lossyTestDecoder{lastIDRID: -1}
	wantKey := map[int]bool{0: true, 3: true, 6: true}
	for i := range srcs {
		if i == 3 {
			e.RequestKeyframe()
		}
		au, err := e.ReadAccessUnit(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		types := nalTypes(au.Data)
		if au.Keyframe != wantKey[i] {
			t.Fatalf("frame %d: keyframe %v, want %v (nals %v)", i, au.Keyframe, wantKey[i], types)
		}
		if au.Keyframe && !bytes.Equal(types, []byte{7, 8, 5}) || !au.Keyframe && !bytes.Equal(types, []byte{1}) {
			t.Fatalf("frame %d: nal types %v (keyframe %v)", i, types, au.Keyframe)
		}
		if !au.CaptureTime.Equal(cam.frames[i].CaptureTime) || au.Duration != 50*time.Millisecond {
			t.Fatalf("frame %d: capture time %v duration %v", i, au.CaptureTime, au.Duration)
		}
		got, _, err := dec.decodeAU(au.Data)
		if err != nil {
			t.Fatalf("frame %d: decode: %v", i, err)
		}
		if !framesEqual(got, srcs[i]) {
			t.Fatalf("frame %d: decoded picture differs from the camera's", i)
		}
		if i == 2 && len(au.Data) > 64*48*3/2/2 { // I_PCM: 4 of 12 macroblocks
			t.Errorf("P frame with one changed macroblock row is %d bytes", len(au.Data))
		}
	}
	// A lost camera: the error keeps ErrUnavailable.
	if _, err := e.ReadAccessUnit(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("lost camera: %v, want ErrUnavailable", err)
	}
	if err := e.Stop(); err != nil || cam.stops != 1 {
		t.Fatalf("stop: %v (%d)", err, cam.stops)
	}
	if _, err := e.ReadAccessUnit(ctx); err == nil {
		t.Fatal("read after Stop succeeded")
	}
	// Started again: a fresh stream that begins with an IDR.
	cam.frames, cam.next = cam.frames[:2], 0
	if err := e.Start(ctx, VideoConfig{FPS: 20}); err != nil {
		t.Fatal(err)
	}
	if au, err := e.ReadAccessUnit(ctx); err != nil || !au.Keyframe {
		t.Fatalf("first unit after restart: keyframe %v, err %v", au.Keyframe, err)
	}
}

// Periodic keyframes (VideoConfig.KeyframeEvery), in the default lossy mode.
func TestEncodedCameraKeyframeEveryLossy(t *testing.T) {
	cam := &fakeRawCamera{}
	src := randomI420(64, 48, 7)
	// Smooth content so the lossy mode's quality can be checked.
	for y := 0; y < 48; y++ {
		for x := 0; x < 64; x++ {
			src.Y[y*64+x] = byte(32 + 2*x + y)
		}
	}
	for i := range src.Cb {
		src.Cb[i], src.Cr[i] = 100, 150
	}
	for i := 0; i < 6; i++ {
		cam.frames = append(cam.frames, RawFrame{Data: pack(t, src, FourCCNV12, 64, 48, 64), FourCC: FourCCNV12, Width: 64, Height: 48, Stride: 64})
	}
	e := NewEncodedCamera(cam, EncodedCameraOptions{Logger: quietLog()})
	ctx := context.Background()
	if err := e.Start(ctx, VideoConfig{KeyframeEvery: 30 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	dec := &lossyTestDecoder{lastIDRID: -1}
	var keys []bool
	for i := 0; i < 6; i++ {
		if i == 3 {
			time.Sleep(40 * time.Millisecond)
		}
		au, err := e.ReadAccessUnit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if au.Duration != 40*time.Millisecond { // no fps anywhere: 25
			t.Fatalf("duration %v", au.Duration)
		}
		got, st, err := dec.decodeAU(au.Data)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if st.pcm != 0 {
			t.Fatalf("frame %d: I_PCM in the default (lossy) mode", i)
		}
		if p := psnrI420(got, src); p < 35 {
			t.Fatalf("frame %d: PSNR %.1f dB", i, p)
		}
		keys = append(keys, au.Keyframe)
	}
	if fmt.Sprint(keys) != "[true false false true false false]" {
		t.Fatalf("keyframes %v, want the first and the one after 40 ms", keys)
	}
}

// An H.264 camera is passed through: its access units untouched, keyframe
// requests forwarded.
func TestEncodedCameraPassthrough(t *testing.T) {
	au := []byte{0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5}
	cam := &fakeH264Camera{}
	cam.frames = []RawFrame{{Data: au, FourCC: FourCCH264, Width: 64, Height: 48}}
	e := NewEncodedCamera(cam, EncodedCameraOptions{Logger: quietLog()})
	ctx := context.Background()
	if err := e.Start(ctx, VideoConfig{}); err != nil {
		t.Fatal(err)
	}
	e.RequestKeyframe()
	got, err := e.ReadAccessUnit(ctx)
	if err != nil || !bytes.Equal(got.Data, au) {
		t.Fatalf("passthrough: %x %v", got.Data, err)
	}
	if cam.keyReqs != 1 {
		t.Fatalf("%d keyframe requests forwarded, want 1", cam.keyReqs)
	}
	if m, ok := e.Mode(); !ok || m.FourCC != FourCCH264 {
		t.Fatalf("mode %+v %v", m, ok)
	}
}

// Stop does not wait for a reader blocked on the camera, and the frame
// that reader eventually gets is not encoded into the next stream.
func TestEncodedCameraStopWhileReading(t *testing.T) {
	cam := &fakeRawCamera{}
	e := NewEncodedCamera(cam, EncodedCameraOptions{Logger: quietLog()})
	if err := e.Start(context.Background(), VideoConfig{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := e.ReadAccessUnit(ctx); done <- err }()
	time.Sleep(20 * time.Millisecond)
	stopped := make(chan struct{})
	go func() { e.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop waited for the reader")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("reader: %v", err)
	}
}

// A 640x480 YUYV camera picture, converted and encoded in the default
// lossy mode: "still" is a static scene with sensor-like noise (most
// macroblocks skipped), "moving" pans the scene every frame (every
// macroblock coded: the worst case).
func BenchmarkEncodedCameraYUYV640x480(b *testing.B) {
	const w, h = 640, 480
	for _, pan := range []int{0, 6} {
		name := "still"
		if pan != 0 {
			name = "moving"
		}
		b.Run(name, func(b *testing.B) {
			r := rand.New(rand.NewSource(1))
			frames := make([]RawFrame, 8)
			for i := range frames {
				d := make([]byte, w*h*2)
				for y := 0; y < h; y++ {
					for x := 0; x < w*2; x++ {
						v := 30 + (x/2+i*pan)%320/3 + y/5 + 40*((x/2+i*pan)/80%2) + r.Intn(5) - 2
						d[y*w*2+x] = byte(v)
					}
				}
				frames[i] = RawFrame{Data: d, FourCC: FourCCYUYV, Width: w, Height: h, Stride: w * 2}
			}
			e := NewEncodedCamera(&fakeRawCamera{}, EncodedCameraOptions{Logger: quietLog()})
			if err := e.Start(context.Background(), VideoConfig{FPS: 15}); err != nil {
				b.Fatal(err)
			}
			var n int
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e.mu.Lock()
				au, err := e.encodeLocked(frames[i%len(frames)])
				e.mu.Unlock()
				if err != nil {
					b.Fatal(err)
				}
				n += len(au.Data)
			}
			b.ReportMetric(float64(n)/float64(b.N), "bytes/frame")
		})
	}
}

// jpegSegments lists the marker segments of a JPEG up to the scan.
func jpegSegments(b []byte) []byte {
	var ms []byte
	for i := 2; i+4 <= len(b) && b[i] == 0xFF; {
		ms = append(ms, b[i+1])
		if b[i+1] == 0xDA {
			break
		}
		i += 2 + (int(b[i+2])<<8 | int(b[i+3]))
	}
	return ms
}

// stripDHT removes the Huffman tables, as UVC cameras send MJPEG.
func stripDHT(t *testing.T, b []byte) []byte {
	t.Helper()
	out := append([]byte(nil), b[:2]...)
	i := 2
	for i+4 <= len(b) && b[i] == 0xFF && b[i+1] != 0xDA {
		n := 2 + (int(b[i+2])<<8 | int(b[i+3]))
		if b[i+1] != 0xC4 {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	out = append(out, b[i:]...)
	if bytes.Contains(jpegSegments(out), []byte{0xC4}) || !bytes.Contains(jpegSegments(b), []byte{0xC4}) {
		t.Fatalf("stripDHT: segments %x -> %x", jpegSegments(b), jpegSegments(out))
	}
	return out
}

func testJPEG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// MJPEG frames without Huffman tables (as UVC sends them) decode to what
// the complete JPEG decodes to, scaled to limited range, 4:2:0 chroma kept.
func TestToI420MJPEG(t *testing.T) {
	const w, h = 64, 48
	src := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	r := rand.New(rand.NewSource(3))
	for i := range src.Y {
		src.Y[i] = byte(i%w*4 + r.Intn(3))
	}
	for i := range src.Cb {
		src.Cb[i], src.Cr[i] = byte(60+i%32), byte(200-i%40)
	}
	full := testJPEG(t, src)
	ref, err := jpeg.Decode(bytes.NewReader(full))
	if err != nil {
		t.Fatal(err)
	}
	rc := ref.(*image.YCbCr)
	bare := stripDHT(t, full)
	if _, err := jpeg.Decode(bytes.NewReader(bare)); err == nil {
		t.Fatal("a JPEG without Huffman tables decoded by itself: the test proves nothing")
	}
	for _, data := range [][]byte{full, bare} {
		dst := NewI420Frame(w, h)
		if err := ToI420(dst, RawFrame{Data: data, FourCC: FourCCMJPG, Width: w, Height: h}); err != nil {
			t.Fatal(err)
		}
		lut := jpegRangeLUT()
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				if got, want := dst.Y[y*w+x], lut.y[rc.Y[rc.YOffset(x, y)]]; got != want {
					t.Fatalf("Y(%d,%d) = %d, want %d", x, y, got, want)
				}
			}
		}
		for y := 0; y < h/2; y++ {
			for x := 0; x < w/2; x++ {
				o := rc.COffset(2*x, 2*y)
				if dst.Cb[y*w/2+x] != lut.c[rc.Cb[o]] || dst.Cr[y*w/2+x] != lut.c[rc.Cr[o]] {
					t.Fatalf("chroma (%d,%d) = %d,%d, want %d,%d", x, y, dst.Cb[y*w/2+x], dst.Cr[y*w/2+x], lut.c[rc.Cb[o]], lut.c[rc.Cr[o]])
				}
			}
		}
	}
	if lut := jpegRangeLUT(); lut.y[0] != 16 || lut.y[255] != 235 || lut.c[0] != 16 || lut.c[128] != 128 || lut.c[255] != 240 {
		t.Fatalf("range mapping: Y %d..%d, C %d/%d/%d", lut.y[0], lut.y[255], lut.c[0], lut.c[128], lut.c[255])
	}

	// Greyscale MJPEG: neutral chroma.
	gray := image.NewGray(image.Rect(0, 0, w, h))
	for i := range gray.Pix {
		gray.Pix[i] = 200
	}
	dst := NewI420Frame(w, h)
	if err := ToI420(dst, RawFrame{Data: stripDHT(t, testJPEG(t, gray)), FourCC: FourCCMJPG, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	if dst.Y[100] < 185 || dst.Y[100] > 189 || dst.Cb[10] != 128 || dst.Cr[10] != 128 {
		t.Fatalf("grey 200 → Y %d Cb %d Cr %d", dst.Y[100], dst.Cb[10], dst.Cr[10])
	}
	// The camera's size must match the picture's.
	if err := ToI420(NewI420Frame(32, 48), RawFrame{Data: full, FourCC: FourCCMJPG, Width: 32, Height: 48}); err == nil || !strings.Contains(err.Error(), "is 64x48") {
		t.Fatalf("size mismatch: %v", err)
	}
}

// MJPEG through EncodedCamera: the H.264 decodes to the converted picture.
func TestEncodedCameraMJPEG(t *testing.T) {
	src := image.NewYCbCr(image.Rect(0, 0, 96, 64), image.YCbCrSubsampleRatio420)
	for i := range src.Y {
		src.Y[i] = byte(i % 97)
	}
	for i := range src.Cb {
		src.Cb[i], src.Cr[i] = 90, 170
	}
	data := stripDHT(t, testJPEG(t, src))
	want := NewI420Frame(96, 64)
	if err := ToI420(want, RawFrame{Data: data, FourCC: FourCCMJPG, Width: 96, Height: 64}); err != nil {
		t.Fatal(err)
	}
	cam := &fakeRawCamera{frames: []RawFrame{{Data: data, FourCC: FourCCMJPG, Width: 96, Height: 64}}}
	e := NewEncodedCamera(cam, EncodedCameraOptions{Encoder: H264EncoderOptions{PCM: true}, Logger: quietLog()})
	if err := e.Start(context.Background(), VideoConfig{}); err != nil {
		t.Fatal(err)
	}
	au, err := e.ReadAccessUnit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := (&lossyTestDecoder{lastIDRID: -1}).decodeAU(au.Data)
	if err != nil || !framesEqual(got, want) {
		t.Fatalf("decoded MJPEG frame differs (err %v)", err)
	}
}
