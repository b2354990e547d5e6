package device

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func bitString(w *h264BitWriter) string {
	var sb strings.Builder
	for _, b := range w.buf {
		fmt.Fprintf(&sb, "%08b", b)
	}
	if w.n > 0 {
		fmt.Fprintf(&sb, "%0*b", int(w.n), w.acc)
	}
	return sb.String()
}

func TestH264ExpGolombKnownCodes(t *testing.T) {
	ue := map[uint32]string{0: "1", 1: "010", 2: "011", 3: "00100", 6: "00111", 7: "0001000", 30: "000011111"}
	for v, want := range ue {
		var w h264BitWriter
		w.ue(v)
		if got := bitString(&w); got != want {
			t.Errorf("ue(%d) = %s, want %s", v, got, want)
		}
	}
	se := map[int32]string{0: "1", 1: "010", -1: "011", 2: "00100", -2: "00101", 3: "00110"}
	for v, want := range se {
		var w h264BitWriter
		w.se(v)
		if got := bitString(&w); got != want {
			t.Errorf("se(%d) = %s, want %s", v, got, want)
		}
	}
}

func TestH264BitsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	type item struct {
		kind int
		n    uint
		v    int64
	}
	var items []item
	var w h264BitWriter
	for i := 0; i < 5000; i++ {
		switch k := rng.Intn(3); k {
		case 0:
			n := uint(rng.Intn(32) + 1)
			v := int64(rng.Uint32() & (1<<n - 1))
			w.u(n, uint32(v))
			items = append(items, item{k, n, v})
		case 1:
			v := int64(rng.Uint32() >> uint(rng.Intn(32)))
			if v == 0xFFFFFFFF {
				v--
			}
			w.ue(uint32(v))
			items = append(items, item{k, 0, v})
		case 2:
			v := int64(rng.Int31()>>uint(rng.Intn(31))) * int64(rng.Intn(2)*2-1)
			w.se(int32(v))
			items = append(items, item{k, 0, v})
		}
	}
	w.ue(0xFFFFFFFE) // the largest ue(v) a 32-bit field carries
	w.trailing()
	r := &h264BitReader{p: w.buf}
	for i, it := range items {
		var got int64
		var err error
		switch it.kind {
		case 0:
			var v uint32
			v, err = r.u(int(it.n))
			got = int64(v)
		case 1:
			var v uint32
			v, err = r.ue()
			got = int64(v)
		case 2:
			var v int32
			v, err = r.se()
			got = int64(v)
		}
		if err != nil || got != it.v {
			t.Fatalf("item %d kind %d: got %d, %v; want %d", i, it.kind, got, err, it.v)
		}
	}
	if v, err := r.ue(); err != nil || v != 0xFFFFFFFE {
		t.Fatalf("max ue: %d %v", v, err)
	}
	if r.moreRBSPData() {
		t.Fatal("moreRBSPData true at the stop bit")
	}
	if _, err := r.u(8); !errors.Is(err, errH264Truncated) {
		t.Fatalf("read past end: %v", err)
	}
}

func TestAppendNALEmulationPrevention(t *testing.T) {
	rbsp := []byte{0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0xAA, 0, 0, 0x80}
	nal := appendNAL(nil, 0x65, rbsp)
	want := []byte{0, 0, 0, 1, 0x65, 0, 0, 3, 0, 0, 3, 0, 1, 0, 0, 3, 2, 0, 0, 3, 3, 0, 0, 4, 0xAA, 0, 0, 0x80}
	if !bytes.Equal(nal, want) {
		t.Fatalf("escaped\n got %x\nwant %x", nal, want)
	}
	if got := unescapeRBSP(nal[5:]); !bytes.Equal(got, rbsp) {
		t.Fatalf("unescape: got %x want %x", got, rbsp)
	}
	// Property: random payloads never contain a start code after escaping.
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 200; i++ {
		p := make([]byte, rng.Intn(200)+1)
		for j := range p {
			if rng.Intn(3) == 0 {
				p[j] = byte(rng.Intn(4))
			}
		}
		p[len(p)-1] = 0x80 // an RBSP ends with the stop bit
		e := appendNAL(nil, 0x41, p)[4:]
		if bytes.Contains(e, []byte{0, 0, 1}) || bytes.Contains(e, []byte{0, 0, 0}) || bytes.Contains(e, []byte{0, 0, 2}) {
			t.Fatalf("escaped payload contains a forbidden sequence: %x", e)
		}
		if !bytes.Equal(unescapeRBSP(e[1:]), p) {
			t.Fatalf("round trip failed for %x", p)
		}
	}
}

