package conn

import (
	"os/exec"
	"syscall"
)

// configureChild puts the child in a process group of its own, so that
// signalGroup reaches its descendants too, and has the kernel kill it if
// the gateway dies without the chance to stop it.
func configureChild(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup signals the child's whole process group. An error means the
// group is gone.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, sig)
	}
}
