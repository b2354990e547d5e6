package device

import (
	"bytes"
	"fmt"
	"math"
	"math/rand"
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

// stressFrames returns n pictures of hard content for the lossy coder:
// noise, steep gradients, checkerboards and flat extremes (0 and 255) in
// patches that change at random between pictures, so that every CAVLC
// table (all nC ranges, level escapes, long runs) and every prediction
// mode is exercised.
func stressFrames(w, h, n int, seed int64) []*I420Frame {
	rng := rand.New(rand.NewSource(seed))
	fill := func(f *I420Frame, x0, y0, bw, bh int) {
		kind := rng.Intn(6)
		a, b := byte(rng.Intn(256)), byte(rng.Intn(256))
		for y := y0; y < min(y0+bh, h); y++ {
			for x := x0; x < min(x0+bw, w); x++ {
				var v byte
				switch kind {
				case 0:
					v = byte(rng.Intn(256))
				case 1:
					v = byte((x*7 + y*3) & 255)
				case 2:
					if (x/2+y/2)&1 == 0 {
						v = 0
					} else {
						v = 255
					}
				case 3:
					v = a
				case 4:
					v = byte(int(a) + rng.Intn(9) - 4)
				default:
					if x-x0 < bw/2 {
						v = a
					} else {
						v = b
					}
				}
				f.Y[y*w+x] = v
				if x%2 == 0 && y%2 == 0 {
					c := (y/2)*(w/2) + x/2
					switch kind {
					case 0, 2:
						f.Cb[c], f.Cr[c] = byte(rng.Intn(256)), byte(rng.Intn(256))
					default:
						f.Cb[c], f.Cr[c] = b, 255-a
					}
				}
			}
		}
	}
	var out []*I420Frame
	cur := NewI420Frame(w, h)
	for y := 0; y < h; y += 8 {
		for x := 0; x < w; x += 8 {
			fill(cur, x, y, 8, 8)
		}
	}
	for i := 0; i < n; i++ {
		if i > 0 {
			next := NewI420Frame(w, h)
			next.copyFrom(cur)
			for k := rng.Intn(6); k > 0; k-- {
				fill(next, rng.Intn(w)&^1, rng.Intn(h)&^1, 2+rng.Intn(40)&^1, 2+rng.Intn(40)&^1)
			}
			if rng.Intn(4) == 0 { // a faint change somewhere: below the change threshold
				x, y := rng.Intn(w), rng.Intn(h)
				next.Y[y*w+x] ^= 1
			}
			cur = next
		}
		out = append(out, cur)
	}
	return out
}

func TestH264LossyStressFFmpeg(t *testing.T) {
	requireFFmpeg(t)
	for _, c := range []struct {
		w, h, qp, thr int
	}{{96, 64, 1, 0}, {96, 64, 10, -1}, {80, 48, 26, 0}, {64, 64, 34, 5}, {50, 38, 45, 0}} {
		t.Run(fmt.Sprintf("%dx%d_qp%d", c.w, c.h, c.qp), func(t *testing.T) {
			frames := stressFrames(c.w, c.h, 30, int64(c.qp))
			enc, err := NewH264Encoder(c.w, c.h, 15, H264EncoderOptions{QP: c.qp, ChangeThreshold: c.thr})
			if err != nil {
				t.Fatal(err)
			}
			var stream []byte
			var rec []byte
			for i, f := range frames {
				if stream, _, err = enc.Encode(stream, f, i == 12); err != nil {
					t.Fatal(err)
				}
				rec = append(rec, i420Bytes(enc.Reconstruction())...)
			}
			path := filepath.Join(t.TempDir(), "stress.h264")
			if err := os.WriteFile(path, stream, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-err_detect", "explode", "-i", path, "-f", "null", "-").CombinedOutput()
			if err != nil || len(bytes.TrimSpace(out)) != 0 {
				t.Fatalf("ffmpeg reported problems (%v):\n%s", err, out)
			}
			raw := ffmpegDecodeRaw(t, path)
			size := c.w * c.h * 3 / 2
			if len(raw) != len(rec) {
				t.Fatalf("ffmpeg decoded %d bytes, want %d", len(raw), len(rec))
			}
			for i := range frames {
				if !bytes.Equal(raw[i*size:(i+1)*size], rec[i*size:(i+1)*size]) {
					t.Fatalf("frame %d: ffmpeg's picture differs from the encoder's reconstruction", i)
				}
			}
			t.Logf("%d bytes for %d frames", len(stream), len(frames))
		})
	}
}

// lossyTestDecoder decodes what H264Encoder produces in either mode
// (Intra_16x16, I_PCM and P_Skip macroblocks, one slice per picture): it
// parses CAVLC from the spec's decoding side (clause 9.2) and reconstructs
// with the spec's scaling and transforms. It is the always-on check; ffmpeg
// is the independent one.
type lossyTestDecoder struct {
	sps       H264SPSInfo
	haveSPS   bool
	initQP    int
	havePPS   bool
	pic       *h264Picture
	havePic   bool
	frameNum  uint32
	lastIDRID int64
}

type lossyAUStats struct {
	idr                 bool
	intra, pcm, skipped int
	lumaModes           [4]int
	chromaModes         [4]int
	nals                []byte
}

func (d *lossyTestDecoder) decodeAU(au []byte) (*I420Frame, lossyAUStats, error) {
	var st lossyAUStats
	var out *I420Frame
	for _, nal := range SplitAnnexB(au) {
		typ := H264NALType(nal)
		st.nals = append(st.nals, typ)
		switch typ {
		case h264NALSPS:
			s, err := ParseH264SPS(nal)
			if err != nil {
				return nil, st, err
			}
			if s.ProfileIDC != 66 || s.ConstraintFlags != 0xC0 || s.POCType != 2 || s.MaxNumRefFrames != 1 {
				return nil, st, fmt.Errorf("unexpected SPS %+v", s)
			}
			d.sps, d.haveSPS = s, true
			d.pic = newH264Picture(s.WidthMBs, s.HeightMBs)
		case h264NALPPS:
			r := &h264BitReader{p: unescapeRBSP(nal[1:])}
			var v [7]uint32
			for i := range v { // ids, entropy, bottom_field, slice groups, num_ref_idx x2
				var err error
				if i == 2 || i == 3 {
					v[i], err = r.u(1)
				} else {
					v[i], err = r.ue()
				}
				if err != nil {
					return nil, st, err
				}
			}
			if v != [7]uint32{} {
				return nil, st, fmt.Errorf("PPS fields %v", v)
			}
			if wp, err := r.u(3); err != nil || wp != 0 {
				return nil, st, fmt.Errorf("weighted prediction %d %v", wp, err)
			}
			q, err := r.se()
			if err != nil {
				return nil, st, err
			}
			d.initQP = 26 + int(q)
			d.havePPS = true
		case h264NALIDR, h264NALSlice:
			if !d.haveSPS || !d.havePPS {
				return nil, st, fmt.Errorf("slice before SPS/PPS")
			}
			if err := d.slice(nal, &st); err != nil {
				return nil, st, err
			}
			out = NewI420Frame(d.sps.Width, d.sps.Height)
			p := d.pic
			for y := 0; y < out.Height; y++ {
				copy(out.Y[y*out.Width:(y+1)*out.Width], p.y[y*p.strideY:])
			}
			for y := 0; y < out.Height/2; y++ {
				copy(out.Cb[y*out.Width/2:(y+1)*out.Width/2], p.cb[y*p.strideC:])
				copy(out.Cr[y*out.Width/2:(y+1)*out.Width/2], p.cr[y*p.strideC:])
			}
		default:
			return nil, st, fmt.Errorf("unexpected NAL type %d", typ)
		}
	}
	if out == nil {
		return nil, st, fmt.Errorf("access unit without a slice")
	}
	return out, st, nil
}

func (d *lossyTestDecoder) slice(nal []byte, st *lossyAUStats) error {
	idr := H264NALType(nal) == h264NALIDR
	st.idr = idr
	r := &h264BitReader{p: unescapeRBSP(nal[1:])}
	first, _ := r.ue()
	sliceType, _ := r.ue()
	ppsID, _ := r.ue()
	if first != 0 || ppsID != 0 || (idr && sliceType != 7) || (!idr && sliceType != 5) {
		return fmt.Errorf("slice header: first_mb %d type %d pps %d", first, sliceType, ppsID)
	}
	fn, err := r.u(int(d.sps.Log2MaxFrameNum))
	if err != nil {
		return err
	}
	if idr {
		d.frameNum = 0
	} else if !d.havePic {
		return fmt.Errorf("P slice without a reference")
	}
	if fn != d.frameNum {
		return fmt.Errorf("frame_num %d, want %d", fn, d.frameNum)
	}
	d.frameNum = (d.frameNum + 1) % (1 << d.sps.Log2MaxFrameNum)
	if idr {
		id, _ := r.ue()
		if int64(id) == d.lastIDRID {
			return fmt.Errorf("consecutive IDRs share idr_pic_id %d", id)
		}
		d.lastIDRID = int64(id)
		if v, _ := r.u(2); v != 0 {
			return fmt.Errorf("IDR marking flags %d", v)
		}
	} else {
		d.lastIDRID = -1
		if v, _ := r.u(3); v != 0 {
			return fmt.Errorf("P slice flags %d", v)
		}
	}
	dq, _ := r.se()
	qp := d.initQP + int(dq)
	if qp < 0 || qp > 51 {
		return fmt.Errorf("slice QP %d", qp)
	}
	if v, err := r.ue(); err != nil || v != 1 {
		return fmt.Errorf("disable_deblocking_filter_idc %d %v", v, err)
	}
	lq, cq := newH264Quant(qp), newH264Quant(h264ChromaQP(qp))
	total := d.sps.WidthMBs * d.sps.HeightMBs
	mb := 0
	for mb < total {
		if !idr {
			run, err := r.ue()
			if err != nil {
				return fmt.Errorf("mb_skip_run: %w", err)
			}
			for ; run > 0; run-- {
				if mb >= total {
					return fmt.Errorf("mb_skip_run overruns the picture")
				}
				d.pic.setMBCounts(mb%d.sps.WidthMBs, mb/d.sps.WidthMBs, 0)
				st.skipped++
				mb++
			}
			if !r.moreRBSPData() {
				break
			}
		}
		t, err := r.ue()
		if err != nil {
			return fmt.Errorf("mb %d: mb_type: %w", mb, err)
		}
		if !idr {
			if t < mbTypePIntraOffset {
				return fmt.Errorf("mb %d: inter mb_type %d", mb, t)
			}
			t -= mbTypePIntraOffset
		}
		mx, my := mb%d.sps.WidthMBs, mb/d.sps.WidthMBs
		switch {
		case t == mbTypeIPCMinI:
			if err := d.pcmMB(r, mx, my); err != nil {
				return fmt.Errorf("mb %d: %w", mb, err)
			}
			st.pcm++
		case t >= 1 && t <= 24:
			if err := d.intra16MB(r, int(t), mx, my, &lq, &cq, st); err != nil {
				return fmt.Errorf("mb %d: %w", mb, err)
			}
			st.intra++
		default:
			return fmt.Errorf("mb %d: unexpected mb_type %d", mb, t)
		}
		mb++
	}
	if mb != total {
		return fmt.Errorf("slice covers %d of %d macroblocks", mb, total)
	}
	if r.moreRBSPData() {
		return fmt.Errorf("data after the last macroblock")
	}
	if b, err := r.u(1); err != nil || b != 1 {
		return fmt.Errorf("missing rbsp_stop_one_bit")
	}
	d.havePic = true
	return nil
}

func (d *lossyTestDecoder) pcmMB(r *h264BitReader, mx, my int) error {
	for r.pos%8 != 0 {
		if b, err := r.u(1); err != nil || b != 0 {
			return fmt.Errorf("pcm_alignment_zero_bit: %d %v", b, err)
		}
	}
	p := r.pos / 8
	if p+384 > len(r.p) {
		return errH264Truncated
	}
	d.pic.putMB(r.p[p:p+384], mx, my)
	r.pos += 384 * 8
	d.pic.setMBCounts(mx, my, 16)
	return nil
}

// readVLC matches the next code word against table entries (len, bits).
func readVLC(r *h264BitReader, n int, entry func(i int) h264VLC) (int, error) {
	for i := 0; i < n; i++ {
		c := entry(i)
		if c.n == 0 {
			continue
		}
		peek := *r
		v, err := peek.u(int(c.n))
		if err == nil && v == uint32(c.bits) {
			*r = peek
			return i, nil
		}
	}
	return 0, fmt.Errorf("no matching code word at bit %d", r.pos)
}

// readResidual parses residual_block_cavlc() into coef (scan order,
// len(coef) = maxNumCoeff) and returns TotalCoeff.
func readResidual(r *h264BitReader, coef []int32, nC int) (int, error) {
	for i := range coef {
		coef[i] = 0
	}
	maxNum := len(coef)
	var tok int
	var err error
	if nC < 0 {
		tok, err = readVLC(r, 20, func(i int) h264VLC {
			return h264VLC{cavlcChromaDCTokenLen[i], cavlcChromaDCTokenBits[i]}
		})
	} else {
		t := cavlcTokenTable(nC)
		tok, err = readVLC(r, 68, func(i int) h264VLC {
			if i&3 > i>>2 { // TrailingOnes > TotalCoeff: no such code
				return h264VLC{}
			}
			return h264VLC{cavlcCoeffTokenLen[t][i], cavlcCoeffTokenBits[t][i]}
		})
	}
	if err != nil {
		return 0, fmt.Errorf("coeff_token: %w", err)
	}
	total, t1 := tok>>2, tok&3
	if total > maxNum {
		return 0, fmt.Errorf("TotalCoeff %d > %d", total, maxNum)
	}
	if total == 0 {
		return 0, nil
	}
	var level [16]int32
	for i := 0; i < t1; i++ {
		s, err := r.u(1)
		if err != nil {
			return 0, err
		}
		level[i] = 1 - 2*int32(s)
	}
	suffixLen := 0
	if total > 10 && t1 < 3 {
		suffixLen = 1
	}
	for i := t1; i < total; i++ {
		prefix, err := r.zeros(15) // level_prefix > 15 is not Baseline
		if err != nil {
			return 0, fmt.Errorf("level_prefix: %w", err)
		}
		size := suffixLen
		if prefix == 14 && suffixLen == 0 {
			size = 4
		} else if prefix >= 15 {
			size = prefix - 3
		}
		suffix, err := r.u(size)
		if err != nil {
			return 0, err
		}
		code := int32(min(15, prefix)<<suffixLen) + int32(suffix)
		if prefix >= 15 && suffixLen == 0 {
			code += 15
		}
		if i == t1 && t1 < 3 {
			code += 2
		}
		if code%2 == 0 {
			level[i] = (code + 2) >> 1
		} else {
			level[i] = (-code - 1) >> 1
		}
		if suffixLen == 0 {
			suffixLen = 1
		}
		a := level[i]
		if a < 0 {
			a = -a
		}
		if a > 3<<(suffixLen-1) && suffixLen < 6 {
			suffixLen++
		}
	}
	zerosLeft := 0
	if total < maxNum {
		if nC < 0 {
			zerosLeft, err = readVLC(r, 4, func(i int) h264VLC { return cavlcChromaDCTotalZeros[total-1][i] })
		} else {
			zerosLeft, err = readVLC(r, 16, func(i int) h264VLC { return cavlcTotalZeros[total-1][i] })
		}
		if err != nil {
			return 0, fmt.Errorf("total_zeros: %w", err)
		}
	}
	if zerosLeft+total > maxNum {
		return 0, fmt.Errorf("total_zeros %d with TotalCoeff %d", zerosLeft, total)
	}
	var run [16]int
	for i := 0; i < total-1; i++ {
		if zerosLeft > 0 {
			tab := min(zerosLeft, 7) - 1
			run[i], err = readVLC(r, 15, func(j int) h264VLC { return cavlcRunBefore[tab][j] })
			if err != nil {
				return 0, fmt.Errorf("run_before: %w", err)
			}
			if run[i] > zerosLeft {
				return 0, fmt.Errorf("run_before %d > zerosLeft %d", run[i], zerosLeft)
			}
			zerosLeft -= run[i]
		}
	}
	run[total-1] = zerosLeft
	pos := -1
	for i := total - 1; i >= 0; i-- {
		pos += run[i] + 1
		coef[pos] = level[i]
	}
	return total, nil
}

func (d *lossyTestDecoder) intra16MB(r *h264BitReader, t, mx, my int, lq, cq *h264Quant, st *lossyAUStats) error {
	lumaMode := (t - 1) % 4
	cbpChroma := (t - 1) / 4 % 3
	cbpLuma := 0
	if t >= 13 {
		cbpLuma = 15
	}
	cm, err := r.ue()
	if err != nil || cm > 3 {
		return fmt.Errorf("intra_chroma_pred_mode %d %v", cm, err)
	}
	chromaMode := int(cm)
	if dq, err := r.se(); err != nil || dq != 0 {
		return fmt.Errorf("mb_qp_delta %d %v", dq, err)
	}
	haveTop, haveLeft := my > 0, mx > 0
	if (lumaMode == i16Vertical && !haveTop) || (lumaMode == i16Horizontal && !haveLeft) ||
		(lumaMode == i16Plane && !(haveTop && haveLeft)) {
		return fmt.Errorf("Intra_16x16 mode %d uses unavailable neighbours", lumaMode)
	}
	if (chromaMode == chromaHorizontal && !haveLeft) || (chromaMode == chromaVertical && !haveTop) ||
		(chromaMode == chromaPlane && !(haveTop && haveLeft)) {
		return fmt.Errorf("chroma mode %d uses unavailable neighbours", chromaMode)
	}
	st.lumaModes[lumaMode]++
	st.chromaModes[chromaMode]++
	p := d.pic
	var scan [16]int32
	var dc [16]int32
	if _, err := readResidual(r, scan[:16], p.nCLuma(mx*4, my*4)); err != nil {
		return fmt.Errorf("luma DC: %w", err)
	}
	for k := 0; k < 16; k++ {
		dc[h264Zigzag4x4[k]] = scan[k]
	}
	var ac [16][16]int32 // raster block, raster coefficient
	for b := 0; b < 16; b++ {
		bx, by := int(h264Blk4x4XY[b][0]), int(h264Blk4x4XY[b][1])
		n := 0
		if cbpLuma != 0 {
			if n, err = readResidual(r, scan[:15], p.nCLuma(mx*4+bx, my*4+by)); err != nil {
				return fmt.Errorf("luma AC %d: %w", b, err)
			}
			for k := 1; k < 16; k++ {
				ac[by*4+bx][h264Zigzag4x4[k]] = scan[k-1]
			}
		}
		p.nzY[(my*4+by)*p.nzStrideY+mx*4+bx] = uint8(n)
	}
	var dcC [2][4]int32
	var acC [2][4][16]int32
	if cbpChroma != 0 {
		for k := 0; k < 2; k++ {
			if _, err := readResidual(r, dcC[k][:], -1); err != nil {
				return fmt.Errorf("chroma DC: %w", err)
			}
		}
	}
	for k := 0; k < 2; k++ {
		for b := 0; b < 4; b++ {
			bx, by := mx*2+b&1, my*2+b>>1
			n := 0
			if cbpChroma == 2 {
				if n, err = readResidual(r, scan[:15], p.nCChroma(k, bx, by)); err != nil {
					return fmt.Errorf("chroma AC: %w", err)
				}
				for i := 1; i < 16; i++ {
					acC[k][b][h264Zigzag4x4[i]] = scan[i-1]
				}
			}
			p.nzC[k][by*p.nzStrideC+bx] = uint8(n)
		}
	}

	// Reconstruction (clauses 8.3.3, 8.3.4, 8.5.10-8.5.12, no deblocking).
	var nb h264Neighbours
	nb.load(p.y, p.strideY, mx*16, my*16, 16, haveTop, haveLeft)
	var pred [256]byte
	predLuma16(&pred, lumaMode, &nb)
	lq.lumaDCDequant(&dc)
	for b := 0; b < 16; b++ {
		var c [16]int32
		c[0] = dc[b]
		for i := 1; i < 16; i++ {
			c[i] = ac[b][i] * lq.scale[i]
		}
		idct4(&c)
		bx, by := (b&3)*4, (b>>2)*4
		for y := 0; y < 4; y++ {
			for x := 0; x < 4; x++ {
				p.y[(my*16+by+y)*p.strideY+mx*16+bx+x] = clip255(int32(pred[(by+y)*16+bx+x]) + c[y*4+x])
			}
		}
	}
	for k, plane := range [2][]byte{p.cb, p.cr} {
		var nbc h264Neighbours
		nbc.load(plane, p.strideC, mx*8, my*8, 8, haveTop, haveLeft)
		var predC [64]byte
		predChroma8(&predC, chromaMode, &nbc)
		cq.chromaDCDequant(&dcC[k])
		for b := 0; b < 4; b++ {
			var c [16]int32
			c[0] = dcC[k][b]
			for i := 1; i < 16; i++ {
				c[i] = acC[k][b][i] * cq.scale[i]
			}
			idct4(&c)
			bx, by := (b&1)*4, (b>>1)*4
			for y := 0; y < 4; y++ {
				for x := 0; x < 4; x++ {
					plane[(my*8+by+y)*p.strideC+mx*8+bx+x] = clip255(int32(predC[(by+y)*8+bx+x]) + c[y*4+x])
				}
			}
		}
	}
	return nil
}

// TestH264LossyDecodesToReconstruction is the always-on check of the lossy
// mode: the pure-Go decoder parses every access unit completely and its
// pictures equal the encoder's reconstruction, which is within 35 dB PSNR
// of the source at the default QP; P pictures skip all but the changed
// macroblocks.
func TestH264LossyDecodesToReconstruction(t *testing.T) {
	for _, sz := range [][2]int{{640, 480}, {176, 144}, {330, 250}, {16, 16}, {18, 2}} {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			w, h := sz[0], sz[1]
			src, rec, aus := encodeLossySequence(t, w, h, 40, H264EncoderOptions{}, map[int]bool{17: true, 18: true})
			dec := &lossyTestDecoder{lastIDRID: -1}
			mbs := ((w + 15) / 16) * ((h + 15) / 16)
			var modes, cmodes [4]int
			for i, au := range aus {
				got, st, err := dec.decodeAU(au)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !framesEqual(got, rec[i]) {
					t.Fatalf("frame %d: decoded picture differs from the encoder's reconstruction", i)
				}
				if p := psnrI420(got, src[i]); p < 35 {
					t.Fatalf("frame %d: PSNR %.2f dB < 35", i, p)
				}
				for k := range modes {
					modes[k] += st.lumaModes[k]
					cmodes[k] += st.chromaModes[k]
				}
				if st.pcm != 0 {
					t.Fatalf("frame %d: %d I_PCM macroblocks in lossy mode", i, st.pcm)
				}
				if st.idr {
					if !bytes.Equal(st.nals, []byte{7, 8, 5}) || st.intra != mbs {
						t.Fatalf("frame %d: IDR nals %v intra %d of %d", i, st.nals, st.intra, mbs)
					}
					continue
				}
				if !bytes.Equal(st.nals, []byte{1}) || st.intra+st.skipped != mbs {
					t.Fatalf("frame %d: nals %v intra %d skipped %d of %d", i, st.nals, st.intra, st.skipped, mbs)
				}
				if ch := changedMBs(src[i], src[i-1]); st.intra > ch {
					t.Fatalf("frame %d: %d macroblocks coded, only %d changed", i, st.intra, ch)
				}
			}
			if w == 640 {
				t.Logf("IDR %d bytes, PSNR %.2f dB; luma modes V/H/DC/plane %v, chroma DC/H/V/plane %v",
					len(aus[0]), psnrI420(rec[0], src[0]), modes, cmodes)
				if len(aus[0]) > 640*480*3/2/10 {
					t.Errorf("lossy IDR of %d bytes is not even 10x smaller than I_PCM", len(aus[0]))
				}
			}
		})
	}
}

