//go:build cgo && swenc

package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/mediadevices/pkg/codec"
	"github.com/pion/mediadevices/pkg/io/video"
)

// Software encoder defaults.
const (
	// SoftwareCodecOpenH264 is Cisco's openh264 as mediadevices links it
	// statically (amd64, arm64, armv7; needs only g++): Constrained
	// Baseline, no B-frames, one frame in, one access unit out.
	SoftwareCodecOpenH264 = "openh264"
	// SoftwareCodecX264 is libx264 through mediadevices (ultrafast,
	// zerolatency); it links libx264 dynamically via pkg-config, so it is
	// only compiled with the extra build tag swenc_x264, which replaces
	// openh264.
	SoftwareCodecX264 = "x264"

	swencDefaultFPS      = 15
	swencDefaultKeyEvery = 3 * time.Second
	// swencBitsPerPixel sizes the default bitrate: 0.1 bit per pixel per
	// frame is ~460 kbit/s at 640x480@15, enough for a mostly static door
	// scene without filling a weak uplink.
	swencBitsPerPixel = 0.1

	// NAL unit types, spelled out here so this file depends only on the
	// exported H.264 helpers of the package.
	swencNALIDR = 5
	swencNALSPS = 7
	swencNALPPS = 8
)

// swencParams is what a codec backend is built with.
type swencParams struct {
	Width, Height int
	FPS           int
	BitrateBps    int
	Threads       int
	// KeyframeFrames is the codec's own IDR period in frames. The encoder
	// forces time-based keyframes itself (cameras do not always deliver
	// the configured rate), so this is only a backstop.
	KeyframeFrames int
}

// swencBuilder builds a mediadevices encoder that pulls packed I420
// pictures (stride = width) from r.
type swencBuilder func(r video.Reader, p swencParams) (codec.ReadCloser, error)

// swencCodecs is filled by the codec files' init functions, so which codecs
// exist follows the build tags.
var swencCodecs = map[string]swencBuilder{}

