package device

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The few V4L2 ioctls that blackjack/webcam gets wrong for us: it checks
// the card-wide capabilities (so a vivid *output* node looks like a camera)
// and returns the requested rather than the granted size from S_FMT.

const (
	v4l2CapVideoCapture       = 0x00000001
	v4l2CapVideoCaptureMPlane = 0x00001000
	v4l2CapVideoM2M           = 0x00008000
	v4l2CapVideoM2MMPlane     = 0x00004000
	v4l2CapStreaming          = 0x04000000
	v4l2CapDeviceCaps         = 0x80000000

	v4l2BufTypeVideoCapture = 1
)

type v4l2Capability struct {
	Driver       [16]byte
	Card         [32]byte
	BusInfo      [32]byte
	Version      uint32
	Capabilities uint32
	DeviceCaps   uint32
	Reserved     [3]uint32
}

// v4l2Format is struct v4l2_format: the union is pointer-aligned (it holds
// struct v4l2_window), hence uintptr words.
type v4l2Format struct {
	Type uint32
	Fmt  [200 / unsafe.Sizeof(uintptr(0))]uintptr
}

// v4l2PixFormat is the start of struct v4l2_pix_format.
type v4l2PixFormat struct {
	Width, Height, PixelFormat, Field, BytesPerLine, SizeImage uint32
}

func iocV(dir, nr, size uintptr) uintptr {
	return dir<<30 | size<<16 | uintptr('V')<<8 | nr
}

var (
	vidiocQueryCap = iocV(2, 0, unsafe.Sizeof(v4l2Capability{}))
	vidiocGFmt     = iocV(3, 4, unsafe.Sizeof(v4l2Format{}))
)

func ioctlPtr(fd int, req uintptr, p unsafe.Pointer) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(p))
	if e != 0 {
		return e
	}
	return nil
}

type v4l2Info struct {
	Driver, Card, BusInfo string
	DeviceCaps            uint32
}

func (i v4l2Info) isCapture() bool {
	return i.DeviceCaps&v4l2CapVideoCapture != 0 && i.DeviceCaps&v4l2CapStreaming != 0 &&
		i.DeviceCaps&(v4l2CapVideoM2M|v4l2CapVideoM2MMPlane) == 0
}

func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// v4l2Query opens path just long enough for VIDIOC_QUERYCAP.
func v4l2Query(path string) (v4l2Info, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return v4l2Info{}, err
	}
	defer unix.Close(fd)
	return v4l2QueryFD(fd)
}

func v4l2QueryFD(fd int) (v4l2Info, error) {
	var c v4l2Capability
	if err := ioctlPtr(fd, vidiocQueryCap, unsafe.Pointer(&c)); err != nil {
		return v4l2Info{}, fmt.Errorf("VIDIOC_QUERYCAP: %w", err)
	}
	caps := c.Capabilities
	if caps&v4l2CapDeviceCaps != 0 {
		caps = c.DeviceCaps
	}
	return v4l2Info{Driver: cstr(c.Driver[:]), Card: cstr(c.Card[:]), BusInfo: cstr(c.BusInfo[:]), DeviceCaps: caps}, nil
}

// v4l2GetPixFormat returns the granted capture format.
func v4l2GetPixFormat(fd int) (v4l2PixFormat, error) {
	f := v4l2Format{Type: v4l2BufTypeVideoCapture}
	if err := ioctlPtr(fd, vidiocGFmt, unsafe.Pointer(&f)); err != nil {
		return v4l2PixFormat{}, fmt.Errorf("VIDIOC_G_FMT: %w", err)
	}
	return *(*v4l2PixFormat)(unsafe.Pointer(&f.Fmt[0])), nil
}

// FourCC codes the camera understands.
const (
	FourCCH264 uint32 = 'H' | '2'<<8 | '6'<<16 | '4'<<24
	FourCCYUYV uint32 = 'Y' | 'U'<<8 | 'Y'<<16 | 'V'<<24
	FourCCNV12 uint32 = 'N' | 'V'<<8 | '1'<<16 | '2'<<24
	FourCCYU12 uint32 = 'Y' | 'U'<<8 | '1'<<16 | '2'<<24 // I420
	FourCCMJPG uint32 = 'M' | 'J'<<8 | 'P'<<16 | 'G'<<24
)

// FourCCString renders a fourcc such as "YUYV".
func FourCCString(f uint32) string {
	return string([]byte{byte(f), byte(f >> 8), byte(f >> 16), byte(f >> 24)})
}

// ParseFourCC parses "YUYV", "H264", ... (I420 is accepted for YU12).
func ParseFourCC(s string) (uint32, error) {
	if s == "I420" {
		s = "YU12"
	}
	if s == "MJPEG" {
		s = "MJPG"
	}
	if len(s) != 4 {
		return 0, fmt.Errorf("v4l2: bad fourcc %q", s)
	}
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24, nil
}
