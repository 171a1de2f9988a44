package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/examples/demo"
	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
)

// These tests break backends and requests on purpose and check that the
// broken part gets a precise error while everything else keeps serving
// (DESIGN.md section 9).

// calmKeepAlive replaces the harness's 200ms backend keepalive, whose
// 100ms ping deadline a loaded machine running -race can miss: these tests
// break backends on purpose and must not see a session dropped by accident.
// Dead backends are still found at once, by the failed call.
const calmKeepAlive = 2 * time.Second

func calm() gateway.Options { return gateway.Options{KeepAlive: calmKeepAlive} }

func startAdmin(t *testing.T, gw *testGateway) string {
	t.Helper()
	// /readyz as the admin listener serves it to an authenticated caller:
	// the gateway's readiness, 503 when no backend is ready.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		rd := gw.gw.Readiness()
		if rd.Status == "unavailable" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(rd)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func readyz(t *testing.T, admin string) (int, gateway.Readiness) {
	t.Helper()
	resp, err := http.Get(admin + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	var r gateway.Readiness
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("decoding /readyz: %v", err)
	}
	return resp.StatusCode, r
}

func statusOf(r gateway.Readiness, name string) backend.Status {
	for _, s := range r.Backends {
		if s.Name == name {
			return s
		}
	}
	return backend.Status{}
}

func call(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) (*mcp.CallToolResult, error) {
	t.Helper()
	if args == nil {
		args = map[string]any{}
	}
	return cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: name, Arguments: args})
}

// wantUnavailable checks that err is the gateway's -32010 naming backend.
func wantUnavailable(t *testing.T, err error, backendName string) {
	t.Helper()
	if got := rpcCode(err); got != gateway.CodeUnavailable || !strings.Contains(err.Error(), strconv.Quote(backendName)) {
		t.Fatalf("got %v (code %d), want code %d naming %q", err, got, gateway.CodeUnavailable, backendName)
	}
}

func wantWeather(t *testing.T, cs *mcp.ClientSession, city string) {
	t.Helper()
	res, err := call(t, cs, "weather_get_weather", map[string]any{"city": city})
	if err != nil || res.IsError || !strings.Contains(text(res), `"city":"`+city+`"`) {
		t.Fatalf("weather_get_weather(%s): got %v %q, want its forecast", city, err, textOrNil(res))
	}
}

func wantFile(t *testing.T, cs *mcp.ClientSession, name, path, want string) {
	t.Helper()
	res, err := call(t, cs, name, map[string]any{"path": path})
	if err != nil || res.IsError || !strings.Contains(text(res), want) {
		t.Fatalf("%s(%s): got %v %q, want %q", name, path, err, textOrNil(res), want)
	}
}

func textOrNil(res *mcp.CallToolResult) string {
	if res == nil {
		return "<nil>"
	}
	return text(res)
}

func pidOf(t *testing.T, cs *mcp.ClientSession, tool string) int {
	t.Helper()
	res, err := call(t, cs, tool, nil)
	if err != nil || res.IsError {
		t.Fatalf("%s: %v %q", tool, err, textOrNil(res))
	}
	var out struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(text(res)), &out); err != nil || out.PID <= 1 {
		t.Fatalf("%s: got %q, want {\"pid\":N}", tool, text(res))
	}
	return out.PID
}

