package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// fourccUYVY is packed 4:2:2 with chroma first (some UVC and CSI bridges).
const fourccUYVY uint32 = 'U' | 'Y'<<8 | 'V'<<16 | 'Y'<<24

// EncodedCameraOptions tune an EncodedCamera.
type EncodedCameraOptions struct {
	// Encoder configures the pure-Go H.264 encoder for raw frames (the
	// zero value is its lossy mode at H264DefaultQP).
	Encoder H264EncoderOptions
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// EncodedCamera is the VideoSource of a camera: raw pictures (YUYV, UYVY,
// NV12, YU12, or MJPEG, decoded first) are converted to I420 and encoded with the pure-Go
// H264Encoder; a camera that delivers H.264 itself (a V4L2Camera whose
// Mode().FourCC is H264 after Start) is passed through untouched. Which of
// the two happens is decided on every Start, by the format the camera
// negotiated.
//
// The software encoder codes intra macroblocks only and skips unchanged
// ones: it suits small pictures (320x240 to 640x480) and mostly static
// scenes such as a door; the bitrate follows how much of the picture
// changes. RequestKeyframe makes the next access unit an IDR, and
// VideoConfig.KeyframeEvery adds periodic ones. Each access unit keeps the
// CaptureTime of its frame.
type EncodedCamera struct {
	src  RawFrameSource
	opts H264EncoderOptions
	log  *slog.Logger

	keyReq atomic.Bool

	mu          sync.Mutex // the state below; not held while reading the camera
	gen         uint64     // counts Starts and Stops: a frame read across one is dropped
	cfg         VideoConfig
	started     bool
	passthrough VideoSource // the camera itself when it delivers H.264
	fps         float64
	enc         *H264Encoder
	frame       *I420Frame
	lastIDR     time.Time
	lastSize    int
	format      uint32
}

// passthroughCamera is a RawFrameSource that can also deliver H.264 itself
// (V4L2Camera).
type passthroughCamera interface {
	VideoSource
	Mode() CameraMode
}

// NewEncodedCamera wraps src; src must not be used directly any more
// (Close it when done if it needs closing).
func NewEncodedCamera(src RawFrameSource, opts EncodedCameraOptions) *EncodedCamera {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &EncodedCamera{src: src, opts: opts.Encoder, log: log}
}

// Start starts the camera; the first access unit is an IDR.
func (e *EncodedCamera) Start(ctx context.Context, cfg VideoConfig) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.src.Start(ctx, cfg); err != nil {
		return err
	}
	e.cfg, e.started = cfg, true
	e.gen++
	e.passthrough, e.enc, e.format, e.lastSize = nil, nil, 0, 0
	e.fps = float64(cfg.FPS)
	if pc, ok := e.src.(passthroughCamera); ok {
		m := pc.Mode()
		if m.FPS > 0 {
			e.fps = m.FPS
		}
		if m.FourCC == FourCCH264 {
			e.passthrough = pc
			e.log.Info("camera delivers H.264: passthrough", "camera", m.Card)
		}
	}
	if e.fps <= 0 {
		e.fps = 25
	}
	e.keyReq.Store(false)
	return nil
}

