package device

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// encodeLossySequence renders and encodes n frames of the test pattern with
// the lossy encoder and returns the sources, access units and the encoder's
// reconstruction after each.
func encodeLossySequence(t testing.TB, w, h, n int, opts H264EncoderOptions, idrAt map[int]bool) (src, rec []*I420Frame, aus [][]byte) {
	t.Helper()
	enc, err := NewH264Encoder(w, h, 15, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := newPatternRenderer(w, h, 15)
	base := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for i := 0; i < n; i++ {
		f := NewI420Frame(w, h)
		r.render(f, uint64(i), base.Add(time.Duration(i)*time.Second/15))
		au, key, err := enc.Encode(nil, f, idrAt[i])
		if err != nil {
			t.Fatal(err)
		}
		if want := i == 0 || idrAt[i]; key != want {
			t.Fatalf("frame %d keyframe=%v, want %v", i, key, want)
		}
		src = append(src, f)
		rec = append(rec, enc.Reconstruction())
		aus = append(aus, au)
	}
	return src, rec, aus
}

// psnrI420 is the PSNR over all three planes (sample-weighted).
func psnrI420(a, b *I420Frame) float64 {
	var se float64
	n := 0
	for _, p := range [][2][]byte{{a.Y, b.Y}, {a.Cb, b.Cb}, {a.Cr, b.Cr}} {
		for i := range p[0] {
			d := float64(p[0][i]) - float64(p[1][i])
			se += d * d
		}
		n += len(p[0])
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255*float64(n)/se)
}

func i420Bytes(f *I420Frame) []byte {
	return append(append(append([]byte(nil), f.Y...), f.Cb...), f.Cr...)
}

// TestH264LossyFFmpegMatchesReconstruction: ffmpeg must decode the lossy
// stream without a complaint even with -err_detect explode, and every
// decoded picture must equal the encoder's own reconstruction exactly.
func TestH264LossyFFmpegMatchesReconstruction(t *testing.T) {
	requireFFmpeg(t)
	for _, c := range []struct {
		w, h, qp int
	}{{640, 480, 0}, {330, 250, 0}, {176, 144, 12}, {176, 144, 40}, {18, 2, 0}, {16, 16, 51}} {
		t.Run(fmt.Sprintf("%dx%d_qp%d", c.w, c.h, c.qp), func(t *testing.T) {
			src, rec, aus := encodeLossySequence(t, c.w, c.h, 45, H264EncoderOptions{QP: c.qp}, map[int]bool{20: true})
			path := filepath.Join(t.TempDir(), "out.h264")
			if err := os.WriteFile(path, bytes.Join(aus, nil), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-err_detect", "explode", "-i", path, "-f", "null", "-").CombinedOutput()
			if err != nil || len(bytes.TrimSpace(out)) != 0 {
				t.Fatalf("ffmpeg reported problems (%v):\n%s", err, out)
			}
			raw := ffmpegDecodeRaw(t, path)
			size := c.w * c.h * 3 / 2
			if len(raw) != size*len(rec) {
				t.Fatalf("ffmpeg decoded %d bytes, want %d frames of %d", len(raw), len(rec), size)
			}
			for i, f := range rec {
				got := raw[i*size : (i+1)*size]
				if !bytes.Equal(got, i420Bytes(f)) {
					t.Fatalf("frame %d: ffmpeg's picture differs from the encoder's reconstruction", i)
				}
			}
			t.Logf("IDR %d bytes, PSNR frame 0 %.2f dB", len(aus[0]), psnrI420(rec[0], src[0]))
		})
	}
}