// gatedFiles runs the files demo through a shell wrapper that logs each
// start and, while dir/gate exists, exits at once with a line on stderr:
// the test holds the child down as long as it needs, and sees every
// restart attempt. exec keeps the pid, so whoami names the process to kill.
func gatedFiles(t *testing.T, dir string) config.Backend {
	t.Helper()
	script := filepath.Join(dir, "files.sh")
	body := `#!/bin/sh
date +%s%N >> "$TG_DIR/starts"
if [ -e "$TG_DIR/gate" ]; then echo "files: gate closed" >&2; exit 3; fi
exec "$TG_FILES"
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	bc := filesCfg()
	bc.Command = []string{"/bin/sh", script}
	bc.Env = map[string]string{"TG_DIR": dir, "TG_FILES": filesBin}
	return bc
}

func startTimes(t *testing.T, dir string) []time.Time {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "starts"))
	if err != nil {
		return nil
	}
	var out []time.Time
	for line := range strings.Lines(string(raw)) {
		ns, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
		if err != nil {
			t.Fatalf("starts: %q: %v", line, err)
		}
		out = append(out, time.Unix(0, ns))
	}
	return out
}

func TestStdioChildKilledIsRestartedWithBackoff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := startWeather(t, demo.WeatherOptions{})
	const minBackoff = 20 * time.Millisecond
	gw := startGateway(t, baseConfig(weatherCfg(w.url()), gatedFiles(t, dir)), gateway.Options{MinBackoff: minBackoff, KeepAlive: calmKeepAlive})
	admin := startAdmin(t, gw)
	cs := connect(t, gw.url+"/mcp", nil, nil)

	oldPID := pidOf(t, cs, "files_whoami")
	if err := os.WriteFile(filepath.Join(dir, "gate"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", oldPID, err)
	}

	// Whether the call meets the dying session or the tombstone left once
	// the gateway noticed, it must name the backend, not the tool.
	_, err := call(t, cs, "files_read_file", map[string]any{"path": "notes/todo.md"})
	wantUnavailable(t, err, "files")
	wantWeather(t, cs, "Lisbon")

	// While the gate is closed every restart fails, and each waits twice as
	// long as the one before: at least 20ms, 40ms, 80ms apart.
	eventually(t, 10*time.Second, "three failed restarts", func() bool { return len(startTimes(t, dir)) >= 5 })
	starts := startTimes(t, dir)
	for i := 2; i < 5; i++ {
		gap, min := starts[i].Sub(starts[i-1]), minBackoff<<(i-2)
		if gap < min {
			t.Errorf("restart %d came %v after the previous one, want at least %v", i, gap, min)
		}
	}
	_, err = call(t, cs, "files_list_files", nil)
	wantUnavailable(t, err, "files")
	wantWeather(t, cs, "Oslo")

	var st backend.Status
	eventually(t, 10*time.Second, "/readyz to show the child's last stderr line", func() bool {
		code, r := readyz(t, admin)
		st = statusOf(r, "files")
		return code == http.StatusOK && r.Status == "degraded" && st.State == backend.StateDown &&
			strings.Contains(st.LastError, "files: gate closed")
	})
	if st.Restarts < 3 {
		t.Errorf("/readyz files.restarts: got %d, want >= 3", st.Restarts)
	}

	if err := os.Remove(filepath.Join(dir, "gate")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "files to come back", func() bool {
		_, r := readyz(t, admin)
		st = statusOf(r, "files")
		return r.Status == "ready" && st.State == backend.StateReady
	})
	if st.Restarts < 4 || st.LastError != "" {
		t.Errorf("/readyz files after recovery: got restarts %d, last_error %q; want >= 4 and none", st.Restarts, st.LastError)
	}
	// The same client session reaches the new child.
	if newPID := pidOf(t, cs, "files_whoami"); newPID == oldPID {
		t.Errorf("files_whoami after restart: got the killed pid %d", newPID)
	}
	wantFile(t, cs, "files_read_file", "notes/todo.md", "book flights")
}

func TestHTTPBackendStopAndRestart(t *testing.T) {
	t.Parallel()
	w := startWeather(t, demo.WeatherOptions{})
	gw := startGateway(t, baseConfig(weatherCfg(w.url()), filesCfg()), calm())
	admin := startAdmin(t, gw)
	var changed atomic.Int64
	cs := connect(t, gw.url+"/mcp", &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed.Add(1) },
	}, nil)
	hasWeather := func() bool {
		return slices.ContainsFunc(toolNames(t, cs), func(n string) bool { return strings.HasPrefix(n, "weather_") })
	}
	if !hasWeather() {
		t.Fatalf("tools/list before the stop: got %v, want weather tools", toolNames(t, cs))
	}
	wantWeather(t, cs, "Lisbon")

	before := changed.Load()
	w.stop()
	_, err := call(t, cs, "weather_get_weather", map[string]any{"city": "Lisbon"})
	wantUnavailable(t, err, "weather")
	wantFile(t, cs, "files_read_file", "notes/todo.md", "book flights")

	eventually(t, 10*time.Second, "weather tools to leave tools/list", func() bool { return !hasWeather() })
	eventually(t, 5*time.Second, "notifications/tools/list_changed after the stop", func() bool { return changed.Load() > before })
	// The names are remembered while the backend is down.
	_, err = call(t, cs, "weather_get_weather", map[string]any{"city": "Lisbon"})
	wantUnavailable(t, err, "weather")
	if _, r := readyz(t, admin); statusOf(r, "weather").State == backend.StateReady || r.Status != "degraded" {
		t.Errorf("/readyz while weather is stopped: got %s with weather %s, want degraded and weather not ready", r.Status, statusOf(r, "weather").State)
	}
	wantFile(t, cs, "files_read_file", "reports/q3.csv", "emea,120")

	before = changed.Load()
	w.restart(t)
	eventually(t, 20*time.Second, "weather tools to return to tools/list", hasWeather)
	eventually(t, 5*time.Second, "notifications/tools/list_changed after the restart", func() bool { return changed.Load() > before })
	wantWeather(t, cs, "Oslo")
	if _, r := readyz(t, admin); r.Status != "ready" || statusOf(r, "weather").Restarts < 1 {
		t.Errorf("/readyz after restart: got %s, weather restarts %d; want ready, >= 1", r.Status, statusOf(r, "weather").Restarts)
	}
}

func TestBackendDownFromStart(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String() + "/mcp"
	ln.Close()
	ghost := weatherCfg(closedURL)
	ghost.Name = "ghost"
	dead := config.Backend{Name: "dead", Transport: config.TransportStdio, Timeout: durationOf(5 * time.Second),
		Command: []string{"/bin/sh", "-c", "echo 'dead: cannot open /etc/dead.conf' >&2; exit 2"}}

	t.Run("others serve", func(t *testing.T) {
		t.Parallel()
		w := startWeather(t, demo.WeatherOptions{})
		gw := startGateway(t, baseConfig(ghost, weatherCfg(w.url()), dead), calm())
		admin := startAdmin(t, gw)
		cs := connect(t, gw.url+"/mcp", nil, nil)
		for _, n := range toolNames(t, cs) {
			if !strings.HasPrefix(n, "weather_") {
				t.Errorf("tools/list: got %q from a backend that never came up", n)
			}
		}
		wantWeather(t, cs, "Nairobi")

		eventually(t, 10*time.Second, "/readyz to report both dead backends with their errors", func() bool {
			code, r := readyz(t, admin)
			g, d := statusOf(r, "ghost"), statusOf(r, "dead")
			return code == http.StatusOK && r.Status == "degraded" &&
				statusOf(r, "weather").State == backend.StateReady &&
				g.State == backend.StateDown && strings.Contains(g.LastError, "connect") &&
				d.State == backend.StateDown && strings.Contains(d.LastError, "dead: cannot open /etc/dead.conf")
		})
		code, r := readyz(t, admin)
		for _, name := range []string{"ghost", "dead"} {
			if s := statusOf(r, name); s.Tools != 0 {
				t.Errorf("/readyz %s.tools: got %d, want 0", name, s.Tools)
			}
		}
		if t.Failed() {
			t.Logf("/readyz: HTTP %d %+v", code, r)
		}
		// A single-backend endpoint for a dead backend still serves MCP,
		// with nothing in it.
		if names := toolNames(t, connect(t, gw.url+"/mcp/ghost", nil, nil)); len(names) != 0 {
			t.Errorf("/mcp/ghost tools/list: got %v, want none", names)
		}
	})
	t.Run("all down", func(t *testing.T) {
		t.Parallel()
		gw := startGateway(t, baseConfig(ghost, dead), calm())
		admin := startAdmin(t, gw)
		code, r := readyz(t, admin)
		if code != http.StatusServiceUnavailable || r.Status != "unavailable" {
			t.Errorf("/readyz: got HTTP %d %q, want 503 unavailable", code, r.Status)
		}
		cs := connect(t, gw.url+"/mcp", nil, nil)
		if names := toolNames(t, cs); len(names) != 0 {
			t.Errorf("tools/list: got %v, want none", names)
		}
		_, err := call(t, cs, "ghost_get_weather", map[string]any{"city": "Oslo"})
		if rpcCode(err) != jsonrpc.CodeInvalidParams || !strings.Contains(err.Error(), `"ghost_get_weather"`) {
			t.Errorf("a tool never listed: got %v, want -32602 naming it", err)
		}
	})
}

func TestStdioBackendTimeout(t *testing.T) {
	t.Parallel()
	mark := filepath.Join(t.TempDir(), "cancelled")
	bc := labChildCfg(t, "slow", mark)
	// Long enough that a quick call never hits it on a loaded machine
	// under -race; slow_block never answers.
	bc.Timeout = durationOf(1500 * time.Millisecond)
	gw := startGateway(t, baseConfig(bc), calm())
	cs := connect(t, gw.url+"/mcp", nil, nil)
	pid := pidOf(t, cs, "slow_pid")

	start := time.Now()
	_, err := call(t, cs, "slow_block", nil)
	if rpcCode(err) != gateway.CodeTimeout || !strings.Contains(err.Error(), `"slow"`) {
		t.Fatalf("got %v, want code %d naming the backend", err, gateway.CodeTimeout)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout took %v, want about 1.5s", d)
	}
	// The gateway told the child (notifications/cancelled), and the child
	// keeps serving: no restart was needed.
	eventually(t, 5*time.Second, "the child to see the cancellation", func() bool {
		_, err := os.Stat(mark)
		return err == nil
	})
	if got := pidOf(t, cs, "slow_pid"); got != pid {
		t.Errorf("slow_pid after the timeout: got %d, want the same child %d", got, pid)
	}
}

func TestClientCancellationReachesBackend(t *testing.T) {
	t.Parallel()
	lab := startLab(t)
	// A long timeout, so only the client's cancellation can end the call.
	bc := labCfg(lab.url)
	bc.Timeout = durationOf(time.Minute)
	gw := startGateway(t, baseConfig(bc, filesCfg()), calm())
	t.Cleanup(lab.unblock) // before the gateway closes
	for _, version := range []string{"2025-11-25", statelessVersion} {
		t.Run(version, func(t *testing.T) {
			cs := connect(t, gw.url+"/mcp", nil, &mcp.ClientSessionOptions{ProtocolVersion: version})
			ctx, cancel := context.WithCancel(ctxT(t))
			errc := make(chan error, 1)
			go func() {
				_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "lab_block", Arguments: map[string]any{}})
				errc <- err
			}()
			select {
			case <-lab.started:
			case <-time.After(10 * time.Second):
				t.Fatal("lab_block never reached the backend")
			}
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled call: got %v, want context.Canceled", err)
			}
			// The session and both backends keep serving.
			res, err := call(t, cs, "lab_meta_keys", nil)
			if err != nil || res.IsError {
				t.Fatalf("lab_meta_keys after cancel: %v %q", err, textOrNil(res))
			}
			wantFile(t, cs, "files_read_file", "config/app.yaml", "retries")

			wait := 5 * time.Second
			if version == statelessVersion {
				wait = time.Second
			}
			select {
			case err := <-lab.cancelled:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("backend handler ended with %v, want context.Canceled", err)
				}
			case <-time.After(wait):
				t.Fatal("the backend never saw the cancellation")
			}
		})
	}
}

func TestHTTPLayerFaults(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token"
	w := startWeather(t, demo.WeatherOptions{})
	cfg := baseConfig(weatherCfg(w.url()))
	cfg.MaxRequestBytes = 2048
	cfg.Auth.BearerTokens = []config.BearerToken{{Token: token}}
	gw := startGateway(t, cfg, calm())

	ping := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	big := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"pad":"` + strings.Repeat("x", 4096) + `"}}}`
	auth := http.Header{"Authorization": {"Bearer " + token}}
	tests := []struct {
		name       string
		path       string
		header     http.Header
		body       string
		hideLength bool // send chunked, so only reading the body finds the size
		wantStatus int
		wantHeader map[string]string
		wantBody   string // substring
		wantCode   int64  // JSON-RPC error code in the body, if any
	}{
		{name: "no token", path: "/mcp", body: ping, wantStatus: http.StatusUnauthorized,
			wantHeader: map[string]string{"WWW-Authenticate": `Bearer realm="tracegate"`}},
		{name: "wrong token", path: "/mcp", header: http.Header{"Authorization": {"Bearer nope"}}, body: ping, wantStatus: http.StatusUnauthorized,
			wantHeader: map[string]string{"WWW-Authenticate": `Bearer realm="tracegate", error="invalid_token"`}},
		{name: "not bearer", path: "/mcp", header: http.Header{"Authorization": {"Basic " + token}}, body: ping, wantStatus: http.StatusUnauthorized,
			wantHeader: map[string]string{"WWW-Authenticate": `Bearer realm="tracegate"`}},
		{name: "no token on unknown backend", path: "/mcp/nope", body: ping, wantStatus: http.StatusUnauthorized},
		{name: "unknown backend", path: "/mcp/nope", header: auth, body: ping, wantStatus: http.StatusNotFound, wantBody: `unknown backend "nope"`},
		{name: "oversized body", path: "/mcp", header: auth, body: big, wantStatus: http.StatusRequestEntityTooLarge,
			wantCode: jsonrpc.CodeInvalidRequest, wantBody: "exceeds 2048 bytes"},
		{name: "oversized chunked body", path: "/mcp", header: auth, body: big, hideLength: true, wantStatus: http.StatusRequestEntityTooLarge,
			wantCode: jsonrpc.CodeInvalidRequest, wantBody: "exceeds 2048 bytes"},
		{name: "oversized body on a backend path", path: "/mcp/weather", header: auth, body: big, wantStatus: http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body = strings.NewReader(tt.body)
			req, err := http.NewRequest(http.MethodPost, gw.url+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.hideLength {
				req.Body = io.NopCloser(struct{ io.Reader }{body})
				req.ContentLength = -1
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			for k, v := range tt.header {
				req.Header[k] = v
			}
			a := doRaw(t, req)
			if a.status != tt.wantStatus {
				t.Fatalf("got HTTP %d %s, want %d", a.status, a.body, tt.wantStatus)
			}
			for k, v := range tt.wantHeader {
				if got := a.header.Get(k); got != v {
					t.Errorf("%s: got %q, want %q", k, got, v)
				}
			}
			if !strings.Contains(string(a.body), tt.wantBody) {
				t.Errorf("body: got %q, want it to contain %q", a.body, tt.wantBody)
			}
			if tt.wantCode != 0 {
				if code, _, _ := a.rpcError(); code != tt.wantCode || a.msg["id"] != nil {
					t.Errorf("JSON-RPC error: got %s, want code %d with id null", a.body, tt.wantCode)
				}
			}
		})
	}

	t.Run("right token through a real client", func(t *testing.T) {
		c := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, nil)
		hc := &http.Client{Transport: bearer{token: token, base: http.DefaultTransport}}
		cs, err := c.Connect(ctxT(t), &mcp.StreamableClientTransport{Endpoint: gw.url + "/mcp", HTTPClient: hc}, nil)
		if err != nil {
			t.Fatalf("connect with the token: %v", err)
		}
		defer cs.Close()
		wantWeather(t, cs, "Lisbon")
	})
	t.Run("a real client without a token is refused", func(t *testing.T) {
		c := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, nil)
		cs, err := c.Connect(ctxT(t), &mcp.StreamableClientTransport{Endpoint: gw.url + "/mcp", MaxRetries: -1}, nil)
		if err == nil {
			cs.Close()
			t.Fatal("connect without a token: got a session, want an error")
		}
	})
	t.Run("the session survives a refused request", func(t *testing.T) {
		r := rawInitialize(t, gw.url+"/mcp", auth)
		if a := r.post(big, nil); a.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("oversized in a session: got HTTP %d, want 413", a.status)
		}
		a := r.post(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"weather_get_weather","arguments":{"city":"Oslo"}}}`, nil)
		if a.msg == nil || a.msg["result"] == nil || !strings.Contains(string(a.body), `\"city\":\"Oslo\"`) {
			t.Fatalf("tools/call after a 413: got HTTP %d %s", a.status, a.body)
		}
	})
}

