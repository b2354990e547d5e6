package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var _ VideoSource = (*Subprocess)(nil)

func requireExec(t *testing.T) {
	t.Helper()
	if os.Getenv("INTERCOMD_QEMU_USER") == "1" {
		t.Skip("INTERCOMD_QEMU_USER=1: os/exec is unreliable under qemu-user")
	}
}

// splitAll runs the splitter over data fed in chunks of the given size.
func splitAll(data []byte, chunk int, early bool) (aus [][]byte, keys []bool, sp *h264AUSplitter) {
	sp = &h264AUSplitter{early: early}
	sp.emit = func(d []byte, k bool) { aus = append(aus, d); keys = append(keys, k) }
	for i := 0; i < len(data); i += chunk {
		sp.write(data[i:min(i+chunk, len(data))])
		sp.flushAtReadEnd()
	}
	sp.end()
	return aus, keys, sp
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAUSplitterPCMFixture(t *testing.T) {
	data := readFixture(t, "pattern_160x120.h264")
	for _, chunk := range []int{1, 7, 4096, len(data)} {
		aus, keys, _ := splitAll(data, chunk, false)
		if len(aus) != 30 || !keys[0] || !keys[15] || keys[1] {
			t.Fatalf("chunk %d: %d access units, keys %v", chunk, len(aus), keys)
		}
		// Our encoder's access units are already canonical: the split
		// stream must reassemble to the original bytes.
		if !bytes.Equal(bytes.Join(aus, nil), data) {
			t.Fatalf("chunk %d: access units do not reassemble the stream", chunk)
		}
		dec := &pcmTestDecoder{lastIDRID: -1}
		for i, au := range aus {
			if _, _, err := dec.decodeAU(au); err != nil {
				t.Fatalf("chunk %d AU %d: %v", chunk, i, err)
			}
		}
	}
}

func TestAUSplitterX264MultiSliceAndMissingParams(t *testing.T) {
	data := readFixture(t, "x264_160x120.h264")
	// x264 with sliced threads: two slices per picture, SEI, SPS/PPS per IDR.
	aus, keys, _ := splitAll(data, 1000, false)
	if len(aus) != 30 {
		t.Fatalf("%d access units, want 30 pictures", len(aus))
	}
	for i, au := range aus {
		var types []byte
		for _, n := range SplitAnnexB(au) {
			types = append(types, H264NALType(n))
		}
		if keys[i] != (i%10 == 0) {
			t.Fatalf("AU %d keyframe=%v", i, keys[i])
		}
		slices := bytes.Count(types, []byte{5}) + bytes.Count(types, []byte{1})
		if slices != 2 {
			t.Fatalf("AU %d has NAL types %v: want both slices of one picture", i, types)
		}
		if keys[i] && (types[0] != 7 || types[1] != 8) {
			t.Fatalf("keyframe %d starts with %v", i, types)
		}
	}
	// Strip the parameter sets from all but the first IDR, and add AUDs
	// and a stream that starts mid-GOP: the splitter must drop the leading
	// P pictures, cut at the AUDs, and put SPS/PPS back in front of IDRs.
	var stripped bytes.Buffer
	seenParams := 0
	for _, n := range SplitAnnexB(data) {
		typ := H264NALType(n)
		if typ == 7 || typ == 8 {
			seenParams++
			if seenParams > 2 {
				continue
			}
		}
		if mb, _ := h264FirstMBInSlice(n); (typ == 1 || typ == 5) && mb == 0 {
			stripped.Write([]byte{0, 0, 0, 1, 0x09, 0xF0}) // AUD
		}
		stripped.Write([]byte{0, 0, 1})
		stripped.Write(n)
	}
	// Start at picture 2's AUD: pictures 2..9 are P, 10 is the next IDR.
	s := stripped.Bytes()
	cut := 0
	for i := 0; i < 3; i++ {
		cut += 4 + bytes.Index(s[cut+4:], []byte{0, 0, 0, 1, 0x09})
	}
	// The parameter sets arrive once, up front (rpicam-vid without --inline).
	params := []byte{}
	for _, n := range SplitAnnexB(data)[:2] {
		params = append(append(params, 0, 0, 0, 1), n...)
	}
	aus, keys, sp := splitAll(append(params, s[cut:]...), 333, false)
	if sp.dropped != 8 || len(aus) != 20 || !keys[0] || !keys[10] {
		t.Fatalf("dropped %d, %d AUs, keys %v", sp.dropped, len(aus), keys)
	}
	for _, i := range []int{0, 10} {
		nals := SplitAnnexB(aus[i])
		if H264NALType(nals[0]) != 7 || H264NALType(nals[1]) != 8 {
			t.Fatalf("IDR AU %d lacks re-inserted SPS/PPS", i)
		}
	}
	for i, au := range aus {
		for _, n := range SplitAnnexB(au) {
			if H264NALType(n) == h264NALAUD {
				t.Fatalf("AU %d still carries an AUD", i)
			}
		}
	}
	if sp.missingParams {
		t.Fatal("missingParams set although parameter sets were cached")
	}
	t.Run("ffmpeg", func(t *testing.T) {
		requireFFmpeg(t)
		// Starting from the second keyframe alone must decode cleanly.
		path := filepath.Join(t.TempDir(), "from_key.h264")
		if err := os.WriteFile(path, bytes.Join(aus[10:], nil), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Fatalf("decode from re-parameterised keyframe: %v\n%s", err, out)
		}
		raw := ffmpegDecodeRaw(t, path)
		if got := len(raw) / (160 * 120 * 3 / 2); got != 10 {
			t.Fatalf("decoded %d frames, want 10", got)
		}
	})
}

func TestAUSplitterEarlyFlush(t *testing.T) {
	data := readFixture(t, "pattern_160x120.h264")
	aus := SplitAnnexBAccessUnits(t, data)
	// One write per access unit: each AU comes out on its own write,
	// not one frame later.
	var got [][]byte
	sp := &h264AUSplitter{early: true}
	sp.emit = func(d []byte, _ bool) { got = append(got, d) }
	for i, au := range aus {
		sp.write(au)
		sp.flushAtReadEnd()
		if len(got) != i+1 {
			t.Fatalf("after write %d: %d AUs emitted (not early)", i, len(got))
		}
		if !bytes.Equal(got[i], au) {
			t.Fatalf("AU %d differs", i)
		}
	}
	// A frame split across two writes: the early guess is wrong once, the
	// splitter notices, drops to the next IDR and stays safe afterwards.
	var anomalies []string
	got = nil
	sp = &h264AUSplitter{early: true, onAnomaly: func(r string) { anomalies = append(anomalies, r) }}
	var keys []bool
	sp.emit = func(d []byte, k bool) { got = append(got, d); keys = append(keys, k) }
	for i, au := range aus {
		if i == 3 {
			half := len(au) / 2
			sp.write(au[:half])
			sp.flushAtReadEnd()
			sp.write(au[half:])
		} else {
			sp.write(au)
		}
		sp.flushAtReadEnd()
	}
	sp.end()
	if len(anomalies) != 1 || sp.early {
		t.Fatalf("anomalies %v early %v", anomalies, sp.early)
	}
	// AUs 0-2 fine, the cut half of 3 emitted (unavoidable), 4-14 dropped
	// until the IDR at 15, then 15-29.
	if len(got) != 4+15 || !keys[4] {
		t.Fatalf("%d AUs after the anomaly, keys %v", len(got), keys)
	}
	for i := 4; i < len(got); i++ {
		if !bytes.Equal(got[i], aus[i+11]) {
			t.Fatalf("AU %d after recovery differs", i)
		}
	}
}

// SplitAnnexBAccessUnits is the reference split of a canonical stream:
// every SPS or non-IDR slice starts an access unit.
func SplitAnnexBAccessUnits(t *testing.T, data []byte) [][]byte {
	t.Helper()
	aus, _, _ := splitAll(data, len(data), false)
	return aus
}

func TestSubprocessCatFixtureRestarts(t *testing.T) {
	requireExec(t)
	fixture, _ := filepath.Abs(filepath.Join("testdata", "pattern_160x120.h264"))
	want := SplitAnnexBAccessUnits(t, readFixture(t, "pattern_160x120.h264"))
	src := &Subprocess{
		Args:       []string{"sh", "-c", "echo starting {width}x{height}@{fps} >&2; cat " + fixture},
		MinBackoff: 10 * time.Millisecond,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := src.Start(ctx, VideoConfig{Width: 160, Height: 120, FPS: 15}); err != nil {
		t.Fatal(err)
	}
	defer src.Stop()
	src.RequestKeyframe() // no signal configured: logged and ignored
	// Two passes: the program exits after the file and is restarted.
	for pass := 0; pass < 2; pass++ {
		for i := range want {
			au, err := src.ReadAccessUnit(ctx)
			if err != nil {
				t.Fatalf("pass %d AU %d: %v", pass, i, err)
			}
			if !bytes.Equal(au.Data, want[i]) || au.Keyframe != (i == 0 || i == 15) {
				t.Fatalf("pass %d AU %d differs (keyframe %v)", pass, i, au.Keyframe)
			}
			if au.CaptureTime.IsZero() || au.Duration != time.Second/15 {
				t.Fatalf("AU metadata %v %v", au.CaptureTime, au.Duration)
			}
		}
	}
	if err := src.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := src.ReadAccessUnit(ctx); !errors.Is(err, ErrSourceStopped) {
		t.Fatalf("read after Stop: %v", err)
	}
}

func TestSubprocessFailures(t *testing.T) {
	requireExec(t)
	ctx := context.Background()
	missing := &Subprocess{Args: []string{"/nonexistent/encoder"}}
	if err := missing.Start(ctx, VideoConfig{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("missing program: %v", err)
	}
	failing := &Subprocess{
		Args:        []string{"sh", "-c", "echo no camera >&2; exit 3"},
		MinBackoff:  time.Millisecond,
		MaxFailures: 3,
	}
	if err := failing.Start(ctx, VideoConfig{}); err != nil {
		t.Fatal(err)
	}
	defer failing.Stop()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := failing.ReadAccessUnit(rctx)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "3 consecutive runs") {
		t.Fatalf("failing program: %v", err)
	}
}

// Stop must take the whole process group down, including a child the
// program started in the background, and return only when it is gone.
func TestSubprocessStopKillsProcessGroup(t *testing.T) {
	requireExec(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	fixture, _ := filepath.Abs(filepath.Join("testdata", "pattern_160x120.h264"))
	src := &Subprocess{
		Args:        []string{"sh", "-c", fmt.Sprintf("sleep 300 & echo $! > %s; cat %s; sleep 300", pidFile, fixture)},
		StopTimeout: time.Second,
	}
	ctx := context.Background()
	if err := src.Start(ctx, VideoConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.ReadAccessUnit(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if child <= 0 || syscall.Kill(child, 0) != nil {
		t.Fatalf("background child %d not running", child)
	}
	t0 := time.Now()
	if err := src.Stop(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el > 3*time.Second {
		t.Fatalf("Stop took %v", el)
	}
	deadline := time.Now().Add(2 * time.Second)
	for syscall.Kill(child, 0) == nil {
		// The child may linger as a zombie until init reaps it; check its state.
		if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child)); bytes.Contains(st, []byte(") Z")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background child %d survived Stop", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The Start context ending stops it the same way.
	cctx, cancel := context.WithCancel(ctx)
	if err := src.Start(cctx, VideoConfig{}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := src.ReadAccessUnit(ctx); err == nil {
		// queued AUs may come first; drain until the error
		for i := 0; i < 100 && err == nil; i++ {
			_, err = src.ReadAccessUnit(ctx)
		}
		if !errors.Is(err, ErrSourceStopped) {
			t.Fatalf("after the Start context ended: %v", err)
		}
	}
	src.Stop()
}

// A live encoder: ffmpeg's lavfi test source through libx264, paced in
// real time, with the placeholders filled from the VideoConfig.
func TestSubprocessFFmpegLive(t *testing.T) {
	requireFFmpeg(t)
	src := &Subprocess{
		Args: []string{"ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size={width}x{height}:rate={fps}",
			"-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency", "-g", "{keyframe_frames}", "-b:v", "{bitrate_kbps}k",
			"-pix_fmt", "yuv420p", "-flush_packets", "1", "-f", "h264", "-"},
		EarlyFlush: true,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := src.Start(ctx, VideoConfig{Width: 320, Height: 240, FPS: 25, KeyframeEvery: 400 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	defer src.Stop()
	var stream [][]byte
	keys := 0
	var first, last time.Time
	for i := 0; i < 25; i++ {
		au, err := src.ReadAccessUnit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if !au.Keyframe {
				t.Fatal("first access unit is not a keyframe")
			}
			sps, err := ParseH264SPS(SplitAnnexB(au.Data)[0])
			if err != nil || sps.Width != 320 || sps.Height != 240 {
				t.Fatalf("SPS %+v %v", sps, err)
			}
			first = au.CaptureTime
		}
		last = au.CaptureTime
		if au.Keyframe {
			keys++
		}
		stream = append(stream, au.Data)
	}
	// -g 10 at 25 fps: keyframes at 0, 10, 20.
	if keys != 3 {
		t.Errorf("%d keyframes in 25 frames, want 3", keys)
	}
	// Paced by -re: 24 frame intervals take about a second.
	if d := last.Sub(first); d < 700*time.Millisecond || d > 2*time.Second {
		t.Errorf("24 frame intervals took %v", d)
	}
	path := filepath.Join(t.TempDir(), "live.h264")
	if err := os.WriteFile(path, bytes.Join(stream, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("decode: %v\n%s", err, out)
	}
}
