package media

import (
	"bytes"
	"encoding/binary"
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

	id := c.b.s.ID()
	remote := readFile(t, filepath.Join(dir, id+"-remote.h264"))
	if !bytes.HasPrefix(remote, []byte{0, 0, 0, 1, 0x67}) || !hasIDR(remote) {
		t.Errorf("remote video does not start with an SPS / has no IDR (%d bytes)", len(remote))
	}
	if local := readFile(t, filepath.Join(dir, c.a.s.ID()+"-local.h264")); !hasIDR(local) {
		t.Error("door's local video recording has no IDR")
	}
	for _, name := range []string{id + "-remote.wav", id + "-local.wav", c.a.s.ID() + "-remote.wav"} {
		w := readFile(t, filepath.Join(dir, name))
		if len(w) < 44 || string(w[0:4]) != "RIFF" || string(w[8:12]) != "WAVE" {
			t.Errorf("%s: not a WAV file", name)
			continue
		}
		if n := binary.LittleEndian.Uint32(w[40:]); n == 0 || int(n) != len(w)-44 {
			t.Errorf("%s: data size %d, file has %d bytes of samples", name, n, len(w)-44)
		}
	}
	// Where ffprobe exists, check a player's demuxer accepts them.
	if ffprobe, err := exec.LookPath("ffprobe"); err == nil {
		for _, name := range []string{id + "-remote.h264", id + "-remote.wav"} {
			out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "stream=codec_name,width,height,sample_rate", "-of", "csv=p=0", filepath.Join(dir, name)).CombinedOutput()
			if err != nil {
				t.Errorf("ffprobe %s: %v\n%s", name, err, out)
				continue
			}
			t.Logf("ffprobe %s: %s", name, strings.TrimSpace(string(out)))
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
