package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/blackjack/webcam"
	"golang.org/x/sys/unix"
)

// CameraConfig selects and tunes a V4L2 camera.
//
//	camera:
//	  device: /dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920-video-index0  # or a card name, or /dev/video0
//	  formats: [H264, YUYV, NV12, I420, MJPG]   # preference order (this is the default)
//	  keepWarm: false
type CameraConfig struct {
	// Device is a path (/dev/video0, /dev/v4l/by-id/...) or a card name as
	// VIDIOC_QUERYCAP reports it ("vivid", "HD Pro Webcam C920"; exact
	// match first, then case-insensitive substring). Empty: the first
	// capture device.
	Device string `yaml:"device"`
	// Formats overrides DefaultCameraFormats.
	Formats []string `yaml:"formats"`
	// Width, Height, FPS are used where the call's VideoConfig leaves them 0.
	Width  int `yaml:"width"`
	Height int `yaml:"height"`
	FPS    int `yaml:"fps"`
	// KeepWarm keeps the camera streaming between calls (Stop only pauses
	// delivery), for a faster first frame at the cost of power.
	KeepWarm bool `yaml:"keepWarm"`
	// Buffers is the number of capture buffers (default 4).
	Buffers int `yaml:"buffers"`
}

// RawFrame is one captured picture, as the camera delivered it.
type RawFrame struct {
	Data          []byte
	FourCC        uint32 // FourCCYUYV, FourCCNV12, FourCCYU12, FourCCMJPG, FourCCH264
	Width, Height int
	Stride        int // bytes per line of the first plane (0 for compressed formats)
	CaptureTime   time.Time
	Sequence      uint64
}

// RawFrameSource yields raw (or MJPEG) frames for an encoder.
type RawFrameSource interface {
	Start(ctx context.Context, cfg VideoConfig) error
	// ReadFrame blocks for the next frame; a lost device returns an error
	// wrapping ErrUnavailable.
	ReadFrame(ctx context.Context) (RawFrame, error)
	Stop() error
}

// CameraMode is what the camera was configured to after Start.
type CameraMode struct {
	Path          string
	Card, Driver  string
	FourCC        uint32
	Width, Height int
	Stride        int
	FPS           float64
}

// V4L2Camera is a V4L2 capture device. With an H.264 camera it is a
// VideoSource (passthrough); otherwise it is a RawFrameSource whose frames
// go to an encoder. Check Mode().FourCC after Start to know which.
//
// The device is opened on Start and closed on Stop (unless KeepWarm), and
// found again by name on every Start, so a camera that was unplugged
// (reads fail with ErrUnavailable) works again once it is back.
type V4L2Camera struct {
	cfg  CameraConfig
	pref []uint32
	log  *slog.Logger

	mu       sync.Mutex
	cam      *webcam.Webcam
	mode     CameraMode
	vcfg     VideoConfig
	active   bool // between Start and Stop (a warm camera streams while !active)
	seq      uint64
	keyReq   bool
	sps, pps []byte
}

// CameraOption tunes a V4L2Camera.
type CameraOption func(*V4L2Camera)

// WithCameraLogger sets the logger (default slog.Default()).
func WithCameraLogger(l *slog.Logger) CameraOption { return func(c *V4L2Camera) { c.log = l } }

// NewV4L2Camera checks the configuration and that the camera is there now
// (an error naming it otherwise, wrapping ErrUnavailable when it is
// missing); it does not start it.
func NewV4L2Camera(cfg CameraConfig, opts ...CameraOption) (*V4L2Camera, error) {
	c := &V4L2Camera{cfg: cfg, pref: DefaultCameraFormats, log: slog.Default()}
	for _, o := range opts {
		o(c)
	}
	if len(cfg.Formats) > 0 {
		c.pref = nil
		for _, s := range cfg.Formats {
			f, err := ParseFourCC(strings.ToUpper(strings.TrimSpace(s)))
			if err != nil {
				return nil, fmt.Errorf("camera %q: %w", cfg.Device, err)
			}
			c.pref = append(c.pref, f)
		}
	}
	if _, _, err := findCamera(cfg.Device); err != nil {
		return nil, err
	}
	return c, nil
}