// TestMalformedJSON checks the answer to a body that is not JSON:
// HTTP 400, as Streamable HTTP requires for input the server cannot accept
// (MCP 2025-11-25, basic/transports), and the session carries on.
func TestMalformedJSON(t *testing.T) {
	t.Parallel()
	w := startWeather(t, demo.WeatherOptions{})
	gw := startGateway(t, baseConfig(weatherCfg(w.url())), calm())
	r := rawInitialize(t, gw.url+"/mcp", nil)
	fresh := &rawMCP{t: t, endpoint: gw.url + "/mcp"}
	for _, tt := range []struct {
		name string
		c    *rawMCP
		body string
	}{
		{"without a session", fresh, `{"jsonrpc":"2.0","id":1,"method":`},
		{"in a session", r, `{"jsonrpc":"2.0","id":1,"method":`},
		{"not JSON at all", r, `hello`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.c.post(tt.body, nil)
			if a.status != http.StatusBadRequest {
				t.Fatalf("got HTTP %d %q, want 400", a.status, a.body)
			}
			code, _, ok := a.rpcError()
			if !ok {
				t.Fatalf("HTTP 400 carries %q (%s), want a JSON-RPC error -32700 with id null (JSON-RPC 2.0 section 5.1)", a.body, a.header.Get("Content-Type"))
			}
			if code != jsonrpc.CodeParseError || a.msg["id"] != nil {
				t.Errorf("got %s, want code -32700 with id null", a.body)
			}
		})
	}
	a := r.post(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"weather_get_weather","arguments":{"city":"Oslo"}}}`, nil)
	if a.msg == nil || a.msg["result"] == nil {
		t.Fatalf("tools/call after malformed JSON: got HTTP %d %s", a.status, a.body)
	}
}

type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// TestBadTraceContextStillAnswered sends an invalid traceparent, an
// oversized baggage and an oversized _meta: tracing must ignore what it
// cannot use (DESIGN.md section 3), never fail the request.
func TestBadTraceContextStillAnswered(t *testing.T) {
	t.Parallel()
	lab := startLab(t)
	w := startWeather(t, demo.WeatherOptions{})
	gw := startGateway(t, baseConfig(weatherCfg(w.url()), labCfg(lab.url)), calm())

	badHeaders := http.Header{
		"Traceparent": {"00-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-00f067aa0ba902b7-01"},
		"Tracestate":  {strings.Repeat("=,", 300)},
		"Baggage":     {strings.Repeat("k=v,", 3000)}, // 12 KiB, over the 8 KiB limit
	}
	meta := map[string]any{
		"traceparent":      "01-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero span id
		"tracestate":       7,
		"baggage":          strings.Repeat("k=v,", 3000),
		"progressToken":    "p-1",
		"x.example/custom": map[string]any{"n": 1},
		"big":              strings.Repeat("x", 64<<10),
	}
	params := func(name string, args map[string]any) string {
		b, err := json.Marshal(map[string]any{"name": name, "arguments": args, "_meta": meta})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	check := func(t *testing.T, a rawAnswer) {
		t.Helper()
		res, _ := a.msg["result"].(map[string]any)
		if a.status != http.StatusOK || res == nil {
			t.Fatalf("got HTTP %d %.300s, want a result", a.status, a.body)
		}
	}
	wantKeys := []string{"big", "progressToken", "x.example/custom"}

	t.Run("stateful", func(t *testing.T) {
		t.Parallel()
		r := rawInitialize(t, gw.url+"/mcp", badHeaders)
		a := r.post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":`+params("weather_get_weather", map[string]any{"city": "Lisbon"})+`}`, nil)
		check(t, a)
		if !strings.Contains(string(a.body), `\"city\":\"Lisbon\"`) {
			t.Errorf("weather_get_weather: got %.300s, want the Lisbon forecast", a.body)
		}
		a = r.post(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":`+params("lab_meta_keys", nil)+`}`, nil)
		check(t, a)
		for _, k := range wantKeys {
			if !strings.Contains(string(a.body), strconv.Quote(k)) {
				t.Errorf("lab_meta_keys: got %.300s, want %q forwarded", a.body, k)
			}
		}
	})
	t.Run("stateless", func(t *testing.T) {
		t.Parallel()
		c := &rawMCP{t: t, endpoint: gw.url + "/mcp", header: badHeaders}
		a := c.postStateless(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":` + params("weather_get_weather", map[string]any{"city": "Lisbon"}) + `}`)
		check(t, a)
		if !strings.Contains(string(a.body), `\"city\":\"Lisbon\"`) {
			t.Errorf("weather_get_weather: got %.300s, want the Lisbon forecast", a.body)
		}
	})
}

