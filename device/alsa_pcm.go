package device

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A small pure-Go ALSA PCM layer: the handful of ioctls a capture or
// playback stream needs (as go2rtc does), so that errors keep their errno
// (EPIPE = xrun, ENODEV = unplugged) and reads/writes can be cancelled
// (non-blocking fd + poll).

const (
	pcmAccessRWInterleaved = 3
	pcmFormatS16LE         = 2

	// hw_params parameter indexes.
	pcmParamAccess     = 0
	pcmParamFormat     = 1
	pcmParamSubformat  = 2
	pcmParamFirstIntvl = 8
	pcmParamSampleBits = 8
	pcmParamFrameBits  = 9
	pcmParamChannels   = 10
	pcmParamRate       = 11
	pcmParamPeriodSize = 13
	pcmParamPeriods    = 15
	pcmParamBufferSize = 17
	pcmParamLastIntvl  = 19

	intervalInteger = 1 << 2
)

type sndMask struct{ Bits [8]uint32 }

type sndInterval struct{ Min, Max, Flags uint32 }

// pcmHwParams is struct snd_pcm_hw_params; `uint` is snd_pcm_uframes_t
// (unsigned long) on 32- and 64-bit Linux alike.
type pcmHwParams struct {
	Flags     uint32
	Masks     [3]sndMask
	Mres      [5]sndMask
	Intervals [12]sndInterval
	Ires      [9]sndInterval
	Rmask     uint32
	Cmask     uint32
	Info      uint32
	Msbits    uint32
	RateNum   uint32
	RateDen   uint32
	FifoSize  uint
	Reserved  [64]byte
}

type pcmSwParams struct {
	TstampMode       int32
	PeriodStep       uint32
	SleepMin         uint32
	AvailMin         uint
	XferAlign        uint
	StartThreshold   uint
	StopThreshold    uint
	SilenceThreshold uint
	SilenceSize      uint
	Boundary         uint
	Proto            uint32
	TstampType       uint32
	Reserved         [56]byte
}

type pcmXferI struct {
	Result int
	Buf    uintptr
	Frames uint
}

func iocA(dir, nr, size uintptr) uintptr { return dir<<30 | size<<16 | uintptr('A')<<8 | nr }

var (
	sndrvPCMPVersion = iocA(2, 0x00, 4)
	sndrvPCMHwRefine = iocA(3, 0x10, unsafe.Sizeof(pcmHwParams{}))
	sndrvPCMHwParams = iocA(3, 0x11, unsafe.Sizeof(pcmHwParams{}))
	sndrvPCMSwParams = iocA(3, 0x13, unsafe.Sizeof(pcmSwParams{}))
	sndrvPCMPrepare  = iocA(0, 0x40, 0)
	sndrvPCMStart    = iocA(0, 0x42, 0)
	sndrvPCMDrop     = iocA(0, 0x43, 0)
	sndrvPCMResume   = iocA(0, 0x47, 0)
	sndrvPCMWriteI   = iocA(1, 0x50, unsafe.Sizeof(pcmXferI{}))
	sndrvPCMReadI    = iocA(2, 0x51, unsafe.Sizeof(pcmXferI{}))
)

func (p *pcmHwParams) interval(i int) *sndInterval { return &p.Intervals[i-pcmParamFirstIntvl] }

func (p *pcmHwParams) setMask(i int, bit uint) {
	p.Masks[i] = sndMask{}
	p.Masks[i].Bits[bit/32] = 1 << (bit % 32)
}

func (p *pcmHwParams) setInterval(i int, lo, hi uint32) {
	*p.interval(i) = sndInterval{Min: lo, Max: hi, Flags: intervalInteger}
}

func newHwParamsAny() pcmHwParams {
	var p pcmHwParams
	for i := range p.Masks {
		for j := range p.Masks[i].Bits {
			p.Masks[i].Bits[j] = ^uint32(0)
		}
	}
	for i := range p.Intervals {
		p.Intervals[i] = sndInterval{Min: 0, Max: ^uint32(0)}
	}
	p.Rmask = ^uint32(0)
	return p
}

