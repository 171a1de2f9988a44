package backend_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/testnet"
)

// The test binary doubles as a stdio MCP server: with childEnv set it
// serves one of the servers below on stdin/stdout and exits.
const (
	childEnv  = "TRACEGATE_BACKEND_TEST_CHILD"
	startsEnv = "TRACEGATE_BACKEND_TEST_STARTS" // file each child start appends to
)

func init() {
	kind := os.Getenv(childEnv)
	if kind == "" {
		return
	}
	if f := os.Getenv(startsEnv); f != "" {
		fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fh.WriteString(strconv.FormatInt(time.Now().UnixNano(), 10) + "\n")
			fh.Close()
		}
	}
	s := testServer()
	if kind == "crashy" {
		// Die right after the gateway has listed the catalog: the
		// backend is ready, then gone, over and over.
		s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
			return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
				res, err := next(ctx, method, req)
				if method == "tools/list" {
					time.AfterFunc(20*time.Millisecond, func() { os.Exit(0) })
				}
				return res, err
			}
		})
	}
	if err := s.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

var errQuota = &jsonrpc.Error{Code: -32042, Message: "quota exceeded"}

func testServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "backend-test", Version: "1"}, nil)
	type pidOut struct {
		PID int `json:"pid"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "pid"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, pidOut, error) {
		return nil, pidOut{PID: os.Getpid()}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "fail_rpc"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return nil, nil, errQuota
	})
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in struct {
		Text string `json:"text"`
	}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	return s
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func start(t *testing.T, cfg config.Backend, opts backend.Options) *backend.Backend {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 20 * time.Millisecond
	}
	if opts.KeepAlive == 0 {
		opts.KeepAlive = -1
	}
	b := backend.New(cfg, opts)
	b.Start(context.Background())
	t.Cleanup(func() { b.Close() })
	return b
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func callTool(ctx context.Context, b *backend.Backend, name string, args any) (*mcp.CallToolResult, error) {
	var res *mcp.CallToolResult
	err := b.Do(ctx, func(ctx context.Context, cs *mcp.ClientSession) error {
		var err error
		res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		return err
	})
	return res, err
}

func code(err error) int64 {
	var e *jsonrpc.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// stallingHandler serves s, except that a tools/call for the tool "stall"
// gets no HTTP response at all until the client gives up.
func stallingHandler(s *mcp.Server) http.Handler {
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			if strings.Contains(string(body), `"name":"stall"`) {
				<-r.Context().Done()
				return
			}
			r.Body = io.NopCloser(strings.NewReader(string(body)))
		}
		h.ServeHTTP(w, r)
	})
}

func TestDoMapsFailures(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(stallingHandler(testServer()))
	t.Cleanup(srv.Close)
	b := start(t, config.Backend{Name: "web", URL: srv.URL, Transport: config.TransportStreamable, Timeout: config.Duration(time.Second)}, backend.Options{})
	waitFor(t, "ready", func() bool { return b.State() == backend.StateReady })
	ctx := t.Context()

	res, err := callTool(ctx, b, "echo", map[string]any{"text": "hi"})
	if err != nil || res.Content[0].(*mcp.TextContent).Text != "hi" {
		t.Fatalf("echo: got %v %v", res, err)
	}

	tests := []struct {
		name     string
		ctx      func() context.Context
		tool     string
		wantCode int64
		wantErr  error
	}{
		{name: "backend JSON-RPC error passes through", tool: "fail_rpc", wantCode: errQuota.Code},
		// No HTTP response at all: a timeout, not the SDK's "rejected by
		// transport" that also wraps the deadline.
		{name: "no answer is a timeout", tool: "stall", wantCode: backend.CodeTimeout},
		{name: "the caller's cancellation is returned as is", tool: "stall", wantErr: context.Canceled, ctx: func() context.Context {
			c, cancel := context.WithCancel(ctx)
			time.AfterFunc(50*time.Millisecond, cancel)
			return c
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ctx
			if tt.ctx != nil {
				c = tt.ctx()
			}
			_, err := callTool(c, b, tt.tool, map[string]any{})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				return
			}
			if code(err) != tt.wantCode {
				t.Fatalf("got %v (code %d), want code %d", err, code(err), tt.wantCode)
			}
		})
	}

	// The server goes away: the SDK reports a transport rejection (its
	// own -32005), which must become "unavailable" naming the backend.
	srv.CloseClientConnections() // the session's SSE stream stays open otherwise
	srv.Close()
	_, err = callTool(ctx, b, "echo", map[string]any{"text": "hi"})
	if code(err) != backend.CodeUnavailable || !strings.Contains(err.Error(), `"web"`) {
		t.Fatalf("after the server closed: got %v (code %d), want %d naming the backend", err, code(err), backend.CodeUnavailable)
	}
	// The failed call asked for a health check, which finds it dead.
	waitFor(t, "down", func() bool { return b.State() == backend.StateDown })
	if _, err := b.Session(); !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("Session while down: got %v, want ErrUnavailable", err)
	}
}

// TestSSEBackendOutlivesConnect checks that a legacy SSE backend's session
// lasts beyond connecting: the SDK's SSE client reads its event stream
// under the context given to Connect, which must not be the connect
// timeout's.
func TestSSEBackendOutlivesConnect(t *testing.T) {
	t.Parallel()
	s := testServer()
	srv := httptest.NewServer(mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(func() {
		srv.CloseClientConnections() // the event stream stays open otherwise
		srv.Close()
	})
	b := start(t, config.Backend{Name: "legacy", URL: srv.URL, Transport: config.TransportSSE, Timeout: config.Duration(5 * time.Second)}, backend.Options{})
	waitFor(t, "ready", func() bool { return b.State() == backend.StateReady })
	for i := range 3 {
		res, err := callTool(t.Context(), b, "echo", map[string]any{"text": "hi"})
		if err != nil || res.Content[0].(*mcp.TextContent).Text != "hi" {
			t.Fatalf("call %d: got %v %v, want hi", i, res, err)
		}
	}
	if got := b.Status().Restarts; got != 0 {
		t.Errorf("got %d restarts, want 0: the session must not end after connect", got)
	}
}

func childCfg(t *testing.T, kind, starts string) config.Backend {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A -race binary sleeps a second at exit (atexit_sleep_ms) unless told not to.
	env := map[string]string{childEnv: kind, "GORACE": "atexit_sleep_ms=0"}
	if starts != "" {
		env[startsEnv] = starts
	}
	return config.Backend{Name: kind, Command: []string{exe}, Env: env, Transport: config.TransportStdio, Timeout: config.Duration(10 * time.Second)}
}

func startTimes(t *testing.T, file string) []time.Time {
	t.Helper()
	raw, _ := os.ReadFile(file)
	var out []time.Time
	for _, line := range strings.Fields(string(raw)) {
		ns, err := strconv.ParseInt(line, 10, 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", file, line, err)
		}
		out = append(out, time.Unix(0, ns))
	}
	return out
}

// A child that dies right after each successful start must be restarted
// with growing delays, not respawned in a tight loop.
func TestCrashLoopBacksOff(t *testing.T) {
	t.Parallel()
	starts := filepath.Join(t.TempDir(), "starts")
	const minBackoff = 50 * time.Millisecond
	b := start(t, childCfg(t, "crashy", starts), backend.Options{MinBackoff: minBackoff})
	waitFor(t, "five starts", func() bool { return len(startTimes(t, starts)) >= 5 })
	st := startTimes(t, starts)
	for i := 1; i < 5; i++ {
		gap, min := st[i].Sub(st[i-1]), minBackoff<<(i-1)
		if gap < min {
			t.Errorf("start %d came %v after the previous one, want at least %v", i, gap, min)
		}
	}
	if s := b.Status(); s.Restarts < 4 {
		t.Errorf("Status().Restarts: got %d, want >= 4", s.Restarts)
	}
}

func TestStderrTailIsTheLastError(t *testing.T) {
	t.Parallel()
	b := start(t, config.Backend{Name: "broken", Transport: config.TransportStdio, Timeout: config.Duration(5 * time.Second),
		Command: []string{"/bin/sh", "-c", "echo starting >&2; echo 'fatal: no database' >&2; exit 1"}}, backend.Options{})
	waitFor(t, "the stderr line in the last error", func() bool {
		s := b.Status()
		return s.State == backend.StateDown && strings.Contains(s.LastError, "fatal: no database")
	})
	_, err := callTool(t.Context(), b, "pid", nil)
	if code(err) != backend.CodeUnavailable || !strings.Contains(err.Error(), "fatal: no database") {
		t.Errorf("Do while down: got %v, want %d with the child's last words", err, backend.CodeUnavailable)
	}
}

func TestCloseStopsTheChild(t *testing.T) {
	t.Parallel()
	b := start(t, childCfg(t, "plain", ""), backend.Options{})
	waitFor(t, "ready", func() bool { return b.State() == backend.StateReady })
	res, err := callTool(t.Context(), b, "pid", nil)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(res.Content[0].(*mcp.TextContent).Text), &out); err != nil || out.PID <= 1 {
		t.Fatalf("pid: got %v %v", res.Content, err)
	}
	if s := b.Status(); s.State != backend.StateReady || s.Tools != 3 || s.Restarts != 0 {
		t.Errorf("Status: got %+v, want ready with 3 tools and no restarts", s)
	}
	b.Close()
	b.Close() // idempotent
	if got := b.State(); got != backend.StateStopped {
		t.Errorf("State after Close: got %s, want %s", got, backend.StateStopped)
	}
	// Close reaps the child, so it does not linger even as a zombie.
	if err := syscall.Kill(out.PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("child %d after Close: kill(0) got %v, want ESRCH", out.PID, err)
	}
}

// A credential in a backend URL's query never reaches an error: not the
// backend's last error (/readyz), not a call's JSON-RPC error.
func TestErrorsDoNotRevealURLSecrets(t *testing.T) {
	t.Parallel()
	addr := testnet.RefusedAddr(t)
	b := start(t, config.Backend{Name: "web", URL: "http://user:pw@" + addr + "/mcp?token=s3cret", Transport: config.TransportStreamable, Timeout: config.Duration(time.Second)}, backend.Options{})
	waitFor(t, "down", func() bool { return b.State() == backend.StateDown })
	st := b.Status()
	if st.LastError == "" || strings.Contains(st.LastError, "s3cret") || strings.Contains(st.LastError, "pw@") {
		t.Errorf("last error %q: want the failure without the URL's credentials", st.LastError)
	}
	_, err := callTool(t.Context(), b, "echo", nil)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("call error %v: want an error without the URL's query", err)
	}
}
