package device

import (
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The V4L2 memory-to-memory (stateful codec) ioctls and structures, on top
// of the helpers in v4l2_ioctl.go. Sizes follow the target architecture
// (unix.Timeval and uintptr match the kernel's ABI for 64-bit and 32-bit
// userspace alike), so the ioctl numbers are computed, not hard-coded.

// FourCCFWHT is vicodec's coded format (Fast Walsh Hadamard Transform).
const FourCCFWHT uint32 = 'F' | 'W'<<8 | 'H'<<16 | 'T'<<24

const (
	v4l2BufTypeVideoOutput        = 2
	v4l2BufTypeVideoCaptureMPlane = 9
	v4l2BufTypeVideoOutputMPlane  = 10

	v4l2MemoryMMAP = 1
	v4l2FieldNone  = 1

	v4l2BufFlagKeyframe = 0x00000008
	v4l2BufFlagPFrame   = 0x00000010
	v4l2BufFlagError    = 0x00000040
	v4l2BufFlagLast     = 0x00100000

	v4l2CtrlFlagDisabled = 0x0001

	v4l2CIDCodecBase = 0x00990000 | 0x900
	// V4L2_CID_MPEG_VIDEO_*
	v4l2CIDGOPSize         = v4l2CIDCodecBase + 203
	v4l2CIDBitrate         = v4l2CIDCodecBase + 207
	v4l2CIDRepeatSeqHeader = v4l2CIDCodecBase + 226
	v4l2CIDForceKeyFrame   = v4l2CIDCodecBase + 229
	v4l2CIDH264IPeriod     = v4l2CIDCodecBase + 358
	v4l2CIDH264Level       = v4l2CIDCodecBase + 359
	v4l2CIDH264Profile     = v4l2CIDCodecBase + 363
)

type v4l2FmtDesc struct {
	Index, Type, Flags uint32
	Description        [32]byte
	PixelFormat        uint32
	MbusCode           uint32
	Reserved           [3]uint32
}

type v4l2RequestBuffers struct {
	Count, Type, Memory, Capabilities uint32
	Flags                             uint8
	Reserved                          [3]uint8
}

type v4l2Timecode struct {
	Type, Flags                    uint32
	Frames, Seconds, Minutes, Hour uint8
	UserBits                       [4]uint8
}

type v4l2Buffer struct {
	Index, Type, BytesUsed, Flags, Field uint32
	Timestamp                            unix.Timeval
	Timecode                             v4l2Timecode
	Sequence, Memory                     uint32
	M                                    uintptr // offset (MMAP) or *v4l2Plane (multi-planar)
	Length                               uint32
	Reserved2                            uint32
	RequestFD                            uint32
}

type v4l2Plane struct {
	BytesUsed, Length uint32
	M                 uintptr // mem_offset for MMAP
	DataOffset        uint32
	Reserved          [11]uint32
}

// v4l2PlanePixFormat and v4l2PixFormatMPlane are the packed struct
// v4l2_pix_format_mplane (192 bytes).
type v4l2PlanePixFormat struct {
	SizeImage, BytesPerLine uint32
	Reserved                [6]uint16
}

type v4l2PixFormatMPlane struct {
	Width, Height, PixelFormat, Field, Colorspace uint32
	PlaneFmt                                      [8]v4l2PlanePixFormat
	NumPlanes, Flags, YCbCrEnc, Quantization      uint8
	XferFunc                                      uint8
	Reserved                                      [7]uint8
}

type v4l2QueryCtrl struct {
	ID, Type                             uint32
	Name                                 [32]byte
	Minimum, Maximum, Step, DefaultValue int32
	Flags                                uint32
	Reserved                             [2]uint32
}

// v4l2Selection is struct v4l2_selection.
type v4l2Selection struct {
	Type, Target, Flags uint32
	Left, Top           int32
	Width, Height       uint32
	Reserved            [9]uint32
}

const v4l2SelTgtCrop = 0

type v4l2Control struct {
	ID    uint32
	Value int32
}

// v4l2StreamParmOut is struct v4l2_streamparm with the v4l2_outputparm
// member of its 200-byte union.
type v4l2StreamParmOut struct {
	Type         uint32
	Capability   uint32
	OutputMode   uint32
	TimePerFrame struct{ Numerator, Denominator uint32 }
	ExtendedMode uint32
	WriteBuffers uint32
	Reserved     [200/4 - 6]uint32
}

var (
	vidiocEnumFmt    = iocV(3, 2, unsafe.Sizeof(v4l2FmtDesc{}))
	vidiocSFmt       = iocV(3, 5, unsafe.Sizeof(v4l2Format{}))
	vidiocReqBufs    = iocV(3, 8, unsafe.Sizeof(v4l2RequestBuffers{}))
	vidiocQueryBuf   = iocV(3, 9, unsafe.Sizeof(v4l2Buffer{}))
	vidiocQBuf       = iocV(3, 15, unsafe.Sizeof(v4l2Buffer{}))
	vidiocDQBuf      = iocV(3, 17, unsafe.Sizeof(v4l2Buffer{}))
	vidiocStreamOn   = iocV(1, 18, unsafe.Sizeof(int32(0)))
	vidiocStreamOff  = iocV(1, 19, unsafe.Sizeof(int32(0)))
	vidiocSParm      = iocV(3, 22, unsafe.Sizeof(v4l2StreamParmOut{}))
	vidiocSCtrl      = iocV(3, 28, unsafe.Sizeof(v4l2Control{}))
	vidiocQueryCtrl  = iocV(3, 36, unsafe.Sizeof(v4l2QueryCtrl{}))
	vidiocSSelection = iocV(3, 95, unsafe.Sizeof(v4l2Selection{}))
)

// ioctlRetry is ioctlPtr restarted on EINTR.
func ioctlRetry(fd int, req uintptr, p unsafe.Pointer) error {
	for {
		err := ioctlPtr(fd, req, p)
		if err != unix.EINTR {
			return err
		}
	}
}

// v4l2EnumFormats lists the pixel formats of one buffer type.
func v4l2EnumFormats(fd int, bufType uint32) []uint32 {
	var out []uint32
	for i := uint32(0); i < 64; i++ {
		d := v4l2FmtDesc{Index: i, Type: bufType}
		if ioctlRetry(fd, vidiocEnumFmt, unsafe.Pointer(&d)) != nil {
			break
		}
		out = append(out, d.PixelFormat)
	}
	return out
}

// ---------------------------------------------------------------- pure parts

// m2mQueueTypes returns the OUTPUT (raw) and CAPTURE (coded) buffer types
// for a memory-to-memory node's device capabilities.
func m2mQueueTypes(caps uint32) (out, capture uint32, mplane bool, err error) {
	switch {
	case caps&v4l2CapVideoM2MMPlane != 0:
		return v4l2BufTypeVideoOutputMPlane, v4l2BufTypeVideoCaptureMPlane, true, nil
	case caps&v4l2CapVideoM2M != 0:
		return v4l2BufTypeVideoOutput, v4l2BufTypeVideoCapture, false, nil
	}
	return 0, 0, false, fmt.Errorf("not a memory-to-memory device (capabilities %#x)", caps)
}

// pickM2MRawFormat returns the first of pref that the OUTPUT queue offers.
func pickM2MRawFormat(have, pref []uint32) (uint32, error) {
	for _, p := range pref {
		for _, h := range have {
			if h == p {
				return p, nil
			}
		}
	}
	return 0, fmt.Errorf("no raw format in common: the encoder takes %s, we can feed %s",
		fourccList(have), fourccList(pref))
}

func fourccList(fs []uint32) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = FourCCString(f)
	}
	return strings.Join(s, ", ")
}

