package device

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Subprocess is a VideoSource that runs an encoder program writing Annex-B
// H.264 to stdout, for example
//
//	rpicam-vid -t 0 -n --inline --flush --codec h264 --profile baseline --width {width} --height {height} --framerate {fps} --intra {keyframe_frames} -o -
//	ffmpeg -f v4l2 -i /dev/video0 -c:v libx264 -tune zerolatency -g {keyframe_frames} -flush_packets 1 -f h264 -
//
// It splits the stream into access units (see h264AUSplitter: AUD and
// first_mb_in_slice boundaries, SPS/PPS put in front of IDRs that lack
// them, nothing before the first IDR), restarts the program with
// exponential backoff when it exits, logs its stderr through slog, and
// kills its whole process group on Stop or when the Start context ends.
//
// RequestKeyframe is best effort. Neither rpicam-vid nor ffmpeg can be asked
// for an IDR from outside (rpicam-vid's SIGUSR1 toggles capture in --signal
// mode; SIGUSR2 quits it), so by default the request is only logged and
// keyframes come from the program's own GOP ({keyframe_frames}). If the
// program does understand a signal, set KeyframeSignal.
type Subprocess struct {
	// Args is the program and its arguments, run without a shell. The
	// placeholders {width} {height} {fps} {bitrate_kbps} {bitrate_bps}
	// {keyframe_frames} and {keyframe_ms} are replaced from the VideoConfig.
	Args []string
	// Env is added to the daemon's environment.
	Env []string
	// Logger receives lifecycle messages and the program's stderr (Debug
	// while running; the last lines at Warn when it fails).
	Logger *slog.Logger
	// KeyframeSignal, if set, is sent to the program on RequestKeyframe.
	KeyframeSignal os.Signal
	// EarlyFlush emits each access unit as soon as a read from the program
	// ends after a coded slice, instead of when the next frame begins (a
	// frame interval of latency). Correct for programs that write each
	// frame at once (rpicam-vid --flush, ffmpeg -flush_packets 1); if the
	// stream proves otherwise the source logs a warning, waits for the next
	// keyframe and falls back to the safe mode.
	EarlyFlush bool
	// MinBackoff and MaxBackoff bound the restart delay (defaults 250 ms, 5 s).
	MinBackoff, MaxBackoff time.Duration
	// MaxFailures is how many consecutive runs may end without producing a
	// keyframe before ReadAccessUnit reports ErrUnavailable (default 5).
	MaxFailures int
	// StopTimeout is how long the program gets after SIGTERM before SIGKILL
	// (default 2 s).
	StopTimeout time.Duration

	mu  sync.Mutex
	run *subprocRun
}

type subprocRun struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the supervisor goroutine returns
	aus    chan AccessUnit
	err    error // why the supervisor gave up; valid after done
	period time.Duration

	procMu sync.Mutex
	proc   *os.Process
	warned bool // keyframe request without a signal already logged
}

// Defaults of the subprocess source.
const (
	subprocDefaultBitrateKbps = 1500
	subprocStderrKeep         = 20
)

func (s *Subprocess) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// expandArgs fills the placeholders in Args from cfg.
func (s *Subprocess) expandArgs(cfg VideoConfig) []string {
	br := cfg.BitrateKbps
	if br <= 0 {
		br = subprocDefaultBitrateKbps
	}
	keyFrames := max(1, int(cfg.KeyframeEvery.Seconds()*float64(cfg.FPS)+0.5))
	r := strings.NewReplacer(
		"{width}", strconv.Itoa(cfg.Width),
		"{height}", strconv.Itoa(cfg.Height),
		"{fps}", strconv.Itoa(cfg.FPS),
		"{bitrate_kbps}", strconv.Itoa(br),
		"{bitrate_bps}", strconv.Itoa(br*1000),
		"{keyframe_frames}", strconv.Itoa(keyFrames),
		"{keyframe_ms}", strconv.FormatInt(cfg.KeyframeEvery.Milliseconds(), 10),
	)
	out := make([]string, len(s.Args))
	for i, a := range s.Args {
		out[i] = r.Replace(a)
	}
	return out
}