// pcmTestDecoder decodes exactly the subset H264PCMEncoder produces (I_PCM
// and P_Skip macroblocks, one slice per picture) and checks every header
// field on the way. It is the always-on pure-Go check; ffmpeg is the
// independent cross-check.
type pcmTestDecoder struct {
	sps       H264SPSInfo
	haveSPS   bool
	havePPS   bool
	pic       *I420Frame // coded (padded) size
	havePic   bool
	frameNum  uint32
	lastIDRID int64
}

type pcmAUStats struct {
	idr           bool
	coded, copied int
	nals          []byte
}

func (d *pcmTestDecoder) decodeAU(au []byte) (*I420Frame, pcmAUStats, error) {
	var st pcmAUStats
	var out *I420Frame
	for _, nal := range SplitAnnexB(au) {
		typ := H264NALType(nal)
		st.nals = append(st.nals, typ)
		if nal[0]&0x80 != 0 {
			return nil, st, errors.New("forbidden_zero_bit set")
		}
		switch typ {
		case h264NALSPS:
			s, err := ParseH264SPS(nal)
			if err != nil {
				return nil, st, err
			}
			if s.ProfileIDC != 66 || s.ConstraintFlags != 0xC0 || s.POCType != 2 || s.MaxNumRefFrames != 1 ||
				s.Log2MaxFrameNum != pcmLog2MaxFrameNum || !s.FrameMBsOnly {
				return nil, st, fmt.Errorf("unexpected SPS %+v", s)
			}
			d.sps, d.haveSPS = s, true
			d.pic = NewI420Frame(s.WidthMBs*16, s.HeightMBs*16)
		case h264NALPPS:
			if err := checkPCMPPS(nal); err != nil {
				return nil, st, err
			}
			d.havePPS = true
		case h264NALIDR, h264NALSlice:
			if !d.haveSPS || !d.havePPS {
				return nil, st, errors.New("slice before SPS/PPS")
			}
			if nal[0]>>5 != 3 {
				return nil, st, fmt.Errorf("nal_ref_idc %d, want 3", nal[0]>>5)
			}
			if err := d.slice(nal, &st); err != nil {
				return nil, st, err
			}
			out = NewI420Frame(d.sps.Width, d.sps.Height)
			cropI420(out, d.pic)
		default:
			return nil, st, fmt.Errorf("unexpected NAL type %d", typ)
		}
	}
	if out == nil {
		return nil, st, errors.New("access unit without a slice")
	}
	return out, st, nil
}