// ReadAccessUnit reads the next frame and returns it as one H.264 access
// unit. A lost camera returns its error (wrapping ErrUnavailable). The
// camera is read without holding the lock, so Stop is never held up by a
// waiting reader.
func (e *EncodedCamera) ReadAccessUnit(ctx context.Context) (AccessUnit, error) {
	e.mu.Lock()
	started, pass, gen := e.started, e.passthrough, e.gen
	e.mu.Unlock()
	if !started {
		return AccessUnit{}, errors.New("encoded camera: not started")
	}
	if pass != nil {
		if e.keyReq.Swap(false) {
			pass.RequestKeyframe()
		}
		return pass.ReadAccessUnit(ctx)
	}
	f, err := e.src.ReadFrame(ctx)
	if err != nil {
		return AccessUnit{}, fmt.Errorf("encoded camera: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gen != gen || !e.started {
		return AccessUnit{}, errors.New("encoded camera: stopped")
	}
	return e.encodeLocked(f)
}

func (e *EncodedCamera) encodeLocked(f RawFrame) (AccessUnit, error) {
	w, h := f.Width&^1, f.Height&^1
	if w <= 0 || h <= 0 {
		return AccessUnit{}, fmt.Errorf("encoded camera: frame %dx%d too small", f.Width, f.Height)
	}
	if e.enc == nil || e.frame.Width != w || e.frame.Height != h || e.format != f.FourCC {
		fps := int(e.fps + 0.5)
		enc, err := NewH264Encoder(w, h, min(max(fps, 1), 120), e.opts)
		if err != nil {
			return AccessUnit{}, fmt.Errorf("encoded camera: %w", err)
		}
		e.enc, e.frame, e.format = enc, NewI420Frame(w, h), f.FourCC
		e.log.Info("camera: encoding raw frames in software", "format", FourCCString(f.FourCC),
			"width", w, "height", h, "fps", e.fps, "qp", enc.QP(), "lossless", enc.Lossless())
	}
	if err := ToI420(e.frame, f); err != nil {
		return AccessUnit{}, fmt.Errorf("encoded camera: %w", err)
	}
	force := e.keyReq.Swap(false)
	if e.cfg.KeyframeEvery > 0 && !e.lastIDR.IsZero() && time.Since(e.lastIDR) >= e.cfg.KeyframeEvery {
		force = true
	}
	// A fresh buffer per access unit: receivers (shared video, packetiser)
	// keep it after we return.
	data, key, err := e.enc.Encode(make([]byte, 0, e.lastSize+e.lastSize/4+64), e.frame, force)
	if err != nil {
		return AccessUnit{}, fmt.Errorf("encoded camera: %w", err)
	}
	e.lastSize = len(data)
	if key {
		e.lastIDR = time.Now()
	}
	return AccessUnit{Data: data, Keyframe: key, CaptureTime: f.CaptureTime,
		Duration: time.Duration(float64(time.Second) / e.fps)}, nil
}

// RequestKeyframe makes the next access unit an IDR.
func (e *EncodedCamera) RequestKeyframe() { e.keyReq.Store(true) }

// Stop stops the camera.
func (e *EncodedCamera) Stop() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.started = false
	e.gen++
	e.enc, e.passthrough = nil, nil
	return e.src.Stop()
}

// Mode reports the camera's mode when the camera can tell it.
func (e *EncodedCamera) Mode() (CameraMode, bool) {
	if pc, ok := e.src.(passthroughCamera); ok {
		return pc.Mode(), true
	}
	return CameraMode{}, false
}