// pcmStream is an open, configured PCM.
type pcmStream struct {
	name    string // for errors and logs: "hw:Loopback,0 (/dev/snd/pcmC0D0p)"
	fd      int
	capture bool
	rate    int
	chans   int
	period  int // frames
	buffer  int // frames
	buf     []byte
}

type pcmRequest struct {
	rate, chans   int
	periodFrames  int
	bufferPeriods int
}

func pcmIoctl(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}

// openPCM opens and negotiates: S16_LE interleaved; the channel count and
// rate asked for when the card has them, else the nearest it has (the
// caller converts).
func openPCM(name, path string, capture bool, want pcmRequest) (*pcmStream, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("alsa %s: open %s: %w", name, path, wrapALSAErr(err))
	}
	s := &pcmStream{name: name, fd: fd, capture: capture}
	if err := s.configure(want); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("alsa %s: %w", name, err)
	}
	return s, nil
}

func (s *pcmStream) refine(p *pcmHwParams) error {
	p.Rmask = ^uint32(0)
	p.Cmask = 0
	return pcmIoctl(s.fd, sndrvPCMHwRefine, unsafe.Pointer(p))
}

// try applies change and keeps it when the card accepts it.
func (s *pcmStream) try(p *pcmHwParams, change func(*pcmHwParams)) bool {
	t := *p
	change(&t)
	if s.refine(&t) != nil {
		return false
	}
	*p = t
	return true
}

func (s *pcmStream) configure(want pcmRequest) error {
	var proto uint32
	if err := pcmIoctl(s.fd, sndrvPCMPVersion, unsafe.Pointer(&proto)); err != nil {
		return fmt.Errorf("PVERSION: %w", err)
	}
	p := newHwParamsAny()
	if err := s.refine(&p); err != nil {
		return fmt.Errorf("HW_REFINE: %w", wrapALSAErr(err))
	}
	if !s.try(&p, func(p *pcmHwParams) { p.setMask(pcmParamAccess, pcmAccessRWInterleaved) }) {
		return errors.New("no interleaved read/write access")
	}
	if !s.try(&p, func(p *pcmHwParams) { p.setMask(pcmParamFormat, pcmFormatS16LE) }) {
		return errors.New("card does not do S16_LE")
	}
	for _, ch := range []int{want.chans, 3 - want.chans, 2, 1} {
		if ch >= 1 && s.try(&p, func(p *pcmHwParams) { p.setInterval(pcmParamChannels, uint32(ch), uint32(ch)) }) {
			break
		}
	}
	rateOK := false
	for _, r := range []int{want.rate, 48000, 44100, 32000, 16000, 8000, 96000} {
		if r > 0 && s.try(&p, func(p *pcmHwParams) { p.setInterval(pcmParamRate, uint32(r), uint32(r)) }) {
			rateOK = true
			break
		}
	}
	if !rateOK {
		// Whatever single rate it has.
		lo := p.interval(pcmParamRate).Min
		s.try(&p, func(p *pcmHwParams) { p.setInterval(pcmParamRate, lo, lo) })
	}
	rate := int(p.interval(pcmParamRate).Min)
	period := want.periodFrames * rate / max(want.rate, 1)
	if period <= 0 {
		period = rate / 50
	}
	if !s.try(&p, func(p *pcmHwParams) { p.setInterval(pcmParamPeriodSize, uint32(period), uint32(period)) }) {
		s.try(&p, func(p *pcmHwParams) { p.interval(pcmParamPeriodSize).Min = uint32(period) })
	}
	np := max(want.bufferPeriods, 2)
	if !s.try(&p, func(p *pcmHwParams) { p.setInterval(pcmParamPeriods, uint32(np), uint32(np)) }) {
		s.try(&p, func(p *pcmHwParams) { p.interval(pcmParamPeriods).Min = 2 })
	}
	if err := pcmIoctl(s.fd, sndrvPCMHwParams, unsafe.Pointer(&p)); err != nil {
		return fmt.Errorf("HW_PARAMS: %w", wrapALSAErr(err))
	}
	s.rate = int(p.interval(pcmParamRate).Min)
	s.chans = int(p.interval(pcmParamChannels).Min)
	s.period = int(p.interval(pcmParamPeriodSize).Min)
	s.buffer = int(p.interval(pcmParamBufferSize).Min)
	if s.rate == 0 || s.chans == 0 || s.period == 0 || s.buffer == 0 {
		return fmt.Errorf("HW_PARAMS left rate %d channels %d period %d buffer %d", s.rate, s.chans, s.period, s.buffer)
	}
	sw := pcmSwParams{
		PeriodStep:     1,
		AvailMin:       uint(s.period),
		XferAlign:      1,
		StartThreshold: uint(2 * s.period), // playback starts with two periods queued
		StopThreshold:  uint(s.buffer),     // empty (playback) / full (capture) is an xrun
		Proto:          proto,
	}
	if s.capture {
		sw.StartThreshold = 1
	}
	if err := pcmIoctl(s.fd, sndrvPCMSwParams, unsafe.Pointer(&sw)); err != nil {
		return fmt.Errorf("SW_PARAMS: %w", err)
	}
	s.buf = make([]byte, s.buffer*s.chans*2)
	return s.prepare()
}