func (d *pcmTestDecoder) slice(nal []byte, st *pcmAUStats) error {
	idr := H264NALType(nal) == h264NALIDR
	st.idr = idr
	r := &h264BitReader{p: unescapeRBSP(nal[1:])}
	must := func(name string, got uint32, err error, want uint32) error {
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if got != want {
			return fmt.Errorf("%s = %d, want %d", name, got, want)
		}
		return nil
	}
	v, err := r.ue()
	if err := must("first_mb_in_slice", v, err, 0); err != nil {
		return err
	}
	v, err = r.ue()
	wantType := uint32(5)
	if idr {
		wantType = 7
	}
	if err := must("slice_type", v, err, wantType); err != nil {
		return err
	}
	v, err = r.ue()
	if err := must("pps id", v, err, 0); err != nil {
		return err
	}
	fn, err := r.u(int(d.sps.Log2MaxFrameNum))
	if idr {
		d.frameNum = 0
	} else if !d.havePic {
		return errors.New("P slice without a reference")
	}
	if err := must("frame_num", fn, err, d.frameNum); err != nil {
		return err
	}
	d.frameNum = (d.frameNum + 1) % (1 << d.sps.Log2MaxFrameNum)
	if idr {
		id, err := r.ue()
		if err != nil {
			return err
		}
		if int64(id) == d.lastIDRID {
			return fmt.Errorf("consecutive IDRs share idr_pic_id %d", id)
		}
		d.lastIDRID = int64(id)
		for _, name := range []string{"no_output_of_prior_pics", "long_term_reference"} {
			v, err := r.u(1)
			if err := must(name, v, err, 0); err != nil {
				return err
			}
		}
	} else {
		d.lastIDRID = -1
		for _, name := range []string{"num_ref_idx_active_override", "ref_pic_list_modification", "adaptive_ref_pic_marking"} {
			v, err := r.u(1)
			if err := must(name, v, err, 0); err != nil {
				return err
			}
		}
	}
	if q, err := r.se(); err != nil || q != 0 {
		return fmt.Errorf("slice_qp_delta %d %v", q, err)
	}
	v, err = r.ue()
	if err := must("disable_deblocking_filter_idc", v, err, 1); err != nil {
		return err
	}
	total := d.sps.WidthMBs * d.sps.HeightMBs
	mb := 0
	readPCM := func() error {
		for r.pos%8 != 0 {
			b, err := r.u(1)
			if err != nil || b != 0 {
				return fmt.Errorf("pcm_alignment_zero_bit: %d %v", b, err)
			}
		}
		p := r.pos / 8
		if p+384 > len(r.p) {
			return errH264Truncated
		}
		samples := r.p[p : p+384]
		r.pos += 384 * 8
		mx, my := mb%d.sps.WidthMBs, mb/d.sps.WidthMBs
		putBlock(d.pic.Y, d.pic.Width, mx*16, my*16, 16, samples[:256])
		putBlock(d.pic.Cb, d.pic.Width/2, mx*8, my*8, 8, samples[256:320])
		putBlock(d.pic.Cr, d.pic.Width/2, mx*8, my*8, 8, samples[320:])
		st.coded++
		mb++
		return nil
	}
	if idr {
		for mb < total {
			v, err := r.ue()
			if err := must("mb_type (I)", v, err, mbTypeIPCMinI); err != nil {
				return err
			}
			if err := readPCM(); err != nil {
				return err
			}
		}
	} else {
		for mb < total {
			run, err := r.ue()
			if err != nil {
				return fmt.Errorf("mb_skip_run: %w", err)
			}
			// P_Skip with zero motion (all neighbours are zero-motion or
			// intra) copies the co-located block of the reference, which
			// is the picture buffer as it stands.
			mb += int(run)
			st.copied += int(run)
			if mb > total {
				return fmt.Errorf("mb_skip_run overruns the picture")
			}
			if !r.moreRBSPData() {
				break
			}
			v, err := r.ue()
			if err := must("mb_type (P)", v, err, mbTypeIPCMinP); err != nil {
				return err
			}
			if err := readPCM(); err != nil {
				return err
			}
		}
	}
	if mb != total {
		return fmt.Errorf("slice covers %d of %d macroblocks", mb, total)
	}
	if r.moreRBSPData() {
		return errors.New("data after the last macroblock")
	}
	if b, err := r.u(1); err != nil || b != 1 {
		return errors.New("missing rbsp_stop_one_bit")
	}
	d.havePic = true
	return nil
}

// checkPCMPPS reads the PPS field by field and checks the values the
// encoder promises: CAVLC, one slice group, one reference, no weighted
// prediction, QP 26, deblocking control present, no constrained intra.
func checkPCMPPS(nal []byte) error {
	r := &h264BitReader{p: unescapeRBSP(nal[1:])}
	type field struct {
		name string
		kind byte // e: ue, s: se, digit: u(n)
		want int64
	}
	fields := []field{
		{"pic_parameter_set_id", 'e', 0}, {"seq_parameter_set_id", 'e', 0}, {"entropy_coding_mode_flag", 1, 0},
		{"bottom_field_pic_order_in_frame_present_flag", 1, 0}, {"num_slice_groups_minus1", 'e', 0},
		{"num_ref_idx_l0_default_active_minus1", 'e', 0}, {"num_ref_idx_l1_default_active_minus1", 'e', 0},
		{"weighted_pred_flag", 1, 0}, {"weighted_bipred_idc", 2, 0}, {"pic_init_qp_minus26", 's', 0},
		{"pic_init_qs_minus26", 's', 0}, {"chroma_qp_index_offset", 's', 0},
		{"deblocking_filter_control_present_flag", 1, 1}, {"constrained_intra_pred_flag", 1, 0},
		{"redundant_pic_cnt_present_flag", 1, 0}, {"rbsp_stop_one_bit", 1, 1},
	}
	for _, f := range fields {
		var v int64
		var err error
		switch f.kind {
		case 'e':
			var x uint32
			x, err = r.ue()
			v = int64(x)
		case 's':
			var x int32
			x, err = r.se()
			v = int64(x)
		default:
			var x uint32
			x, err = r.u(int(f.kind))
			v = int64(x)
		}
		if err != nil || v != f.want {
			return fmt.Errorf("PPS %s = %d (%v), want %d", f.name, v, err, f.want)
		}
	}
	for r.bitsLeft() > 0 {
		if b, _ := r.u(1); b != 0 {
			return errors.New("PPS: non-zero alignment bits")
		}
	}
	return nil
}

