package device

import (
	"bytes"
	"fmt"
	"math"
)

// I420Frame is an 8-bit 4:2:0 planar picture: a full-resolution luma plane
// followed by two quarter-resolution chroma planes, rows packed without
// padding (strides Width and Width/2). Width and Height are even.
type I420Frame struct {
	Width, Height int
	Y, Cb, Cr     []byte
}

// NewI420Frame allocates a black frame (BT.601 limited range).
func NewI420Frame(width, height int) *I420Frame {
	f := &I420Frame{
		Width:  width,
		Height: height,
		Y:      make([]byte, width*height),
		Cb:     make([]byte, width/2*(height/2)),
		Cr:     make([]byte, width/2*(height/2)),
	}
	for i := range f.Y {
		f.Y[i] = 16
	}
	for i := range f.Cb {
		f.Cb[i], f.Cr[i] = 128, 128
	}
	return f
}

func (f *I420Frame) copyFrom(src *I420Frame) {
	copy(f.Y, src.Y)
	copy(f.Cb, src.Cb)
	copy(f.Cr, src.Cr)
}

// H264Encoder is a pure-Go H.264 encoder for synthetic pictures that are
// mostly static (test patterns, overlays): intra coding only, with
// unchanged macroblocks of P pictures skipped. It has two modes:
//
//   - lossy (the default, NewH264Encoder): every IDR macroblock and every
//     changed macroblock of a P picture is Intra_16x16 (DC, vertical,
//     horizontal or plane prediction chosen by SAD, 4x4 integer transform,
//     Hadamard-transformed DC, CAVLC) at a fixed QP. The encoder runs the
//     decoder's reconstruction itself, so its reference is bit-exact with
//     the decoder's and P_Skip never drifts. At QP 26 a 640x480 test
//     pattern IDR is about 10 kB instead of 460 kB.
//   - lossless I_PCM (NewH264PCMEncoder or H264EncoderOptions.PCM):
//     macroblocks are raw samples, 1.5*width*height bytes per IDR; exact
//     pixels for tests.
//
// In P pictures a macroblock is coded again only when its source changed
// since the previous picture and (lossy mode) some sample differs from the
// reference by more than H264EncoderOptions.ChangeThreshold; the rest are
// P_Skip (zero motion, copy from the reference).
//
// The output is Constrained Baseline (profile_idc 66, constraint_set0/1),
// CAVLC, one slice per picture, pic_order_cnt_type 2 (output order = decode
// order, so decoders never buffer), one reference frame, deblocking off (so
// the reconstruction is exactly the sum of prediction and residual).
//
// Dimensions need only be even: the coded size is rounded up to whole
// macroblocks (edge samples replicated) and cropped back with SPS
// frame_cropping. An encoder is not safe for concurrent use.
type H264Encoder struct {
	width, height int // visible
	mbW, mbH      int // coded size in macroblocks
	levelIDC      byte
	pcm           bool
	qp            int
	changeThresh  int

	sps, pps []byte // RBSP-escaped NAL units without start code

	prev     *I420Frame // last source picture, for change detection
	rec      *h264Picture
	havePrev bool
	frameNum uint32
	idrPicID uint32

	bw    h264BitWriter
	coder h264MBCoder
}

// H264PCMEncoder is the former name of H264Encoder; NewH264PCMEncoder
// returns one in lossless I_PCM mode.
type H264PCMEncoder = H264Encoder

// H264EncoderOptions configure NewH264Encoder. The zero value is the lossy
// mode at the default QP.
type H264EncoderOptions struct {
	// QP is the quantisation parameter of the lossy mode, 1..51; 0 means
	// H264DefaultQP. Lower is better quality and more bytes.
	QP int
	// PCM selects lossless I_PCM macroblocks instead (QP is then unused).
	PCM bool
	// ChangeThreshold is how far (in 8-bit sample values) the source of a
	// changed macroblock may be from the reference before a P picture codes
	// it again instead of skipping it. 0 picks a default from QP (about
	// half the quantiser step); negative re-codes every changed
	// macroblock.
	ChangeThreshold int
}

// H264DefaultQP is the QP of the lossy mode when none is given: on the
// 640x480 test pattern about 54 dB PSNR, a 2.8 kB IDR (0.6% of I_PCM) and
// P pictures under 500 bytes.
const H264DefaultQP = 26