func hasFourCC(fs []uint32, f uint32) bool {
	for _, h := range fs {
		if h == f {
			return true
		}
	}
	return false
}

// m2mCtrl is one control to set at open, with what it is for the log.
type m2mCtrl struct {
	ID    uint32
	Name  string
	Value int32
}

// H.264 profile and level menus (enum v4l2_mpeg_video_h264_profile/level).
var h264ProfileMenu = map[string]int32{
	"baseline":             0,
	"constrained-baseline": 1,
	"main":                 2,
	"high":                 4,
}

var h264LevelMenu = map[string]int32{
	"1": 0, "1.0": 0, "1b": 1, "1.1": 2, "1.2": 3, "1.3": 4,
	"2": 5, "2.0": 5, "2.1": 6, "2.2": 7,
	"3": 8, "3.0": 8, "3.1": 9, "3.2": 10,
	"4": 11, "4.0": 11, "4.1": 12, "4.2": 13,
	"5": 14, "5.0": 14, "5.1": 15,
}

// m2mControls maps the options onto V4L2 controls. has reports whether the
// driver has a control; wanted controls it lacks come back in skipped (by
// name) rather than as errors, since an encoder has only some of them.
// The GOP goes to H264_I_PERIOD where the driver has it, else to the generic
// GOP_SIZE (vicodec's only one).
func m2mControls(o M2MEncoderOptions, has func(id uint32) bool) (set []m2mCtrl, skipped []string, err error) {
	want := func(id uint32, name string, v int32) {
		if has(id) {
			set = append(set, m2mCtrl{ID: id, Name: name, Value: v})
		} else {
			skipped = append(skipped, name)
		}
	}
	if o.Bitrate > 0 {
		want(v4l2CIDBitrate, "bitrate", int32(o.Bitrate))
	}
	if o.GOP > 0 {
		switch {
		case has(v4l2CIDH264IPeriod):
			set = append(set, m2mCtrl{ID: v4l2CIDH264IPeriod, Name: "h264 i-period", Value: int32(o.GOP)})
		case has(v4l2CIDGOPSize):
			set = append(set, m2mCtrl{ID: v4l2CIDGOPSize, Name: "gop size", Value: int32(o.GOP)})
		default:
			skipped = append(skipped, "gop")
		}
	}
	if o.Profile != "" {
		v, ok := h264ProfileMenu[strings.ToLower(o.Profile)]
		if !ok {
			return nil, nil, fmt.Errorf("unknown H.264 profile %q (baseline, constrained-baseline, main, high)", o.Profile)
		}
		want(v4l2CIDH264Profile, "h264 profile", v)
	}
	if o.Level != "" {
		v, ok := h264LevelMenu[strings.ToLower(o.Level)]
		if !ok {
			return nil, nil, fmt.Errorf("unknown H.264 level %q (1.0 .. 5.1)", o.Level)
		}
		want(v4l2CIDH264Level, "h264 level", v)
	}
	// SPS/PPS before every IDR, so a receiver can join at any keyframe.
	if o.Codec == FourCCH264 && has(v4l2CIDRepeatSeqHeader) {
		set = append(set, m2mCtrl{ID: v4l2CIDRepeatSeqHeader, Name: "repeat sequence header", Value: 1})
	}
	return set, skipped, nil
}

