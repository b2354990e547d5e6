//go:build cgo && swenc

package intercom

import (
	"testing"

	"github.com/intercomd/intercomd/device"
)

// BenchmarkCallCPUSoftwareEncoder is BenchmarkCallCPU with the setting the
// media issue's ratio target was written for: a software H.264 encoder
// (openh264, or x264 with -tags swenc,swenc_x264) on camera-like frames
// with motion and sensor noise, replayed from memory (60 frames) so that,
// as with a real camera, producing a frame costs nothing and both figures
// count the encoder and what follows it.
//
//	CGO_ENABLED=1 go test -tags swenc -run '^$' -bench CallCPUSoftware -benchtime 1x ./intercom/
func BenchmarkCallCPUSoftwareEncoder(b *testing.B) {
	newEncoder := func(unpaced bool) device.VideoSource {
		enc, err := device.NewSoftwareEncoder(&device.SyntheticRawSource{Noise: 4, Replay: 60, Unpaced: unpaced}, device.SoftwareEncoderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		return enc
	}
	benchCallCPU(b,
		func() device.VideoSource { return newEncoder(false) },
		func() device.VideoSource { return newEncoder(true) })
}