// Constants of the bitstream layout chosen by the encoder.
const (
	pcmLog2MaxFrameNum = 8 // frame_num wraps at 256; POC type 2 handles wrap
	pcmSliceQP         = 26
	h264NALSPS         = 7
	h264NALPPS         = 8
	h264NALIDR         = 5
	h264NALSlice       = 1
	h264NALAUD         = 9
	h264NALSEI         = 6
	mbTypeIPCMinI      = 25
	mbTypePIntraOffset = 5                       // intra types follow the 5 P types in P slices
	mbTypeIPCMinP      = mbTypePIntraOffset + 25 // I_PCM in a P slice
)

// NewH264PCMEncoder returns a lossless I_PCM encoder for width x height at
// fps (fps only feeds the VUI timing and the level choice).
func NewH264PCMEncoder(width, height, fps int) (*H264PCMEncoder, error) {
	return NewH264Encoder(width, height, fps, H264EncoderOptions{PCM: true})
}

// NewH264Encoder returns an encoder for width x height at fps (fps only
// feeds the VUI timing and the level choice) in the mode opts selects.
func NewH264Encoder(width, height, fps int, opts H264EncoderOptions) (*H264Encoder, error) {
	if width <= 0 || height <= 0 || width%2 != 0 || height%2 != 0 {
		return nil, fmt.Errorf("h264 encoder: %dx%d: width and height must be positive and even (4:2:0)", width, height)
	}
	if width > 4096 || height > 2304 {
		return nil, fmt.Errorf("h264 encoder: %dx%d exceeds 4096x2304", width, height)
	}
	if fps <= 0 || fps > 120 {
		return nil, fmt.Errorf("h264 encoder: fps %d out of range 1..120", fps)
	}
	qp := opts.QP
	if qp == 0 {
		qp = H264DefaultQP
	}
	if qp < 1 || qp > 51 {
		return nil, fmt.Errorf("h264 encoder: QP %d out of range 1..51", opts.QP)
	}
	e := &H264Encoder{
		width:  width,
		height: height,
		mbW:    (width + 15) / 16,
		mbH:    (height + 15) / 16,
		pcm:    opts.PCM,
		qp:     qp,
		prev:   NewI420Frame(width, height),
	}
	if e.pcm {
		e.qp = pcmSliceQP
	}
	switch {
	case opts.ChangeThreshold > 0:
		e.changeThresh = opts.ChangeThreshold
	case opts.ChangeThreshold < 0:
		e.changeThresh = -1
	default:
		// Half the quantiser step, Qstep(QP) = 0.625 * 2^(QP/6).
		e.changeThresh = max(2, int(0.3125*math.Exp2(float64(e.qp)/6)))
	}
	e.rec = newH264Picture(e.mbW, e.mbH)
	e.coder.lq = newH264Quant(e.qp)
	e.coder.cq = newH264Quant(h264ChromaQP(e.qp))
	e.levelIDC = h264LevelFor(e.mbW*e.mbH, e.mbW*e.mbH*fps)
	e.sps = e.buildSPS(fps)
	e.pps = e.buildPPS()
	return e, nil
}

// QP returns the quantisation parameter (26 for I_PCM, where it is unused).
func (e *H264Encoder) QP() int { return e.qp }

// Lossless reports whether the encoder codes I_PCM.
func (e *H264Encoder) Lossless() bool { return e.pcm }

// h264LevelFor picks the smallest level whose MaxFS and MaxMBPS (Table A-1)
// cover the stream, but never below 3.1: that is the level of the
// profile-level-id 42e01f that pion and browsers offer by default, and a
// stream signalling a lower level than negotiated is always acceptable.
// The I_PCM bitrate exceeds every level's MaxBR; decoders do not enforce it.
func h264LevelFor(frameMBs, mbPerSec int) byte {
	levels := []struct {
		idc         byte
		mbps, maxFS int
	}{
		{31, 108000, 3600}, {32, 216000, 5120}, {40, 245760, 8192},
		{42, 522240, 8704}, {50, 589824, 22080}, {51, 983040, 36864},
	}
	for _, l := range levels {
		if frameMBs <= l.maxFS && mbPerSec <= l.mbps {
			return l.idc
		}
	}
	return 52
}

