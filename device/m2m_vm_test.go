package device

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// m2mTestFrame is a moving bar on a gradient: mostly static, so vicodec
// P-codes the frames between keyframes.
func m2mTestFrame(w, h, n int) *I420Frame {
	f := NewI420Frame(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := byte(16 + (x+y)%200)
			if x >= (n*4)%w && x < (n*4)%w+16 {
				v = 235
			}
			f.Y[y*w+x] = v
		}
	}
	for i := range f.Cb {
		f.Cb[i], f.Cr[i] = byte(100+i%50), byte(150-i%40)
	}
	return f
}

// TestM2MEncoderVicodec encodes through the rig's vicodec stateful encoder,
// found by name (its decoders share the name): N frames in, N FWHT frames
// out, keyframes every GOP frames and on request. The H.264 controls
// (bitrate, profile, level, FORCE_KEY_FRAME) exist only on a Pi's
// bcm2835-codec; vicodec lacks them, so they must be skipped, not fail.
func TestM2MEncoderVicodec(t *testing.T) {
	needVM(t)
	t.Run("multiplanar", func(t *testing.T) { testM2MVicodec(t, true) })
	t.Run("single-planar", func(t *testing.T) {
		// The rig loads vicodec with multiplanar=1 (the Pi's API); reload it
		// single-planar for this subtest and restore it after.
		reloadVicodec(t, "multiplanar=0")
		t.Cleanup(func() { reloadVicodec(t, "multiplanar=1") })
		testM2MVicodec(t, false)
	})
}

func reloadVicodec(t *testing.T, opt string) {
	t.Helper()
	if out, err := exec.Command("rmmod", "vicodec").CombinedOutput(); err != nil {
		t.Fatalf("rmmod vicodec: %v: %s", err, out)
	}
	if out, err := exec.Command("insmod", "/lib/modules/vicodec.ko", opt).CombinedOutput(); err != nil {
		t.Fatalf("insmod vicodec %s: %v: %s", opt, err, out)
	}
}

