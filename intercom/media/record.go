package media

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/intercomd/intercomd/device"
)

// Recording (recordAudio / recordVideo) writes one Matroska file per
// session, <dir>/<RecordName or session id>.mkv, that ordinary players (VLC, mpv, ffplay,
// browsers) open: the remote and local video as H.264 tracks and the
// remote and local audio as 16-bit PCM tracks, timestamped on arrival so
// they play in sync.
type recorders struct {
	mkv                     *device.MKVRecorder
	path                    string
	remoteVideo, localVideo *videoRec
	remoteAudio, localAudio *audioRec
}

type videoRec struct {
	r      *recorders
	track  int
	failed atomic.Bool
	last   time.Time // players reject equal or falling timestamps
}

type audioRec struct {
	r      *recorders
	track  int
	failed atomic.Bool
}

func openRecorders(opts SessionOptions, id string, audioRate int) (*recorders, error) {
	if opts.RecordDir == "" || (!opts.RecordAudio && !opts.RecordVideo) {
		return nil, nil
	}
	if err := os.MkdirAll(opts.RecordDir, 0o750); err != nil {
		return nil, fmt.Errorf("media: record dir: %w", err)
	}
	name := id
	if opts.RecordName != "" {
		name = opts.RecordName
		if _, err := os.Lstat(filepath.Join(opts.RecordDir, name+".mkv")); err == nil {
			name += "-" + id
		}
	}
	r := &recorders{path: filepath.Join(opts.RecordDir, name+".mkv")}
	var tracks []device.RecordTrack
	if opts.RecordVideo {
		r.remoteVideo = &videoRec{r: r, track: len(tracks)}
		tracks = append(tracks, device.RecordTrack{Name: "remote video", Video: true})
		if opts.SendVideo {
			r.localVideo = &videoRec{r: r, track: len(tracks)}
			tracks = append(tracks, device.RecordTrack{Name: "local video", Video: true})
		}
	}
	if opts.RecordAudio {
		r.remoteAudio = &audioRec{r: r, track: len(tracks)}
		tracks = append(tracks, device.RecordTrack{Name: "remote audio", Codec: device.RecordPCM16, SampleRate: audioRate})
		r.localAudio = &audioRec{r: r, track: len(tracks)}
		tracks = append(tracks, device.RecordTrack{Name: "local audio", Codec: device.RecordPCM16, SampleRate: audioRate})
	}
	mkv, err := device.CreateMKVRecording(r.path, tracks)
	if err != nil {
		return nil, fmt.Errorf("media: recording: %w", err)
	}
	r.mkv = mkv
	return r, nil
}

// write records one access unit; after an error the track stops
// (logged once) and the call goes on.
func (v *videoRec) write(au []byte, log *slog.Logger) {
	if v == nil || v.failed.Load() {
		return
	}
	// Matroska keeps milliseconds: two frames written within one must
	// still get increasing timestamps (each track has one writer).
	t := time.Now().Truncate(time.Millisecond)
	if !t.After(v.last) {
		t = v.last.Add(time.Millisecond)
	}
	v.last = t
	err := v.r.mkv.WriteVideo(v.track, device.AccessUnit{Data: au, Keyframe: hasIDR(au), CaptureTime: t})
	if err != nil && !v.failed.Swap(true) {
		log.Warn("recording stopped for a video track", "file", v.r.path, "err", err)
	}
}

func (a *audioRec) write(pcm []int16, log *slog.Logger) {
	if a == nil || a.failed.Load() {
		return
	}
	if err := a.r.mkv.WritePCM(a.track, time.Now(), pcm); err != nil && !a.failed.Swap(true) {
		log.Warn("recording stopped for an audio track", "file", a.r.path, "err", err)
	}
}

func (r *recorders) close(log *slog.Logger) {
	if err := r.mkv.Close(); err != nil {
		log.Warn("recording not closed cleanly", "file", r.path, "err", err)
		return
	}
	log.Info("call recorded", "file", r.path)
}
