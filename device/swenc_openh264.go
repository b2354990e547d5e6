//go:build cgo && swenc && !swenc_x264

package device

import (
	"fmt"

	"github.com/pion/mediadevices/pkg/codec"
	"github.com/pion/mediadevices/pkg/codec/openh264"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/mediadevices/pkg/prop"
)

func init() { swencCodecs[SoftwareCodecOpenH264] = swencBuildOpenH264 }

// swencBuildOpenH264 configures openh264 for a live call rather than
// mediadevices' defaults: frame skipping off (a skipped frame is a frame the
// far end never sees, and ReadAccessUnit would have to wait another frame
// interval), one slice per picture unless threads need slices to work on.
func swencBuildOpenH264(r video.Reader, p swencParams) (codec.ReadCloser, error) {
	params, err := openh264.NewParams()
	if err != nil {
		return nil, fmt.Errorf("openh264 params: %w", err)
	}
	params.BitRate = p.BitrateBps
	params.KeyFrameInterval = p.KeyframeFrames
	params.IntraPeriod = uint(p.KeyframeFrames)
	params.UsageType = openh264.CameraVideoRealTime
	params.RCMode = openh264.RCBitrateMode
	params.EnableFrameSkip = false
	params.MultipleThreadIdc = p.Threads
	if p.Threads > 1 {
		params.SliceMode = openh264.SMFixedslcnumSlice
		params.SliceNum = uint(p.Threads)
	} else {
		params.SliceMode = openh264.SMSingleSlice
		params.SliceNum = 1
	}
	enc, err := params.BuildVideoEncoder(r, prop.Media{Video: prop.Video{
		Width: p.Width, Height: p.Height, FrameRate: float32(p.FPS),
	}})
	if err != nil {
		return nil, fmt.Errorf("openh264: %w", err)
	}
	return enc, nil
}