func testM2MVicodec(t *testing.T, mplane bool) {
	// 640x360 is vicodec's smallest picture; it codes 640x368 with a 640x360 crop
	// (the OUTPUT selection), like bcm2835-codec's 1080 lines in 1088.
	const w, h, gop, n, forceAt = 640, 360, 8, 20, 11
	start := time.Now()
	e, err := OpenM2MEncoder(M2MEncoderOptions{
		Device: "vicodec", Codec: FourCCFWHT, Width: w, Height: h, FPS: 15,
		GOP: gop, Bitrate: 500_000, Profile: "baseline", Level: "3.1",
		Timeout: vmSlack,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	info := e.Info()
	t.Logf("opened %s (%s/%s) mplane=%v raw=%s %dx%d (visible %v) stride %d, set %v, skipped %v, in %v",
		info.Path, info.Driver, info.Card, info.MultiPlanar, FourCCString(info.RawFormat),
		info.Width, info.Height, info.Visible, info.Stride, info.Controls, info.Skipped, time.Since(start))
	if info.MultiPlanar != mplane || info.RawFormat != FourCCYU12 || info.Visible != [2]int{w, h} {
		t.Errorf("negotiated mplane=%v raw=%s visible %v", info.MultiPlanar, FourCCString(info.RawFormat), info.Visible)
	}
	if fmt.Sprint(info.Controls) != "[gop size=8]" || fmt.Sprint(info.Skipped) != "[bitrate h264 profile h264 level]" {
		t.Errorf("controls %v, skipped %v", info.Controls, info.Skipped)
	}
	if info.ForceKeyControl {
		t.Error("vicodec has no FORCE_KEY_FRAME control")
	}
	if err := e.SetBitrate(1000); err == nil {
		t.Error("SetBitrate on vicodec must fail (no control)")
	}
	var keys []int
	total := 0
	encStart := time.Now()
	for i := 0; i < n; i++ {
		p, err := e.Encode(m2mTestFrame(w, h, i), i == forceAt)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		hd, err := parseFWHTHeader(p.Data)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if hd.Version != 3 || hd.Width != w || hd.Height != h || int(hd.Size)+fwhtHeaderSize != len(p.Data) {
			t.Fatalf("frame %d: header %+v for %d bytes", i, hd, len(p.Data))
		}
		intra := hd.Flags&fwhtFlagIFrame != 0
		if intra != p.Keyframe {
			t.Errorf("frame %d: Keyframe %v, header I-frame %v", i, p.Keyframe, intra)
		}
		if p.Flags&v4l2BufFlagKeyframe != 0 {
			t.Logf("frame %d: vicodec set V4L2_BUF_FLAG_KEYFRAME", i)
		}
		if intra {
			keys = append(keys, i)
		}
		total += len(p.Data)
	}
	el := time.Since(encStart)
	t.Logf("%d frames, %d bytes, %v (%.1f ms/frame), keyframes at %v", n, total, el,
		float64(el.Microseconds())/1000/n, keys)
	// GOP 8: 0, 8; forced at 11, then counted from there: 19.
	if fmt.Sprint(keys) != fmt.Sprint([]int{0, 8, forceAt, forceAt + gop}) {
		t.Errorf("keyframes at %v, want [0 8 %d %d]", keys, forceAt, forceAt+gop)
	}
	if err := e.Close(); err != nil {
		t.Error(err)
	}
	if _, err := e.Encode(m2mTestFrame(w, h, 0), false); err == nil {
		t.Error("Encode after Close must fail")
	}
}

// The encoder must be found by name whatever its node number: the rig's
// vicodec encoder is not at a fixed /dev/videoN.
func TestM2MEncoderByPath(t *testing.T) {
	needVM(t)
	e, err := OpenM2MEncoder(M2MEncoderOptions{Device: "vicodec", Codec: FourCCFWHT, Width: 64, Height: 48, Timeout: vmSlack})
	if err != nil {
		t.Fatal(err)
	}
	path := e.Info().Path
	e.Close()
	e, err = OpenM2MEncoder(M2MEncoderOptions{Device: path, Codec: FourCCFWHT, Width: 64, Height: 48, Timeout: vmSlack})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Encode(m2mTestFrame(64, 48, 0), false); err != nil {
		t.Fatal(err)
	}
	// H.264 is what a Pi gives; vicodec cannot, and says so by name.
	if _, err := OpenM2MEncoder(M2MEncoderOptions{Device: "vicodec", Width: 64, Height: 48}); err == nil {
		t.Error("vicodec must not be taken for an H.264 encoder")
	} else {
		t.Log(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Error(err)
	}
}

// m2mFakeRaw is a RawFrameSource of YU12 frames.
type m2mFakeRaw struct {
	w, h, n int
}

func (s *m2mFakeRaw) Start(context.Context, VideoConfig) error { return nil }
func (s *m2mFakeRaw) Stop() error                              { return nil }
func (s *m2mFakeRaw) ReadFrame(ctx context.Context) (RawFrame, error) {
	if err := ctx.Err(); err != nil {
		return RawFrame{}, err
	}
	f := m2mTestFrame(s.w, s.h, s.n)
	s.n++
	data := append(append(append([]byte(nil), f.Y...), f.Cb...), f.Cr...)
	return RawFrame{Data: data, FourCC: FourCCYU12, Width: s.w, Height: s.h, Stride: s.w,
		CaptureTime: time.Now(), Sequence: uint64(s.n)}, nil
}

// TestM2MCameraVicodec runs the VideoSource adapter over vicodec: the
// first access unit and a requested one are keyframes, KeyframeEvery
// becomes the GOP.
func TestM2MCameraVicodec(t *testing.T) {
	needVM(t)
	ctx := context.Background()
	c := NewM2MCamera(&m2mFakeRaw{w: 640, h: 360}, M2MEncoderOptions{Device: "vicodec", Codec: FourCCFWHT, Timeout: vmSlack})
	if err := c.Start(ctx, VideoConfig{Width: 640, Height: 360, FPS: 10, KeyframeEvery: time.Second}); err != nil {
		t.Fatal(err)
	}
	var keys []int
	for i := 0; i < 14; i++ {
		if i == 4 {
			c.RequestKeyframe()
		}
		au, err := c.ReadAccessUnit(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if _, err := parseFWHTHeader(au.Data); err != nil || au.Duration != 100*time.Millisecond {
			t.Fatalf("frame %d: %v, duration %v", i, err, au.Duration)
		}
		if au.Keyframe {
			keys = append(keys, i)
		}
	}
	if info := c.Encoder().Info(); fmt.Sprint(info.Controls) != "[gop size=10]" {
		t.Errorf("controls %v", info.Controls)
	}
	if fmt.Sprint(keys) != "[0 4]" {
		t.Errorf("keyframes at %v, want [0 4]", keys)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadAccessUnit(ctx); err == nil {
		t.Error("read after Stop must fail")
	}
}
