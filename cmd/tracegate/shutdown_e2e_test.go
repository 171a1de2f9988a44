package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/otlptest"
)

// servedProcess is `tracegate serve` running as a child process.
type servedProcess struct {
	cmd      *exec.Cmd
	logs     *lockedLines
	path     string // the configuration file
	mcpURL   string
	adminURL string // "off" when there is no admin listener
	exited   chan struct{}
	code     int
}

// startServe runs `tracegate serve` on yaml with extra environment
// variables, and returns once it listens.
func startServe(t *testing.T, yaml string, env ...string) *servedProcess {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tracegate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &servedProcess{cmd: exec.Command(selfBin, "serve", "-config", path), logs: &lockedLines{}, path: path, exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	urls := make(chan [2]string, 1)
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.logs.add(sc.Text())
			var line struct{ Msg, MCP, Admin string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "tracegate listening" {
				urls <- [2]string{line.MCP, line.Admin}
			}
		}
		err := p.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
		}
	}()
	select {
	case u := <-urls:
		p.mcpURL, p.adminURL = u[0], u[1]
	case <-p.exited:
		t.Fatalf("tracegate serve exited before listening:\n%s", p.logs)
	case <-time.After(20 * time.Second):
		t.Fatalf("tracegate serve did not listen within 20s:\n%s", p.logs)
	}
	return p
}

// interrupt sends SIGINT and waits up to limit for the exit; it returns
// how long the exit took and the exit code.
func (p *servedProcess) interrupt(t *testing.T, limit time.Duration) (time.Duration, int) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
		return time.Since(start), p.code
	case <-time.After(limit):
		t.Fatalf("still running %v after SIGINT:\n%s", limit, p.logs)
	}
	return 0, 0
}

// deadCollector accepts TCP connections and never answers, like a
// collector that hangs.
func deadCollector(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestShutdownIdleWithDeadCollector: an idle gateway whose collector
// accepts and never answers exits within telemetry.flush_timeout (1s), not
// after shutdown_grace (30s) or the OTLP timeout (20s). No span was lost,
// so the exit code is 0.
func TestShutdownIdleWithDeadCollector(t *testing.T) {
	t.Parallel()
	p := startServe(t, fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: "off"
shutdown_grace: 30s
telemetry:
  exporter: otlp
  otlp: {endpoint: %s, timeout: 20s}
  viewer: {enabled: false}
  flush_timeout: 1s
`, deadCollector(t)))
	took, code := p.interrupt(t, 15*time.Second)
	if took > 4*time.Second {
		t.Errorf("exit took %v, want about the 1s flush_timeout", took)
	}
	if code != 0 {
		t.Errorf("exit code %d, want 0 (no span lost):\n%s", code, p.logs)
	}
}

// TestShutdownLostSpansExitOne: spans queued for a collector that never
// answers are lost at the flush deadline; the log says how many, and the
// exit code is 1. The collector's URL carries a token as its user name,
// and its header another: neither appears anywhere in the log.
func TestShutdownLostSpansExitOne(t *testing.T) {
	t.Parallel()
	const userSecret, headerSecret = "u53r-T0KEN-planted", "h34der-T0KEN-planted"
	collector := strings.Replace(deadCollector(t), "http://", "http://"+userSecret+"@", 1)
	// A backend nobody listens on: its connection attempts are traced.
	p := startServe(t, fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: "off"
shutdown_grace: 30s
backends:
  - {name: gone, url: %s/mcp}
log: {level: debug}
telemetry:
  exporter: otlp
  otlp: {endpoint: %s, timeout: 20s, headers: {Authorization: "Bearer %s"}}
  viewer: {enabled: false}
  flush_timeout: 1s
`, closedURL(t), collector, headerSecret), "OTEL_BSP_SCHEDULE_DELAY=3600000")
	// Let the first connection attempt end its span.
	time.Sleep(500 * time.Millisecond)
	took, code := p.interrupt(t, 15*time.Second)
	if code != 1 {
		t.Errorf("exit code %d, want 1:\n%s", code, p.logs)
	}
	if took > 5*time.Second {
		t.Errorf("exit took %v, want about the 1s flush_timeout", took)
	}
	var lost struct {
		Level     string
		LostSpans int `json:"lost_spans"`
	}
	for _, l := range strings.Split(p.logs.String(), "\n") {
		if strings.Contains(l, `"lost_spans"`) {
			json.Unmarshal([]byte(l), &lost)
		}
	}
	if lost.Level != "ERROR" || lost.LostSpans < 1 {
		t.Errorf("want an ERROR line with lost_spans >= 1, got %+v in:\n%s", lost, p.logs)
	}
	for _, secret := range []string{userSecret, headerSecret} {
		if strings.Contains(p.logs.String(), secret) {
			t.Errorf("%s leaked into the log:\n%s", secret, grepLines(p.logs.String(), secret))
		}
	}
}

func closedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

// TestShutdownFinishesCallsThenFlushes: a client holds the standalone GET
// stream open and has a 1.5s call in flight when SIGINT arrives. The
// stream is closed at once, the call finishes with its result, its spans
// reach the collector, and the process exits 0 long before the 30s grace.
func TestShutdownFinishesCallsThenFlushes(t *testing.T) {
	t.Parallel()
	recv := otlptest.NewReceiver(t)
	backend := mcp.NewServer(&mcp.Implementation{Name: "slow"}, nil)
	mcp.AddTool(backend, &mcp.Tool{Name: "wait"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		select {
		case <-time.After(1500 * time.Millisecond):
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "waited"}}}, nil, nil
	})
	backendSrv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return backend }, nil))
	t.Cleanup(backendSrv.Close)

	p := startServe(t, fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: "off"
shutdown_grace: 30s
backends:
  - {name: slow, url: %s}
telemetry:
  exporter: otlp
  otlp: {endpoint: %s}
  viewer: {enabled: false}
`, backendSrv.URL, recv.URL()), "OTEL_BSP_SCHEDULE_DELAY=3600000")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The SDK client opens the standalone GET stream after initialize.
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent"}, nil).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: p.mcpURL}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	for {
		tools, err := cs.ListTools(ctx, nil)
		if err == nil && len(tools.Tools) == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("backend tool never listed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	type result struct {
		res *mcp.CallToolResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "slow_wait", Arguments: map[string]any{}})
		done <- result{res, err}
	}()
	time.Sleep(300 * time.Millisecond) // the call is in flight
	took, code := p.interrupt(t, 20*time.Second)
	r := <-done
	if r.err != nil || r.res.IsError || len(r.res.Content) == 0 || r.res.Content[0].(*mcp.TextContent).Text != "waited" {
		t.Errorf("call in flight at SIGINT: got %+v, %v; want its result", r.res, r.err)
	}
	if took > 8*time.Second {
		t.Errorf("exit took %v with a stream open; want the call's 1.5s plus the flush, not the 30s grace", took)
	}
	if code != 0 {
		t.Errorf("exit code %d, want 0:\n%s", code, p.logs)
	}
	if _, ok := recv.FindSpan(func(s otlptest.Span) bool { return s.Name == "tools/call slow_wait" && s.Kind == "server" }); !ok {
		t.Errorf("the finished call's SERVER span never reached the collector; got:\n%s", recv.Dump())
	}
	if _, ok := recv.FindSpan(func(s otlptest.Span) bool { return s.Name == "tools/call wait" && s.Kind == "client" }); !ok {
		t.Errorf("the finished call's CLIENT span never reached the collector")
	}
}
