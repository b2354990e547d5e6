package media

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Interoperability with an independent implementation: ffmpeg's G.722
// decodes our bitstream, and we decode ffmpeg's, each to the signal.
func TestG722InteropFFmpeg(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("no ffmpeg")
	}
	dir := t.TempDir()
	const n = 16000
	in := make([]int16, n)
	for i := range in {
		f := float64(i) / 16000
		in[i] = int16(6000*math.Sin(2*math.Pi*700*f) + 2000*math.Sin(2*math.Pi*5200*f))
	}
	pcm := new(bytes.Buffer)
	_ = binary.Write(pcm, binary.LittleEndian, in)
	if err := os.WriteFile(filepath.Join(dir, "in.raw"), pcm.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	ours := newG722Encoder().encode(nil, in)
	if err := os.WriteFile(filepath.Join(dir, "ours.g722"), ours, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ffmpeg, append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
		}
	}
	run("-f", "g722", "-i", filepath.Join(dir, "ours.g722"), "-f", "s16le", "-ar", "16000", filepath.Join(dir, "ff_dec.raw"))
	run("-f", "s16le", "-ar", "16000", "-ac", "1", "-i", filepath.Join(dir, "in.raw"), "-c:a", "g722", "-f", "g722", filepath.Join(dir, "ff.g722"))

	ffDec := readPCM(t, filepath.Join(dir, "ff_dec.raw"))
	ffEnc, err := os.ReadFile(filepath.Join(dir, "ff.g722"))
	if err != nil {
		t.Fatal(err)
	}
	ourDec := newG722Decoder().decode(nil, ffEnc)
	for name, out := range map[string][]int16{"ffmpeg decoding ours": ffDec, "ours decoding ffmpeg": ourDec} {
		snr := bestSNR(in, out)
		t.Logf("%s: SNR %.1f dB", name, snr)
		if snr < 20 {
			t.Errorf("%s: SNR %.1f dB", name, snr)
		}
	}
	// Same algorithm, same integer arithmetic: the bitstreams should agree.
	same := 0
	for i := range min(len(ours), len(ffEnc)) {
		if ours[i] == ffEnc[i] {
			same++
		}
	}
	if same != len(ours) || len(ours) != len(ffEnc) {
		t.Errorf("bitstreams differ: %d of %d bytes identical (ffmpeg %d bytes)", same, len(ours), len(ffEnc))
	}
}

func readPCM(t *testing.T, path string) []int16 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int16, len(b)/2)
	_ = binary.Read(bytes.NewReader(b), binary.LittleEndian, out)
	return out
}

// bestSNR aligns out to in (codec delay) and returns the SNR in dB.
func bestSNR(in, out []int16) float64 {
	best := math.Inf(-1)
	for lag := range 64 {
		var sig, noise float64
		for i := 1000; i < len(in)-100 && i+lag < len(out); i++ {
			x := float64(in[i])
			e := float64(out[i+lag]) - x
			sig += x * x
			noise += e * e
		}
		if noise > 0 {
			best = max(best, 10*math.Log10(sig/noise))
		}
	}
	return best
}
