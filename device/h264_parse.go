package device

import (
	"bytes"
	"errors"
	"fmt"
)

// SplitAnnexB returns the NAL units of an Annex-B byte stream (start codes
// removed, header byte included). Bytes before the first start code are
// ignored; trailing zero bytes of a NAL (trailing_zero_8bits) are trimmed.
func SplitAnnexB(b []byte) [][]byte {
	var nals [][]byte
	i := nextStartCode(b, 0)
	for i >= 0 {
		start := i + 3
		j := nextStartCode(b, start)
		end := len(b)
		if j >= 0 {
			end = j
		}
		nal := bytes.TrimRight(b[start:end], "\x00")
		if len(nal) > 0 {
			nals = append(nals, nal)
		}
		i = j
	}
	return nals
}

// nextStartCode returns the index of the next 00 00 01 at or after from, or -1.
func nextStartCode(b []byte, from int) int {
	if from >= len(b) {
		return -1
	}
	i := bytes.Index(b[from:], []byte{0, 0, 1})
	if i < 0 {
		return -1
	}
	return from + i
}

// H264NALType returns nal_unit_type of a NAL unit (0 for an empty one).
func H264NALType(nal []byte) byte {
	if len(nal) == 0 {
		return 0
	}
	return nal[0] & 0x1F
}

// H264SPSInfo is what the parser recovers from a sequence parameter set.
type H264SPSInfo struct {
	ProfileIDC      byte
	ConstraintFlags byte // constraint_set0..5 flags and reserved bits, as coded
	LevelIDC        byte
	ID              uint32
	ChromaFormatIDC uint32
	Log2MaxFrameNum uint32
	POCType         uint32
	MaxNumRefFrames uint32
	WidthMBs        int
	HeightMBs       int // frame height in macroblocks
	FrameMBsOnly    bool
	Width, Height   int // after frame cropping
}