// The stress content through the pure-Go decoder: every QP, every table.
func TestH264LossyStressDecodes(t *testing.T) {
	for _, qp := range []int{1, 6, 12, 20, 26, 30, 37, 44, 51} {
		frames := stressFrames(80, 48, 12, int64(qp))
		enc, err := NewH264Encoder(80, 48, 15, H264EncoderOptions{QP: qp})
		if err != nil {
			t.Fatal(err)
		}
		dec := &lossyTestDecoder{lastIDRID: -1}
		for i, f := range frames {
			au, _, err := enc.Encode(nil, f, i == 6)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := dec.decodeAU(au)
			if err != nil {
				t.Fatalf("qp %d frame %d: %v", qp, i, err)
			}
			if !framesEqual(got, enc.Reconstruction()) {
				t.Fatalf("qp %d frame %d: decoded picture differs from the reconstruction", qp, i)
			}
		}
	}
}

// The lossy decoder also reads the I_PCM mode, and agrees with the source.
func TestH264LossyDecoderReadsPCM(t *testing.T) {
	frames, aus := encodePatternSequence(t, 96, 64, 10, map[int]bool{5: true})
	dec := &lossyTestDecoder{lastIDRID: -1}
	for i, au := range aus {
		got, st, err := dec.decodeAU(au)
		if err != nil || !framesEqual(got, frames[i]) || st.intra != 0 {
			t.Fatalf("frame %d: %v (stats %+v)", i, err, st)
		}
	}
}

