package device

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

var _ VideoSource = (*TestPattern)(nil)

// The pictures must be the pattern for their capture time: in the default
// lossy mode exactly what an H264Encoder at the same QP reconstructs from
// the rendered pattern (and within 35 dB PSNR of it), in Lossless mode the
// rendered pattern itself.
func TestTestPatternPacingKeyframesAndPictures(t *testing.T) {
	for _, lossless := range []bool{false, true} {
		t.Run(map[bool]string{false: "lossy", true: "lossless"}[lossless], func(t *testing.T) {
			testTestPatternPacing(t, lossless)
		})
	}
}

func testTestPatternPacing(t *testing.T, lossless bool) {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := NewVirtualClock(start)
	p := &TestPattern{Clock: clk, Lossless: lossless}
	cfg := VideoConfig{Width: 320, Height: 240, FPS: 10, KeyframeEvery: 2 * time.Second}
	if err := p.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	dec := &lossyTestDecoder{lastIDRID: -1}
	shadow, err := NewH264Encoder(320, 240, 10, H264EncoderOptions{PCM: lossless})
	if err != nil {
		t.Fatal(err)
	}
	render := newPatternRenderer(320, 240, 10)
	want := NewI420Frame(320, 240)
	ctx := context.Background()
	var keys []int
	for i := 0; i < 45; i++ {
		if i == 7 {
			p.RequestKeyframe()
		}
		au, err := p.ReadAccessUnit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantTime := start.Add(time.Duration(i) * 100 * time.Millisecond)
		if !au.CaptureTime.Equal(wantTime) || au.Duration != 100*time.Millisecond {
			t.Fatalf("frame %d: capture %v duration %v, want %v", i, au.CaptureTime, au.Duration, wantTime)
		}
		if !clk.Now().Equal(wantTime) {
			t.Fatalf("frame %d delivered at %v, want %v (paced)", i, clk.Now(), wantTime)
		}
		got, st, err := dec.decodeAU(au.Data)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if st.idr != au.Keyframe {
			t.Fatalf("frame %d: Keyframe=%v but IDR=%v", i, au.Keyframe, st.idr)
		}
		if au.Keyframe {
			keys = append(keys, i)
		}
		render.render(want, uint64(i), wantTime)
		if lossless {
			if !framesEqual(got, want) {
				t.Fatalf("frame %d: decoded picture is not the pattern for %v", i, wantTime)
			}
			continue
		}
		if _, _, err := shadow.Encode(nil, want, au.Keyframe); err != nil {
			t.Fatal(err)
		}
		if !framesEqual(got, shadow.Reconstruction()) {
			t.Fatalf("frame %d: decoded picture is not the coded pattern for %v", i, wantTime)
		}
		if q := psnrI420(got, want); q < 35 {
			t.Fatalf("frame %d: PSNR %.2f dB against the pattern", i, q)
		}
		if st.pcm != 0 {
			t.Fatalf("frame %d: I_PCM in the default mode", i)
		}
	}
	// First frame, the requested one, then every 2 s (20 frames) after the last keyframe.
	wantKeys := []int{0, 7, 27}
	if len(keys) != len(wantKeys) {
		t.Fatalf("keyframes at %v, want %v", keys, wantKeys)
	}
	for i := range keys {
		if keys[i] != wantKeys[i] {
			t.Fatalf("keyframes at %v, want %v", keys, wantKeys)
		}
	}
}

func TestTestPatternRestartsWithKeyframeAndCropsOddSizes(t *testing.T) {
	p := &TestPattern{Clock: NewVirtualClock(time.Unix(0, 0))}
	ctx := context.Background()
	for round := 0; round < 2; round++ {
		if err := p.Start(ctx, VideoConfig{Width: 200, Height: 150, FPS: 15}); err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx, VideoConfig{Width: 200, Height: 150}); err == nil {
			t.Fatal("second Start while running succeeded")
		}
		dec := &lossyTestDecoder{lastIDRID: -1}
		for i := 0; i < 3; i++ {
			au, err := p.ReadAccessUnit(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if (i == 0) != au.Keyframe {
				t.Fatalf("round %d frame %d keyframe=%v", round, i, au.Keyframe)
			}
			f, _, err := dec.decodeAU(au.Data)
			if err != nil || f.Width != 200 || f.Height != 150 {
				t.Fatalf("decode: %v", err)
			}
		}
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		if _, err := p.ReadAccessUnit(ctx); !errors.Is(err, ErrSourceStopped) {
			t.Fatalf("read after Stop: %v", err)
		}
	}
	if err := p.Start(ctx, VideoConfig{Width: 201, Height: 150}); err == nil {
		t.Fatal("odd width accepted")
	}
}

