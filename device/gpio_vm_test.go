package device

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warthog618/go-gpiocdev"
)

func nextPress(t *testing.T, events <-chan ButtonEvent) ButtonEvent {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(vmSlack):
		t.Fatal("no button event")
	}
	return ButtonEvent{}
}

func noPress(t *testing.T, events <-chan ButtonEvent, wait time.Duration) {
	t.Helper()
	select {
	case ev := <-events:
		t.Fatalf("unexpected button event %+v", ev)
	case <-time.After(wait):
	}
}

// Buttons on gpio-sim lines, driven through the sim's pull files: the real
// gpiolib character device, bias, edge detection and debounce.
func TestGPIOButtonsVM(t *testing.T) {
	needVM(t)
	b, err := NewGPIOButtons([]ButtonConfig{
		// Active-low with pull-up: the classic button to GND.
		{Name: "call", Chip: simChipLabel, Line: "3", ActiveLow: true, Bias: "pull-up", Debounce: 10 * time.Millisecond, LongPress: 1500 * time.Millisecond},
		// Found by line name alone, debounced in software.
		{Name: "hangup", Line: "sim-line-5", Bias: "pull-down", Debounce: 50 * time.Millisecond, SoftwareDebounce: true, LongPress: -1},
	}, WithGPIOLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The bias is applied to the sim line: pull-up reads high (not pressed).
	if v := simValue(t, 3); v != 1 {
		t.Fatalf("call line level %d after requesting pull-up, want 1", v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan ButtonEvent, 8)
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, events) }()

	// Short press: low for 200 ms.
	simPull(t, 3, false)
	time.Sleep(200 * time.Millisecond)
	simPull(t, 3, true)
	if ev := nextPress(t, events); ev.Button != "call" || ev.Press != ShortPress {
		t.Fatalf("got %+v, want call short", ev)
	}

	// Long press: reported while still held.
	simPull(t, 3, false)
	start := time.Now()
	ev := nextPress(t, events)
	if ev.Button != "call" || ev.Press != LongPress {
		t.Fatalf("got %+v, want call long", ev)
	}
	if held := time.Since(start); held < 1400*time.Millisecond {
		t.Fatalf("long press after %v, before the 1.5s threshold", held)
	}
	simPull(t, 3, true)
	noPress(t, events, 500*time.Millisecond) // the release of a long press is not a press

	// Software debounce: a 1 ms glitch is not a press, a real one is.
	simPull(t, 5, true)
	simPull(t, 5, false)
	noPress(t, events, 500*time.Millisecond)
	simPull(t, 5, true)
	time.Sleep(300 * time.Millisecond)
	simPull(t, 5, false)
	if ev := nextPress(t, events); ev.Button != "hangup" || ev.Press != ShortPress {
		t.Fatalf("got %+v, want hangup short", ev)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestGPIOOutputVM(t *testing.T) {
	needVM(t)
	// A line left high by whatever held it before (a crashed previous run;
	// gpio-sim keeps an unrequested line at its pull): opening the output
	// must drive it off at once.
	simPull(t, 8, true)
	if v := simValue(t, 8); v != 1 {
		t.Fatalf("setup: line 8 = %d, want 1", v)
	}
	relay, err := NewGPIOOutput(OutputConfig{Name: "door", Chip: simChipLabel, Line: "sim-line-8"}, WithGPIOLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	if v := simValue(t, 8); v != 0 {
		t.Fatalf("relay line %d right after open, want 0 (off)", v)
	}
	if err := relay.Set(true); err != nil {
		t.Fatal(err)
	}
	if v := simValue(t, 8); v != 1 {
		t.Fatalf("relay line %d after Set(true), want 1", v)
	}

	// A pulse through the driver, watched from the sim side.
	d := NewOutputDriver("door", relay, WithGPIOLogger(quietLog()))
	done := d.Pulse(context.Background(), 400*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	if v := simValue(t, 8); v != 1 {
		t.Fatalf("relay line %d during the pulse, want 1", v)
	}
	<-done
	if v := simValue(t, 8); v != 0 {
		t.Fatalf("relay line %d after the pulse, want 0", v)
	}
	relay.Set(true)
	if err := relay.Close(); err != nil {
		t.Fatal(err)
	}
	// Released: gpio-sim puts a released line back to its pull, so the
	// drive-off in Close cannot be seen from here; that the line is free
	// again can.
	if l, err := gpiocdev.RequestLine(chipByLabel(t), 8, gpiocdev.AsInput); err != nil {
		t.Fatalf("line 8 still held after Close: %v", err)
	} else {
		l.Close()
	}
	if err := relay.Set(true); err == nil {
		t.Fatal("Set after Close succeeded")
	}

	// Active-low: off is a high level.
	led, err := NewGPIOOutput(OutputConfig{Name: "led", Chip: simChipLabel, Line: "9", ActiveLow: true}, WithGPIOLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	if v := simValue(t, 9); v != 1 {
		t.Fatalf("active-low led line %d when off, want 1", v)
	}
	led.Set(true)
	if v := simValue(t, 9); v != 0 {
		t.Fatalf("active-low led line %d when on, want 0", v)
	}
	if err := led.Close(); err != nil {
		t.Fatal(err)
	}
}

func chipByLabel(t *testing.T) string {
	t.Helper()
	c, err := openGPIOChip(simChipLabel)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.Name
}

// Missing devices are errors that name them; runs anywhere (a host with no
// GPIO chips at all is the common case).
func TestGPIOMissingDevice(t *testing.T) {
	_, err := NewGPIOButtons([]ButtonConfig{{Name: "call", Chip: "no-such-chip", Line: "3"}}, WithGPIOLogger(quietLog()))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no-such-chip") || !strings.Contains(err.Error(), `"call"`) {
		t.Fatalf("err = %v, want ErrUnavailable naming button and chip", err)
	}
	_, err = NewGPIOOutput(OutputConfig{Name: "door", Line: "no-such-line"}, WithGPIOLogger(quietLog()))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no-such-line") {
		t.Fatalf("err = %v, want ErrUnavailable naming the line", err)
	}
	_, err = NewGPIOOutput(OutputConfig{Name: "door", Line: "7"}, WithGPIOLogger(quietLog()))
	if err == nil || !strings.Contains(err.Error(), "needs a chip") {
		t.Fatalf("err = %v, want a missing-chip config error", err)
	}
	_, err = NewGPIOButtons([]ButtonConfig{{Name: "x", Chip: "c", Line: "1", Bias: "sideways"}}, WithGPIOLogger(quietLog()))
	if err == nil {
		t.Fatal("no error for a bogus config")
	}
}

func TestGPIOMissingLineVM(t *testing.T) {
	needVM(t)
	_, err := NewGPIOOutput(OutputConfig{Name: "door", Chip: simChipLabel, Line: "16"}, WithGPIOLogger(quietLog()))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "not 16") {
		t.Fatalf("err = %v, want out-of-range line error", err)
	}
	_, err = NewGPIOOutput(OutputConfig{Name: "door", Chip: simChipLabel, Line: "relay"}, WithGPIOLogger(quietLog()))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), `"relay"`) {
		t.Fatalf("err = %v, want missing line name error", err)
	}
}