// postStateless sends body, a JSON-RPC request, as the 2026-07-28 revision
// does: no session, the protocol version, method and name in headers, and
// the SEP-2575 _meta triple beside the caller's own _meta. Params that are
// not an object are sent as they are.
func (c *rawMCP) postStateless(body string) rawAnswer {
	c.t.Helper()
	var msg map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &msg); err != nil {
		c.t.Fatalf("request %s: %v", body, err)
	}
	var method string
	json.Unmarshal(msg["method"], &method)
	h := http.Header{"Mcp-Protocol-Version": {statelessVersion}, "Mcp-Method": {method}}
	var p map[string]any
	if raw, ok := msg["params"]; !ok || json.Unmarshal(raw, &p) == nil {
		if p == nil {
			p = map[string]any{}
		}
		meta, _ := p["_meta"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
		}
		meta["io.modelcontextprotocol/protocolVersion"] = statelessVersion
		meta["io.modelcontextprotocol/clientInfo"] = map[string]any{"name": "raw", "version": "1"}
		meta["io.modelcontextprotocol/clientCapabilities"] = map[string]any{}
		p["_meta"] = meta
		raw, err := json.Marshal(p)
		if err != nil {
			c.t.Fatal(err)
		}
		msg["params"] = raw
		if name, ok := p["name"].(string); ok && (method == "tools/call" || method == "prompts/get") {
			h.Set("Mcp-Name", name)
		}
		if uri, ok := p["uri"].(string); ok && method == "resources/read" {
			h.Set("Mcp-Name", uri)
		}
	}
	out, err := json.Marshal(msg)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.post(string(out), h)
}