func (s *pcmStream) prepare() error {
	if err := pcmIoctl(s.fd, sndrvPCMPrepare, nil); err != nil {
		return fmt.Errorf("PREPARE: %w", wrapALSAErr(err))
	}
	if s.capture {
		if err := pcmIoctl(s.fd, sndrvPCMStart, nil); err != nil {
			return fmt.Errorf("START: %w", wrapALSAErr(err))
		}
	}
	return nil
}

// recover handles an xrun (EPIPE) or a suspend (ESTRPIPE); other errors
// are returned as they are.
func (s *pcmStream) recover(err error) error {
	switch {
	case errors.Is(err, unix.EPIPE):
		return s.prepare()
	case errors.Is(err, unix.ESTRPIPE):
		for i := 0; i < 100; i++ {
			e := pcmIoctl(s.fd, sndrvPCMResume, nil)
			if e == nil {
				return nil
			}
			if !errors.Is(e, unix.EAGAIN) {
				break
			}
			unix.Nanosleep(&unix.Timespec{Nsec: 10e6}, nil)
		}
		return s.prepare()
	}
	return err
}

// wait polls for readiness for up to 50 ms, so ctx is checked often.
func (s *pcmStream) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ev := int16(unix.POLLOUT)
	if s.capture {
		ev = unix.POLLIN
	}
	fds := []unix.PollFd{{Fd: int32(s.fd), Events: ev}}
	_, err := unix.Poll(fds, 50)
	if err != nil && !errors.Is(err, unix.EINTR) {
		return err
	}
	return nil
}

// xfer moves up to frames frames between s.buf and the card; 0 frames and
// nil means "not ready yet". xruns are recovered and reported through onXrun.
func (s *pcmStream) xfer(frames int, onXrun func(error)) (int, error) {
	x := pcmXferI{Buf: uintptr(unsafe.Pointer(&s.buf[0])), Frames: uint(frames)}
	req := sndrvPCMWriteI
	if s.capture {
		req = sndrvPCMReadI
	}
	err := pcmIoctl(s.fd, req, unsafe.Pointer(&x))
	runtime.KeepAlive(s.buf)
	switch {
	case err == nil:
		return int(x.Frames), nil
	case errors.Is(err, unix.EAGAIN):
		return 0, nil
	case errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ESTRPIPE):
		onXrun(err)
		if rerr := s.recover(err); rerr != nil {
			return 0, fmt.Errorf("alsa %s: recover from %v: %w", s.name, err, rerr)
		}
		return 0, nil
	}
	return 0, fmt.Errorf("alsa %s: %w", s.name, wrapALSAErr(err))
}

func (s *pcmStream) close() error {
	pcmIoctl(s.fd, sndrvPCMDrop, nil)
	return unix.Close(s.fd)
}

func wrapALSAErr(err error) error {
	if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENXIO) {
		return errors.Join(ErrUnavailable, err)
	}
	return err
}
