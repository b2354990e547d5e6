//go:build !(cgo && swenc)

package main

import (
	"errors"
	"log/slog"

	"github.com/intercomd/intercomd/device"
)

// newSoftwareEncoder is unavailable in the pure-Go build.
func newSoftwareEncoder(*device.V4L2Camera, *slog.Logger) (device.VideoSource, error) {
	return nil, errors.New("video.encoder software needs a build with cgo and -tags swenc (make cross-swenc; see docs/SWENC.md); this is the pure-Go build: use video.encoder builtin")
}
