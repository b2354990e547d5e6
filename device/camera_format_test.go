package device

import (
	"strings"
	"testing"

	"github.com/blackjack/webcam"
)

func discrete(w, h uint32) webcam.FrameSize {
	return webcam.FrameSize{MinWidth: w, MaxWidth: w, MinHeight: h, MaxHeight: h}
}

func TestChooseCameraFormat(t *testing.T) {
	uvc := []cameraMode{
		{FourCC: FourCCMJPG, Sizes: []webcam.FrameSize{discrete(1920, 1080), discrete(1280, 720), discrete(640, 480)}},
		{FourCC: FourCCYUYV, Sizes: []webcam.FrameSize{discrete(640, 480), discrete(1280, 720)}},
	}
	withH264 := append([]cameraMode{{FourCC: FourCCH264, Sizes: []webcam.FrameSize{discrete(1920, 1080), discrete(1280, 720)}}}, uvc...)
	stepwise := []cameraMode{{FourCC: FourCCNV12, Sizes: []webcam.FrameSize{{MinWidth: 32, MaxWidth: 2592, StepWidth: 16, MinHeight: 32, MaxHeight: 1944, StepHeight: 16}}}}
	cases := []struct {
		name  string
		modes []cameraMode
		pref  []uint32
		w, h  int
		want  cameraChoice
	}{
		{"H.264 camera passes through", withH264, DefaultCameraFormats, 1280, 720, cameraChoice{FourCCH264, 1280, 720}},
		{"raw before MJPEG", uvc, DefaultCameraFormats, 1280, 720, cameraChoice{FourCCYUYV, 1280, 720}},
		{"nearest size", uvc, DefaultCameraFormats, 800, 600, cameraChoice{FourCCYUYV, 640, 480}},
		{"default size", uvc, DefaultCameraFormats, 0, 0, cameraChoice{FourCCYUYV, 640, 480}},
		{"configured preference", withH264, []uint32{FourCCMJPG}, 1920, 1080, cameraChoice{FourCCMJPG, 1920, 1080}},
		{"stepwise rounds to the step", stepwise, DefaultCameraFormats, 1000, 563, cameraChoice{FourCCNV12, 992, 560}},
		{"stepwise clamps", stepwise, DefaultCameraFormats, 4000, 3000, cameraChoice{FourCCNV12, 2592, 1936}},
	}
	for _, tc := range cases {
		got, err := chooseCameraFormat(tc.modes, tc.pref, tc.w, tc.h)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %s %dx%d (err %v), want %s %dx%d", tc.name, FourCCString(got.FourCC), got.Width, got.Height, err,
				FourCCString(tc.want.FourCC), tc.want.Width, tc.want.Height)
		}
	}
	rgb, _ := ParseFourCC("RGB4")
	_, err := chooseCameraFormat([]cameraMode{{FourCC: rgb}}, DefaultCameraFormats, 640, 480)
	if err == nil || !strings.Contains(err.Error(), "RGB4") {
		t.Fatalf("err = %v, want one listing the camera's formats", err)
	}
}

func TestChooseFrameRate(t *testing.T) {
	vividLike := []webcam.FrameRate{
		{MinNumerator: 1, MaxNumerator: 1, MinDenominator: 5, MaxDenominator: 5},
		{MinNumerator: 1, MaxNumerator: 1, MinDenominator: 25, MaxDenominator: 25},
		{MinNumerator: 1, MaxNumerator: 1, MinDenominator: 60, MaxDenominator: 60},
	}
	for _, tc := range []struct {
		fps  int
		want float64
	}{{30, 25}, {5, 5}, {50, 60}, {1, 5}} {
		if got, ok := chooseFrameRate(vividLike, tc.fps); !ok || got != tc.want {
			t.Errorf("fps %d: got %v, want %v", tc.fps, got, tc.want)
		}
	}
	cont := []webcam.FrameRate{{MinNumerator: 1, MinDenominator: 90, MaxNumerator: 1, MaxDenominator: 1, StepNumerator: 1, StepDenominator: 1}}
	if got, _ := chooseFrameRate(cont, 30); got != 30 {
		t.Errorf("continuous: got %v, want 30", got)
	}
	if _, ok := chooseFrameRate(nil, 30); ok {
		t.Error("no rates listed: want !ok")
	}
	if f, err := ParseFourCC("I420"); err != nil || f != FourCCYU12 || FourCCString(FourCCH264) != "H264" {
		t.Errorf("fourcc parsing: %v %v", f, err)
	}
}