// ToI420 converts a raw frame (YUYV, UYVY, NV12 or YU12 with the frame's
// Stride, 0 meaning tightly packed, or an MJPEG picture) into dst, whose
// size must be the frame's rounded down to even numbers. 4:2:2 chroma is
// averaged over each pair of lines. MJPEG (JFIF, full-range YCbCr) is
// decoded with image/jpeg, the Huffman tables UVC cameras leave out
// supplied, and scaled to the limited range the H.264 stream signals.
func ToI420(dst *I420Frame, f RawFrame) error {
	w, h := dst.Width, dst.Height
	if w != f.Width&^1 || h != f.Height&^1 {
		return fmt.Errorf("convert %s %dx%d into %dx%d", FourCCString(f.FourCC), f.Width, f.Height, w, h)
	}
	cw := w / 2
	switch f.FourCC {
	case FourCCYUYV, fourccUYVY:
		stride := f.Stride
		if stride == 0 {
			stride = f.Width * 2
		}
		if stride < w*2 || len(f.Data) < stride*(h-1)+w*2 {
			return shortFrame(f, stride*h)
		}
		yo, uo, vo := 0, 1, 3
		if f.FourCC == fourccUYVY {
			yo, uo, vo = 1, 0, 2
		}
		for y := 0; y < h; y += 2 {
			r0 := f.Data[y*stride : y*stride+w*2]
			r1 := f.Data[(y+1)*stride : (y+1)*stride+w*2]
			y0 := dst.Y[y*w : y*w+w]
			y1 := dst.Y[(y+1)*w : (y+1)*w+w]
			cb := dst.Cb[y/2*cw : y/2*cw+cw]
			cr := dst.Cr[y/2*cw : y/2*cw+cw]
			for x := 0; x < cw; x++ {
				p0, p1 := r0[x*4:x*4+4], r1[x*4:x*4+4]
				y0[2*x], y0[2*x+1] = p0[yo], p0[yo+2]
				y1[2*x], y1[2*x+1] = p1[yo], p1[yo+2]
				cb[x] = byte((int(p0[uo]) + int(p1[uo]) + 1) >> 1)
				cr[x] = byte((int(p0[vo]) + int(p1[vo]) + 1) >> 1)
			}
		}
	case FourCCNV12:
		stride := f.Stride
		if stride == 0 {
			stride = f.Width
		}
		// V4L2 single-planar NV12: the CbCr plane follows Height luma lines
		// of Stride bytes and has the same stride.
		uvOff := stride * f.Height
		if stride < w || len(f.Data) < uvOff+stride*(h/2-1)+w {
			return shortFrame(f, uvOff+stride*f.Height/2)
		}
		copyPlane(dst.Y, w, f.Data, stride, w, h)
		for y := 0; y < h/2; y++ {
			row := f.Data[uvOff+y*stride : uvOff+y*stride+w]
			cb := dst.Cb[y*cw : y*cw+cw]
			cr := dst.Cr[y*cw : y*cw+cw]
			for x := 0; x < cw; x++ {
				cb[x], cr[x] = row[2*x], row[2*x+1]
			}
		}
	case FourCCYU12:
		stride := f.Stride
		if stride == 0 {
			stride = f.Width
		}
		cs := stride / 2
		uOff := stride * f.Height
		vOff := uOff + cs*(f.Height/2)
		if stride < w || len(f.Data) < vOff+cs*(h/2-1)+cw {
			return shortFrame(f, vOff+cs*f.Height/2)
		}
		copyPlane(dst.Y, w, f.Data, stride, w, h)
		copyPlane(dst.Cb, cw, f.Data[uOff:], cs, cw, h/2)
		copyPlane(dst.Cr, cw, f.Data[vOff:], cs, cw, h/2)
	case FourCCMJPG:
		return mjpegToI420(dst, f)
	case FourCCH264:
		return errors.New("convert: the frame is H.264 already (pass it through)")
	default:
		return fmt.Errorf("convert: pixel format %s is not supported (YUYV, UYVY, NV12, YU12, MJPG; set camera.formats)", FourCCString(f.FourCC))
	}
	return nil
}