// With the real clock at 1 fps the second read blocks; Stop, the read
// context and the Start context must each release it promptly.
func TestTestPatternUnblocks(t *testing.T) {
	for _, how := range []string{"stop", "read-ctx", "start-ctx"} {
		t.Run(how, func(t *testing.T) {
			startCtx, cancelStart := context.WithCancel(context.Background())
			defer cancelStart()
			p := &TestPattern{}
			if err := p.Start(startCtx, VideoConfig{Width: 64, Height: 48, FPS: 1}); err != nil {
				t.Fatal(err)
			}
			defer p.Stop()
			readCtx, cancelRead := context.WithCancel(context.Background())
			defer cancelRead()
			if _, err := p.ReadAccessUnit(readCtx); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var err error
			wg.Add(1)
			t0 := time.Now()
			go func() {
				defer wg.Done()
				_, err = p.ReadAccessUnit(readCtx)
			}()
			time.Sleep(20 * time.Millisecond)
			switch how {
			case "stop":
				p.Stop()
			case "read-ctx":
				cancelRead()
			case "start-ctx":
				cancelStart()
			}
			wg.Wait()
			if el := time.Since(t0); el > 500*time.Millisecond {
				t.Fatalf("read returned after %v", el)
			}
			wantErr := ErrSourceStopped
			if how == "read-ctx" {
				wantErr = context.Canceled
			}
			if !errors.Is(err, wantErr) {
				t.Fatalf("err = %v, want %v", err, wantErr)
			}
		})
	}
}

// A reader that stalls gets the current frame, not a burst of stale ones.
func TestTestPatternDoesNotBurstAfterStall(t *testing.T) {
	clk := NewVirtualClock(time.Unix(1000, 0))
	p := &TestPattern{Clock: clk}
	if err := p.Start(context.Background(), VideoConfig{Width: 32, Height: 32, FPS: 10}); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	ctx := context.Background()
	if _, err := p.ReadAccessUnit(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second) // the consumer was away for 10 frame times
	au, err := p.ReadAccessUnit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !au.CaptureTime.Equal(time.Unix(1001, 0)) {
		t.Fatalf("after a stall got a frame for %v, want the current time", au.CaptureTime)
	}
	au, _ = p.ReadAccessUnit(ctx)
	if !au.CaptureTime.Equal(time.Unix(1001, 100e6)) {
		t.Fatalf("next frame for %v", au.CaptureTime)
	}
}

// BenchmarkTestPatternEncode measures one 640x480 frame of the test pattern
// (render + encode) with the default lossy coder and with I_PCM ("pcm-").
// "p" is a steady state of P pictures; "idr" forces every picture to be an
// IDR; "source" is TestPattern.ReadAccessUnit at 15 fps with its 3 s
// keyframe interval, under a VirtualClock.
func BenchmarkTestPatternEncode(b *testing.B) {
	for _, mode := range []string{"p", "idr", "pcm-p", "pcm-idr"} {
		b.Run(mode, func(b *testing.B) {
			enc, _ := NewH264Encoder(640, 480, 15, H264EncoderOptions{PCM: strings.HasPrefix(mode, "pcm-")})
			idr := strings.HasSuffix(mode, "idr")
			r := newPatternRenderer(640, 480, 15)
			f := NewI420Frame(640, 480)
			base := time.Unix(0, 0)
			var buf []byte
			var total int64
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.render(f, uint64(i), base.Add(time.Duration(i)*time.Second/15))
				var err error
				buf, _, err = enc.Encode(buf[:0], f, idr || i == 0)
				if err != nil {
					b.Fatal(err)
				}
				total += int64(len(buf))
			}
			if idr {
				b.ReportMetric(float64(total)/float64(b.N), "bytes/IDR")
			} else {
				b.ReportMetric(float64(total)/float64(b.N), "bytes/frame")
			}
		})
	}
	b.Run("source", func(b *testing.B) {
		p := &TestPattern{Clock: NewVirtualClock(time.Unix(0, 0))}
		if err := p.Start(context.Background(), VideoConfig{Width: 640, Height: 480, FPS: 15}); err != nil {
			b.Fatal(err)
		}
		defer p.Stop()
		var pBytes, pFrames, kBytes, kFrames int64
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			au, err := p.ReadAccessUnit(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if au.Keyframe {
				kBytes += int64(len(au.Data))
				kFrames++
			} else {
				pBytes += int64(len(au.Data))
				pFrames++
			}
		}
		if pFrames > 0 {
			b.ReportMetric(float64(pBytes)/float64(pFrames), "bytes/P-frame")
		}
		b.ReportMetric(float64(kBytes)/float64(kFrames), "bytes/IDR")
	})
}