// findCamera resolves the configured device to a capture node.
func findCamera(dev string) (string, v4l2Info, error) {
	if strings.HasPrefix(dev, "/") {
		p, err := filepath.EvalSymlinks(dev)
		if err != nil {
			return "", v4l2Info{}, fmt.Errorf("camera %s: %w", dev, errors.Join(ErrUnavailable, err))
		}
		info, err := v4l2Query(p)
		if err != nil {
			return "", v4l2Info{}, fmt.Errorf("camera %s: %w", dev, errors.Join(ErrUnavailable, err))
		}
		if !info.isCapture() {
			return "", v4l2Info{}, fmt.Errorf("camera %s (%s, %q) is not a video capture device", dev, p, info.Card)
		}
		return p, info, nil
	}
	nodes, _ := filepath.Glob("/dev/video*")
	sort.Slice(nodes, func(i, j int) bool { return videoNum(nodes[i]) < videoNum(nodes[j]) })
	var seen []string
	var loose string
	var looseInfo v4l2Info
	for _, n := range nodes {
		info, err := v4l2Query(n)
		if err != nil || !info.isCapture() {
			continue
		}
		seen = append(seen, fmt.Sprintf("%s %q", n, info.Card))
		if dev == "" || info.Card == dev {
			return n, info, nil
		}
		if loose == "" && strings.Contains(strings.ToLower(info.Card), strings.ToLower(dev)) {
			loose, looseInfo = n, info
		}
	}
	if loose != "" {
		return loose, looseInfo, nil
	}
	have := "no capture devices"
	if len(seen) > 0 {
		have = "capture devices: " + strings.Join(seen, ", ")
	}
	if dev == "" {
		return "", v4l2Info{}, fmt.Errorf("camera: no V4L2 capture device (%s): %w", have, ErrUnavailable)
	}
	return "", v4l2Info{}, fmt.Errorf("camera %q: not found (%s): %w", dev, have, ErrUnavailable)
}

func videoNum(p string) int {
	n := 0
	for _, r := range strings.TrimPrefix(p, "/dev/video") {
		if r < '0' || r > '9' {
			return 1 << 30
		}
		n = n*10 + int(r-'0')
	}
	return n
}

// Start opens and configures the camera and starts streaming.
func (c *V4L2Camera) Start(ctx context.Context, vc VideoConfig) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if vc.Width == 0 || vc.Height == 0 {
		vc.Width, vc.Height = c.cfg.Width, c.cfg.Height
	}
	if vc.FPS == 0 {
		vc.FPS = c.cfg.FPS
	}
	if vc.FPS == 0 {
		vc.FPS = 25
	}
	if c.cam != nil && vc == c.vcfg {
		// Warm and configured alike: drop what queued up while idle so
		// the first frame is fresh.
		c.drainLocked()
		c.active = true
		return nil
	}
	c.closeLocked()
	if err := c.openLocked(vc); err != nil {
		return err
	}
	c.active = true
	return nil
}