func TestH264EncoderOptions(t *testing.T) {
	for _, qp := range []int{-1, 52} {
		if _, err := NewH264Encoder(64, 48, 15, H264EncoderOptions{QP: qp}); err == nil {
			t.Errorf("QP %d accepted", qp)
		}
	}
	enc, err := NewH264Encoder(64, 48, 15, H264EncoderOptions{})
	if err != nil || enc.QP() != H264DefaultQP || enc.Lossless() {
		t.Fatalf("defaults: qp %d lossless %v %v", enc.QP(), enc.Lossless(), err)
	}
	if pcm, _ := NewH264PCMEncoder(64, 48, 15); !pcm.Lossless() {
		t.Fatal("NewH264PCMEncoder is not lossless")
	}
	// The PPS carries the QP, slices a zero delta.
	enc, _ = NewH264Encoder(64, 48, 15, H264EncoderOptions{QP: 33})
	au, _, _ := enc.Encode(nil, NewI420Frame(64, 48), false)
	dec := &lossyTestDecoder{lastIDRID: -1}
	if _, _, err := dec.decodeAU(au); err != nil || dec.initQP != 33 {
		t.Fatalf("PPS QP %d (%v)", dec.initQP, err)
	}
}

// An unchanged picture is one skip run; a change below the threshold
// (against the reconstruction) is skipped too; a real change is coded, and
// only in the macroblocks it touches.
func TestH264LossySkipsAndThreshold(t *testing.T) {
	enc, err := NewH264Encoder(64, 48, 15, H264EncoderOptions{ChangeThreshold: 4})
	if err != nil {
		t.Fatal(err)
	}
	// Flat content is reconstructed exactly, so the reference equals the
	// source and only the nudges below count.
	f := NewI420Frame(64, 48)
	for i := range f.Y {
		f.Y[i] = 100
	}
	dec := &lossyTestDecoder{lastIDRID: -1}
	encode := func(f *I420Frame) lossyAUStats {
		t.Helper()
		au, _, err := enc.Encode(nil, f, false)
		if err != nil {
			t.Fatal(err)
		}
		got, st, err := dec.decodeAU(au)
		if err != nil || !framesEqual(got, enc.Reconstruction()) {
			t.Fatalf("decode: %v", err)
		}
		return st
	}
	encode(f)
	if st := encode(f); st.skipped != 12 || st.intra != 0 {
		t.Fatalf("unchanged picture: %+v", st)
	}
	// Nudge one sample to within 4 of the reconstruction: skipped.
	g := NewI420Frame(64, 48)
	g.copyFrom(f)
	rec := enc.Reconstruction()
	g.Y[20*64+40] = rec.Y[20*64+40] + 3
	if g.Y[20*64+40] == f.Y[20*64+40] {
		g.Y[20*64+40] = rec.Y[20*64+40] - 3
	}
	if st := encode(g); st.intra != 0 {
		t.Fatalf("sub-threshold change coded: %+v", st)
	}
	// A bright square across macroblocks (1,0) and (2,0) in luma: two coded.
	h := NewI420Frame(64, 48)
	h.copyFrom(g)
	for y := 2; y < 6; y++ {
		for x := 28; x < 36; x++ {
			h.Y[y*64+x] = rec.Y[y*64+x] ^ 0x80
		}
	}
	if st := encode(h); st.intra != 2 || st.skipped != 10 {
		t.Fatalf("two changed macroblocks: %+v", st)
	}
}