// mjpegToI420 decodes one MJPEG frame into dst.
func mjpegToI420(dst *I420Frame, f RawFrame) error {
	img, err := jpeg.Decode(bytes.NewReader(withJPEGHuffmanTables(f.Data)))
	if err != nil {
		return fmt.Errorf("convert: MJPEG frame (%d bytes): %w", len(f.Data), err)
	}
	b := img.Bounds()
	if b.Dx() != f.Width || b.Dy() != f.Height {
		return fmt.Errorf("convert: MJPEG picture is %dx%d, the camera said %dx%d", b.Dx(), b.Dy(), f.Width, f.Height)
	}
	w, h, cw := dst.Width, dst.Height, dst.Width/2
	lut := jpegRangeLUT()
	switch m := img.(type) {
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			row := m.Y[m.YOffset(b.Min.X, b.Min.Y+y):]
			out := dst.Y[y*w : y*w+w]
			for x := range out {
				out[x] = lut.y[row[x]]
			}
		}
		for cy := 0; cy < h/2; cy++ {
			for cx := 0; cx < cw; cx++ {
				x, y := b.Min.X+2*cx, b.Min.Y+2*cy
				o := [4]int{m.COffset(x, y), m.COffset(x+1, y), m.COffset(x, y+1), m.COffset(x+1, y+1)}
				cb := (int(m.Cb[o[0]]) + int(m.Cb[o[1]]) + int(m.Cb[o[2]]) + int(m.Cb[o[3]]) + 2) >> 2
				cr := (int(m.Cr[o[0]]) + int(m.Cr[o[1]]) + int(m.Cr[o[2]]) + int(m.Cr[o[3]]) + 2) >> 2
				dst.Cb[cy*cw+cx], dst.Cr[cy*cw+cx] = lut.c[cb], lut.c[cr]
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			out := dst.Y[y*w : y*w+w]
			for x := range out {
				out[x] = lut.y[row[x]]
			}
		}
		for i := range dst.Cb {
			dst.Cb[i], dst.Cr[i] = 128, 128
		}
	default:
		return fmt.Errorf("convert: MJPEG picture decodes to %T, not YCbCr", img)
	}
	return nil
}

// jpegRangeLUT maps JFIF full-range samples to the limited range (luma
// 16-235, chroma 16-240) of BT.601 video.
var jpegRangeLUT = sync.OnceValue(func() *struct{ y, c [256]byte } {
	t := new(struct{ y, c [256]byte })
	for i := range 256 {
		t.y[i] = byte(16 + (i*219+127)/255)
		t.c[i] = byte(16 + (i*224+127)/255)
	}
	return t
})

// withJPEGHuffmanTables puts the standard Huffman tables (ITU T.81 K.3)
// after the SOI marker of a JPEG that has none: UVC MJPEG cameras omit
// them, as the USB video class allows. Other JPEGs are returned as is.
func withJPEGHuffmanTables(b []byte) []byte {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return b
	}
	// Walk the marker segments up to the scan.
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xFF {
			return b
		}
		marker := b[i+1]
		switch {
		case marker == 0xC4: // DHT
			return b
		case marker == 0xDA: // SOS: no tables before the scan
			dht := standardJPEGDHT()
			out := make([]byte, 0, len(b)+len(dht))
			out = append(append(append(out, b[:2]...), dht...), b[2:]...)
			return out
		case marker == 0xFF:
			i++ // fill byte
			continue
		case marker >= 0xD0 && marker <= 0xD7 || marker == 0x01:
			i += 2
			continue
		}
		i += 2 + (int(b[i+2])<<8 | int(b[i+3]))
	}
	return b
}

// standardJPEGDHT is the DHT segment with the four standard tables, taken
// from what image/jpeg's encoder writes (it always uses them).
var standardJPEGDHT = sync.OnceValue(func() []byte {
	var buf bytes.Buffer
	// A colour picture, so that the chrominance tables are written too.
	if err := jpeg.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 8, 8)), nil); err != nil {
		panic(err)
	}
	b := buf.Bytes()
	var dht []byte
	for i := 2; i+4 <= len(b) && b[i] == 0xFF && b[i+1] != 0xDA; {
		n := int(b[i+2])<<8 | int(b[i+3])
		if b[i+1] == 0xC4 {
			dht = append(dht, b[i:i+2+n]...)
		}
		i += 2 + n
	}
	return dht
})

func copyPlane(dst []byte, dstStride int, src []byte, srcStride, w, h int) {
	for y := 0; y < h; y++ {
		copy(dst[y*dstStride:y*dstStride+w], src[y*srcStride:y*srcStride+w])
	}
}

func shortFrame(f RawFrame, want int) error {
	return fmt.Errorf("convert: %s %dx%d stride %d: %d bytes, want %d", FourCCString(f.FourCC), f.Width, f.Height, f.Stride, len(f.Data), want)
}

var _ VideoSource = (*EncodedCamera)(nil)