const statelessVersion = "2026-07-28"

func TestConcurrentSessionsAcrossBackends(t *testing.T) {
	t.Parallel()
	w := startWeather(t, demo.WeatherOptions{})
	gw := startGateway(t, baseConfig(weatherCfg(w.url()), filesCfg()), calm())
	const sessions, calls = 16, 20
	files := []struct{ path, want string }{
		{"notes/todo.md", "book flights"},
		{"reports/q4.csv", "emea,150"},
		{"config/app.yaml", "retries: 3"},
	}
	css := make([]*mcp.ClientSession, sessions)
	for i := range css {
		// Half the sessions stateful, half stateless.
		v := "2025-11-25"
		if i%2 == 1 {
			v = statelessVersion
		}
		css[i] = connect(t, gw.url+"/mcp", nil, &mcp.ClientSessionOptions{ProtocolVersion: v})
	}
	ctx := ctxT(t)
	done := make(chan struct{})
	var failed atomic.Int64
	for i, cs := range css {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := range calls {
				var p *mcp.CallToolParams
				var want string
				if j%2 == 0 {
					city := fmt.Sprintf("City-%d-%d", i, j)
					p = &mcp.CallToolParams{Name: "weather_get_weather", Arguments: map[string]any{"city": city}}
					want = `"city":"` + city + `"`
				} else {
					f := files[(i+j)%len(files)]
					p = &mcp.CallToolParams{Name: "files_read_file", Arguments: map[string]any{"path": f.path}}
					want = f.want
				}
				res, err := cs.CallTool(ctx, p)
				if err != nil || res.IsError || !strings.Contains(text(res), want) {
					failed.Add(1)
					t.Errorf("session %d call %d %s: got %v %q, want %q", i, j, p.Name, err, textOrNil(res), want)
					return
				}
			}
		}()
	}
	for range css {
		<-done
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d sessions failed", n, sessions)
	}
}
