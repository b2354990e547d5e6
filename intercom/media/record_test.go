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

// recordAudio/recordVideo write the remote and local tracks to Matroska
// files that players read. Both sides record into one directory under the
// same name (the channelId): the second does not overwrite the first.
func TestRecording(t *testing.T) {
	e := testEngine(t)
	dir := t.TempDir()
	door, indoor := newSide(t, CallTypeVideo, true), newSide(t, CallTypeVideo, false)
	for _, sd := range []*side{door, indoor} {
		sd.opts.RecordDir, sd.opts.RecordAudio, sd.opts.RecordVideo, sd.opts.RecordName = dir, true, true, "chan1"
	}
	c := startCall(t, e, door, indoor) // the door's session is made first
	eventually(t, 5*time.Second, "media", func() bool {
		return c.b.s.Stats().Video.FramesReceived >= 8 && c.b.s.Stats().Audio.PacketsReceived >= 25 && c.a.s.Stats().Audio.PacketsReceived >= 25
	})
	c.close(t)

	// One Matroska file per session; a player's demuxer sees every track.
	names := map[string]string{c.a.s.ID(): "chan1", c.b.s.ID(): "chan1-" + c.b.s.ID()}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 2 {
		t.Fatalf("recordings %v (%v), want chan1.mkv and chan1-%s.mkv", entries, err, c.b.s.ID())
	}
	for _, id := range []string{c.a.s.ID(), c.b.s.ID()} {
		id := names[id]
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
		id := names[id]
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
