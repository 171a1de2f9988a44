//go:build !linux

package redisserver

import "os/exec"

// configureChild does nothing: without Linux's parent-death signal, the
// server is stopped by Close alone.
func configureChild(*exec.Cmd) {}
