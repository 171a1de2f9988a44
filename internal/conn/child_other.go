//go:build !linux

package conn

import (
	"os"
	"os/exec"
	"syscall"
)

func configureChild(cmd *exec.Cmd) {}

// signalGroup signals the child alone: process groups are Linux's here.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process == nil {
		return
	}
	if sig == syscall.SIGKILL {
		_ = cmd.Process.Kill()
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
}
