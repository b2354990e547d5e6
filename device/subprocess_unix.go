//go:build unix

package device

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// setProcessGroup puts the program in a new process group so that Stop
// reaches the shell pipelines and helpers it starts, not only its leader.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup SIGKILLs what is left of the program's process group.
func killGroup(p *os.Process) {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = p.Kill()
	}
}

// terminateGroup sends SIGTERM to the group, waits up to timeout for the
// leader to exit (waited delivers its Wait result), then SIGKILLs the group.
func terminateGroup(p *os.Process, timeout time.Duration, waited <-chan error) error {
	if err := syscall.Kill(-p.Pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = p.Signal(syscall.SIGTERM)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-waited:
		return err
	case <-t.C:
		killGroup(p)
		return <-waited
	}
}
