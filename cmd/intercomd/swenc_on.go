//go:build cgo && swenc

package main

import (
	"log/slog"

	"github.com/intercomd/intercomd/device"
)

// newSoftwareEncoder encodes raw camera frames with openh264/x264 (cgo
// build with -tags swenc: development machines and the Pi 5).
func newSoftwareEncoder(cam *device.V4L2Camera, logger *slog.Logger) (device.VideoSource, error) {
	return device.NewSoftwareEncoder(cam, device.SoftwareEncoderOptions{Logger: logger})
}
