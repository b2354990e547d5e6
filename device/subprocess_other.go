//go:build !unix

package device

import (
	"os"
	"os/exec"
	"time"
)

// Without process groups only the program itself can be stopped.
func setProcessGroup(*exec.Cmd) {}

func killGroup(p *os.Process) { _ = p.Kill() }

func terminateGroup(p *os.Process, _ time.Duration, waited <-chan error) error {
	_ = p.Kill()
	return <-waited
}
