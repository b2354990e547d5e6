//go:build cgo && swenc && swenc_x264

package device

import (
	"fmt"

	"github.com/pion/mediadevices/pkg/codec"
	"github.com/pion/mediadevices/pkg/codec/x264"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/mediadevices/pkg/prop"
)

// x264 links libx264 through pkg-config (libx264-dev on the build machine,
// libx264-164 at run time), so it sits behind its own tag: the openh264
// build needs nothing but g++. The tag replaces openh264 rather than adding
// to it: mediadevices' two bridges both define the C symbols enc_new and
// enc_encode, so one binary cannot link both.
func init() { swencCodecs[SoftwareCodecX264] = swencBuildX264 }

// swencBuildX264 uses preset ultrafast; mediadevices adds tune zerolatency and
// applies profile "high", which only caps the features: ultrafast uses
// none of Main's or High's (no CABAC, no B-frames, no 8x8 transform), so
// x264 writes a Baseline SPS. The bridge never sets the frame rate (x264
// assumes 25 fps for rate control), so the bitrate is scaled to make
// x264's per-frame budget match the real one.
func swencBuildX264(r video.Reader, p swencParams) (codec.ReadCloser, error) {
	params, err := x264.NewParams()
	if err != nil {
		return nil, fmt.Errorf("x264 params: %w", err)
	}
	params.Preset = x264.PresetUltrafast
	params.LogLevel = x264.LogWarning
	params.BitRate = p.BitrateBps * 25 / max(p.FPS, 1)
	params.KeyFrameInterval = p.KeyframeFrames
	enc, err := params.BuildVideoEncoder(r, prop.Media{Video: prop.Video{
		Width: p.Width, Height: p.Height, FrameRate: float32(p.FPS),
	}})
	if err != nil {
		return nil, fmt.Errorf("x264: %w", err)
	}
	return enc, nil
}