func putBlock(plane []byte, stride, x0, y0, n int, src []byte) {
	for r := 0; r < n; r++ {
		copy(plane[(y0+r)*stride+x0:], src[r*n:(r+1)*n])
	}
}

func cropI420(dst, src *I420Frame) {
	for y := 0; y < dst.Height; y++ {
		copy(dst.Y[y*dst.Width:(y+1)*dst.Width], src.Y[y*src.Width:])
	}
	cw, sw := dst.Width/2, src.Width/2
	for y := 0; y < dst.Height/2; y++ {
		copy(dst.Cb[y*cw:(y+1)*cw], src.Cb[y*sw:])
		copy(dst.Cr[y*cw:(y+1)*cw], src.Cr[y*sw:])
	}
}

func framesEqual(a, b *I420Frame) bool {
	return a.Width == b.Width && a.Height == b.Height &&
		bytes.Equal(a.Y, b.Y) && bytes.Equal(a.Cb, b.Cb) && bytes.Equal(a.Cr, b.Cr)
}

// changedMBs counts macroblocks whose visible samples differ, computed
// independently of the encoder.
func changedMBs(a, b *I420Frame) int {
	n := 0
	for my := 0; my < (a.Height+15)/16; my++ {
		for mx := 0; mx < (a.Width+15)/16; mx++ {
			diff := false
			for y := my * 16; y < min(my*16+16, a.Height) && !diff; y++ {
				for x := mx * 16; x < min(mx*16+16, a.Width); x++ {
					if a.Y[y*a.Width+x] != b.Y[y*a.Width+x] ||
						a.Cb[(y/2)*(a.Width/2)+x/2] != b.Cb[(y/2)*(a.Width/2)+x/2] ||
						a.Cr[(y/2)*(a.Width/2)+x/2] != b.Cr[(y/2)*(a.Width/2)+x/2] {
						diff = true
						break
					}
				}
			}
			if diff {
				n++
			}
		}
	}
	return n
}

// encodePatternSequence renders and encodes n frames, forcing IDRs at the
// given indexes, and returns the source frames and access units.
func encodePatternSequence(t testing.TB, w, h, n int, idrAt map[int]bool) ([]*I420Frame, [][]byte) {
	t.Helper()
	enc, err := NewH264PCMEncoder(w, h, 15)
	if err != nil {
		t.Fatal(err)
	}
	r := newPatternRenderer(w, h, 15)
	base := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	var frames []*I420Frame
	var aus [][]byte
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
		frames = append(frames, f)
		aus = append(aus, au)
	}
	return frames, aus
}

func TestH264PCMEncoderDecodesExactly(t *testing.T) {
	for _, sz := range [][2]int{{640, 480}, {176, 144}, {330, 250}, {16, 16}, {18, 2}} {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			w, h := sz[0], sz[1]
			n := 40
			frames, aus := encodePatternSequence(t, w, h, n, map[int]bool{17: true, 18: true})
			dec := &pcmTestDecoder{lastIDRID: -1}
			mbs := ((w + 15) / 16) * ((h + 15) / 16)
			for i, au := range aus {
				got, st, err := dec.decodeAU(au)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !framesEqual(got, frames[i]) {
					t.Fatalf("frame %d: decoded picture differs from the source", i)
				}
				if st.idr {
					if !bytes.Equal(st.nals, []byte{7, 8, 5}) || st.coded != mbs {
						t.Fatalf("frame %d: IDR nals %v coded %d of %d", i, st.nals, st.coded, mbs)
					}
					if min := mbs * 384; len(au) < min {
						t.Fatalf("IDR of %d bytes is smaller than its PCM samples (%d)", len(au), min)
					}
					continue
				}
				want := changedMBs(frames[i], frames[i-1])
				if st.coded != want || st.coded+st.copied != mbs {
					t.Fatalf("frame %d: coded %d skipped %d, want coded %d of %d", i, st.coded, st.copied, want, mbs)
				}
				if !bytes.Equal(st.nals, []byte{1}) {
					t.Fatalf("frame %d: P access unit NAL types %v", i, st.nals)
				}
			}
			sps, err := ParseH264SPS(SplitAnnexB(aus[0])[0])
			if err != nil || sps.Width != w || sps.Height != h {
				t.Fatalf("SPS parses to %dx%d (%v), want %dx%d", sps.Width, sps.Height, err, w, h)
			}
		})
	}
}

