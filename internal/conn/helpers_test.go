package conn

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/wire"
)

// stdioServer is the go-sdk stdio peer, built once by TestMain.
var stdioServer string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "conn-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	stdioServer = filepath.Join(dir, "stdioserver")
	build := exec.Command("go", "build", "-o", stdioServer, "./testdata/stdioserver")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the stdio peer:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// inbox collects messages a Conn passes to a callback, and answers the
// server's sampling requests with Send, as a client would.
type inbox struct {
	mu   sync.Mutex
	msgs []string
	conn Conn
	wg   sync.WaitGroup
}

func (b *inbox) add(msg []byte) {
	b.mu.Lock()
	b.msgs = append(b.msgs, string(msg))
	c := b.conn
	b.mu.Unlock()
	m, err := wire.Parse(msg)
	if err != nil || m.Method != "sampling/createMessage" || c == nil {
		return
	}
	// Answer off the reader's goroutine, which must not block.
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		result := `{"role":"assistant","model":"test","content":{"type":"text","text":"hello from the client"}}`
		_ = c.Send(context.Background(), wire.AppendResponse(nil, m.ID, []byte(result)))
	}()
}

func (b *inbox) methods() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, s := range b.msgs {
		m, err := wire.Parse([]byte(s))
		if err != nil {
			out = append(out, "malformed")
			continue
		}
		out = append(out, m.Method)
	}
	return out
}

func (b *inbox) count(method string) int {
	n := 0
	for _, m := range b.methods() {
		if m == method {
			n++
		}
	}
	return n
}

const testProtocol = "2025-11-25"

// initialize runs the MCP handshake over c.
func initialize(t *testing.T, c Conn) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := c.Request(ctx, []byte(`0`), []byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"`+testProtocol+`","capabilities":{"sampling":{}},"clientInfo":{"name":"conn-test","version":"1"}}}`), nil)
	if err != nil {
		t.Fatalf("initialize: %v", err)
	}
	m, err := wire.Parse(resp)
	if err != nil || m.Result == nil {
		t.Fatalf("initialize: got %s", resp)
	}
	v, _ := wire.GetString(m.Result, "protocolVersion")
	if err := c.Send(ctx, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)); err != nil {
		t.Fatalf("notifications/initialized: %v", err)
	}
	c.Established(v)
	return resp
}

// callTool calls a tool with a progress token, and returns its result's
// first text, or the error.
func callTool(ctx context.Context, c Conn, id int, tool, args string, related func([]byte)) (string, error) {
	rid := strconv.Itoa(id)
	msg := `{"jsonrpc":"2.0","id":` + rid + `,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + args + `,"_meta":{"progressToken":"p` + rid + `"}}}`
	resp, err := c.Request(ctx, []byte(rid), []byte(msg), related)
	if err != nil {
		return "", err
	}
	return resultText(resp)
}

func resultText(resp []byte) (string, error) {
	m, err := wire.Parse(resp)
	if err != nil {
		return "", fmt.Errorf("response %s: %w", resp, err)
	}
	if m.Error != nil {
		return "", fmt.Errorf("JSON-RPC error: %s", m.Error)
	}
	var r struct {
		Content []struct{ Text string } `json:"content"`
		IsError bool                    `json:"isError"`
	}
	if err := json.Unmarshal(m.Result, &r); err != nil || len(r.Content) == 0 {
		return "", fmt.Errorf("result %s", m.Result)
	}
	if r.IsError {
		return "", fmt.Errorf("tool error: %s", r.Content[0].Text)
	}
	return r.Content[0].Text, nil
}

// procState returns a process's state letter from /proc, "" when it is
// gone.
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// pid (comm) state ...; comm may hold spaces.
	s := string(b[bytes.LastIndexByte(b, ')')+2:])
	return s[:1]
}

// groupMembers lists the processes whose process group is pgid.
func groupMembers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) {
			out = append(out, pid)
		}
	}
	return out
}

// openFDs counts this process's open file descriptors.
func openFDs() int {
	entries, _ := os.ReadDir("/proc/self/fd")
	return len(entries)
}

// settle waits until cond holds, up to d.
func settle(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func goroutines() int { return runtime.NumGoroutine() }