func (e *H264Encoder) buildSPS(fps int) []byte {
	w := &h264BitWriter{}
	w.u(8, 66) // profile_idc: Baseline
	w.u(1, 1)  // constraint_set0_flag
	w.u(1, 1)  // constraint_set1_flag: with set0 = Constrained Baseline
	w.u(6, 0)  // constraint_set2..5, reserved_zero_2bits
	w.u(8, uint32(e.levelIDC))
	w.ue(0)                      // seq_parameter_set_id
	w.ue(pcmLog2MaxFrameNum - 4) // log2_max_frame_num_minus4
	w.ue(2)                      // pic_order_cnt_type 2: POC from frame_num
	w.ue(1)                      // max_num_ref_frames
	w.u(1, 0)                    // gaps_in_frame_num_value_allowed_flag
	w.ue(uint32(e.mbW - 1))      // pic_width_in_mbs_minus1
	w.ue(uint32(e.mbH - 1))      // pic_height_in_map_units_minus1
	w.u(1, 1)                    // frame_mbs_only_flag
	w.u(1, 1)                    // direct_8x8_inference_flag
	cropR, cropB := e.mbW*16-e.width, e.mbH*16-e.height
	if cropR != 0 || cropB != 0 {
		w.u(1, 1) // frame_cropping_flag; offsets in 2-sample units for 4:2:0
		w.ue(0)
		w.ue(uint32(cropR / 2))
		w.ue(0)
		w.ue(uint32(cropB / 2))
	} else {
		w.u(1, 0)
	}
	w.u(1, 1)              // vui_parameters_present_flag
	w.u(1, 0)              // aspect_ratio_info_present_flag
	w.u(1, 0)              // overscan_info_present_flag
	w.u(1, 0)              // video_signal_type_present_flag (default: limited range)
	w.u(1, 0)              // chroma_loc_info_present_flag
	w.u(1, 1)              // timing_info_present_flag
	w.u(32, 1)             // num_units_in_tick
	w.u(32, uint32(2*fps)) // time_scale: two ticks per frame
	w.u(1, 0)              // fixed_frame_rate_flag: pacing may slip
	w.u(1, 0)              // nal_hrd_parameters_present_flag
	w.u(1, 0)              // vcl_hrd_parameters_present_flag
	w.u(1, 0)              // pic_struct_present_flag
	w.u(1, 1)              // bitstream_restriction_flag: lets decoders output at once
	w.u(1, 1)              // motion_vectors_over_pic_boundaries_flag
	w.ue(0)                // max_bytes_per_pic_denom
	w.ue(0)                // max_bits_per_mb_denom
	w.ue(16)               // log2_max_mv_length_horizontal
	w.ue(16)               // log2_max_mv_length_vertical
	w.ue(0)                // max_num_reorder_frames
	w.ue(1)                // max_dec_frame_buffering
	w.trailing()
	return appendNAL(nil, 0x60|h264NALSPS, w.buf)[len(annexBStartCode):]
}

func (e *H264Encoder) buildPPS() []byte {
	w := &h264BitWriter{}
	w.ue(0)                // pic_parameter_set_id
	w.ue(0)                // seq_parameter_set_id
	w.u(1, 0)              // entropy_coding_mode_flag: CAVLC
	w.u(1, 0)              // bottom_field_pic_order_in_frame_present_flag
	w.ue(0)                // num_slice_groups_minus1
	w.ue(0)                // num_ref_idx_l0_default_active_minus1
	w.ue(0)                // num_ref_idx_l1_default_active_minus1
	w.u(1, 0)              // weighted_pred_flag
	w.u(2, 0)              // weighted_bipred_idc
	w.se(int32(e.qp - 26)) // pic_init_qp_minus26
	w.se(0)                // pic_init_qs_minus26
	w.se(0)                // chroma_qp_index_offset
	w.u(1, 1)              // deblocking_filter_control_present_flag: slices turn it off
	w.u(1, 0)              // constrained_intra_pred_flag
	w.u(1, 0)              // redundant_pic_cnt_present_flag
	w.trailing()
	return appendNAL(nil, 0x60|h264NALPPS, w.buf)[len(annexBStartCode):]
}