// ParseH264SPS parses an SPS NAL unit (header byte included). It handles
// every profile's syntax (scaling lists, POC types 0-2), so it also reads
// what cameras and encoders produce; the VUI is not parsed.
func ParseH264SPS(nal []byte) (H264SPSInfo, error) {
	var s H264SPSInfo
	if H264NALType(nal) != h264NALSPS {
		return s, errors.New("h264: not an SPS NAL unit")
	}
	r := &h264BitReader{p: unescapeRBSP(nal[1:])}
	var err error
	fail := func(field string, e error) (H264SPSInfo, error) {
		return s, fmt.Errorf("h264 sps: %s: %w", field, e)
	}
	var v uint32
	if v, err = r.u(8); err != nil {
		return fail("profile_idc", err)
	}
	s.ProfileIDC = byte(v)
	if v, err = r.u(8); err != nil {
		return fail("constraint flags", err)
	}
	s.ConstraintFlags = byte(v)
	if v, err = r.u(8); err != nil {
		return fail("level_idc", err)
	}
	s.LevelIDC = byte(v)
	if s.ID, err = r.ue(); err != nil {
		return fail("seq_parameter_set_id", err)
	}
	s.ChromaFormatIDC = 1
	switch s.ProfileIDC {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		if s.ChromaFormatIDC, err = r.ue(); err != nil {
			return fail("chroma_format_idc", err)
		}
		if s.ChromaFormatIDC == 3 {
			if err = r.skip(1); err != nil { // separate_colour_plane_flag
				return fail("separate_colour_plane_flag", err)
			}
		}
		if _, err = r.ue(); err != nil { // bit_depth_luma_minus8
			return fail("bit_depth_luma", err)
		}
		if _, err = r.ue(); err != nil { // bit_depth_chroma_minus8
			return fail("bit_depth_chroma", err)
		}
		if err = r.skip(1); err != nil { // qpprime_y_zero_transform_bypass_flag
			return fail("transform_bypass", err)
		}
		present, err := r.flag() // seq_scaling_matrix_present_flag
		if err != nil {
			return fail("scaling matrix", err)
		}
		if present {
			n := 8
			if s.ChromaFormatIDC == 3 {
				n = 12
			}
			for i := 0; i < n; i++ {
				listPresent, err := r.flag()
				if err != nil {
					return fail("scaling list", err)
				}
				if !listPresent {
					continue
				}
				size := 16
				if i >= 6 {
					size = 64
				}
				if err := skipScalingList(r, size); err != nil {
					return fail("scaling list", err)
				}
			}
		}
	}
	if v, err = r.ue(); err != nil {
		return fail("log2_max_frame_num", err)
	}
	if v > 12 {
		return fail("log2_max_frame_num", errors.New("out of range"))
	}
	s.Log2MaxFrameNum = v + 4
	if s.POCType, err = r.ue(); err != nil {
		return fail("pic_order_cnt_type", err)
	}
	switch s.POCType {
	case 0:
		if _, err = r.ue(); err != nil {
			return fail("log2_max_pic_order_cnt_lsb", err)
		}
	case 1:
		if err = r.skip(1); err != nil {
			return fail("delta_pic_order_always_zero_flag", err)
		}
		if _, err = r.se(); err != nil {
			return fail("offset_for_non_ref_pic", err)
		}
		if _, err = r.se(); err != nil {
			return fail("offset_for_top_to_bottom_field", err)
		}
		n, err := r.ue()
		if err != nil || n > 255 {
			return fail("num_ref_frames_in_pic_order_cnt_cycle", errors.Join(err, errors.New("invalid")))
		}
		for i := uint32(0); i < n; i++ {
			if _, err = r.se(); err != nil {
				return fail("offset_for_ref_frame", err)
			}
		}
	case 2:
	default:
		return fail("pic_order_cnt_type", fmt.Errorf("invalid value %d", s.POCType))
	}
	if s.MaxNumRefFrames, err = r.ue(); err != nil {
		return fail("max_num_ref_frames", err)
	}
	if err = r.skip(1); err != nil {
		return fail("gaps_in_frame_num_value_allowed_flag", err)
	}
	wm, err := r.ue()
	if err != nil {
		return fail("pic_width_in_mbs_minus1", err)
	}
	hm, err := r.ue()
	if err != nil {
		return fail("pic_height_in_map_units_minus1", err)
	}
	if wm > 1024 || hm > 1024 {
		return fail("picture size", errors.New("unreasonably large"))
	}
	if s.FrameMBsOnly, err = r.flag(); err != nil {
		return fail("frame_mbs_only_flag", err)
	}
	s.WidthMBs = int(wm) + 1
	s.HeightMBs = int(hm) + 1
	if !s.FrameMBsOnly {
		s.HeightMBs *= 2
		if err = r.skip(1); err != nil { // mb_adaptive_frame_field_flag
			return fail("mb_adaptive_frame_field_flag", err)
		}
	}
	if err = r.skip(1); err != nil { // direct_8x8_inference_flag
		return fail("direct_8x8_inference_flag", err)
	}
	s.Width, s.Height = s.WidthMBs*16, s.HeightMBs*16
	crop, err := r.flag()
	if err != nil {
		return fail("frame_cropping_flag", err)
	}
	if crop {
		var off [4]uint32
		for i := range off {
			if off[i], err = r.ue(); err != nil {
				return fail("frame_crop_offset", err)
			}
		}
		cx, cy := 1, 2
		if s.FrameMBsOnly {
			cy = 1
		}
		switch s.ChromaFormatIDC {
		case 1:
			cx, cy = 2, cy*2
		case 2:
			cx = 2
		}
		s.Width -= cx * int(off[0]+off[1])
		s.Height -= cy * int(off[2]+off[3])
		if s.Width <= 0 || s.Height <= 0 {
			return fail("frame cropping", errors.New("crops the whole picture"))
		}
	}
	return s, nil
}

func skipScalingList(r *h264BitReader, size int) error {
	last, next := int32(8), int32(8)
	for j := 0; j < size; j++ {
		if next != 0 {
			d, err := r.se()
			if err != nil {
				return err
			}
			next = (last + d + 256) % 256
		}
		if next != 0 {
			last = next
		}
	}
	return nil
}

// h264FirstMBInSlice returns first_mb_in_slice of a coded slice NAL unit
// (types 1 and 5); a new picture starts where it is 0. Only the first bytes
// are unescaped since the field comes first.
func h264FirstMBInSlice(nal []byte) (uint32, error) {
	if len(nal) < 2 {
		return 0, errH264Truncated
	}
	head := nal[1:min(len(nal), 16)]
	r := &h264BitReader{p: unescapeRBSP(head)}
	return r.ue()
}