func (c *V4L2Camera) openLocked(vc VideoConfig) error {
	path, info, err := findCamera(c.cfg.Device)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("camera %q (%s)", info.Card, path)
	cam, err := webcam.Open(path)
	if err != nil {
		return fmt.Errorf("%s: open: %w", name, wrapV4L2Err(err))
	}
	ok := false
	defer func() {
		if !ok {
			cam.Close()
		}
	}()
	var modes []cameraMode
	for f := range cam.GetSupportedFormats() {
		modes = append(modes, cameraMode{FourCC: uint32(f), Sizes: cam.GetSupportedFrameSizes(f)})
	}
	sort.Slice(modes, func(i, j int) bool { return modes[i].FourCC < modes[j].FourCC })
	choice, err := chooseCameraFormat(modes, c.pref, vc.Width, vc.Height)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if _, _, _, err := cam.SetImageFormat(webcam.PixelFormat(choice.FourCC), uint32(choice.Width), uint32(choice.Height)); err != nil {
		return fmt.Errorf("%s: set %s %dx%d: %w", name, FourCCString(choice.FourCC), choice.Width, choice.Height, wrapV4L2Err(err))
	}
	// The format is device state: read what was granted through a second fd
	// (webcam hides its own and reports the requested size).
	pix, err := v4l2PixFormatAt(path)
	if err != nil {
		return fmt.Errorf("%s: %w", name, wrapV4L2Err(err))
	}
	fps := float64(vc.FPS)
	if r, ok := chooseFrameRate(cam.GetSupportedFramerates(webcam.PixelFormat(pix.PixelFormat), pix.Width, pix.Height), vc.FPS); ok {
		fps = r
	}
	if err := cam.SetFramerate(float32(fps)); err != nil {
		c.log.Warn("camera: frame rate not set", "camera", name, "fps", fps, "err", err)
	}
	if got, err := cam.GetFramerate(); err == nil {
		fps = float64(got)
	}
	nbuf := c.cfg.Buffers
	if nbuf <= 0 {
		nbuf = 4
	}
	if err := cam.SetBufferCount(uint32(nbuf)); err != nil {
		return fmt.Errorf("%s: buffers: %w", name, wrapV4L2Err(err))
	}
	if err := cam.StartStreaming(); err != nil {
		return fmt.Errorf("%s: stream on: %w", name, wrapV4L2Err(err))
	}
	ok = true
	c.cam, c.vcfg = cam, vc
	c.sps, c.pps = nil, nil
	c.mode = CameraMode{Path: path, Card: info.Card, Driver: info.Driver, FourCC: pix.PixelFormat,
		Width: int(pix.Width), Height: int(pix.Height), Stride: int(pix.BytesPerLine), FPS: fps}
	c.log.Info("camera started", "camera", info.Card, "path", path, "driver", info.Driver,
		"format", FourCCString(pix.PixelFormat), "width", pix.Width, "height", pix.Height, "fps", fps)
	return nil
}

func v4l2PixFormatAt(path string) (v4l2PixFormat, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return v4l2PixFormat{}, err
	}
	defer unix.Close(fd)
	return v4l2GetPixFormat(fd)
}

// wrapV4L2Err marks a vanished device as ErrUnavailable.
func wrapV4L2Err(err error) error {
	if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENXIO) {
		return errors.Join(ErrUnavailable, err)
	}
	return err
}

// Mode reports the configuration chosen by the last Start.
func (c *V4L2Camera) Mode() CameraMode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mode
}

// ReadFrame returns the next frame.
func (c *V4L2Camera) ReadFrame(ctx context.Context) (RawFrame, error) {
	for {
		if err := ctx.Err(); err != nil {
			return RawFrame{}, err
		}
		f, got, err := c.tryRead()
		if err != nil || got {
			return f, err
		}
	}
}

// tryRead waits up to 100 ms for a frame, holding the lock so Stop cannot
// close the fd under it; the short wait keeps Stop and ctx responsive.
func (c *V4L2Camera) tryRead() (RawFrame, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cam == nil || !c.active {
		return RawFrame{}, false, fmt.Errorf("camera %q: not started", c.cfg.Device)
	}
	err := c.cam.WaitForFrame(100)
	var timeout *webcam.Timeout
	if errors.As(err, &timeout) || errors.Is(err, unix.EINTR) {
		return RawFrame{}, false, nil
	}
	if err == nil {
		var data []byte
		var idx uint32
		data, idx, err = c.cam.GetFrame()
		if errors.Is(err, unix.EAGAIN) {
			return RawFrame{}, false, nil
		}
		if err == nil {
			f := RawFrame{Data: append([]byte(nil), data...), FourCC: c.mode.FourCC, Width: c.mode.Width, Height: c.mode.Height,
				CaptureTime: time.Now(), Sequence: c.seq}
			if f.FourCC != FourCCMJPG && f.FourCC != FourCCH264 {
				f.Stride = c.mode.Stride
			}
			c.seq++
			err = c.cam.ReleaseFrame(idx)
			if err == nil {
				return f, true, nil
			}
		}
	}
	err = wrapV4L2Err(err)
	if errors.Is(err, ErrUnavailable) {
		c.log.Warn("camera lost", "camera", c.mode.Card, "path", c.mode.Path, "err", err)
		c.closeLocked()
	}
	return RawFrame{}, false, fmt.Errorf("camera %q (%s): %w", c.mode.Card, c.mode.Path, err)
}

