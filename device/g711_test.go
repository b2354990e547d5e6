package device

import (
	"bytes"
	"encoding/binary"
	"math"
	"os/exec"
	"testing"
)

func TestG711KnownValues(t *testing.T) {
	mu := map[byte]int16{0xFF: 0, 0x7F: 0, 0x80: 32124, 0x00: -32124, 0xFE: 8, 0x7E: -8, 0xF0: 120, 0x8F: 16764, 0xEF: 132}
	for code, want := range mu {
		if got := MuLawToLinear(code); got != want {
			t.Errorf("µ-law %#02x -> %d, want %d", code, got, want)
		}
	}
	al := map[byte]int16{0xD5: 8, 0x55: -8, 0xAA: 32256, 0x2A: -32256, 0xD4: 24, 0x80: 5504, 0xC5: 264, 0xE5: 1056}
	for code, want := range al {
		if got := ALawToLinear(code); got != want {
			t.Errorf("A-law %#02x -> %d, want %d", code, got, want)
		}
	}
	enc := []struct {
		in     int16
		mu, al byte
	}{
		{0, 0xFF, 0xD5}, {-1, 0x7F, 0x55}, {32767, 0x80, 0xAA}, {-32768, 0x00, 0x2A},
		{8, 0xFE, 0xD5}, {1000, 0xCE, 0xFA}, {-1000, 0x4E, 0x7A},
	}
	for _, c := range enc {
		if got := LinearToMuLaw(c.in); got != c.mu {
			t.Errorf("µ-law encode %d = %#02x, want %#02x", c.in, got, c.mu)
		}
		if got := LinearToALaw(c.in); got != c.al {
			t.Errorf("A-law encode %d = %#02x, want %#02x", c.in, got, c.al)
		}
	}
}

func TestG711RoundTrip(t *testing.T) {
	// Every code decodes to a value that encodes back to the same code
	// (except µ-law's negative zero 0x7F, which is +0 = 0xFF).
	for c := 0; c < 256; c++ {
		b := byte(c)
		if got := LinearToMuLaw(MuLawToLinear(b)); got != b && !(b == 0x7F && got == 0xFF) {
			t.Errorf("µ-law %#02x -> %d -> %#02x", b, MuLawToLinear(b), got)
		}
		if got := LinearToALaw(ALawToLinear(b)); got != b {
			t.Errorf("A-law %#02x -> %d -> %#02x", b, ALawToLinear(b), got)
		}
	}
	// Every 16-bit sample comes back within half a quantisation step: at
	// most 1/16 (µ-law) and 1/32 (A-law) of the magnitude plus the smallest
	// step, and monotonically (companding never reorders).
	prevMu, prevA := int16(math.MinInt16), int16(math.MinInt16)
	for x := math.MinInt16; x <= math.MaxInt16; x++ {
		s := int16(x)
		mu := MuLawToLinear(LinearToMuLaw(s))
		al := ALawToLinear(LinearToALaw(s))
		mag := math.Abs(float64(x))
		if e := math.Abs(float64(mu) - float64(x)); e > 4+mag/16 {
			t.Fatalf("µ-law %d -> %d: error %v", x, mu, e)
		}
		if e := math.Abs(float64(al) - float64(x)); e > 8+mag/32 {
			t.Fatalf("A-law %d -> %d: error %v", x, al, e)
		}
		if mu < prevMu || al < prevA {
			t.Fatalf("not monotonic at %d", x)
		}
		prevMu, prevA = mu, al
	}
	// The slice helpers agree with the per-sample ones.
	pcm := []int16{0, 1, -1, 1234, -1234, 32767, -32768}
	mu := AppendMuLaw([]byte{9}, pcm)
	al := AppendALaw(nil, pcm)
	if len(mu) != len(pcm)+1 || mu[0] != 9 || len(al) != len(pcm) {
		t.Fatalf("append lengths %d %d", len(mu), len(al))
	}
	dmu := AppendMuLawPCM(nil, mu[1:])
	dal := AppendALawPCM(nil, al)
	for i, s := range pcm {
		if mu[i+1] != LinearToMuLaw(s) || al[i] != LinearToALaw(s) ||
			dmu[i] != MuLawToLinear(mu[i+1]) || dal[i] != ALawToLinear(al[i]) {
			t.Fatalf("sample %d: slice and scalar codecs disagree", i)
		}
	}
}

