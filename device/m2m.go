package device

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// M2MEncoderOptions configure a V4L2 memory-to-memory (stateful) encoder.
type M2MEncoderOptions struct {
	// Device is a path (/dev/video11) or a driver or card name as
	// VIDIOC_QUERYCAP reports it ("bcm2835-codec-encode" or "bcm2835-codec"
	// on a Pi 0-4, "vicodec" in the VM rig). Among the nodes with that
	// name, the one whose CAPTURE queue produces Codec and whose OUTPUT
	// queue takes a raw format is used (vicodec's decoders share its name).
	// Empty: the first such encoder of any name.
	Device string
	// Codec is the coded CAPTURE format: FourCCH264 (default) or FourCCFWHT.
	Codec uint32
	// Width and Height of the raw frames (required).
	Width, Height int
	// FPS is the nominal frame rate given to the driver (VIDIOC_S_PARM);
	// 0 leaves the driver's.
	FPS int
	// Bitrate in bit/s (V4L2_CID_MPEG_VIDEO_BITRATE); 0 = driver default.
	Bitrate int
	// GOP is the keyframe period in frames (H264_I_PERIOD, or GOP_SIZE
	// where the driver has only that); 0 = driver default.
	GOP int
	// Profile ("baseline", "constrained-baseline", "main", "high") and
	// Level ("3.1", "4.0", ...) of H.264; empty = driver default.
	Profile, Level string
	// RawFormats is the OUTPUT format preference (default YU12, NV12).
	RawFormats []uint32
	// Buffers per queue (default 2; the encode is synchronous).
	Buffers int
	// Timeout for one frame to come back (default 2 s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// M2MPacket is one encoded frame.
type M2MPacket struct {
	Data     []byte
	Keyframe bool   // V4L2_BUF_FLAG_KEYFRAME on the CAPTURE buffer
	Flags    uint32 // the CAPTURE buffer's V4L2_BUF_FLAG_*
	Sequence uint32
}

// M2MInfo is what an opened encoder negotiated.
type M2MInfo struct {
	Path, Driver, Card string
	MultiPlanar        bool
	RawFormat, Codec   uint32
	Width, Height      int    // granted (coded) OUTPUT size
	Visible            [2]int // the encoded rectangle (OUTPUT crop)
	Stride             int
	Controls           []string // set
	Skipped            []string // wanted but absent on this driver
	ForceKeyControl    bool     // false: forced keyframes restart the CAPTURE queue
}

type m2mBuf struct {
	mem    []byte
	length uint32
}

// M2MEncoder drives a stateful V4L2 memory-to-memory encoder: raw frames
// are queued on its OUTPUT queue, compressed ones dequeued from CAPTURE,
// both MMAP. Encode is synchronous (one frame in, its compressed buffers
// out) and safe for concurrent use (calls are serialized).
type M2MEncoder struct {
	mu      sync.Mutex
	fd      int
	name    string // for errors: path (driver/card)
	info    M2MInfo
	outType uint32
	capType uint32
	layout  m2mRawLayout
	out     []m2mBuf
	cap     []m2mBuf
	timeout time.Duration
	log     *slog.Logger
	seq     int64
	closed  bool
}

var m2mDevGlob = "/dev/video*"

// OpenM2MEncoder finds, configures and starts an encoder. A device that is
// not there is an error wrapping ErrUnavailable.
func OpenM2MEncoder(o M2MEncoderOptions) (*M2MEncoder, error) {
	if o.Codec == 0 {
		o.Codec = FourCCH264
	}
	if len(o.RawFormats) == 0 {
		o.RawFormats = []uint32{FourCCYU12, FourCCNV12}
	}
	if o.Buffers <= 0 {
		o.Buffers = 2
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if o.Width <= 0 || o.Height <= 0 || o.Width%2 != 0 || o.Height%2 != 0 {
		return nil, fmt.Errorf("m2m encoder %q: bad size %dx%d (even, positive)", o.Device, o.Width, o.Height)
	}
	path, vi, err := findM2MEncoder(o.Device, o.Codec, o.RawFormats)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("m2m encoder %s: %w", path, errors.Join(ErrUnavailable, err))
	}
	e := &M2MEncoder{fd: fd, name: fmt.Sprintf("%s (%s/%s)", path, vi.Driver, vi.Card), timeout: o.Timeout, log: log}
	e.info = M2MInfo{Path: path, Driver: vi.Driver, Card: vi.Card, Codec: o.Codec}
	if err := e.setup(o, vi); err != nil {
		e.Close()
		return nil, fmt.Errorf("m2m encoder %s: %w", e.name, err)
	}
	log.Info("m2m encoder started", "device", path, "driver", vi.Driver, "card", vi.Card,
		"raw", FourCCString(e.info.RawFormat), "codec", FourCCString(o.Codec),
		"size", fmt.Sprintf("%dx%d", e.info.Visible[0], e.info.Visible[1]),
		"coded", fmt.Sprintf("%dx%d", e.info.Width, e.info.Height), "mplane", e.info.MultiPlanar,
		"controls", e.info.Controls)
	return e, nil
}

// findM2MEncoder resolves dev (path, name or "") to an encoder node.
func findM2MEncoder(dev string, codec uint32, raw []uint32) (string, v4l2Info, error) {
	isEncoder := func(p string) (v4l2Info, error) {
		fd, err := unix.Open(p, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return v4l2Info{}, err
		}
		defer unix.Close(fd)
		vi, err := v4l2QueryFD(fd)
		if err != nil {
			return vi, err
		}
		outT, capT, _, err := m2mQueueTypes(vi.DeviceCaps)
		if err != nil {
			return vi, err
		}
		if c := v4l2EnumFormats(fd, capT); !hasFourCC(c, codec) {
			return vi, fmt.Errorf("does not produce %s (CAPTURE: %s)", FourCCString(codec), fourccList(c))
		}
		if _, err := pickM2MRawFormat(v4l2EnumFormats(fd, outT), raw); err != nil {
			return vi, err
		}
		return vi, nil
	}
	if strings.HasPrefix(dev, "/") {
		vi, err := isEncoder(dev)
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) {
				return "", vi, fmt.Errorf("m2m encoder %s: %w", dev, errors.Join(ErrUnavailable, err))
			}
			return "", vi, fmt.Errorf("m2m encoder %s: %w", dev, err)
		}
		return dev, vi, nil
	}
	paths, _ := filepath.Glob(m2mDevGlob)
	sort.Slice(paths, func(i, j int) bool { return devNum(paths[i]) < devNum(paths[j]) })
	var seen []string
	for _, p := range paths {
		vi, err := isEncoder(p)
		if vi.Driver != "" {
			seen = append(seen, fmt.Sprintf("%s=%s/%s", p, vi.Driver, vi.Card))
		}
		if err != nil {
			continue
		}
		if dev == "" || vi.Driver == dev || vi.Card == dev {
			return p, vi, nil
		}
	}
	what := dev
	if what == "" {
		what = "(any)"
	}
	return "", v4l2Info{}, fmt.Errorf("m2m encoder %q: no %s encoder with that driver or card name (video nodes: %s): %w",
		what, FourCCString(codec), strings.Join(seen, ", "), ErrUnavailable)
}

