package device

import (
	"errors"
	"reflect"
	"runtime"
	"testing"
	"unsafe"
)

// The layouts the kernel expects: <linux/videodev2.h> on 64-bit, and on
// 32-bit ARM the time32 layouts (struct timeval of two 32-bit longs) that
// a 32-bit kernel and the compat layer of a 64-bit one (v4l2_buffer32)
// both accept. The VM rig runs this package as arm64 and as 32-bit ARM in
// the arm64 guest, so both tables are also checked against a kernel.
func TestM2MStructSizes(t *testing.T) {
	want64 := map[string]uintptr{
		"v4l2_buffer": 88, "v4l2_plane": 64, "v4l2_pix_format_mplane": 192,
		"v4l2_requestbuffers": 20, "v4l2_fmtdesc": 64, "v4l2_queryctrl": 68,
		"v4l2_streamparm": 204, "v4l2_buffer.m (offset)": 64, "v4l2_buffer.timestamp@": 24,
		"v4l2_plane.data_offset@": 16,
	}
	want32 := map[string]uintptr{
		"v4l2_buffer": 68, "v4l2_plane": 60, "v4l2_pix_format_mplane": 192,
		"v4l2_requestbuffers": 20, "v4l2_fmtdesc": 64, "v4l2_queryctrl": 68,
		"v4l2_streamparm": 204, "v4l2_buffer.m (offset)": 52, "v4l2_buffer.timestamp@": 20,
		"v4l2_plane.data_offset@": 12,
	}
	want := want64
	switch {
	case unsafe.Sizeof(uintptr(0)) == 4 && runtime.GOARCH == "arm":
		want = want32
	case unsafe.Sizeof(uintptr(0)) != 8:
		t.Skipf("no kernel layout table for %s", runtime.GOARCH)
	}
	for name, got := range map[string]uintptr{
		"v4l2_buffer":             unsafe.Sizeof(v4l2Buffer{}),
		"v4l2_plane":              unsafe.Sizeof(v4l2Plane{}),
		"v4l2_pix_format_mplane":  unsafe.Sizeof(v4l2PixFormatMPlane{}),
		"v4l2_requestbuffers":     unsafe.Sizeof(v4l2RequestBuffers{}),
		"v4l2_fmtdesc":            unsafe.Sizeof(v4l2FmtDesc{}),
		"v4l2_queryctrl":          unsafe.Sizeof(v4l2QueryCtrl{}),
		"v4l2_streamparm":         unsafe.Sizeof(v4l2StreamParmOut{}),
		"v4l2_buffer.m (offset)":  unsafe.Offsetof(v4l2Buffer{}.M),
		"v4l2_buffer.timestamp@":  unsafe.Offsetof(v4l2Buffer{}.Timestamp),
		"v4l2_plane.data_offset@": unsafe.Offsetof(v4l2Plane{}.DataOffset),
	} {
		if got != want[name] {
			t.Errorf("%s: %d, want %d (the kernel's, %s)", name, got, want[name], runtime.GOARCH)
		}
	}
}

func TestM2MQueueTypes(t *testing.T) {
	o, c, mp, err := m2mQueueTypes(v4l2CapVideoM2MMPlane | v4l2CapStreaming)
	if err != nil || o != v4l2BufTypeVideoOutputMPlane || c != v4l2BufTypeVideoCaptureMPlane || !mp {
		t.Errorf("mplane: %d %d %v %v", o, c, mp, err)
	}
	o, c, mp, err = m2mQueueTypes(v4l2CapVideoM2M | v4l2CapStreaming)
	if err != nil || o != v4l2BufTypeVideoOutput || c != v4l2BufTypeVideoCapture || mp {
		t.Errorf("single: %d %d %v %v", o, c, mp, err)
	}
	if _, _, _, err := m2mQueueTypes(v4l2CapVideoCapture | v4l2CapStreaming); err == nil {
		t.Error("a camera is not an M2M device")
	}
}

func TestPickM2MRawFormat(t *testing.T) {
	pref := []uint32{FourCCYU12, FourCCNV12}
	// bcm2835-codec's OUTPUT list starts with YU12; vicodec's too.
	if f, err := pickM2MRawFormat([]uint32{FourCCNV12, FourCCYU12, FourCCYUYV}, pref); err != nil || f != FourCCYU12 {
		t.Errorf("got %s, %v", FourCCString(f), err)
	}
	if f, err := pickM2MRawFormat([]uint32{FourCCYUYV, FourCCNV12}, pref); err != nil || f != FourCCNV12 {
		t.Errorf("got %s, %v", FourCCString(f), err)
	}
	if _, err := pickM2MRawFormat([]uint32{FourCCYUYV}, pref); err == nil {
		t.Error("no common format must fail")
	}
}