// TestG711MatchesFFmpeg compares all 65536 encodings and all 256 decodings
// with ffmpeg's pcm_mulaw / pcm_alaw codecs, an independent implementation.
func TestG711MatchesFFmpeg(t *testing.T) {
	requireFFmpeg(t)
	all := make([]int16, 0, 65536)
	for x := math.MinInt16; x <= math.MaxInt16; x++ {
		all = append(all, int16(x))
	}
	var raw bytes.Buffer
	binary.Write(&raw, binary.LittleEndian, all)
	codes := make([]byte, 256)
	for i := range codes {
		codes[i] = byte(i)
	}
	for _, c := range []struct {
		format string
		enc    func([]byte, []int16) []byte
		dec    func(byte) int16
	}{{"mulaw", AppendMuLaw, MuLawToLinear}, {"alaw", AppendALaw, ALawToLinear}} {
		// ffmpeg quantises to the nearest decoded value at 14-bit input
		// resolution; G.711 decides at its interval boundaries, which at
		// segment edges (where the step doubles) and at ties are not the
		// midpoints between decoded values. So both must agree except on
		// a few inputs at decision thresholds, and there they must pick
		// neighbouring levels with x between (or next to) them.
		ff := ffmpegPipe(t, raw.Bytes(), "-f", "s16le", "-ar", "8000", "-ac", "1", "-i", "-", "-f", c.format, "-")
		mine := c.enc(nil, all)
		if len(ff) != len(mine) {
			t.Fatalf("%s: ffmpeg encoded %d samples", c.format, len(ff))
		}
		levels := map[int]bool{}
		for i := 0; i < 256; i++ {
			levels[int(c.dec(byte(i)))] = true
		}
		ties := 0
		for i := range ff {
			if ff[i] == mine[i] {
				continue
			}
			x, a, b := int(all[i]), int(c.dec(mine[i])), int(c.dec(ff[i]))
			lo, hi := min(a, b), max(a, b)
			for l := range levels {
				if l > lo && l < hi {
					t.Fatalf("%s: %d encodes to %d, ffmpeg to %d: not neighbours", c.format, x, a, b)
				}
			}
			if x < lo-8 || x > hi+8 {
				t.Fatalf("%s: %d is not between its candidate levels %d and %d", c.format, x, a, b)
			}
			ties++
		}
		t.Logf("%s: %d of %d inputs at decision thresholds quantise to the neighbouring level in ffmpeg", c.format, ties, len(all))
		if ties > len(all)/50 {
			t.Errorf("%s: %d of %d encodings differ from ffmpeg", c.format, ties, len(all))
		}
		dec := ffmpegPipe(t, codes, "-f", c.format, "-ar", "8000", "-ac", "1", "-i", "-", "-f", "s16le", "-")
		if len(dec) != 512 {
			t.Fatalf("%s: ffmpeg decoded %d bytes", c.format, len(dec))
		}
		for i := 0; i < 256; i++ {
			if want := int16(binary.LittleEndian.Uint16(dec[2*i:])); c.dec(byte(i)) != want {
				t.Errorf("%s code %#02x: %d, ffmpeg %d", c.format, i, c.dec(byte(i)), want)
			}
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func ffmpegPipe(t *testing.T, in []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("ffmpeg", append([]string{"-nostdin", "-v", "error"}, args...)...)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// BenchmarkG711Encode encodes one 20 ms frame at 8 kHz (160 samples), the
// PCMU/PCMA packet size.
func BenchmarkG711Encode(b *testing.B) {
	pcm := make([]int16, 160)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	buf := make([]byte, 0, 160)
	b.Run("mulaw", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf = AppendMuLaw(buf[:0], pcm)
		}
	})
	b.Run("alaw", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf = AppendALaw(buf[:0], pcm)
		}
	})
}