// m2mRawLayout is where the planes of one raw picture go in an OUTPUT
// buffer of the granted format (one memory plane: YU12 or NV12).
type m2mRawLayout struct {
	FourCC             uint32
	Width, Height      int // granted (possibly aligned) size
	Stride             int // luma bytes per line
	CbOffset, CrOffset int // NV12: CbOffset is the interleaved CbCr plane, CrOffset unused
	ChromaStride       int
	SizeImage          int
}

func newM2MRawLayout(fourcc uint32, w, h, bpl, sizeImage int) (m2mRawLayout, error) {
	if bpl < w {
		bpl = w
	}
	l := m2mRawLayout{FourCC: fourcc, Width: w, Height: h, Stride: bpl, SizeImage: sizeImage}
	switch fourcc {
	case FourCCYU12:
		l.CbOffset = bpl * h
		l.ChromaStride = bpl / 2
		l.CrOffset = l.CbOffset + l.ChromaStride*((h+1)/2)
		if need := l.CrOffset + l.ChromaStride*((h+1)/2); sizeImage < need {
			return l, fmt.Errorf("YU12 %dx%d stride %d needs %d bytes, buffer has %d", w, h, bpl, need, sizeImage)
		}
	case FourCCNV12:
		l.CbOffset = bpl * h
		l.ChromaStride = bpl
		if need := l.CbOffset + bpl*((h+1)/2); sizeImage < need {
			return l, fmt.Errorf("NV12 %dx%d stride %d needs %d bytes, buffer has %d", w, h, bpl, need, sizeImage)
		}
	default:
		return l, fmt.Errorf("raw format %s not supported", FourCCString(fourcc))
	}
	return l, nil
}

