//go:build linux

package redisserver

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartClose(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not on PATH")
	}
	s, err := Start("")
	if err != nil {
		t.Fatal(err)
	}
	if !ping(s.Addr()) {
		t.Fatal("no PONG from a started server")
	}
	pid, dir := s.cmd.Process.Pid, s.dir
	if pgid, err := syscall.Getpgid(pid); err != nil || pgid != pid {
		t.Errorf("process group: got %d (%v), want its own, %d", pgid, err, pid)
	}
	s.Stop()
	if ping(s.Addr()) {
		t.Fatal("PONG from a stopped server")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if !ping(s.Addr()) {
		t.Fatal("no PONG after Restart")
	}
	s.Close()
	s.Close()
	if ping(s.Addr()) {
		t.Fatal("PONG after Close")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary directory %s: got %v after Close, want it removed", dir, err)
	}
}

func TestNotInstalled(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	s, err := Start("")
	if !errors.Is(err, ErrNotInstalled) || s != nil {
		t.Fatalf("got %v, %v; want ErrNotInstalled", s, err)
	}
	for _, want := range []string{"redis-server not found on PATH", "apt-get install redis-server", "brew install redis"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestDiesWithParent kills, with SIGKILL, a process that started a server
// (this test binary run again): the server must not outlive it.
func TestDiesWithParent(t *testing.T) {
	if os.Getenv("REDISSERVER_TEST_PARENT") == "1" {
		s, err := Start("")
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("pid", s.cmd.Process.Pid)
		select {}
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not on PATH")
	}
	parent := exec.Command(os.Args[0], "-test.run", "^TestDiesWithParent$")
	parent.Env = append(os.Environ(), "REDISSERVER_TEST_PARENT=1")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer parent.Process.Kill()
	var pid int
	if _, err := fmt.Fscanf(bufio.NewReader(out), "pid %d\n", &pid); err != nil {
		t.Fatal(err)
	}
	if syscall.Kill(pid, 0) != nil {
		t.Fatalf("redis-server %d is not running", pid)
	}
	parent.Process.Signal(syscall.SIGKILL)
	parent.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if gone(pid) {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("redis-server %d outlived its parent by 10s", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gone reports whether pid has exited: reaped, or a zombie whose new
// parent has not reaped it yet.
func gone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name's closing parenthesis.
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}
