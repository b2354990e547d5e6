package media

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// recordAudio/recordVideo write the remote and local tracks to files that
// start decodable (SPS/PPS + IDR first; a valid WAV header).
func TestRecording(t *testing.T) {
	e := testEngine(t)
	dir := t.TempDir()
	door, indoor := newSide(t, CallTypeVideo, true), newSide(t, CallTypeVideo, false)
	indoor.opts.RecordDir, indoor.opts.RecordAudio, indoor.opts.RecordVideo = dir, true, true
	door.opts.RecordDir, door.opts.RecordAudio, door.opts.RecordVideo = dir, true, true
	c := startCall(t, e, door, indoor)
	eventually(t, 5*time.Second, "media", func() bool {
		return c.b.s.Stats().Video.FramesReceived >= 8 && c.b.s.Stats().Audio.PacketsReceived >= 25 && c.a.s.Stats().Audio.PacketsReceived >= 25
	})
	c.close(t)

	// One Matroska file per session; a player's demuxer sees every track.
	for _, id := range []string{c.a.s.ID(), c.b.s.ID()} {
		mkv := readFile(t, filepath.Join(dir, id+".mkv"))
		if !bytes.HasPrefix(mkv, []byte{0x1a, 0x45, 0xdf, 0xa3}) {
			t.Fatalf("%s.mkv is not an EBML/Matroska file", id)
		}
	}
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Skip("ffprobe not installed: the Matroska files were checked by signature only")
	}
	// The indoor unit records the door's video; the door records its own
	// (it receives none, and a video track that never starts is left out).
	want := map[string]string{c.b.s.ID(): "h264,pcm_s16le,pcm_s16le", c.a.s.ID(): "h264,pcm_s16le,pcm_s16le"}
	for id, codecs := range want {
		out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", filepath.Join(dir, id+".mkv")).CombinedOutput()
		if err != nil {
			t.Fatalf("ffprobe %s: %v\n%s", id, err, out)
		}
		got := strings.Join(strings.Fields(string(out)), ",")
		if got != codecs {
			t.Errorf("%s.mkv streams %s, want %s", id, got, codecs)
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