func TestH264PCMEncoderPFramesAreSmall(t *testing.T) {
	_, aus := encodePatternSequence(t, 640, 480, 30, nil)
	idr := len(aus[0])
	for i, au := range aus[1:] {
		// A moving box, a few clock digits and the counter: well under a
		// tenth of the IDR (which is the raw picture, ~460 kB).
		if len(au) > idr/10 {
			t.Errorf("P frame %d is %d bytes (IDR %d)", i+1, len(au), idr)
		}
	}
}

func TestH264PCMEncoderUnchangedFrameIsAllSkip(t *testing.T) {
	enc, err := NewH264PCMEncoder(64, 48, 15)
	if err != nil {
		t.Fatal(err)
	}
	f := NewI420Frame(64, 48)
	if _, _, err := enc.Encode(nil, f, false); err != nil {
		t.Fatal(err)
	}
	au, key, err := enc.Encode(nil, f, false)
	if err != nil || key {
		t.Fatal(key, err)
	}
	// start code, header, then ue(0) first_mb ... ue(12) skip run and trailing bits: a few bytes.
	if len(au) > 12 {
		t.Fatalf("all-skip P frame is %d bytes: %x", len(au), au)
	}
	dec := &pcmTestDecoder{lastIDRID: -1}
	enc2, _ := NewH264PCMEncoder(64, 48, 15)
	first, _, _ := enc2.Encode(nil, f, false)
	if _, _, err := dec.decodeAU(first); err != nil {
		t.Fatal(err)
	}
	got, st, err := dec.decodeAU(au)
	if err != nil || st.coded != 0 || st.copied != 12 || !framesEqual(got, f) {
		t.Fatalf("all-skip decode: %+v %v", st, err)
	}
}

func TestH264PCMEncoderRejectsBadInput(t *testing.T) {
	for _, sz := range [][3]int{{641, 480, 15}, {640, 481, 15}, {0, 480, 15}, {640, 480, 0}, {8192, 480, 15}} {
		if _, err := NewH264PCMEncoder(sz[0], sz[1], sz[2]); err == nil {
			t.Errorf("NewH264PCMEncoder%v: no error", sz)
		}
	}
	enc, _ := NewH264PCMEncoder(32, 32, 15)
	if _, _, err := enc.Encode(nil, NewI420Frame(16, 16), false); err == nil {
		t.Error("Encode accepted a frame of the wrong size")
	}
	if _, _, err := enc.Encode(nil, &I420Frame{Width: 32, Height: 32}, false); err == nil {
		t.Error("Encode accepted a frame without planes")
	}
}

func TestParseH264SPSLevelAndDims(t *testing.T) {
	cases := []struct {
		w, h, fps int
		level     byte
	}{
		{640, 480, 15, 31}, {1280, 720, 30, 31}, {1920, 1080, 30, 40}, {1920, 1088, 60, 42}, {330, 250, 15, 31},
	}
	for _, c := range cases {
		enc, err := NewH264PCMEncoder(c.w, c.h, c.fps)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ParseH264SPS(enc.SPS())
		if err != nil {
			t.Fatal(err)
		}
		if s.Width != c.w || s.Height != c.h || s.LevelIDC != c.level || s.WidthMBs != (c.w+15)/16 {
			t.Errorf("%dx%d@%d: parsed %+v, want level %d", c.w, c.h, c.fps, s, c.level)
		}
	}
	// Garbage must produce errors, not panics.
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 2000; i++ {
		p := make([]byte, rng.Intn(24))
		rng.Read(p)
		if len(p) > 0 {
			p[0] = 0x67
		}
		_, _ = ParseH264SPS(p)
		_, _ = h264FirstMBInSlice(p)
	}
}

