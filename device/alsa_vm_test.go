package device

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// loopback plays a tone into hw:Loopback,0 and captures hw:Loopback,1 at
// the same time, returning what was captured.
func loopback(t *testing.T, play, rec ALSAConfig, pf, rf AudioFormat, tone []int16, captureDur time.Duration) []int16 {
	t.Helper()
	src, err := NewALSASource(rec, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	sink, err := NewALSASink(play, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*vmSlack)
	defer cancel()
	if err := src.Start(ctx, rf); err != nil {
		t.Fatal(err)
	}
	defer src.Stop()
	if err := sink.Start(ctx, pf); err != nil {
		t.Fatal(err)
	}
	defer sink.Stop()

	want := int(captureDur.Seconds()*float64(rf.SampleRate)) * rf.Channels
	got := make(chan []int16, 1)
	errc := make(chan error, 2)
	go func() {
		var all []int16
		buf := make([]int16, 480)
		for len(all) < want {
			n, err := src.ReadPCM(ctx, buf)
			if err != nil {
				errc <- err
				return
			}
			all = append(all, buf[:n]...)
		}
		got <- all
	}()
	// Write in 20 ms chunks, as the call's audio path does.
	chunk := pf.SampleRate / 50 * pf.Channels
	for i := 0; i < len(tone); i += chunk {
		if err := sink.WritePCM(ctx, tone[i:min(i+chunk, len(tone))]); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case all := <-got:
		t.Logf("xruns: capture %d, playback %d", src.Xruns(), sink.Xruns())
		return all
	case err := <-errc:
		t.Fatal(err)
	}
	return nil
}

// loudest returns the 0.5 s window with the most energy (where the tone is).
func loudest(s []int16, ch, rate int) []int16 {
	win := rate / 2 * ch
	best, bestE := 0, -1.0
	for i := 0; i+win <= len(s); i += rate / 20 * ch {
		var e float64
		for _, v := range s[i : i+win] {
			e += float64(v) * float64(v)
		}
		if e > bestE {
			best, bestE = i, e
		}
	}
	return s[best:min(best+win, len(s))]
}

func TestALSALoopbackVM(t *testing.T) {
	needVM(t)
	cases := []struct {
		name      string
		play, rec ALSAConfig
		pf, rf    AudioFormat
		freq      float64
		amp       float64 // expected amplitude at the capture side
	}{
		{name: "48k mono, same format",
			play: ALSAConfig{Device: "hw:Loopback,0"}, rec: ALSAConfig{Device: "hw:Loopback,1"},
			pf: AudioFormat{48000, 1}, rf: AudioFormat{48000, 1}, freq: 1000, amp: 8000},
		{name: "8k call played through a 48k card, captured at 16k stereo with half gain",
			play: ALSAConfig{Device: "hw:0,0", CardRate: 48000}, rec: ALSAConfig{Device: "hw:CARD=Loopback,DEV=1", CardRate: 48000, Volume: 128},
			pf: AudioFormat{8000, 1}, rf: AudioFormat{16000, 2}, freq: 400, amp: 8000 * 128 / 255},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tone := alsaSine(tc.freq, tc.pf.SampleRate, tc.pf.Channels, tc.pf.SampleRate*3/2, 8000)
			got := loopback(t, tc.play, tc.rec, tc.pf, tc.rf, tone, 2*time.Second)
			w := loudest(got, tc.rf.Channels, tc.rf.SampleRate)
			on := alsaGoertzel(w, tc.rf.Channels, tc.rf.SampleRate, tc.freq)
			off := alsaGoertzel(w, tc.rf.Channels, tc.rf.SampleRate, tc.freq*1.37)
			wantP := tc.amp * tc.amp / 4
			if on < wantP*0.5 || on > wantP*1.5 {
				t.Fatalf("power at %.0f Hz %.0f, want about %.0f (amplitude %.0f)", tc.freq, on, wantP, tc.amp)
			}
			if off > on/100 {
				t.Fatalf("power at %.0f Hz %.0f vs %.0f at the tone: not a clean sine", tc.freq*1.37, off, on)
			}
			if tc.rf.Channels == 2 {
				for i := 0; i+1 < len(w); i += 2 {
					if w[i] != w[i+1] {
						t.Fatalf("stereo capture of a mono tone: L %d R %d at %d", w[i], w[i+1], i)
					}
				}
			}
		})
	}
}

func TestALSAMissingDevice(t *testing.T) {
	// Runs anywhere: on a host without sound cards and in the VM alike.
	for _, dev := range []string{"hw:NoSuchCard,0", "hw:9,0"} {
		_, err := NewALSASource(ALSAConfig{Device: dev}, quietLog())
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), dev) {
			t.Errorf("%s: err %v, want ErrUnavailable naming it", dev, err)
		}
	}
	if _, err := NewALSASink(ALSAConfig{Device: "hw:0,0", Volume: 300}, quietLog()); err == nil {
		t.Error("volume 300 accepted")
	}
}

// Starve the playback and stop reading the capture: both must report the
// xrun as recovered and go on working.
func TestALSAXrunRecoveryVM(t *testing.T) {
	needVM(t)
	f := AudioFormat{SampleRate: 16000, Channels: 1}
	src, err := NewALSASource(ALSAConfig{Device: "hw:Loopback,1", BufferPeriods: 3}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	sink, err := NewALSASink(ALSAConfig{Device: "hw:Loopback,0", BufferPeriods: 3}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*vmSlack)
	defer cancel()
	if err := src.Start(ctx, f); err != nil {
		t.Fatal(err)
	}
	defer src.Stop()
	if err := sink.Start(ctx, f); err != nil {
		t.Fatal(err)
	}
	defer sink.Stop()
	tone := alsaSine(700, 16000, 1, 16000/5, 6000) // 200 ms
	if err := sink.WritePCM(ctx, tone); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // playback runs dry, capture overflows
	if err := sink.WritePCM(ctx, tone); err != nil {
		t.Fatalf("write after underrun: %v", err)
	}
	buf := make([]int16, 320)
	if _, err := src.ReadPCM(ctx, buf); err != nil {
		t.Fatalf("read after overrun: %v", err)
	}
	if sink.Xruns() == 0 || src.Xruns() == 0 {
		t.Fatalf("xruns seen: playback %d capture %d, want both > 0", sink.Xruns(), src.Xruns())
	}
	// And audio flows again after recovery.
	for i := 0; i < 5; i++ {
		if err := sink.WritePCM(ctx, tone); err != nil {
			t.Fatal(err)
		}
	}
	var got []int16
	for len(got) < 16000/2 {
		n, err := src.ReadPCM(ctx, buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if p := alsaGoertzel(loudest(got, 1, 16000)[:1600], 1, 16000, 700); p < 6000*6000/4*0.3 {
		t.Fatalf("no tone after recovery: power %.0f", p)
	}
}
