package backend

import (
	"os/exec"
	"syscall"
)

// configureChild puts the child in its own process group, so killGroup
// reaches its descendants, and asks the kernel to kill it if the gateway
// dies without a chance to clean up.
func configureChild(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	// A negative pid signals the whole group; errors mean it is gone.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