func TestM2MControls(t *testing.T) {
	o := M2MEncoderOptions{Codec: FourCCH264, Bitrate: 1_000_000, GOP: 60, Profile: "Constrained-Baseline", Level: "3.1"}
	// bcm2835-codec has all of them.
	all := func(uint32) bool { return true }
	set, skipped, err := m2mControls(o, all)
	if err != nil {
		t.Fatal(err)
	}
	want := []m2mCtrl{
		{v4l2CIDBitrate, "bitrate", 1_000_000},
		{v4l2CIDH264IPeriod, "h264 i-period", 60},
		{v4l2CIDH264Profile, "h264 profile", 1},
		{v4l2CIDH264Level, "h264 level", 9},
		{v4l2CIDRepeatSeqHeader, "repeat sequence header", 1},
	}
	if !reflect.DeepEqual(set, want) || len(skipped) != 0 {
		t.Errorf("pi: set %+v skipped %v", set, skipped)
	}
	// vicodec: only GOP_SIZE.
	vicodec := func(id uint32) bool { return id == v4l2CIDGOPSize }
	set, skipped, err = m2mControls(o, vicodec)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(set, []m2mCtrl{{v4l2CIDGOPSize, "gop size", 60}}) {
		t.Errorf("vicodec: set %+v", set)
	}
	if !reflect.DeepEqual(skipped, []string{"bitrate", "h264 profile", "h264 level"}) {
		t.Errorf("vicodec: skipped %v", skipped)
	}
	if _, _, err := m2mControls(M2MEncoderOptions{Profile: "extended"}, all); err == nil {
		t.Error("unknown profile must fail")
	}
	if _, _, err := m2mControls(M2MEncoderOptions{Level: "6.2"}, all); err == nil {
		t.Error("unknown level must fail")
	}
	if set, _, _ := m2mControls(M2MEncoderOptions{}, all); len(set) != 0 {
		t.Errorf("zero options set %+v", set)
	}
}

func TestM2MRawLayoutFill(t *testing.T) {
	f := NewI420Frame(4, 2)
	copy(f.Y, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	copy(f.Cb, []byte{10, 11})
	copy(f.Cr, []byte{20, 21})
	// A driver that pads lines to 8 bytes and the height to 4.
	l, err := newM2MRawLayout(FourCCYU12, 4, 4, 8, 8*4*3/2)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, l.SizeImage)
	l.fill(buf, f)
	if !reflect.DeepEqual(buf[0:4], []byte{1, 2, 3, 4}) || !reflect.DeepEqual(buf[8:12], []byte{5, 6, 7, 8}) {
		t.Errorf("Y: % x", buf[:16])
	}
	if l.CbOffset != 32 || l.CrOffset != 32+8 || buf[32] != 10 || buf[33] != 11 || buf[40] != 20 || buf[41] != 21 {
		t.Errorf("YU12 chroma at %d/%d: % x", l.CbOffset, l.CrOffset, buf[32:])
	}
	l, err = newM2MRawLayout(FourCCNV12, 4, 2, 4, 12)
	if err != nil {
		t.Fatal(err)
	}
	buf = make([]byte, l.SizeImage)
	l.fill(buf, f)
	if !reflect.DeepEqual(buf[8:12], []byte{10, 20, 11, 21}) {
		t.Errorf("NV12 CbCr: % x", buf[8:])
	}
	if _, err := newM2MRawLayout(FourCCYU12, 4, 4, 4, 10); err == nil {
		t.Error("a too small buffer must fail")
	}
	if _, err := newM2MRawLayout(FourCCYUYV, 4, 4, 8, 100); err == nil {
		t.Error("YUYV is not a supported OUTPUT format")
	}
}

func TestParseFWHTHeader(t *testing.T) {
	h := []byte{0x4f, 0x4f, 0x4f, 0x4f, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 3, 0, 0, 1, 0x40, 0, 0, 0, 0xf0, 0, 0, 0x04, 0x00}
	h = append(h, make([]byte, 20)...)
	got, err := parseFWHTHeader(h)
	if err != nil || got.Version != 3 || got.Width != 320 || got.Height != 240 || !fwhtIsIntra(h) {
		t.Errorf("%+v %v", got, err)
	}
	h[22] = 0
	if fwhtIsIntra(h) {
		t.Error("P frame read as intra")
	}
	h[0] = 0
	if _, err := parseFWHTHeader(h); err == nil {
		t.Error("bad magic accepted")
	}
}

func TestM2MEncoderMissingDevice(t *testing.T) {
	_, err := OpenM2MEncoder(M2MEncoderOptions{Device: "no-such-codec", Width: 320, Height: 240})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
	_, err = OpenM2MEncoder(M2MEncoderOptions{Device: "/dev/no-such-video", Width: 320, Height: 240})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("path: want ErrUnavailable, got %v", err)
	}
	t.Log(err)
}
