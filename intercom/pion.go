package intercom

import (
	"encoding/json"
	"fmt"

	"github.com/intercomd/intercomd/device"
	"github.com/intercomd/intercomd/intercom/media"
	"github.com/intercomd/intercomd/signaling"
)

// PionMedia is the MediaProvider backed by pion/webrtc (package media).
type PionMedia struct {
	Engine *media.Engine
	// Devices returns the devices for one call. Sources are started by the
	// session and stopped when it closes; a shared camera comes from
	// media.SharedVideo.Source() so several sessions can use it.
	Devices   func() media.Devices
	SendVideo bool   // this unit has a camera to send (a door station)
	RecordDir string // where recordAudio / recordVideo put their files
}

// videoQualities maps the seed's videoQuality (0 = default) to a size.
var videoQualities = map[int][2]int{
	0: {640, 480}, 1: {176, 144}, 2: {352, 288}, 3: {480, 360},
	4: {640, 480}, 5: {960, 540}, 6: {1280, 720}, 7: {1920, 1080},
}

// videoFrameRates maps the seed's videoFrameRate (0 = default 15 fps).
var videoFrameRates = map[int]int{0: 15, 1: 5, 2: 10, 3: 15, 4: 20, 5: 25}

// VideoConfigFor turns a sessionConfig into what the camera is asked for.
func VideoConfigFor(sc *signaling.SessionConfig) (device.VideoConfig, error) {
	cfg := device.VideoConfig{Width: 640, Height: 480, FPS: 15}
	if sc == nil {
		return cfg, nil
	}
	size, ok := videoQualities[sc.VideoQuality]
	if !ok {
		return cfg, fmt.Errorf("videoQuality %d is not 0-7", sc.VideoQuality)
	}
	fps, ok := videoFrameRates[sc.VideoFrameRate]
	if !ok {
		return cfg, fmt.Errorf("videoFrameRate %d is not 0-5", sc.VideoFrameRate)
	}
	if sc.VideoBitrate < 0 {
		return cfg, fmt.Errorf("videoBitrate %d is negative", sc.VideoBitrate)
	}
	cfg.Width, cfg.Height, cfg.FPS = size[0], size[1], fps
	cfg.BitrateKbps = sc.VideoBitrate / 1000
	return cfg, nil
}

// NewSession implements MediaProvider.
func (p *PionMedia) NewSession(mp MediaParams, h MediaHooks) (MediaSession, error) {
	video, err := VideoConfigFor(mp.Session)
	if err != nil {
		return nil, fmt.Errorf("sessionConfig: %w", err)
	}
	opts := media.SessionOptions{CallType: mp.CallType, Video: video, SendVideo: p.SendVideo, RecordDir: p.RecordDir, RecordName: mp.ChannelID, Preview: mp.Preview}
	if mp.Session != nil && p.RecordDir != "" {
		opts.RecordAudio, opts.RecordVideo = mp.Session.RecordAudio, mp.Session.RecordVideo
	}
	var dev media.Devices
	if p.Devices != nil {
		dev = p.Devices()
	}
	cb := media.Callbacks{
		LocalCandidate: h.LocalCandidate,
		Renegotiate:    h.Renegotiate,
		CameraFailed:   h.CameraFailed,
		FirstFrame:     h.FirstFrame,
		StateChanged: func(s media.State) {
			switch s.Kind {
			case media.StateConnected:
				if h.Connected != nil {
					h.Connected()
				}
			case media.StateFailed:
				if h.Failed != nil {
					h.Failed(s.Reason)
				}
			}
		},
	}
	s, err := p.Engine.NewSession(opts, dev, cb)
	if err != nil {
		return nil, err
	}
	return pionSession{s}, nil
}

type pionSession struct{ *media.Session }

func (s pionSession) StatsJSON() json.RawMessage {
	b, err := json.Marshal(s.Stats())
	if err != nil {
		return nil
	}
	return b
}
