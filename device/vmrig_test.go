package device

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// needVM skips a test that needs the simulated kernel drivers (vivid,
// gpio-sim, snd-aloop) unless it runs inside the VM rig, whose /init sets
// INTERCOMD_VM=1. This is the only skip the device tests allow.
func needVM(t *testing.T) {
	t.Helper()
	if os.Getenv("INTERCOMD_VM") != "1" {
		t.Skip("needs the VM rig: make test-hw")
	}
}

// gpio-sim: the rig's /init creates a chip labelled intercomd-sim with 16
// lines named sim-line-N and exports its sysfs directory.
const simChipLabel = "intercomd-sim"

func simDir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("INTERCOMD_VM_GPIO_SIM")
	if d == "" {
		t.Fatal("INTERCOMD_VM_GPIO_SIM not set by the VM rig's /init")
	}
	return d
}

// simPull drives a simulated input: pull-up makes the line level high.
func simPull(t *testing.T, offset int, high bool) {
	t.Helper()
	v := "pull-down"
	if high {
		v = "pull-up"
	}
	p := filepath.Join(simDir(t), "sim_gpio"+strconv.Itoa(offset), "pull")
	if err := os.WriteFile(p, []byte(v), 0); err != nil {
		t.Fatalf("gpio-sim: %v", err)
	}
}

// simValue reads the level the kernel sees on a line (what an output drives).
func simValue(t *testing.T, offset int) int {
	t.Helper()
	p := filepath.Join(simDir(t), "sim_gpio"+strconv.Itoa(offset), "value")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("gpio-sim: %v", err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("gpio-sim: %s: %q", p, b)
	}
	return v
}

// vmSlack scales timeouts for the TCG-emulated guest.
const vmSlack = 20 * time.Second