// TestH264LossyQualityTable logs size and PSNR of the 640x480 pattern IDR
// per QP and checks they move the right way.
func TestH264LossyQualityTable(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	prevSize, prevPSNR := 1<<30, math.Inf(1)
	for _, qp := range []int{16, 22, 26, 28, 32, 38} {
		src, rec, aus := encodeLossySequence(t, 640, 480, 16, H264EncoderOptions{QP: qp}, nil)
		p := 0
		for _, au := range aus[1:] {
			p += len(au)
		}
		q := psnrI420(rec[0], src[0])
		t.Logf("QP %d: IDR %d bytes, P %d bytes avg, IDR PSNR %.2f dB, last P PSNR %.2f dB", qp, len(aus[0]), p/(len(aus)-1), q, psnrI420(rec[15], src[15]))
		if len(aus[0]) > prevSize || q > prevPSNR {
			t.Errorf("QP %d: size %d / PSNR %.2f not monotonic", qp, len(aus[0]), q)
		}
		prevSize, prevPSNR = len(aus[0]), q
	}
}

// Random blocks through cavlcBlock and back through readResidual, for every
// block size, nC table and level range up to the Baseline limit (so the
// level_prefix 14 and 15 escapes and all suffix lengths are exercised).
func TestCAVLCBlockRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	var w h264BitWriter
	type blk struct {
		coef []int32
		nC   int
	}
	var blocks []blk
	for i := 0; i < 20000; i++ {
		n := []int{16, 15, 4}[rng.Intn(3)]
		nC := rng.Intn(17)
		if n == 4 {
			nC = -1
		}
		coef := make([]int32, n)
		density := rng.Intn(n + 1)
		big := []int32{1, 2, 4, 16, 100, h264MaxLevel}[rng.Intn(6)]
		for j := 0; j < density; j++ {
			v := int32(rng.Intn(int(big))) + 1
			if rng.Intn(2) == 0 {
				v = -v
			}
			coef[rng.Intn(n)] = v
		}
		w.cavlcBlock(coef, nC)
		blocks = append(blocks, blk{coef, nC})
	}
	w.trailing()
	r := &h264BitReader{p: w.buf}
	got := make([]int32, 16)
	for i, b := range blocks {
		total, err := readResidual(r, got[:len(b.coef)], b.nC)
		if err != nil {
			t.Fatalf("block %d (nC %d, %v): %v", i, b.nC, b.coef, err)
		}
		nz := 0
		for j, v := range b.coef {
			if got[j] != v {
				t.Fatalf("block %d (nC %d): got %v want %v", i, b.nC, got[:len(b.coef)], b.coef)
			}
			if v != 0 {
				nz++
			}
		}
		if total != nz {
			t.Fatalf("block %d: TotalCoeff %d, want %d", i, total, nz)
		}
	}
	if r.moreRBSPData() {
		t.Fatal("bits left over")
	}
}
