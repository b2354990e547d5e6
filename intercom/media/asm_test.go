package media

import (
	"bytes"
	"testing"
	"time"
)

// The packetizer and assembler round-trip every fixture access unit
// byte-exactly (modulo start-code length), in order, with keyframes marked.
func TestH264RoundTrip(t *testing.T) {
	aus, err := loadFixture()
	if err != nil {
		t.Fatal(err)
	}
	pk := newH264Packetizer()
	asm := newH264Assembler(5)
	now := time.Now()
	var got []h264Frame
	for i, au := range aus {
		capture := now.Add(time.Duration(i) * time.Second / 15)
		for _, p := range pk.packetize(au.Data, capture, 5) {
			b, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			var q = p.Clone()
			_ = b
			out, lost := asm.push(q, capture)
			if lost != 0 {
				t.Fatalf("frame %d: %d lost", i, lost)
			}
			got = append(got, out...)
		}
	}
	if len(got) != len(aus) {
		t.Fatalf("got %d frames, want %d", len(got), len(aus))
	}
	for i := range aus {
		if got[i].keyframe != aus[i].Keyframe {
			t.Errorf("frame %d keyframe %v, want %v", i, got[i].keyframe, aus[i].Keyframe)
		}
		want := normalise(aus[i].Data)
		if !bytes.Equal(normalise(got[i].data), want) {
			t.Errorf("frame %d differs: %d bytes, want %d", i, len(got[i].data), len(aus[i].Data))
		}
		if got[i].capture.IsZero() {
			t.Errorf("frame %d lost its capture time", i)
		}
	}
}

// normalise rewrites an Annex-B stream with 3-byte start codes and without
// access unit delimiters (the payloader drops them).
func normalise(b []byte) []byte {
	var out []byte
	for _, n := range splitAnnexB(b) {
		if n[0]&0x1f == 9 {
			continue
		}
		out = append(out, 0, 0, 1)
		out = append(out, n...)
	}
	return out
}
