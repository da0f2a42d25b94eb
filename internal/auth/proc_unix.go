//go:build unix

package auth

import (
	"errors"
	"os/exec"
	"syscall"
)

// killGroup runs cmd in a process group of its own and makes its cancellation kill the whole
// group, so a timed-out `sh -c` does not leave its children running (and holding its output).
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return err
	}
}