func TestSplitAnnexB(t *testing.T) {
	in := []byte{0xff, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 4, 5, 0}
	got := SplitAnnexB(in)
	want := [][]byte{{0x67, 1, 2}, {0x68, 3}, {0x65, 4, 5}}
	if len(got) != len(want) {
		t.Fatalf("got %x", got)
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("nal %d: %x want %x", i, got[i], want[i])
		}
	}
}

// TestH264PCMEncoderFFmpegDecode is the independent check: ffmpeg's H.264
// decoder must decode the stream without a single complaint, and since
// I_PCM/P_Skip is lossless every decoded frame must equal its source
// exactly, luma and chroma. The lead's CI installs ffmpeg; to run it by hand:
// apt-get install -y ffmpeg && go test -run FFmpeg ./device/
func TestH264PCMEncoderFFmpegDecode(t *testing.T) {
	requireFFmpeg(t)
	for _, sz := range [][2]int{{640, 480}, {330, 250}} {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			w, h := sz[0], sz[1]
			frames, aus := encodePatternSequence(t, w, h, 45, map[int]bool{20: true})
			path := filepath.Join(t.TempDir(), "out.h264")
			if err := os.WriteFile(path, bytes.Join(aus, nil), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
			if err != nil || len(bytes.TrimSpace(out)) != 0 {
				t.Fatalf("ffmpeg reported problems (%v):\n%s", err, out)
			}
			raw := ffmpegDecodeRaw(t, path)
			size := w * h * 3 / 2
			if len(raw) != size*len(frames) {
				t.Fatalf("ffmpeg decoded %d bytes, want %d frames of %d", len(raw), len(frames), size)
			}
			for i, f := range frames {
				got := raw[i*size : (i+1)*size]
				if !bytes.Equal(got[:w*h], f.Y) {
					t.Fatalf("frame %d: luma differs from the source", i)
				}
				if !bytes.Equal(got[w*h:w*h+w*h/4], f.Cb) || !bytes.Equal(got[w*h+w*h/4:], f.Cr) {
					t.Fatalf("frame %d: chroma differs from the source", i)
				}
			}
			probe, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
				"stream=profile,width,height,pix_fmt,level", "-of", "default=nw=1", path).CombinedOutput()
			if err != nil {
				t.Fatalf("ffprobe: %v\n%s", err, probe)
			}
			for _, want := range []string{"profile=Constrained Baseline", fmt.Sprintf("width=%d", w), fmt.Sprintf("height=%d", h), "pix_fmt=yuv420p", "level=31"} {
				if !strings.Contains(string(probe), want) {
					t.Errorf("ffprobe output lacks %q:\n%s", want, probe)
				}
			}
		})
	}
}

// TestParseH264SPSFromX264 parses the SPS of a High-profile 1080p stream
// from libx264 (the non-Baseline syntax: chroma format, bit depths, cropping
// from 1088 to 1080), as a camera or subprocess would produce.
func TestParseH264SPSFromX264(t *testing.T) {
	requireFFmpeg(t)
	path := filepath.Join(t.TempDir(), "x264.h264")
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=1920x1080:rate=5",
		"-frames:v", "1", "-c:v", "libx264", "-profile:v", "high", "-pix_fmt", "yuv420p", "-f", "h264", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg (with libx264) failed: %v\n%s", err, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s H264SPSInfo
	for _, nal := range SplitAnnexB(data) {
		if H264NALType(nal) == h264NALSPS {
			if s, err = ParseH264SPS(nal); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s.ProfileIDC != 100 || s.Width != 1920 || s.Height != 1080 || s.HeightMBs != 68 || s.POCType != 0 {
		t.Fatalf("parsed %+v", s)
	}
}

func requireFFmpeg(t testing.TB) {
	t.Helper()
	if os.Getenv("INTERCOMD_QEMU_USER") == "1" {
		t.Skip("INTERCOMD_QEMU_USER=1: os/exec is unreliable under qemu-user")
	}
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not on PATH: external decoder cross-check not run (install ffmpeg; the pure-Go decode tests still ran)", tool)
		}
	}
}

func ffmpegDecodeRaw(t testing.TB, path string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	// Every decoded frame once (passthrough) in a millisecond time base, so
	// ffmpeg neither drops nor duplicates frames of irregular timestamps.
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0", "-fps_mode", "passthrough",
		"-enc_time_base:v", "1:1000", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-")
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil || stderr.Len() != 0 {
		t.Fatalf("ffmpeg decode to raw: %v\n%s", err, stderr.String())
	}
	return raw
}