func devNum(p string) int {
	n := 0
	for _, c := range strings.TrimPrefix(filepath.Base(p), "video") {
		if c < '0' || c > '9' {
			return 1 << 30
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func (e *M2MEncoder) setup(o M2MEncoderOptions, vi v4l2Info) error {
	var err error
	e.outType, e.capType, e.info.MultiPlanar, err = m2mQueueTypes(vi.DeviceCaps)
	if err != nil {
		return err
	}
	raw, err := pickM2MRawFormat(v4l2EnumFormats(e.fd, e.outType), o.RawFormats)
	if err != nil {
		return err
	}
	e.info.RawFormat = raw
	// The stateful encoder sequence: CAPTURE (coded) format first, then
	// OUTPUT (raw), then controls and buffers.
	if _, err := e.setFormat(e.capType, o.Codec, o.Width, o.Height); err != nil {
		return fmt.Errorf("CAPTURE format %s: %w", FourCCString(o.Codec), err)
	}
	g, err := e.setFormat(e.outType, raw, o.Width, o.Height)
	if err != nil {
		return fmt.Errorf("OUTPUT format %s: %w", FourCCString(raw), err)
	}
	if g.fourcc != raw {
		return fmt.Errorf("OUTPUT format: asked %s, got %s", FourCCString(raw), FourCCString(g.fourcc))
	}
	if g.w < o.Width || g.h < o.Height {
		return fmt.Errorf("OUTPUT format: asked %dx%d, got %dx%d", o.Width, o.Height, g.w, g.h)
	}
	if e.layout, err = newM2MRawLayout(raw, g.w, g.h, g.bpl, g.size); err != nil {
		return err
	}
	e.info.Width, e.info.Height, e.info.Stride = g.w, g.h, g.bpl
	e.info.Visible = [2]int{g.w, g.h}
	if g.w != o.Width || g.h != o.Height {
		// An encoder that aligns the coded size (bcm2835-codec: 16 lines;
		// vicodec: at least 640x360) encodes the visible rectangle set as
		// the OUTPUT crop. Selection takes the single-planar type.
		sel := v4l2Selection{Type: v4l2BufTypeVideoOutput, Target: v4l2SelTgtCrop, Width: uint32(o.Width), Height: uint32(o.Height)}
		if err := ioctlRetry(e.fd, vidiocSSelection, unsafe.Pointer(&sel)); err != nil {
			e.log.Debug("m2m encoder: cannot crop to the frame size", "device", e.info.Path,
				"coded", fmt.Sprintf("%dx%d", g.w, g.h), "err", err)
		} else {
			e.info.Visible = [2]int{int(sel.Width), int(sel.Height)}
		}
	}
	if o.FPS > 0 {
		p := v4l2StreamParmOut{Type: e.outType}
		p.TimePerFrame.Numerator, p.TimePerFrame.Denominator = 1, uint32(o.FPS)
		if err := ioctlRetry(e.fd, vidiocSParm, unsafe.Pointer(&p)); err != nil {
			e.log.Debug("m2m encoder: frame rate not settable", "device", e.info.Path, "err", err)
		}
	}
	ctrls, skipped, err := m2mControls(o, e.hasControl)
	if err != nil {
		return err
	}
	for _, c := range ctrls {
		if err := e.setControl(c.ID, c.Value); err != nil {
			return fmt.Errorf("control %s=%d: %w", c.Name, c.Value, err)
		}
		e.info.Controls = append(e.info.Controls, fmt.Sprintf("%s=%d", c.Name, c.Value))
	}
	for _, s := range skipped {
		e.log.Debug("m2m encoder: driver has no such control, skipped", "device", e.info.Path, "control", s)
	}
	e.info.Skipped = skipped
	e.info.ForceKeyControl = e.hasControl(v4l2CIDForceKeyFrame)

	if e.out, err = e.allocBuffers(e.outType, o.Buffers); err != nil {
		return fmt.Errorf("OUTPUT buffers: %w", err)
	}
	if e.cap, err = e.allocBuffers(e.capType, o.Buffers); err != nil {
		return fmt.Errorf("CAPTURE buffers: %w", err)
	}
	return e.startCapture(true)
}

type m2mGranted struct {
	fourcc    uint32
	w, h, bpl int
	size      int
}

func (e *M2MEncoder) setFormat(t, fourcc uint32, w, h int) (m2mGranted, error) {
	f := v4l2Format{Type: t}
	if t == v4l2BufTypeVideoOutputMPlane || t == v4l2BufTypeVideoCaptureMPlane {
		mp := (*v4l2PixFormatMPlane)(unsafe.Pointer(&f.Fmt[0]))
		mp.Width, mp.Height, mp.PixelFormat, mp.Field, mp.NumPlanes = uint32(w), uint32(h), fourcc, v4l2FieldNone, 1
		if err := ioctlRetry(e.fd, vidiocSFmt, unsafe.Pointer(&f)); err != nil {
			return m2mGranted{}, fmt.Errorf("VIDIOC_S_FMT: %w", err)
		}
		if mp.NumPlanes != 1 {
			return m2mGranted{}, fmt.Errorf("%s in %d memory planes (one supported)", FourCCString(mp.PixelFormat), mp.NumPlanes)
		}
		return m2mGranted{mp.PixelFormat, int(mp.Width), int(mp.Height), int(mp.PlaneFmt[0].BytesPerLine), int(mp.PlaneFmt[0].SizeImage)}, nil
	}
	pf := (*v4l2PixFormat)(unsafe.Pointer(&f.Fmt[0]))
	pf.Width, pf.Height, pf.PixelFormat, pf.Field = uint32(w), uint32(h), fourcc, v4l2FieldNone
	if err := ioctlRetry(e.fd, vidiocSFmt, unsafe.Pointer(&f)); err != nil {
		return m2mGranted{}, fmt.Errorf("VIDIOC_S_FMT: %w", err)
	}
	return m2mGranted{pf.PixelFormat, int(pf.Width), int(pf.Height), int(pf.BytesPerLine), int(pf.SizeImage)}, nil
}

func (e *M2MEncoder) hasControl(id uint32) bool {
	q := v4l2QueryCtrl{ID: id}
	if err := ioctlRetry(e.fd, vidiocQueryCtrl, unsafe.Pointer(&q)); err != nil {
		return false
	}
	return q.Flags&v4l2CtrlFlagDisabled == 0
}

func (e *M2MEncoder) setControl(id uint32, v int32) error {
	c := v4l2Control{ID: id, Value: v}
	if err := ioctlRetry(e.fd, vidiocSCtrl, unsafe.Pointer(&c)); err != nil {
		return fmt.Errorf("VIDIOC_S_CTRL: %w", err)
	}
	return nil
}

func (e *M2MEncoder) mplane() bool { return e.info.MultiPlanar }

// newBuf returns a v4l2_buffer for queue t, index i, with its plane array
// wired up on multi-planar queues (the plane must outlive the ioctl).
func (e *M2MEncoder) newBuf(t uint32, i uint32, plane *v4l2Plane) v4l2Buffer {
	b := v4l2Buffer{Index: i, Type: t, Memory: v4l2MemoryMMAP}
	if e.mplane() {
		b.M = uintptr(unsafe.Pointer(plane))
		b.Length = 1
	}
	return b
}

func (e *M2MEncoder) allocBuffers(t uint32, n int) ([]m2mBuf, error) {
	rb := v4l2RequestBuffers{Count: uint32(n), Type: t, Memory: v4l2MemoryMMAP}
	if err := ioctlRetry(e.fd, vidiocReqBufs, unsafe.Pointer(&rb)); err != nil {
		return nil, fmt.Errorf("VIDIOC_REQBUFS: %w", err)
	}
	if rb.Count == 0 {
		return nil, errors.New("VIDIOC_REQBUFS granted no buffers")
	}
	bufs := make([]m2mBuf, rb.Count)
	for i := range bufs {
		var pl v4l2Plane
		b := e.newBuf(t, uint32(i), &pl)
		if err := ioctlRetry(e.fd, vidiocQueryBuf, unsafe.Pointer(&b)); err != nil {
			return bufs, fmt.Errorf("VIDIOC_QUERYBUF %d: %w", i, err)
		}
		off, length := int64(b.M), b.Length
		if e.mplane() {
			off, length = int64(pl.M), pl.Length
		}
		mem, err := unix.Mmap(e.fd, off, int(length), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return bufs, fmt.Errorf("mmap buffer %d: %w", i, err)
		}
		bufs[i] = m2mBuf{mem: mem, length: length}
	}
	return bufs, nil
}

// startCapture queues every CAPTURE buffer and starts the queue (and, the
// first time, the OUTPUT queue).
func (e *M2MEncoder) startCapture(first bool) error {
	for i := range e.cap {
		var pl v4l2Plane
		b := e.newBuf(e.capType, uint32(i), &pl)
		if e.mplane() {
			pl.Length = e.cap[i].length
		} else {
			b.Length = e.cap[i].length
		}
		if err := ioctlRetry(e.fd, vidiocQBuf, unsafe.Pointer(&b)); err != nil {
			return fmt.Errorf("VIDIOC_QBUF CAPTURE %d: %w", i, err)
		}
	}
	t := int32(e.capType)
	if err := ioctlRetry(e.fd, vidiocStreamOn, unsafe.Pointer(&t)); err != nil {
		return fmt.Errorf("VIDIOC_STREAMON CAPTURE: %w", err)
	}
	if first {
		t = int32(e.outType)
		if err := ioctlRetry(e.fd, vidiocStreamOn, unsafe.Pointer(&t)); err != nil {
			return fmt.Errorf("VIDIOC_STREAMON OUTPUT: %w", err)
		}
	}
	return nil
}

// restartCapture is the stateful encoder's reset (STREAMOFF/STREAMON on
// CAPTURE): the next frame starts a new stream, i.e. is a keyframe. Used
// for forced keyframes on drivers without V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME.
func (e *M2MEncoder) restartCapture() error {
	t := int32(e.capType)
	if err := ioctlRetry(e.fd, vidiocStreamOff, unsafe.Pointer(&t)); err != nil {
		return fmt.Errorf("VIDIOC_STREAMOFF CAPTURE: %w", err)
	}
	return e.startCapture(false)
}

// Info reports what was negotiated.
func (e *M2MEncoder) Info() M2MInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := e.info
	i.Controls = append([]string(nil), i.Controls...)
	i.Skipped = append([]string(nil), i.Skipped...)
	return i
}

// SetBitrate changes the bitrate while encoding (where the driver has the
// control).
func (e *M2MEncoder) SetBitrate(bps int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.hasControl(v4l2CIDBitrate) {
		return fmt.Errorf("m2m encoder %s: no bitrate control", e.name)
	}
	if err := e.setControl(v4l2CIDBitrate, int32(bps)); err != nil {
		return fmt.Errorf("m2m encoder %s: bitrate %d: %w", e.name, bps, err)
	}
	return nil
}

// Encode compresses one frame. forceKey asks for a keyframe (a PLI):
// through V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME where the driver has it,
// otherwise by restarting the CAPTURE queue. The CAPTURE buffers that
// come back up to the one carrying this frame's timestamp are joined (an
// H.264 encoder may return its SPS/PPS in a buffer of its own).
func (e *M2MEncoder) Encode(f *I420Frame, forceKey bool) (M2MPacket, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return M2MPacket{}, fmt.Errorf("m2m encoder %s: closed", e.name)
	}
	p, err := e.encode(f, forceKey)
	if err != nil {
		if errors.Is(err, unix.ENODEV) {
			err = errors.Join(ErrUnavailable, err)
		}
		return p, fmt.Errorf("m2m encoder %s: %w", e.name, err)
	}
	return p, nil
}

func (e *M2MEncoder) encode(f *I420Frame, forceKey bool) (M2MPacket, error) {
	if f.Width > e.info.Width || f.Height > e.info.Height {
		return M2MPacket{}, fmt.Errorf("frame %dx%d larger than the negotiated %dx%d", f.Width, f.Height, e.info.Width, e.info.Height)
	}
	if forceKey {
		if e.info.ForceKeyControl {
			if err := e.setControl(v4l2CIDForceKeyFrame, 1); err != nil {
				return M2MPacket{}, fmt.Errorf("force keyframe: %w", err)
			}
		} else if err := e.restartCapture(); err != nil {
			return M2MPacket{}, fmt.Errorf("force keyframe: %w", err)
		}
	}
	// Synchronous: OUTPUT buffer 0 is always free here.
	const idx = 0
	e.layout.fill(e.out[idx].mem, f)
	e.seq++
	ts := unix.NsecToTimeval(e.seq * int64(time.Millisecond))
	var pl v4l2Plane
	b := e.newBuf(e.outType, idx, &pl)
	b.Field = v4l2FieldNone
	b.Timestamp = ts
	size := uint32(e.layout.SizeImage)
	if e.mplane() {
		pl.BytesUsed, pl.Length = size, e.out[idx].length
	} else {
		b.BytesUsed, b.Length = size, e.out[idx].length
	}
	if err := ioctlRetry(e.fd, vidiocQBuf, unsafe.Pointer(&b)); err != nil {
		return M2MPacket{}, fmt.Errorf("VIDIOC_QBUF OUTPUT: %w", err)
	}
	deadline := time.Now().Add(e.timeout)
	var pkt M2MPacket
	for done := false; !done; {
		cb, data, err := e.dequeue(e.capType, unix.POLLIN, deadline)
		if err != nil {
			return pkt, fmt.Errorf("CAPTURE: %w", err)
		}
		if cb.Flags&v4l2BufFlagError != 0 {
			err = fmt.Errorf("CAPTURE buffer %d flagged as error", cb.Index)
		}
		pkt.Data = append(pkt.Data, e.cap[cb.Index].mem[data[0]:data[1]]...)
		pkt.Flags |= cb.Flags
		pkt.Sequence = cb.Sequence
		done = cb.Timestamp == ts || err != nil
		// Hand the buffer back for the next frame.
		var qpl v4l2Plane
		qb := e.newBuf(e.capType, cb.Index, &qpl)
		if e.mplane() {
			qpl.Length = e.cap[cb.Index].length
		} else {
			qb.Length = e.cap[cb.Index].length
		}
		if qerr := ioctlRetry(e.fd, vidiocQBuf, unsafe.Pointer(&qb)); qerr != nil {
			return pkt, fmt.Errorf("VIDIOC_QBUF CAPTURE: %w", qerr)
		}
		if err != nil {
			return pkt, err
		}
	}
	pkt.Keyframe = pkt.Flags&v4l2BufFlagKeyframe != 0
	if e.info.Codec == FourCCFWHT {
		// vicodec flags keyframes only in its FWHT header (its encoder
		// leaves V4L2_BUF_FLAG_KEYFRAME to the decoder side).
		pkt.Keyframe = pkt.Keyframe || fwhtIsIntra(pkt.Data)
	}
	if _, _, err := e.dequeue(e.outType, unix.POLLOUT, deadline); err != nil {
		return pkt, fmt.Errorf("OUTPUT: %w", err)
	}
	return pkt, nil
}

// dequeue waits (poll) for a buffer of queue t and returns it with the
// [start, end) of its payload.
func (e *M2MEncoder) dequeue(t uint32, ev int16, deadline time.Time) (v4l2Buffer, [2]uint32, error) {
	for {
		var pl v4l2Plane
		b := e.newBuf(t, 0, &pl)
		err := ioctlPtr(e.fd, vidiocDQBuf, unsafe.Pointer(&b))
		if err == nil {
			if int(b.Index) >= len(e.cap) && t == e.capType || int(b.Index) >= len(e.out) && t == e.outType {
				return b, [2]uint32{}, fmt.Errorf("VIDIOC_DQBUF: index %d out of range", b.Index)
			}
			if e.mplane() {
				start := min(pl.DataOffset, pl.BytesUsed)
				return b, [2]uint32{start, pl.BytesUsed}, nil
			}
			return b, [2]uint32{0, b.BytesUsed}, nil
		}
		if err == unix.EPIPE {
			return b, [2]uint32{}, fmt.Errorf("VIDIOC_DQBUF: the encoder has stopped (EPIPE)")
		}
		if err != unix.EAGAIN && err != unix.EINTR {
			return b, [2]uint32{}, fmt.Errorf("VIDIOC_DQBUF: %w", err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return b, [2]uint32{}, fmt.Errorf("no buffer within %v", e.timeout)
		}
		fds := []unix.PollFd{{Fd: int32(e.fd), Events: ev}}
		if _, err := unix.Poll(fds, int(left/time.Millisecond)+1); err != nil && err != unix.EINTR {
			return b, [2]uint32{}, fmt.Errorf("poll: %w", err)
		}
		if fds[0].Revents&unix.POLLERR != 0 && fds[0].Revents&ev == 0 {
			// POLLERR alone: nothing queued or not streaming; DQBUF says which.
			var pl2 v4l2Plane
			b2 := e.newBuf(t, 0, &pl2)
			if err := ioctlPtr(e.fd, vidiocDQBuf, unsafe.Pointer(&b2)); err != nil && err != unix.EAGAIN {
				return b2, [2]uint32{}, fmt.Errorf("VIDIOC_DQBUF: %w", err)
			}
			if time.Until(deadline) <= 0 {
				return b, [2]uint32{}, fmt.Errorf("poll error, no buffer within %v", e.timeout)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// Close stops both queues and releases the device.
func (e *M2MEncoder) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	for _, t := range []uint32{e.outType, e.capType} {
		if t != 0 {
			v := int32(t)
			_ = ioctlRetry(e.fd, vidiocStreamOff, unsafe.Pointer(&v))
		}
	}
	for _, bs := range [][]m2mBuf{e.out, e.cap} {
		for _, b := range bs {
			if b.mem != nil {
				_ = unix.Munmap(b.mem)
			}
		}
	}
	err := unix.Close(e.fd)
	if err != nil {
		return fmt.Errorf("m2m encoder %s: close: %w", e.name, os.NewSyscallError("close", err))
	}
	return nil
}
