package device

import (
	"context"
	"testing"
	"time"
)

// vivid's raw frames (YUYV, and NV12 when asked) through EncodedCamera:
// every access unit decodes, the first and the requested ones are IDRs,
// the pictures move (vivid's counter), capture times come from the camera.
func TestEncodedCameraVividVM(t *testing.T) {
	needVM(t)
	for _, format := range []string{"YUYV", "NV12"} {
		t.Run(format, func(t *testing.T) {
			cam, err := NewV4L2Camera(CameraConfig{Device: "vivid", Formats: []string{format}}, WithCameraLogger(quietLog()))
			if err != nil {
				t.Fatal(err)
			}
			defer cam.Close()
			e := NewEncodedCamera(cam, EncodedCameraOptions{Logger: quietLog()})
			ctx, cancel := context.WithTimeout(context.Background(), 3*vmSlack)
			defer cancel()
			if err := e.Start(ctx, VideoConfig{Width: 320, Height: 180, FPS: 25}); err != nil {
				t.Fatal(err)
			}
			defer e.Stop()
			if m, ok := e.Mode(); !ok || FourCCString(m.FourCC) != format || m.Width != 320 || m.Height != 180 {
				t.Fatalf("mode %+v (%s)", m, FourCCString(m.FourCC))
			}
			dec := &lossyTestDecoder{lastIDRID: -1}
			var first, last *I420Frame
			var total time.Duration
			const n = 12
			for i := 0; i < n; i++ {
				if i == 8 {
					e.RequestKeyframe()
				}
				t0 := time.Now()
				au, err := e.ReadAccessUnit(ctx)
				if err != nil {
					t.Fatalf("unit %d: %v", i, err)
				}
				total += time.Since(t0)
				if want := i == 0 || i == 8; au.Keyframe != want {
					t.Fatalf("unit %d: keyframe %v, want %v", i, au.Keyframe, want)
				}
				if age := time.Since(au.CaptureTime); au.CaptureTime.IsZero() || age < 0 || age > vmSlack {
					t.Fatalf("unit %d: capture time %v (age %v)", i, au.CaptureTime, age)
				}
				if au.Duration != 40*time.Millisecond {
					t.Fatalf("unit %d: duration %v", i, au.Duration)
				}
				got, st, err := dec.decodeAU(au.Data)
				if err != nil {
					t.Fatalf("unit %d (%d bytes): decode: %v", i, len(au.Data), err)
				}
				if got.Width != 320 || got.Height != 180 {
					t.Fatalf("unit %d: decoded %dx%d", i, got.Width, got.Height)
				}
				if i == 0 {
					first = got
					t.Logf("%s IDR: %d bytes, %d intra macroblocks", format, len(au.Data), st.intra)
				}
				last = got
			}
			if framesEqual(first, last) {
				t.Fatal("decoded pictures do not change: not live capture")
			}
			t.Logf("%s: %d units, %v per unit (capture wait + convert + encode)", format, n, total/n)
		})
	}
}