// SPS returns the sequence parameter set NAL unit (header byte included, no
// start code). The caller must not modify it.
func (e *H264Encoder) SPS() []byte { return e.sps }

// PPS returns the picture parameter set NAL unit (no start code).
func (e *H264Encoder) PPS() []byte { return e.pps }

// Encode appends one Annex-B access unit for f to dst. The first picture,
// and any with forceIDR, is an IDR preceded by SPS and PPS; the rest are P
// pictures. f must have the encoder's dimensions.
func (e *H264Encoder) Encode(dst []byte, f *I420Frame, forceIDR bool) (au []byte, keyframe bool, err error) {
	if f == nil || f.Width != e.width || f.Height != e.height ||
		len(f.Y) < e.width*e.height || len(f.Cb) < e.width*e.height/4 || len(f.Cr) < e.width*e.height/4 {
		return dst, false, fmt.Errorf("h264 encoder: frame does not match %dx%d I420", e.width, e.height)
	}
	idr := forceIDR || !e.havePrev
	w := &e.bw
	w.reset()

	// slice_header()
	w.ue(0) // first_mb_in_slice
	if idr {
		w.ue(7) // slice_type I (all slices of the picture)
	} else {
		w.ue(5) // slice_type P (all slices of the picture)
	}
	w.ue(0) // pic_parameter_set_id
	if idr {
		e.frameNum = 0
	}
	w.u(pcmLog2MaxFrameNum, e.frameNum)
	if idr {
		// Consecutive IDR pictures must differ in idr_pic_id.
		w.ue(e.idrPicID)
		e.idrPicID = (e.idrPicID + 1) & 0xFFFF
	} else {
		w.u(1, 0) // num_ref_idx_active_override_flag
		w.u(1, 0) // ref_pic_list_modification_flag_l0
	}
	// dec_ref_pic_marking(): every picture is a reference (nal_ref_idc 3).
	if idr {
		w.u(1, 0) // no_output_of_prior_pics_flag
		w.u(1, 0) // long_term_reference_flag
	} else {
		w.u(1, 0) // adaptive_ref_pic_marking_mode_flag: sliding window
	}
	w.se(0) // slice_qp_delta: the PPS carries the QP
	w.ue(1) // disable_deblocking_filter_idc: reconstruction = prediction + residual

	// slice_data()
	skip := uint32(0)
	for my := 0; my < e.mbH; my++ {
		for mx := 0; mx < e.mbW; mx++ {
			if !idr && !e.mbChanged(f, mx, my) {
				// P_Skip: the reconstruction keeps the reference samples.
				e.rec.setMBCounts(mx, my, 0)
				skip++
				continue
			}
			if !idr {
				w.ue(skip) // mb_skip_run
				skip = 0
			}
			e.codeMB(w, f, mx, my, idr)
		}
	}
	if skip > 0 {
		w.ue(skip)
	}
	w.trailing()

	if idr {
		dst = append(dst, annexBStartCode...)
		dst = append(dst, e.sps...)
		dst = append(dst, annexBStartCode...)
		dst = append(dst, e.pps...)
		dst = appendNAL(dst, 0x60|h264NALIDR, w.buf)
	} else {
		dst = appendNAL(dst, 0x60|h264NALSlice, w.buf)
	}
	e.frameNum = (e.frameNum + 1) & (1<<pcmLog2MaxFrameNum - 1)
	e.prev.copyFrom(f)
	e.havePrev = true
	return dst, idr, nil
}

// codeMB writes one coded macroblock (mb_type onwards) and updates the
// reconstruction.
func (e *H264Encoder) codeMB(w *h264BitWriter, f *I420Frame, mx, my int, islice bool) {
	mb := e.gatherMB(f, mx, my)
	offset := uint32(0)
	if !islice {
		offset = mbTypePIntraOffset
	}
	if e.pcm {
		w.ue(offset + mbTypeIPCMinI)
		w.alignZero() // pcm_alignment_zero_bit
		w.raw(mb)
		e.rec.putMB(mb, mx, my)
		e.rec.setMBCounts(mx, my, 16)
		return
	}
	m := e.coder.decide(e.rec, mx, my)
	w.ue(offset + m.mbType())
	e.coder.write(w, &m, e.rec, mx, my)
}

