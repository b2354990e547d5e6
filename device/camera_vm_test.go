package device

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readFrames(t *testing.T, c *V4L2Camera, n int) []RawFrame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), vmSlack)
	defer cancel()
	var fs []RawFrame
	for i := 0; i < n; i++ {
		f, err := c.ReadFrame(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		fs = append(fs, f)
	}
	return fs
}

// vivid (no H.264) must be driven raw: YUYV preferred, the webcam input's
// discrete sizes and frame rates honoured.
func TestCameraVividVM(t *testing.T) {
	needVM(t)
	cam, err := NewV4L2Camera(CameraConfig{Device: "vivid"}, WithCameraLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	if err := cam.Start(context.Background(), VideoConfig{Width: 640, Height: 480, FPS: 30}); err != nil {
		t.Fatal(err)
	}
	m := cam.Mode()
	if m.FourCC != FourCCYUYV || m.Width != 640 || m.Height != 480 || m.Stride != 1280 || m.Driver != "vivid" {
		t.Fatalf("mode %+v (%s), want vivid YUYV 640x480 stride 1280", m, FourCCString(m.FourCC))
	}
	if m.FPS != 25 { // vivid's nearest to 30
		t.Fatalf("fps %v, want 25", m.FPS)
	}
	info, err := v4l2Query(m.Path)
	if err != nil || !info.isCapture() {
		t.Fatalf("%s is not the capture node: %+v %v", m.Path, info, err)
	}
	fs := readFrames(t, cam, 4)
	for i, f := range fs {
		if len(f.Data) != 640*480*2 || f.FourCC != FourCCYUYV || f.Width != 640 || f.Height != 480 || f.Sequence != uint64(i) {
			t.Fatalf("frame %d: %d bytes %s %dx%d seq %d", i, len(f.Data), FourCCString(f.FourCC), f.Width, f.Height, f.Sequence)
		}
		if bytes.Count(f.Data, []byte{0}) == len(f.Data) {
			t.Fatalf("frame %d is all zero", i)
		}
	}
	// vivid draws a running counter: consecutive frames differ.
	if bytes.Equal(fs[0].Data, fs[3].Data) {
		t.Fatal("frames 0 and 3 identical: not live capture")
	}
	if _, err := cam.ReadAccessUnit(context.Background()); err == nil || !strings.Contains(err.Error(), "not H.264") {
		t.Fatalf("ReadAccessUnit on a YUYV camera: %v", err)
	}
	cam.Stop()
	if _, err := cam.ReadFrame(context.Background()); err == nil {
		t.Fatal("ReadFrame after Stop succeeded")
	}

	// Start again on demand, another size and a format preference.
	cam2, err := NewV4L2Camera(CameraConfig{Device: "vivid", Formats: []string{"NV12"}}, WithCameraLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	defer cam2.Close()
	if err := cam2.Start(context.Background(), VideoConfig{Width: 1280, Height: 720, FPS: 5}); err != nil {
		t.Fatal(err)
	}
	f := readFrames(t, cam2, 1)[0]
	if f.FourCC != FourCCNV12 || f.Width != 1280 || f.Height != 720 || len(f.Data) != 1280*720*3/2 {
		t.Fatalf("got %s %dx%d %d bytes, want NV12 1280x720 %d bytes", FourCCString(f.FourCC), f.Width, f.Height, len(f.Data), 1280*720*3/2)
	}
}

func TestCameraByPathVM(t *testing.T) {
	needVM(t)
	// Like /dev/v4l/by-id/...: a symlink to the node (no udev in the guest).
	link := filepath.Join(t.TempDir(), "usb-vivid-video-index0")
	path, _, err := findCamera("vivid")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	cam, err := NewV4L2Camera(CameraConfig{Device: link, KeepWarm: true}, WithCameraLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	vc := VideoConfig{Width: 320, Height: 180, FPS: 25}
	if err := cam.Start(context.Background(), vc); err != nil {
		t.Fatal(err)
	}
	if f := readFrames(t, cam, 1)[0]; len(f.Data) != 320*180*2 {
		t.Fatalf("%d bytes, want %d", len(f.Data), 320*180*2)
	}
	// Warm: Stop keeps streaming, the next Start delivers at once.
	cam.Stop()
	time.Sleep(300 * time.Millisecond)
	if err := cam.Start(context.Background(), vc); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	f := readFrames(t, cam, 1)[0]
	if time.Since(f.CaptureTime) > time.Second || time.Since(t0) > 2*time.Second {
		t.Fatalf("first warm frame took %v", time.Since(t0))
	}

	// Missing devices name themselves.
	for _, dev := range []string{"/dev/video77", "no-such-camera"} {
		_, err := NewV4L2Camera(CameraConfig{Device: dev})
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), dev) {
			t.Errorf("device %q: err %v, want ErrUnavailable naming it", dev, err)
		}
	}
	// The vivid output node is not a camera.
	if _, err := NewV4L2Camera(CameraConfig{Device: "/dev/video1"}); err == nil || !strings.Contains(err.Error(), "not a video capture") {
		t.Errorf("output node: err %v", err)
	}
}

// Unplug: unbinding vivid makes the node go away under a streaming camera.
// Reads fail with ErrUnavailable; after re-binding, Start finds it again.
func TestCameraUnplugVM(t *testing.T) {
	needVM(t)
	cam, err := NewV4L2Camera(CameraConfig{Device: "vivid"}, WithCameraLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	vc := VideoConfig{Width: 640, Height: 480, FPS: 25}
	if err := cam.Start(context.Background(), vc); err != nil {
		t.Fatal(err)
	}
	readFrames(t, cam, 1)
	const drv = "/sys/bus/platform/drivers/vivid/"
	if err := os.WriteFile(drv+"unbind", []byte("vivid.0"), 0); err != nil {
		t.Fatal(err)
	}
	rebound := false
	defer func() {
		if !rebound {
			os.WriteFile(drv+"bind", []byte("vivid.0"), 0)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), vmSlack)
	defer cancel()
	for {
		_, err = cam.ReadFrame(ctx)
		if err != nil {
			break
		}
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("read after unplug: %v, want ErrUnavailable", err)
	}
	if err := cam.Start(context.Background(), vc); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Start while unplugged: %v, want ErrUnavailable", err)
	}
	if err := os.WriteFile(drv+"bind", []byte("vivid.0"), 0); err != nil {
		t.Fatal(err)
	}
	rebound = true
	var startErr error
	for i := 0; i < 50; i++ { // the node appears asynchronously
		if startErr = cam.Start(context.Background(), vc); startErr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if startErr != nil {
		t.Fatal(startErr)
	}
	if f := readFrames(t, cam, 2)[1]; len(f.Data) != 640*480*2 {
		t.Fatalf("after replug: %d bytes", len(f.Data))
	}
}