// Start launches the program. A program that cannot be started at all (not
// installed, not executable) is reported at once, wrapping ErrUnavailable.
func (s *Subprocess) Start(ctx context.Context, cfg VideoConfig) error {
	if len(s.Args) == 0 {
		return errors.New("subprocess source: no command configured")
	}
	if cfg.Width == 0 && cfg.Height == 0 {
		cfg.Width, cfg.Height = 640, 480
	}
	if cfg.FPS <= 0 {
		cfg.FPS = 15
	}
	if cfg.KeyframeEvery <= 0 {
		cfg.KeyframeEvery = 2 * time.Second
	}
	args := s.expandArgs(cfg)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != nil {
		return errors.New("subprocess source: already started")
	}
	rctx, cancel := context.WithCancel(ctx)
	run := &subprocRun{
		cancel: cancel,
		done:   make(chan struct{}),
		aus:    make(chan AccessUnit, 4),
		period: time.Second / time.Duration(cfg.FPS),
	}
	first, err := s.launch(run, args)
	if err != nil {
		cancel()
		return fmt.Errorf("subprocess source %q: %w: %w", args[0], ErrUnavailable, err)
	}
	s.run = run
	go s.supervise(rctx, run, args, first)
	return nil
}

// runningProc is one started instance of the program.
type runningProc struct {
	cmd    *exec.Cmd
	stdout *os.File
	stderr *os.File
	waited chan error // receives cmd.Wait's result once the leader exits
}

// launch starts the program in its own process group with plain pipes (not
// exec's StdoutPipe, whose Wait closes the pipe under the reader): reading
// then ends only when every writer, children included, has gone.
func (s *Subprocess) launch(run *subprocRun, args []string) (*runningProc, error) {
	cmd := exec.Command(args[0], args[1:]...)
	if len(s.Env) > 0 {
		cmd.Env = append(os.Environ(), s.Env...)
	}
	setProcessGroup(cmd)
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close() // the child has its copies
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}
	p := &runningProc{cmd: cmd, stdout: outR, stderr: errR, waited: make(chan error, 1)}
	go func() {
		err := cmd.Wait()
		// Children the program left behind would hold stdout open and
		// keep running: they belong to the encoder, so they go with it.
		killGroup(cmd.Process)
		p.waited <- err
	}()
	run.procMu.Lock()
	run.proc = cmd.Process
	run.procMu.Unlock()
	return p, nil
}

// supervise runs the program until ctx ends, restarting it with backoff.
func (s *Subprocess) supervise(ctx context.Context, run *subprocRun, args []string, p *runningProc) {
	defer close(run.done)
	log := s.logger().With("source", "subprocess", "cmd", args[0])
	minB, maxB := s.MinBackoff, s.MaxBackoff
	if minB <= 0 {
		minB = 250 * time.Millisecond
	}
	if maxB < minB {
		maxB = max(5*time.Second, minB)
	}
	maxFail := s.MaxFailures
	if maxFail <= 0 {
		maxFail = 5
	}
	backoff := minB
	failures := 0
	for {
		var err error
		if p == nil {
			p, err = s.launch(run, args)
			if err != nil {
				failures++
				log.Error("video subprocess failed to start", "err", err, "failures", failures)
			}
		}
		if p != nil {
			started := time.Now()
			var gotKey bool
			gotKey, err = s.runOnce(ctx, run, p, log)
			p = nil
			if ctx.Err() != nil {
				run.err = ErrSourceStopped
				return
			}
			if gotKey {
				failures = 0
			} else {
				failures++
			}
			if time.Since(started) > 10*time.Second {
				backoff = minB // it ran fine for a while: restart quickly
			}
			log.Warn("video subprocess exited", "err", err, "ran", time.Since(started).Round(time.Millisecond),
				"failures", failures)
		}
		if failures >= maxFail {
			run.err = fmt.Errorf("subprocess source %q: %w: %d consecutive runs without a keyframe (last: %w)",
				args[0], ErrUnavailable, failures, err)
			log.Error("video subprocess keeps failing; giving up", "failures", failures)
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			run.err = ErrSourceStopped
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxB)
	}
}

