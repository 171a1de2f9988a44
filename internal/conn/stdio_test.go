package conn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/testlog"
)

func dialPeer(t *testing.T, opts Options, args ...string) (*stdio, *inbox) {
	t.Helper()
	in := &inbox{}
	opts.Unsolicited = in.add
	c, err := Dial(context.Background(), Endpoint{Transport: TransportStdio, Command: append([]string{stdioServer}, args...)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	in.conn = c
	t.Cleanup(func() { c.Close(); in.wg.Wait() })
	return c.(*stdio), in
}

func TestStdio(t *testing.T) {
	t.Parallel()
	var stderr testlog.Buffer
	dir := t.TempDir()
	c, in := dialPeer(t, Options{Env: map[string]string{"PEER_GREETING": "hello-env"}, Dir: dir, Stderr: &stderr})
	initialize(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if got, err := callTool(ctx, c, 1, "echo", `{"text":"hi"}`, nil); err != nil || got != "hi" {
		t.Errorf("echo: got %q, %v", got, err)
	}
	// On stdio nothing is tied to a request: notifications reach
	// Unsolicited, before the response.
	if got, err := callTool(ctx, c, 2, "progress", `{"count":3}`, nil); err != nil || got != "sent 3" {
		t.Errorf("progress: got %q, %v", got, err)
	}
	if n := in.count("notifications/progress"); n != 3 {
		t.Errorf("got %d progress notifications before the result, want 3", n)
	}
	// A server request reaches Unsolicited, and Send answers it.
	if got, err := callTool(ctx, c, 3, "sample", `{"text":"q"}`, nil); err != nil || got != "sampled: hello from the client" {
		t.Errorf("sample: got %q, %v", got, err)
	}
	if got, err := callTool(ctx, c, 4, "cwd", `{}`, nil); err != nil || got != dir {
		t.Errorf("cwd: got %q, %v; want %q", got, err, dir)
	}
	if !strings.Contains(stderr.String(), "env hello-env") {
		t.Errorf("stderr %q lacks the line that shows Env", stderr.String())
	}

	// Concurrent requests, with string and number ids, each get their own
	// response.
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text := fmt.Sprintf("m%d", i)
			got, err := callTool(ctx, c, 100+i, "echo", `{"text":"`+text+`"}`, nil)
			if err != nil || got != text {
				t.Errorf("concurrent echo %d: got %q, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	resp, err := c.Request(ctx, []byte(`"abc"`), []byte(`{"jsonrpc":"2.0","id":"abc","method":"ping"}`), nil)
	if err != nil || !bytes.Contains(resp, []byte(`"id":"abc"`)) {
		t.Errorf("ping with a string id: got %s, %v", resp, err)
	}

	pid := c.cmd.Process.Pid
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err after Close: got %v, want ErrClosed", c.Err())
	}
	if st := procState(pid); st != "" {
		t.Errorf("child %d still in /proc after Close, state %s", pid, st)
	}
	if _, err := callTool(ctx, c, 5, "echo", `{"text":"x"}`, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Request after Close: got %v, want ErrClosed", err)
	}
	if err := c.Send(ctx, []byte(`{"jsonrpc":"2.0","method":"x"}`)); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close: got %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestStdioChildExit(t *testing.T) {
	t.Parallel()
	c, _ := dialPeer(t, Options{})
	initialize(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A call in flight returns the Conn's error as soon as the child dies.
	slow := make(chan error, 1)
	go func() {
		_, err := callTool(ctx, c, 1, "sleep", `{"ms":60000}`, nil)
		slow <- err
	}()
	time.Sleep(100 * time.Millisecond)
	_, err := callTool(ctx, c, 2, "exit", `{"code":3}`, nil)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("got %v, want an error carrying exit status 3", err)
	}
	if !strings.Contains(err.Error(), "exiting on request") {
		t.Errorf("error %q lacks the child's last stderr line", err)
	}
	select {
	case err := <-slow:
		if !errors.As(err, &exit) {
			t.Errorf("the request in flight got %v, want the exit error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request in flight did not return when the child died")
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done is not closed after the child exited")
	}
	if st := procState(c.cmd.Process.Pid); st != "" {
		t.Errorf("the exited child is still in /proc (state %s): not reaped", st)
	}
}

// Close stops a child that ignores stdin's end and SIGTERM, and its
// grandchild, with SIGKILL to the group.
func TestStdioCloseKillsGroup(t *testing.T) {
	t.Parallel()
	const grace = 300 * time.Millisecond
	c, _ := dialPeer(t, Options{KillGrace: grace}, "-ignore-term")
	initialize(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := callTool(ctx, c, 1, "spawn", `{}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	grandchild, _ := strconv.Atoi(got)
	pid := c.cmd.Process.Pid
	if procState(grandchild) == "" {
		t.Fatalf("grandchild %d not running", grandchild)
	}
	start := time.Now()
	c.Close()
	took := time.Since(start)
	if took < 2*grace {
		t.Errorf("Close took %v: it did not wait for the child after stdin's end and after SIGTERM", took)
	}
	if took > 2*grace+5*time.Second {
		t.Errorf("Close took %v", took)
	}
	if st := procState(pid); st != "" {
		t.Errorf("child %d remains (state %s)", pid, st)
	}
	if !settle(5*time.Second, func() bool { st := procState(grandchild); return st == "" || st == "Z" }) {
		t.Errorf("grandchild %d remains (state %s)", grandchild, procState(grandchild))
	}
	if m := groupMembers(pid); !settle(5*time.Second, func() bool { m = groupMembers(pid); return len(m) == 0 }) {
		t.Errorf("process group %d still has %v", pid, m)
	}
}

// A child that exits on stdin's end is not signalled: Close returns as
// soon as it is reaped.
func TestStdioCloseIsQuickForAWellBehavedChild(t *testing.T) {
	t.Parallel()
	c, _ := dialPeer(t, Options{KillGrace: 10 * time.Second})
	initialize(t, c)
	start := time.Now()
	c.Close()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close took %v for a child that exits on EOF", took)
	}
	if st := c.cmd.ProcessState; st == nil || !st.Exited() {
		t.Errorf("child state %v, want a normal exit", c.cmd.ProcessState)
	}
}

func TestStdioTooLarge(t *testing.T) {
	t.Parallel()
	c, _ := dialPeer(t, Options{MaxMessage: 4096})
	initialize(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := callTool(ctx, c, 1, "big", `{"bytes":3000}`, nil); err != nil {
		t.Fatalf("a message under the limit: %v", err)
	}
	_, err := callTool(ctx, c, 2, "big", `{"bytes":100000}`, nil)
	if !errors.Is(err, ErrTooLarge) || !errors.Is(c.Err(), ErrTooLarge) {
		t.Errorf("got %v (Err %v), want ErrTooLarge", err, c.Err())
	}
}

func TestStdioContext(t *testing.T) {
	t.Parallel()
	c, _ := dialPeer(t, Options{})
	initialize(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := callTool(ctx, c, 1, "sleep", `{"ms":500}`, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 400*time.Millisecond {
		t.Errorf("Request returned after %v, not when its context ended", took)
	}
	// The late response is dropped, and the id may be used again.
	time.Sleep(600 * time.Millisecond)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel2()
	if got, err := callTool(ctx2, c, 1, "echo", `{"text":"again"}`, nil); err != nil || got != "again" {
		t.Errorf("after a late response: got %q, %v", got, err)
	}
	// Close ends a Request in flight at once.
	done := make(chan error, 1)
	go func() {
		_, err := callTool(ctx2, c, 2, "sleep", `{"ms":60000}`, nil)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	go c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("got %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Request in flight did not return on Close")
	}
}

func TestStdioDuplicateID(t *testing.T) {
	t.Parallel()
	c, _ := dialPeer(t, Options{})
	initialize(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go callTool(ctx, c, 7, "sleep", `{"ms":1000}`, nil)
	time.Sleep(100 * time.Millisecond)
	if _, err := callTool(ctx, c, 7, "echo", `{"text":"x"}`, nil); err == nil || !strings.Contains(err.Error(), "in flight") {
		t.Errorf("got %v, want an error for an id already in flight", err)
	}
}

// A line that is not JSON-RPC is skipped; the session goes on.
func TestStdioMalformedLine(t *testing.T) {
	t.Parallel()
	script := `read line; echo 'not json'; echo '{"jsonrpc":"2.0","id":1,"result":{"ok":true}}'; cat >/dev/null`
	c, err := Dial(context.Background(), Endpoint{Transport: TransportStdio, Command: []string{"sh", "-c", script}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Request(ctx, []byte("1"), []byte("{\"jsonrpc\":\"2.0\",\n \"id\":1,\"method\":\"ping\"}"), nil)
	if err != nil || !bytes.Contains(resp, []byte(`"ok":true`)) {
		t.Errorf("got %s, %v", resp, err)
	}
}

func TestStdioBadCommand(t *testing.T) {
	t.Parallel()
	_, err := Dial(context.Background(), Endpoint{Transport: TransportStdio, Command: []string{"/nonexistent/server"}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/server") {
		t.Errorf("got %v, want an error naming the command", err)
	}
	if _, err := Dial(context.Background(), Endpoint{Transport: TransportStdio}, Options{}); err == nil {
		t.Error("Dial with no command succeeded")
	}
}

// Nothing outlives a session: goroutines and file descriptors come back to
// where they were. Not parallel: it counts the whole process's.
func TestStdioLeaks(t *testing.T) {
	before, fds := goroutines(), openFDs()
	for i := 0; i < 3; i++ {
		c, err := Dial(context.Background(), Endpoint{Transport: TransportStdio, Command: []string{stdioServer}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		initialize(t, c)
		c.Close()
	}
	if !settle(5*time.Second, func() bool { return goroutines() <= before && openFDs() <= fds }) {
		t.Errorf("goroutines %d -> %d, fds %d -> %d", before, goroutines(), fds, openFDs())
	}
}
