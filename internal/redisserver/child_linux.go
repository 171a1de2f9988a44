package redisserver

import (
	"os/exec"
	"syscall"
)

// configureChild has the kernel kill the server when its parent dies,
// however it dies, and puts it in a process group of its own, so that a
// terminal's Ctrl-C reaches the parent only, which stops the server after
// the replicas that use it.
func configureChild(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