// runOnce reads one instance of the program to its end (or until ctx ends,
// when it terminates the process group) and reports whether it produced a
// keyframe.
func (s *Subprocess) runOnce(ctx context.Context, run *subprocRun, p *runningProc, log *slog.Logger) (bool, error) {
	defer p.stdout.Close()
	var wg sync.WaitGroup
	// stderr: Debug per line, the tail kept for the exit report.
	var tail []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer p.stderr.Close()
		sc := bufio.NewScanner(p.stderr)
		sc.Buffer(make([]byte, 4096), 64*1024)
		for sc.Scan() {
			line := sc.Text()
			log.Debug("video subprocess stderr", "line", line)
			tail = append(tail, line)
			if len(tail) > subprocStderrKeep {
				tail = tail[1:]
			}
		}
		_, _ = io.Copy(io.Discard, p.stderr) // a line too long for the scanner
	}()

	// Terminate the process group when ctx ends.
	var waitErr error
	exited := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case waitErr = <-p.waited:
		case <-ctx.Done():
			timeout := s.StopTimeout
			if timeout <= 0 {
				timeout = 2 * time.Second
			}
			waitErr = terminateGroup(p.cmd.Process, timeout, p.waited)
		}
		close(exited)
	}()

	gotKey := false
	stopped := false
	sp := &h264AUSplitter{early: s.EarlyFlush}
	sp.onAnomaly = func(reason string) {
		log.Warn("video subprocess: early flush disabled", "reason", reason)
	}
	sp.emit = func(data []byte, key bool) {
		if stopped {
			return
		}
		au := AccessUnit{Data: data, Keyframe: key, CaptureTime: time.Now(), Duration: run.period}
		select {
		case run.aus <- au:
			gotKey = gotKey || key
		case <-ctx.Done():
			stopped = true
		}
	}
	buf := make([]byte, 256*1024)
	var readErr error
	for !stopped {
		n, err := p.stdout.Read(buf)
		if n > 0 {
			sp.write(buf[:n])
			sp.flushAtReadEnd()
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
	}
	if !stopped {
		sp.end()
	} else {
		// Keep reading so the program is not blocked on a full pipe
		// while it is being terminated.
		_, _ = io.Copy(io.Discard, p.stdout)
	}
	<-exited
	wg.Wait()
	run.procMu.Lock()
	run.proc = nil
	run.procMu.Unlock()
	if sp.dropped > 0 {
		log.Debug("video subprocess: dropped access units before the first keyframe", "count", sp.dropped)
	}
	if sp.missingParams {
		log.Warn("video subprocess: IDR without SPS/PPS in the stream; receivers may not decode it")
	}
	if ctx.Err() != nil {
		return gotKey, ctx.Err()
	}
	err := errors.Join(readErr, waitErr)
	if err == nil {
		err = errors.New("exited with status 0")
	}
	if len(tail) > 0 {
		log.Warn("video subprocess stderr (last lines)", "stderr", strings.Join(tail, "\n"))
	}
	return gotKey, err
}

// ReadAccessUnit returns the next access unit from the program. When the
// program keeps failing it returns an error wrapping ErrUnavailable.
func (s *Subprocess) ReadAccessUnit(ctx context.Context) (AccessUnit, error) {
	s.mu.Lock()
	run := s.run
	s.mu.Unlock()
	if run == nil {
		return AccessUnit{}, ErrSourceStopped
	}
	select {
	case au := <-run.aus:
		return au, nil
	case <-ctx.Done():
		return AccessUnit{}, ctx.Err()
	case <-run.done:
		// Deliver what was queued before the supervisor stopped.
		select {
		case au := <-run.aus:
			return au, nil
		default:
		}
		return AccessUnit{}, run.err
	}
}

// RequestKeyframe sends KeyframeSignal to the program if configured;
// otherwise it only logs (see the type's documentation).
func (s *Subprocess) RequestKeyframe() {
	s.mu.Lock()
	run := s.run
	s.mu.Unlock()
	if run == nil {
		return
	}
	run.procMu.Lock()
	defer run.procMu.Unlock()
	if s.KeyframeSignal == nil {
		if !run.warned {
			run.warned = true
			s.logger().Debug("video subprocess: keyframe requested but the program cannot be asked; waiting for its GOP")
		}
		return
	}
	if run.proc != nil {
		if err := run.proc.Signal(s.KeyframeSignal); err != nil {
			s.logger().Debug("video subprocess: keyframe signal failed", "err", err)
		}
	}
}

// Stop kills the program's process group and waits for it to be reaped.
func (s *Subprocess) Stop() error {
	s.mu.Lock()
	run := s.run
	s.run = nil
	s.mu.Unlock()
	if run == nil {
		return nil
	}
	run.cancel()
	<-run.done
	return nil
}