// ReadAccessUnit implements VideoSource for an H.264 camera.
func (c *V4L2Camera) ReadAccessUnit(ctx context.Context) (AccessUnit, error) {
	c.mu.Lock()
	fourcc, fps := c.mode.FourCC, c.mode.FPS
	if c.cam != nil && fourcc != FourCCH264 {
		c.mu.Unlock()
		return AccessUnit{}, fmt.Errorf("camera %q delivers %s, not H.264: read raw frames into an encoder", c.mode.Card, FourCCString(fourcc))
	}
	if c.keyReq && c.cam != nil {
		c.keyReq = false
		// V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME; UVC H.264 cameras that
		// lack it send IDRs on their own GOP.
		if err := c.cam.SetControl(0x009909e5, 1); err != nil {
			c.log.Debug("camera: force key frame not supported", "err", err)
		}
	}
	c.mu.Unlock()
	f, err := c.ReadFrame(ctx)
	if err != nil {
		return AccessUnit{}, err
	}
	au := AccessUnit{Data: f.Data, CaptureTime: f.CaptureTime}
	if fps > 0 {
		au.Duration = time.Duration(float64(time.Second) / fps)
	}
	c.mu.Lock()
	au.Data, au.Keyframe = c.withParamSets(f.Data)
	c.mu.Unlock()
	return au, nil
}

// withParamSets remembers SPS/PPS and puts them in front of an IDR that
// arrives without them, so every keyframe is decodable on its own.
func (c *V4L2Camera) withParamSets(au []byte) ([]byte, bool) {
	hasSPS, hasPPS, idr := false, false, false
	for _, nal := range camSplitAnnexB(au) {
		if len(nal) == 0 {
			continue
		}
		switch nal[0] & 0x1f {
		case 7:
			c.sps, hasSPS = append([]byte(nil), nal...), true
		case 8:
			c.pps, hasPPS = append([]byte(nil), nal...), true
		case 5:
			idr = true
		}
	}
	if !idr || (hasSPS && hasPPS) || c.sps == nil || c.pps == nil {
		return au, idr
	}
	out := make([]byte, 0, len(au)+len(c.sps)+len(c.pps)+8)
	out = append(append(append(out, 0, 0, 0, 1), c.sps...), 0, 0, 0, 1)
	out = append(append(out, c.pps...), au...)
	return out, true
}

// camSplitAnnexB splits an Annex-B stream into NAL units (without start codes).
func camSplitAnnexB(b []byte) [][]byte {
	var nals [][]byte
	start := -1
	for i := 0; i+2 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				end := i
				if end > start && b[end-1] == 0 {
					end--
				}
				nals = append(nals, b[start:end])
			}
			start = i + 3
			i += 2
		}
	}
	if start >= 0 && start <= len(b) {
		nals = append(nals, b[start:])
	}
	return nals
}

// RequestKeyframe asks an H.264 camera for an IDR.
func (c *V4L2Camera) RequestKeyframe() {
	c.mu.Lock()
	c.keyReq = true
	c.mu.Unlock()
}

// Stop ends delivery; the camera is closed unless KeepWarm.
func (c *V4L2Camera) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active = false
	if !c.cfg.KeepWarm {
		c.closeLocked()
	}
	return nil
}

// Close stops and closes the camera, warm or not.
func (c *V4L2Camera) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active = false
	c.closeLocked()
	return nil
}

func (c *V4L2Camera) closeLocked() {
	if c.cam != nil {
		if err := c.cam.Close(); err != nil {
			c.log.Debug("camera close", "err", err)
		}
		c.cam = nil
		c.vcfg = VideoConfig{}
	}
}

func (c *V4L2Camera) drainLocked() {
	for i := 0; i < 64; i++ {
		if err := c.cam.WaitForFrame(0); err != nil {
			return
		}
		_, idx, err := c.cam.GetFrame()
		if err != nil {
			return
		}
		c.cam.ReleaseFrame(idx)
	}
}

var (
	_ VideoSource    = (*V4L2Camera)(nil)
	_ RawFrameSource = (*V4L2Camera)(nil)
)