// SoftwareCodecs lists the codecs compiled into this binary.
func SoftwareCodecs() []string {
	names := make([]string, 0, len(swencCodecs))
	for n := range swencCodecs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SoftwareEncoderOptions tunes a SoftwareEncoder.
type SoftwareEncoderOptions struct {
	// Codec is SoftwareCodecOpenH264 or SoftwareCodecX264; empty means
	// the one compiled in (openh264 with -tags swenc, x264 with
	// -tags swenc,swenc_x264: one binary cannot link both).
	Codec string
	// BitrateKbps is used when the call's VideoConfig.BitrateKbps is 0;
	// 0 here means 0.1 bit per pixel per frame.
	BitrateKbps int
	// Threads is the encoder's thread count (default 1: at 640x480 one
	// core is plenty and a single slice keeps the stream simplest; on a
	// Pi 5 at 1280x720 2-4 lowers per-frame latency).
	Threads int
	// Logger receives start/stop and keyframe diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// SoftwareEncoder is a VideoSource that reads raw frames from a
// RawFrameSource (a V4L2 camera delivering YUYV, NV12, I420 or MJPEG, or
// SyntheticRawSource) and encodes them with a mediadevices H.264 codec via
// cgo. It is for development machines, the demo and the Pi 5, which has no
// hardware encoder; Pi 0-4 should use a camera that encodes or the
// hardware encoder instead.
//
// One raw frame gives one access unit, encoded synchronously inside
// ReadAccessUnit, so nothing queues between capture and send and
// CaptureTime is the raw frame's. Keyframes carry SPS and PPS, come first
// after every Start, on RequestKeyframe (the very next frame) and every
// VideoConfig.KeyframeEvery. The codec is created at the first frame with
// that frame's size, and created again if the size changes, because the
// camera may settle on a mode other than the one asked for.
type SoftwareEncoder struct {
	src   RawFrameSource
	opts  SoftwareEncoderOptions
	build swencBuilder
	log   *slog.Logger

	keyReq atomic.Bool

	mu  sync.Mutex // guards run
	run *swencRun

	readMu sync.Mutex // serialises ReadAccessUnit and encoder teardown
}

// swencRun is the state of one Start..Stop period.
type swencRun struct {
	ctx    context.Context
	cancel context.CancelFunc
	cfg    VideoConfig
	period time.Duration

	// passthrough is the camera itself when it negotiated H.264: there is
	// nothing to encode then.
	passthrough VideoSource

	// Owned by the reader (readMu).
	enc      codec.ReadCloser
	encW     int
	encH     int
	pic      *image.YCbCr // the picture the codec's Read pulls next
	buf      []byte       // backing store of pic when it is converted
	sps, pps []byte
	lastKey  time.Time
	frames   uint64
	closed   bool

	profileLevelID string // guarded by SoftwareEncoder.mu
}

// NewSoftwareEncoder wraps src. It fails when the codec is not compiled in.
func NewSoftwareEncoder(src RawFrameSource, opts SoftwareEncoderOptions) (*SoftwareEncoder, error) {
	if src == nil {
		return nil, errors.New("software encoder: nil raw frame source")
	}
	if opts.Codec == "" {
		// One binary holds one of the two (see swenc_x264.go); prefer
		// openh264, the one that needs no system library.
		opts.Codec = SoftwareCodecX264
		if _, ok := swencCodecs[SoftwareCodecOpenH264]; ok {
			opts.Codec = SoftwareCodecOpenH264
		}
	}
	b, ok := swencCodecs[opts.Codec]
	if !ok {
		return nil, fmt.Errorf("software encoder: codec %q not compiled in (have %v; -tags swenc gives openh264, -tags swenc,swenc_x264 gives x264)",
			opts.Codec, SoftwareCodecs())
	}
	if opts.Threads <= 0 {
		opts.Threads = 1
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &SoftwareEncoder{src: src, opts: opts, build: b, log: log.With("codec", opts.Codec)}, nil
}

// Codec names the codec in use.
func (e *SoftwareEncoder) Codec() string { return e.opts.Codec }

// Start starts the raw source with cfg (FPS defaults to 15, KeyframeEvery to
// 3 s; width and height are passed on as asked, 0 letting the source pick).
func (e *SoftwareEncoder) Start(ctx context.Context, cfg VideoConfig) error {
	if cfg.FPS <= 0 {
		cfg.FPS = swencDefaultFPS
	}
	if cfg.KeyframeEvery <= 0 {
		cfg.KeyframeEvery = swencDefaultKeyEvery
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.run != nil {
		return errors.New("software encoder: already started")
	}
	if err := e.src.Start(ctx, cfg); err != nil {
		return fmt.Errorf("software encoder: raw source: %w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &swencRun{ctx: rctx, cancel: cancel, cfg: cfg, period: time.Second / time.Duration(cfg.FPS)}
	if pc, ok := e.src.(swencPassthroughCamera); ok && pc.Mode().FourCC == FourCCH264 {
		r.passthrough = pc
	}
	e.run = r
	e.keyReq.Store(false)
	e.log.Debug("software encoder started", "width", cfg.Width, "height", cfg.Height, "fps", cfg.FPS,
		"bitrate_kbps", cfg.BitrateKbps, "keyframe_every", cfg.KeyframeEvery, "passthrough", r.passthrough != nil)
	return nil
}

// swencPassthroughCamera is a raw source that may deliver H.264 itself
// (V4L2Camera, which says so in Mode after Start).
type swencPassthroughCamera interface {
	VideoSource
	Mode() CameraMode
}

// RequestKeyframe makes the next encoded frame an IDR. It only sets a flag:
// the codec is told inside ReadAccessUnit, on the goroutine that encodes,
// because mediadevices' ForceKeyFrame writes C memory the encoder reads.
func (e *SoftwareEncoder) RequestKeyframe() {
	e.mu.Lock()
	r := e.run
	e.mu.Unlock()
	if r != nil && r.passthrough != nil {
		r.passthrough.RequestKeyframe()
		return
	}
	e.keyReq.Store(true)
}

// ProfileLevelID is the profile-level-id (RFC 6184, six hex digits) of the
// SPS the codec last wrote, "" before the first keyframe. openh264 cannot
// be told a profile or level through mediadevices and picks the level from
// size, rate and bitrate (42c016 at 640x480@15), so a sender that wants to
// signal exactly what it sends reads it here.
func (e *SoftwareEncoder) ProfileLevelID() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.run == nil {
		return ""
	}
	return e.run.profileLevelID
}

// Stop stops the raw source and frees the codec; a blocked ReadAccessUnit
// returns ErrSourceStopped. Start may be called again afterwards.
func (e *SoftwareEncoder) Stop() error {
	e.mu.Lock()
	r := e.run
	e.run = nil
	e.mu.Unlock()
	if r == nil {
		return nil
	}
	r.cancel()
	err := e.src.Stop()
	// The codec is freed only once no ReadAccessUnit is inside it: freeing
	// the C encoder under a running EncodeFrame would crash.
	e.readMu.Lock()
	cerr := r.closeCodec()
	r.closed = true
	e.readMu.Unlock()
	e.log.Debug("software encoder stopped", "frames", r.frames)
	if err != nil {
		return fmt.Errorf("software encoder: raw source: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("software encoder: close codec: %w", cerr)
	}
	return nil
}

func (r *swencRun) closeCodec() error {
	if r.enc == nil {
		return nil
	}
	err := r.enc.Close()
	r.enc = nil
	return err
}

// ReadAccessUnit reads the next raw frame and encodes it.
func (e *SoftwareEncoder) ReadAccessUnit(ctx context.Context) (AccessUnit, error) {
	e.readMu.Lock()
	defer e.readMu.Unlock()
	e.mu.Lock()
	r := e.run
	e.mu.Unlock()
	if r == nil || r.closed {
		return AccessUnit{}, ErrSourceStopped
	}
	// The raw source must also give up when Stop cancels the run.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.ctx, cancel)()

	if r.passthrough != nil {
		au, err := r.passthrough.ReadAccessUnit(rctx)
		if err != nil && r.ctx.Err() != nil && ctx.Err() == nil {
			return AccessUnit{}, ErrSourceStopped
		}
		return au, err
	}
	for {
		f, err := e.src.ReadFrame(rctx)
		if err != nil {
			if r.ctx.Err() != nil {
				return AccessUnit{}, ErrSourceStopped
			}
			if ctx.Err() != nil {
				return AccessUnit{}, ctx.Err()
			}
			return AccessUnit{}, fmt.Errorf("software encoder: raw source: %w", err)
		}
		au, ok, err := e.encode(r, f)
		if err != nil {
			return AccessUnit{}, err
		}
		if ok {
			return au, nil
		}
		// The codec dropped the frame (rate control); take the next one
		// rather than hand out an empty access unit.
	}
}

// encode converts f to I420 and runs the codec on it; ok is false when the
// codec produced nothing for this frame.
func (e *SoftwareEncoder) encode(r *swencRun, f RawFrame) (AccessUnit, bool, error) {
	if err := r.setPicture(f); err != nil {
		return AccessUnit{}, false, fmt.Errorf("software encoder: %w", err)
	}
	if r.enc == nil || r.encW != f.Width || r.encH != f.Height {
		if err := e.open(r, f.Width, f.Height); err != nil {
			return AccessUnit{}, false, err
		}
	}
	capture := f.CaptureTime
	if capture.IsZero() {
		capture = time.Now()
	}
	force := r.frames == 0 || e.keyReq.Swap(false) || capture.Sub(r.lastKey) >= r.cfg.KeyframeEvery
	if force {
		kc, ok := r.enc.Controller().(codec.KeyFrameController)
		if !ok {
			return AccessUnit{}, false, errors.New("software encoder: codec cannot force keyframes")
		}
		if err := kc.ForceKeyFrame(); err != nil {
			return AccessUnit{}, false, fmt.Errorf("software encoder: force keyframe: %w", err)
		}
	}
	data, release, err := r.enc.Read()
	if err != nil {
		return AccessUnit{}, false, fmt.Errorf("software encoder: encode %dx%d: %w", f.Width, f.Height, err)
	}
	release() // both codecs return a Go copy already
	if len(data) == 0 {
		if force {
			e.keyReq.Store(true) // the keyframe is still owed
		}
		return AccessUnit{}, false, nil
	}
	r.frames++
	key := false
	for _, nal := range SplitAnnexB(data) {
		switch H264NALType(nal) {
		case swencNALSPS:
			if !bytes.Equal(r.sps, nal) && len(nal) >= 4 {
				r.sps = append(r.sps[:0], nal...)
				plid := fmt.Sprintf("%02x%02x%02x", nal[1], nal[2], nal[3])
				e.mu.Lock()
				r.profileLevelID = plid
				e.mu.Unlock()
				e.log.Debug("software encoder SPS", "profile_level_id", plid)
			}
		case swencNALPPS:
			r.pps = append(r.pps[:0], nal...)
		case swencNALIDR:
			key = true
		}
	}
	if key {
		r.lastKey = capture
		data = e.withParameterSets(r, data)
		e.log.Debug("software encoder keyframe", "frame", r.frames, "bytes", len(data), "requested", force)
	} else if force {
		// Asked for an IDR and did not get one (should not happen with
		// either codec); keep asking rather than leave a receiver waiting.
		e.keyReq.Store(true)
	}
	return AccessUnit{Data: data, Keyframe: key, CaptureTime: capture, Duration: r.period}, true, nil
}

// withParameterSets puts SPS and PPS in front of an IDR that lacks them, so
// every keyframe is a valid starting point for a receiver that joins late.
func (e *SoftwareEncoder) withParameterSets(r *swencRun, au []byte) []byte {
	var hasSPS, hasPPS bool
	for _, nal := range SplitAnnexB(au) {
		switch H264NALType(nal) {
		case swencNALSPS:
			hasSPS = true
		case swencNALPPS:
			hasPPS = true
		}
	}
	if (hasSPS && hasPPS) || r.sps == nil || r.pps == nil {
		return au
	}
	out := make([]byte, 0, len(au)+len(r.sps)+len(r.pps)+8)
	startCode := []byte{0, 0, 0, 1}
	if !hasSPS {
		out = append(append(out, startCode...), r.sps...)
	}
	if !hasPPS {
		out = append(append(out, startCode...), r.pps...)
	}
	return append(out, au...)
}

// open (re)creates the codec for a width x height stream.
func (e *SoftwareEncoder) open(r *swencRun, width, height int) error {
	if err := r.closeCodec(); err != nil {
		e.log.Warn("software encoder: closing codec for a size change", "err", err)
	}
	kbps := r.cfg.BitrateKbps
	if kbps <= 0 {
		kbps = e.opts.BitrateKbps
	}
	if kbps <= 0 {
		kbps = int(float64(width*height*r.cfg.FPS)*swencBitsPerPixel/1000 + 0.5)
	}
	p := swencParams{
		Width: width, Height: height, FPS: r.cfg.FPS,
		BitrateBps: kbps * 1000,
		Threads:    e.opts.Threads,
		// A backstop well beyond the time-based keyframes.
		KeyframeFrames: max(2*r.cfg.FPS*int(r.cfg.KeyframeEvery/time.Second), 2*r.cfg.FPS),
	}
	enc, err := e.build(video.ReaderFunc(func() (image.Image, func(), error) {
		if r.pic == nil {
			return nil, func() {}, errors.New("no picture")
		}
		return r.pic, func() {}, nil
	}), p)
	if err != nil {
		return fmt.Errorf("software encoder: open %s %dx%d@%d %d kbit/s: %w", e.opts.Codec, width, height, r.cfg.FPS, kbps, err)
	}
	r.enc, r.encW, r.encH = enc, width, height
	r.lastKey = time.Time{}
	r.frames = 0
	e.log.Info("software encoder opened", "width", width, "height", height, "fps", r.cfg.FPS,
		"bitrate_kbps", kbps, "threads", e.opts.Threads)
	return nil
}

// setPicture makes r.pic a packed I420 picture (Y stride = width, chroma
// stride = width/2) of f. x264's bridge in mediadevices ignores strides, so
// every codec is handed packed planes; I420 frames that are already packed
// are used without a copy.
func (r *swencRun) setPicture(f RawFrame) error {
	w, h := f.Width, f.Height
	if w <= 0 || h <= 0 || w%2 != 0 || h%2 != 0 {
		return fmt.Errorf("frame %dx%d: width and height must be even and positive", w, h)
	}
	ySize, cSize := w*h, (w/2)*(h/2)
	stride := f.Stride
	switch f.FourCC {
	case FourCCYU12:
		if stride == 0 {
			stride = w
		}
		cStride := stride / 2
		need := stride*h + 2*cStride*(h/2)
		if stride < w || len(f.Data) < need {
			return fmt.Errorf("I420 frame %dx%d stride %d: %d bytes, want %d", w, h, stride, len(f.Data), need)
		}
		if stride == w {
			r.pic = swencI420Image(f.Data[:ySize+2*cSize], w, h)
			return nil
		}
		pic := r.picture(w, h)
		swencCopyPlane(pic.Y, w, f.Data, stride, w, h)
		cb := f.Data[stride*h:]
		cr := cb[cStride*(h/2):]
		swencCopyPlane(pic.Cb, w/2, cb, cStride, w/2, h/2)
		swencCopyPlane(pic.Cr, w/2, cr, cStride, w/2, h/2)
	case FourCCNV12:
		if stride == 0 {
			stride = w
		}
		need := stride*h + stride*(h/2)
		if stride < w || len(f.Data) < need {
			return fmt.Errorf("NV12 frame %dx%d stride %d: %d bytes, want %d", w, h, stride, len(f.Data), need)
		}
		pic := r.picture(w, h)
		swencCopyPlane(pic.Y, w, f.Data, stride, w, h)
		uv := f.Data[stride*h:]
		for y := 0; y < h/2; y++ {
			row := uv[y*stride : y*stride+w]
			cb, cr := pic.Cb[y*(w/2):], pic.Cr[y*(w/2):]
			for x := 0; x < w/2; x++ {
				cb[x], cr[x] = row[2*x], row[2*x+1]
			}
		}
	case FourCCYUYV:
		if stride == 0 {
			stride = 2 * w
		}
		if stride < 2*w || len(f.Data) < stride*h {
			return fmt.Errorf("YUYV frame %dx%d stride %d: %d bytes, want %d", w, h, stride, len(f.Data), stride*h)
		}
		pic := r.picture(w, h)
		for y := 0; y < h; y++ {
			row := f.Data[y*stride : y*stride+2*w]
			yo := pic.Y[y*w : (y+1)*w]
			for x := 0; x < w; x++ {
				yo[x] = row[2*x]
			}
			if y%2 != 0 {
				continue
			}
			// 4:2:2 → 4:2:0 by averaging each chroma pair of lines, which
			// is what a camera's own 4:2:0 output would have done.
			next := f.Data[(y+1)*stride : (y+1)*stride+2*w]
			cb, cr := pic.Cb[(y/2)*(w/2):], pic.Cr[(y/2)*(w/2):]
			for x := 0; x < w/2; x++ {
				cb[x] = byte((int(row[4*x+1]) + int(next[4*x+1]) + 1) >> 1)
				cr[x] = byte((int(row[4*x+3]) + int(next[4*x+3]) + 1) >> 1)
			}
		}
	case FourCCMJPG:
		img, err := jpeg.Decode(bytes.NewReader(f.Data))
		if err != nil {
			return fmt.Errorf("MJPEG frame: %w", err)
		}
		ycc, ok := img.(*image.YCbCr)
		if !ok || ycc.Rect.Dx() != w || ycc.Rect.Dy() != h {
			return fmt.Errorf("MJPEG frame: decoded %T %v, want YCbCr %dx%d", img, img.Bounds(), w, h)
		}
		pic := r.picture(w, h)
		swencCopyPlane(pic.Y, w, ycc.Y, ycc.YStride, w, h)
		// Sample chroma at each 2x2 block's top-left luma position,
		// whatever the JPEG's subsampling.
		for y := 0; y < h/2; y++ {
			for x := 0; x < w/2; x++ {
				o := ycc.COffset(2*x, 2*y)
				pic.Cb[y*(w/2)+x], pic.Cr[y*(w/2)+x] = ycc.Cb[o], ycc.Cr[o]
			}
		}
	case FourCCH264:
		return errors.New("the raw source delivers H.264: use it as a VideoSource directly, it needs no encoder")
	default:
		return fmt.Errorf("raw frame format %s not supported (YUYV, NV12, YU12, MJPG)", FourCCString(f.FourCC))
	}
	return nil
}

// picture returns r.pic backed by r's own buffer, sized for w x h.
func (r *swencRun) picture(w, h int) *image.YCbCr {
	n := w*h + 2*(w/2)*(h/2)
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	r.pic = swencI420Image(r.buf[:n], w, h)
	return r.pic
}

func swencI420Image(p []byte, w, h int) *image.YCbCr {
	ySize, cSize := w*h, (w/2)*(h/2)
	return &image.YCbCr{
		Y:              p[:ySize:ySize],
		Cb:             p[ySize : ySize+cSize : ySize+cSize],
		Cr:             p[ySize+cSize : ySize+2*cSize],
		YStride:        w,
		CStride:        w / 2,
		SubsampleRatio: image.YCbCrSubsampleRatio420,
		Rect:           image.Rect(0, 0, w, h),
	}
}

func swencCopyPlane(dst []byte, dstStride int, src []byte, srcStride, w, h int) {
	for y := 0; y < h; y++ {
		copy(dst[y*dstStride:y*dstStride+w], src[y*srcStride:y*srcStride+w])
	}
}