// fill copies f into buf (len >= SizeImage). A frame smaller than the
// granted size (an encoder that aligns to 16 lines) leaves the padding as
// it was; a larger one is cut.
func (l m2mRawLayout) fill(buf []byte, f *I420Frame) {
	w, h := min(f.Width, l.Width), min(f.Height, l.Height)
	cw, ch := (w+1)/2, (h+1)/2
	fcw := (f.Width + 1) / 2
	for y := 0; y < h; y++ {
		copy(buf[y*l.Stride:y*l.Stride+w], f.Y[y*f.Width:y*f.Width+w])
	}
	switch l.FourCC {
	case FourCCYU12:
		for y := 0; y < ch; y++ {
			copy(buf[l.CbOffset+y*l.ChromaStride:][:cw], f.Cb[y*fcw:y*fcw+cw])
			copy(buf[l.CrOffset+y*l.ChromaStride:][:cw], f.Cr[y*fcw:y*fcw+cw])
		}
	case FourCCNV12:
		for y := 0; y < ch; y++ {
			row := buf[l.CbOffset+y*l.ChromaStride:][:2*cw]
			cb, cr := f.Cb[y*fcw:], f.Cr[y*fcw:]
			for x := 0; x < cw; x++ {
				row[2*x] = cb[x]
				row[2*x+1] = cr[x]
			}
		}
	}
}

// The FWHT frame header (vicodec, struct fwht_cframe_hdr): two magic words,
// then big-endian version, width, height, flags, ...
const (
	fwhtMagic1     = 0x4f4f4f4f
	fwhtMagic2     = 0xffffffff
	fwhtHeaderSize = 44
	fwhtFlagIFrame = 1 << 10 // V4L2_FWHT_FL_I_FRAME
)

type fwhtHeader struct {
	Version, Width, Height, Flags, Size uint32
}

func parseFWHTHeader(b []byte) (fwhtHeader, error) {
	if len(b) < fwhtHeaderSize {
		return fwhtHeader{}, fmt.Errorf("fwht: %d bytes, shorter than the header", len(b))
	}
	le := func(o int) uint32 { return uint32(b[o]) | uint32(b[o+1])<<8 | uint32(b[o+2])<<16 | uint32(b[o+3])<<24 }
	be := func(o int) uint32 { return uint32(b[o])<<24 | uint32(b[o+1])<<16 | uint32(b[o+2])<<8 | uint32(b[o+3]) }
	if le(0) != fwhtMagic1 || le(4) != fwhtMagic2 {
		return fwhtHeader{}, fmt.Errorf("fwht: bad magic % x", b[:8])
	}
	return fwhtHeader{Version: be(8), Width: be(12), Height: be(16), Flags: be(20), Size: be(40)}, nil
}

func fwhtIsIntra(b []byte) bool {
	h, err := parseFWHTHeader(b)
	return err == nil && h.Flags&fwhtFlagIFrame != 0
}