// Reconstruction returns a copy of the encoder's reconstruction of the last
// encoded picture, cropped to the visible size: what a conforming decoder
// outputs for it.
func (e *H264Encoder) Reconstruction() *I420Frame {
	out := NewI420Frame(e.width, e.height)
	r := e.rec
	for y := 0; y < e.height; y++ {
		copy(out.Y[y*e.width:(y+1)*e.width], r.y[y*r.strideY:])
	}
	cw := e.width / 2
	for y := 0; y < e.height/2; y++ {
		copy(out.Cb[y*cw:(y+1)*cw], r.cb[y*r.strideC:])
		copy(out.Cr[y*cw:(y+1)*cw], r.cr[y*r.strideC:])
	}
	return out
}

// gatherMB copies a macroblock's 256 luma then 64 Cb and 64 Cr samples in
// raster order into the coder's source buffer, replicating the last
// visible row/column past the edges.
func (e *H264Encoder) gatherMB(f *I420Frame, mx, my int) []byte {
	out := e.coder.src[:0]
	out = gatherBlock(out, f.Y, f.Width, f.Height, mx*16, my*16, 16)
	cw, ch := f.Width/2, f.Height/2
	out = gatherBlock(out, f.Cb, cw, ch, mx*8, my*8, 8)
	out = gatherBlock(out, f.Cr, cw, ch, mx*8, my*8, 8)
	return out
}

func gatherBlock(out, plane []byte, w, h, x0, y0, n int) []byte {
	for r := 0; r < n; r++ {
		y := min(y0+r, h-1)
		row := plane[y*w : y*w+w]
		if x0+n <= w {
			out = append(out, row[x0:x0+n]...)
			continue
		}
		out = append(out, row[x0:]...)
		last := row[w-1]
		for c := w - x0; c < n; c++ {
			out = append(out, last)
		}
	}
	return out
}

// mbChanged reports whether a macroblock must be coded again in a P
// picture: its visible part differs from the previous source picture
// (padding samples are copies of visible ones) and, in lossy mode, from the
// reference by more than the change threshold somewhere, so that
// quantisation error alone never counts as a change.
func (e *H264Encoder) mbChanged(f *I420Frame, mx, my int) bool {
	cw, ch := f.Width/2, f.Height/2
	if !blockChanged(f.Y, e.prev.Y, f.Width, f.Height, mx*16, my*16, 16) &&
		!blockChanged(f.Cb, e.prev.Cb, cw, ch, mx*8, my*8, 8) &&
		!blockChanged(f.Cr, e.prev.Cr, cw, ch, mx*8, my*8, 8) {
		return false
	}
	if e.pcm || e.changeThresh < 0 {
		return true
	}
	r, t := e.rec, e.changeThresh
	return blockDiffers(f.Y, f.Width, r.y, r.strideY, f.Width, f.Height, mx*16, my*16, 16, t) ||
		blockDiffers(f.Cb, cw, r.cb, r.strideC, cw, ch, mx*8, my*8, 8, t) ||
		blockDiffers(f.Cr, cw, r.cr, r.strideC, cw, ch, mx*8, my*8, 8, t)
}

// blockDiffers reports whether any visible sample of the n x n block at
// (x0, y0) differs between a and b by more than t.
func blockDiffers(a []byte, strideA int, b []byte, strideB, w, h, x0, y0, n, t int) bool {
	x1 := min(x0+n, w)
	y1 := min(y0+n, h)
	for y := y0; y < y1; y++ {
		ra := a[y*strideA+x0 : y*strideA+x1]
		rb := b[y*strideB+x0 : y*strideB+x1]
		for i, v := range ra {
			d := int(v) - int(rb[i])
			if d > t || d < -t {
				return true
			}
		}
	}
	return false
}

func blockChanged(a, b []byte, w, h, x0, y0, n int) bool {
	x1 := min(x0+n, w)
	y1 := min(y0+n, h)
	for y := y0; y < y1; y++ {
		o := y * w
		if !bytes.Equal(a[o+x0:o+x1], b[o+x0:o+x1]) {
			return true
		}
	}
	return false
}
