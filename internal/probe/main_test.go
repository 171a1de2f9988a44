package probe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/otlptest"
	"github.com/tracegate/tracegate/internal/testnet"
)

// syncBuffer is a goroutine-safe writer that reports each complete line.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	partial string
	lines   chan string
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{lines: make(chan string, 100)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	b.partial += string(p)
	for {
		line, rest, ok := strings.Cut(b.partial, "\n")
		if !ok {
			break
		}
		b.partial = rest
		select {
		case b.lines <- line:
		default:
		}
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

var traceIDLine = regexp.MustCompile(`(?m)^trace_id=([0-9a-f]{32})$`)

func TestMainHealthyServer(t *testing.T) {
	t.Parallel()
	url, srv := startStreamable(t, false)
	code, out, errOut := runMain(t,
		"-tool", "get_weather", "-args", `{"city":"Paris"}`, "-expect", "sunny",
		"-resource", "file:///readme.txt", "-prompt", "greet", "-prompt-args", `{"name":"Ada"}`,
		"-viewer", "http://127.0.0.1:9090/", "-header", "X-Probe-Tag=a", "-header", "X-Probe-Tag=b", url)
	if code != 0 {
		t.Fatalf("got exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	wantLines := []*regexp.Regexp{
		regexp.MustCompile(`^ok   initialize +[0-9.]+m?s  server=weather-demo 1\.2\.0 protocol=2025-11-25$`),
		regexp.MustCompile(`^ok   tools/list +[0-9.]+m?s  3 tools$`),
		regexp.MustCompile(`^ok   tools/call get_weather +[0-9.]+m?s  1 content block, contains "sunny"$`),
		regexp.MustCompile(`^ok   resources/read +[0-9.]+m?s  1 content item from file:///readme.txt$`),
		regexp.MustCompile(`^ok   prompts/get greet +[0-9.]+m?s  1 message$`),
		regexp.MustCompile(`^trace_id=[0-9a-f]{32}$`),
		regexp.MustCompile(`^viewer_url=http://127\.0\.0\.1:9090/ui/\?trace=[0-9a-f]{32}$`),
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(wantLines) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(wantLines), out)
	}
	for i, re := range wantLines {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d: got %q, want match for %s", i, lines[i], re)
		}
	}
	m := traceIDLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("got no trace_id line in:\n%s", out)
	}
	traceID := m[1]
	if !strings.HasSuffix(lines[6], traceID) {
		t.Errorf("got viewer line %q, want it to end in trace ID %s", lines[6], traceID)
	}
	// The server saw the printed trace in every header and every _meta.
	for _, h := range srv.httpSeen() {
		if !strings.HasPrefix(h.headerParent, "00-"+traceID+"-") || !strings.HasSuffix(h.headerParent, "-01") {
			t.Errorf("request %q: got traceparent header %q, want sampled trace %s", h.method, h.headerParent, traceID)
		}
	}
	metas := srv.metaSeen()
	if len(metas) == 0 {
		t.Fatal("server middleware saw no messages")
	}
	for _, m := range metas {
		if !strings.HasPrefix(m.metaParent, "00-"+traceID+"-") || !strings.HasSuffix(m.metaParent, "-01") {
			t.Errorf("%s: got _meta.traceparent %q, want sampled trace %s", m.method, m.metaParent, traceID)
		}
	}
	// Each step has a parent span of its own, the same in the header and
	// in _meta.
	byMethod := map[string]string{}
	for _, h := range srv.httpSeen() {
		if got := h.header.Values("X-Probe-Tag"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
			t.Errorf("request %q: got X-Probe-Tag %q, want [a b] from the repeated -header", h.method, got)
		}
		if h.method != "" && h.method != "notifications/initialized" {
			byMethod[h.method] = h.headerParent
		}
	}
	steps := []string{"initialize", "tools/list", "tools/call", "resources/read", "prompts/get"}
	distinct := map[string]bool{}
	for _, method := range steps {
		distinct[byMethod[method]] = true
	}
	if len(distinct) != len(steps) {
		t.Errorf("got traceparents %q, want a fresh one per step", byMethod)
	}
	for _, m := range metas {
		if want, ok := byMethod[m.method]; ok && m.metaParent != want {
			t.Errorf("%s: got _meta.traceparent %q, header %q, want the same", m.method, m.metaParent, want)
		}
	}
}

func TestMainStatelessAndSSE(t *testing.T) {
	t.Parallel()
	statelessURL, _ := startStreamable(t, true)
	sseURL, _ := startSSE(t)
	tests := []struct {
		name      string
		args      []string
		wantFirst string
	}{
		{"stateless", []string{"-protocol", "2026-07-28", statelessURL}, "ok   server/discover"},
		{"sse auto-detected", []string{sseURL}, "ok   initialize"},
		{"sse forced", []string{"-transport", "sse", sseURL}, "ok   initialize"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runMain(t, append([]string{"-tool", "get_weather", "-args", `{"city":"Rome"}`, "-expect", "Rome"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("got exit %d, want 0\n%s%s", code, out, errOut)
			}
			if !strings.HasPrefix(out, tc.wantFirst) {
				t.Errorf("got output starting %q, want %q", firstLine(out), tc.wantFirst)
			}
			if !strings.Contains(out, "ok   tools/call get_weather") {
				t.Errorf("got output without a passing tools/call:\n%s", out)
			}
		})
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// startStatic serves h at /mcp and returns the URL.
func startStatic(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	return serve(t, h)
}

// startHanging serves an endpoint that never answers, until the test ends.
func startHanging(t *testing.T) string {
	t.Helper()
	release := make(chan struct{})
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release) })
	return url
}

func startTLS(t *testing.T) string {
	t.Helper()
	srv := newMCPServer(nil, nil)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake errors are the point
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts.URL + "/mcp"
}

func startWithAuth(t *testing.T, token string) string {
	t.Helper()
	srv := newMCPServer(nil, nil)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mcp", resource_metadata="http://example.test/.well-known/oauth-protected-resource"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
}

func TestMainDiagnosesFaults(t *testing.T) {
	t.Parallel()
	healthy, _ := startStreamable(t, false)
	tlsURL := startTLS(t)
	authURL := startWithAuth(t, "s3cret")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantLine string // the FAIL line's prefix
		wantMsg  []string
	}{
		{name: "unparseable URL", args: []string{"http://[::1/mcp"}, wantCode: 1,
			wantLine: "FAIL initialize", wantMsg: []string{"invalid URL: missing ']' in host"}},
		{name: "unparseable URL hides its secrets", args: []string{"-json", "http://probe:s3cret@[::1/mcp?key=s3cret"}, wantCode: 1,
			wantLine: "{", wantMsg: []string{`"error":"invalid URL: missing ']' in host"`, `"error_type":"invalid_url"`, `"url":"http://xxxxx@[::1/mcp?xxxxx"`}},
		{name: "URL without scheme", args: []string{"127.0.0.1:8080/mcp"}, wantCode: 1,
			wantLine: "FAIL initialize", wantMsg: []string{"invalid URL: no scheme"}},
		{name: "URL with another scheme", args: []string{"ftp://example.com/mcp"}, wantCode: 1,
			wantLine: "FAIL initialize", wantMsg: []string{`invalid URL: scheme "ftp"`}},
		{name: "URL without host", args: []string{"http:///mcp"}, wantCode: 1,
			wantLine: "FAIL initialize", wantMsg: []string{"invalid URL: no host"}},
		{name: "URL with port out of range", args: []string{"http://127.0.0.1:99999/mcp"}, wantCode: 1,
			wantLine: "FAIL initialize", wantMsg: []string{"invalid URL: port 99999 out of range"}},
		{name: "unparseable URL, stateless", args: []string{"-protocol", "2026-07-28", "http://[::1/mcp"}, wantCode: 1,
			wantLine: "FAIL server/discover", wantMsg: []string{"invalid URL"}},
		{name: "dns failure", args: []string{"http://no-such-host.invalid/mcp"}, wantCode: 1,
			wantLine: "FAIL initialize", wantMsg: []string{`cannot resolve host "no-such-host.invalid"`}},
		{name: "connection refused", args: []string{"http://" + testnet.RefusedAddr(t) + "/mcp"}, wantCode: 1,
			wantLine: "FAIL initialize", wantMsg: []string{"connection refused", "is the server running"}},
		{name: "tls untrusted", args: []string{tlsURL}, wantCode: 1,
			wantLine: "FAIL initialize", wantMsg: []string{"TLS certificate not trusted", "-insecure"}},
		{name: "tls insecure passes", args: []string{"-insecure", tlsURL}, wantCode: 0,
			wantLine: "ok   tools/list"},
		{name: "http to https port", args: []string{strings.Replace(healthy, "http://", "https://", 1)}, wantCode: 1,
			wantLine: "FAIL initialize", wantMsg: []string{"does not speak TLS"}},
		{name: "401 without token", args: []string{authURL}, wantCode: 1,
			wantLine: "FAIL initialize", wantMsg: []string{"HTTP 401", "-bearer", `WWW-Authenticate: Bearer realm="mcp"`}},
		{name: "401 wrong token", args: []string{"-bearer", "wrong", authURL}, wantCode: 1,
			wantLine: "FAIL initialize", wantMsg: []string{"HTTP 401"}},
		{name: "bearer passes", args: []string{"-bearer", "s3cret", authURL}, wantCode: 0,
			wantLine: "ok   tools/list"},
		{name: "header passes", args: []string{"-header", "Authorization=Bearer s3cret", authURL}, wantCode: 0,
			wantLine: "ok   tools/list"},
		{name: "404 wrong path", args: []string{strings.TrimSuffix(healthy, "/mcp") + "/api"}, wantCode: 1,
			wantLine: "FAIL initialize", wantMsg: []string{"HTTP 404", "not an MCP endpoint?"}},
		{name: "405", args: []string{startStatic(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", "GET")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		})}, wantCode: 1, wantLine: "FAIL initialize", wantMsg: []string{"HTTP 405", "not an MCP endpoint?"}},
		{name: "html page", args: []string{startStatic(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, "<!DOCTYPE html><html><body>Welcome</body></html>")
		})}, wantCode: 1, wantLine: "FAIL initialize", wantMsg: []string{"HTML page", "not an MCP endpoint?"}},
		{name: "json but not json-rpc", args: []string{startStatic(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"status":"ok"}`)
		})}, wantCode: 1, wantLine: "FAIL initialize", wantMsg: []string{"not a JSON-RPC 2.0 response"}},
		{name: "server error", args: []string{startStatic(t, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom: database down", http.StatusInternalServerError)
		})}, wantCode: 1, wantLine: "FAIL initialize", wantMsg: []string{"HTTP 500 Internal Server Error: boom: database down"}},
		{name: "hanging server", args: []string{"-timeout", "150ms", startHanging(t)}, wantCode: 1,
			wantLine: "FAIL initialize", wantMsg: []string{"timeout after 150ms"}},
		{name: "hanging tool", args: []string{"-timeout", "150ms", "-tool", "slow", healthy}, wantCode: 1,
			wantLine: "FAIL tools/call slow", wantMsg: []string{"timeout after 150ms"}},
		{name: "json-rpc error", args: []string{"-tool", "nope", healthy}, wantCode: 1,
			wantLine: "FAIL tools/call nope", wantMsg: []string{"JSON-RPC error -32602", `unknown tool "nope"`}},
		{name: "tool isError", args: []string{"-tool", "broken", healthy}, wantCode: 1,
			wantLine: "FAIL tools/call broken", wantMsg: []string{"isError", "backend database unreachable"}},
		{name: "expect mismatch", args: []string{"-tool", "get_weather", "-args", `{"city":"Oslo"}`, "-expect", "rain", healthy}, wantCode: 1,
			wantLine: "FAIL tools/call get_weather", wantMsg: []string{`does not contain "rain"`}},
		{name: "unknown resource", args: []string{"-resource", "file:///missing", healthy}, wantCode: 1,
			wantLine: "FAIL resources/read", wantMsg: []string{"JSON-RPC error"}},
		{name: "sse transport on streamable endpoint", args: []string{"-transport", "sse", healthy}, wantCode: 1,
			wantLine: "FAIL initialize", wantMsg: []string{"HTTP 400", "try -transport streamable"}},
		{name: "stateless on stateful server", args: []string{"-protocol", "2026-07-28", healthy}, wantCode: 1,
			wantLine: "FAIL server/discover", wantMsg: []string{"not 2026-07-28"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runMain(t, tc.args...)
			if code != tc.wantCode {
				t.Errorf("got exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, out, errOut)
			}
			var line string
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, tc.wantLine) {
					line = l
				}
			}
			if line == "" {
				t.Fatalf("got no line starting %q in:\n%s", tc.wantLine, out)
			}
			for _, want := range tc.wantMsg {
				if !strings.Contains(line, want) {
					t.Errorf("got %q, want it to contain %q", line, want)
				}
			}
			if strings.Contains(out+errOut, "s3cret") {
				t.Errorf("output leaks the bearer token:\n%s%s", out, errOut)
			}
			if strings.HasPrefix(tc.wantLine, "{") {
				return // -json: one object, checked above
			}
			if !traceIDLine.MatchString(out) {
				t.Errorf("got no trace_id line in:\n%s", out)
			}
			// The diagnosis is one line: every line is a step, a warning
			// or the trace ID, and a failed run has exactly one FAIL.
			fails := 0
			for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				if !reportLine.MatchString(l) {
					t.Errorf("got stray output line %q in:\n%s", l, out)
				}
				if strings.HasPrefix(l, "FAIL ") {
					fails++
				}
			}
			if want := min(tc.wantCode, 1); fails != want {
				t.Errorf("got %d FAIL lines, want %d:\n%s", fails, want, out)
			}
		})
	}
}

// reportLine matches every line of the text report.
var reportLine = regexp.MustCompile(`^((ok  |FAIL) \S.* [0-9.]+m?s  \S.*|warn \S.*|trace_id=[0-9a-f]{32}|viewer_url=\S+)$`)

func TestMainUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{"no URL", nil},
		{"two URLs", []string{"http://a/mcp", "http://b/mcp"}},
		{"empty URL", []string{""}},
		{"unknown flag", []string{"-nope", "http://a/mcp"}},
		{"bad args JSON", []string{"-tool", "t", "-args", "{city:", "http://a/mcp"}},
		{"args not an object", []string{"-tool", "t", "-args", "[1]", "http://a/mcp"}},
		{"args without tool", []string{"-args", "{}", "http://a/mcp"}},
		{"expect without tool", []string{"-expect", "x", "http://a/mcp"}},
		{"prompt args not strings", []string{"-prompt", "p", "-prompt-args", `{"n":1}`, "http://a/mcp"}},
		{"prompt args without prompt", []string{"-prompt-args", `{"n":"v"}`, "http://a/mcp"}},
		{"zero interval", []string{"-interval", "0s", "http://a/mcp"}},
		{"negative interval", []string{"-interval", "-1s", "http://a/mcp"}},
		{"bad interval", []string{"-interval", "often", "http://a/mcp"}},
		{"zero timeout", []string{"-timeout", "0", "http://a/mcp"}},
		{"unknown protocol", []string{"-protocol", "1999-01-01", "http://a/mcp"}},
		{"unknown transport", []string{"-transport", "pigeon", "http://a/mcp"}},
		{"stateless over sse", []string{"-protocol", "2026-07-28", "-transport", "sse", "http://a/mcp"}},
		{"header without =", []string{"-header", "X-Token", "http://a/mcp"}},
		{"header bad name", []string{"-header", "Bad Name=v", "http://a/mcp"}},
		{"header with CRLF", []string{"-header", "X-A=b\r\nX-Evil: 1", "http://a/mcp"}},
		{"bearer with LF", []string{"-bearer", "tok\nX-Evil: 1", "http://a/mcp"}},
		{"metrics without interval", []string{"-metrics-listen", "127.0.0.1:0", "http://a/mcp"}},
		{"metrics address without port", []string{"-interval", "1s", "-metrics-listen", "localhost", "http://a/mcp"}},
		{"bad otlp URL", []string{"-otlp", "localhost:4318", "http://a/mcp"}},
		{"bad viewer URL", []string{"-viewer", "ftp://x", "http://a/mcp"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runMain(t, tc.args...)
			if code != 2 {
				t.Errorf("got exit %d, want 2\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			if !strings.HasPrefix(errOut, "tracegate probe: ") || !strings.Contains(errOut, "usage: tracegate probe") {
				t.Errorf("got stderr %q, want an error line then the usage", errOut)
			}
			if out != "" {
				t.Errorf("got stdout %q, want none", out)
			}
		})
	}
}

func TestMainHelp(t *testing.T) {
	t.Parallel()
	code, out, _ := runMain(t, "-h")
	if code != 0 || !strings.Contains(out, "usage: tracegate probe") {
		t.Errorf("got exit %d and %q, want 0 and the usage", code, out)
	}
}

func TestParseArgsFlagsAfterURL(t *testing.T) {
	t.Parallel()
	c, err := parseArgs([]string{"http://a/mcp", "-tool", "t", "-header", "X-A=1", "-header", "X-A=2", "-bearer", "tok"})
	if err != nil {
		t.Fatalf("parseArgs: %v", err)
	}
	if c.opts.URL != "http://a/mcp" || c.opts.Tool != "t" {
		t.Errorf("got URL %q tool %q, want http://a/mcp and t", c.opts.URL, c.opts.Tool)
	}
	if got := c.opts.Header.Values("X-A"); len(got) != 2 || got[0] != "1" || got[1] != "2" {
		t.Errorf("got X-A %q, want [1 2]", got)
	}
	if got := c.opts.Header.Get("Authorization"); got != "Bearer tok" {
		t.Errorf("got Authorization %q, want Bearer tok", got)
	}
	c, err = parseArgs([]string{"-json", "--", "http://a/mcp"})
	if err != nil || c.opts.URL != "http://a/mcp" || !c.json {
		t.Errorf("with --: got %+v, %v, want the URL and -json", c, err)
	}
}

func TestMainJSON(t *testing.T) {
	t.Parallel()
	url, _ := startStreamable(t, false)
	tests := []struct {
		name      string
		args      []string
		wantCode  int
		wantOK    bool
		wantSteps []string
		wantError string
	}{
		{name: "ok", args: []string{"-tool", "get_weather", "-args", `{"city":"Lima"}`}, wantOK: true,
			wantSteps: []string{"initialize", "tools/list", "tools/call get_weather"}},
		{name: "failed step", args: []string{"-tool", "broken"}, wantCode: 1,
			wantSteps: []string{"initialize", "tools/list", "tools/call broken"}, wantError: "backend database unreachable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runMain(t, append(append([]string{"-json", "-viewer", "http://admin:9090"}, tc.args...), url)...)
			if code != tc.wantCode {
				t.Fatalf("got exit %d, want %d\n%s%s", code, tc.wantCode, out, errOut)
			}
			if strings.Count(out, "\n") != 1 {
				t.Errorf("got %d lines, want one JSON object:\n%s", strings.Count(out, "\n"), out)
			}
			var got struct {
				OK        bool   `json:"ok"`
				TraceID   string `json:"trace_id"`
				ViewerURL string `json:"viewer_url"`
				Protocol  string `json:"protocol"`
				Steps     []struct {
					Name      string   `json:"name"`
					OK        bool     `json:"ok"`
					LatencyMS *float64 `json:"latency_ms"`
					Error     string   `json:"error"`
				} `json:"steps"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, out)
			}
			if got.OK != tc.wantOK {
				t.Errorf("got ok %v, want %v", got.OK, tc.wantOK)
			}
			if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(got.TraceID) {
				t.Errorf("got trace_id %q, want 32 hex digits", got.TraceID)
			}
			if want := "http://admin:9090/ui/?trace=" + got.TraceID; got.ViewerURL != want {
				t.Errorf("got viewer_url %q, want %q", got.ViewerURL, want)
			}
			if got.Protocol != "2025-11-25" {
				t.Errorf("got protocol %q, want 2025-11-25", got.Protocol)
			}
			var names []string
			for _, s := range got.Steps {
				names = append(names, s.Name)
				if s.LatencyMS == nil || *s.LatencyMS < 0 {
					t.Errorf("step %s: got latency_ms %v, want a number", s.Name, s.LatencyMS)
				}
			}
			if strings.Join(names, ",") != strings.Join(tc.wantSteps, ",") {
				t.Errorf("got steps %q, want %q", names, tc.wantSteps)
			}
			last := got.Steps[len(got.Steps)-1]
			if !strings.Contains(last.Error, tc.wantError) || (tc.wantError == "") != last.OK {
				t.Errorf("got last step %+v, want error containing %q", last, tc.wantError)
			}
		})
	}
}

func TestMainExportsSpansOverOTLP(t *testing.T) {
	t.Parallel()
	url, srv := startStreamable(t, false)
	recv := otlptest.NewReceiver(t)
	code, out, errOut := runMain(t, "-otlp", recv.URL(), "-tool", "get_weather", "-args", `{"city":"Nice"}`, url)
	if code != 0 || errOut != "" {
		t.Fatalf("got exit %d stderr %q, want 0 and none\n%s", code, errOut, out)
	}
	traceID := traceIDLine.FindStringSubmatch(out)[1]
	// The export is flushed before Main returns: a cron job exits right
	// after, so there is no waiting here.
	spans := recv.Spans()
	byName := map[string]otlptest.Span{}
	for _, s := range spans {
		if s.TraceID != traceID {
			t.Errorf("span %s: got trace ID %s, want the printed %s", s.Name, s.TraceID, traceID)
		}
		if s.Service != "tracegate-probe" {
			t.Errorf("span %s: got service.name %q, want tracegate-probe", s.Name, s.Service)
		}
		byName[s.Name] = s
	}
	want := map[string]string{"probe": "internal", "initialize": "client", "tools/list": "client", "tools/call get_weather": "client"}
	if len(spans) != len(want) {
		t.Errorf("got %d spans, want %d:\n%s", len(spans), len(want), recv.Dump())
	}
	root := byName["probe"]
	if root.ParentSpanID != "" {
		t.Errorf("probe span: got parent %s, want a root", root.ParentSpanID)
	}
	for name, kind := range want {
		s, ok := byName[name]
		if !ok || s.Kind != kind {
			t.Errorf("span %s: got kind %q (present: %v), want %s", name, s.Kind, ok, kind)
			continue
		}
		if name != "probe" && s.ParentSpanID != root.SpanID {
			t.Errorf("span %s: got parent %s, want the probe root %s", name, s.ParentSpanID, root.SpanID)
		}
	}
	if got := byName["tools/call get_weather"].Attrs["gen_ai.tool.name"]; got != "get_weather" {
		t.Errorf("tools/call span: got gen_ai.tool.name %v, want get_weather", got)
	}
	// The exported CLIENT spans are the parents the server was told of.
	for _, h := range srv.httpSeen() {
		s, ok := byName[h.method]
		if h.method == "tools/call" {
			s, ok = byName["tools/call get_weather"]
		}
		if !ok {
			continue
		}
		if want := "00-" + traceID + "-" + s.SpanID + "-01"; h.headerParent != want {
			t.Errorf("%s: server got traceparent %q, want the exported span's %q", h.method, h.headerParent, want)
		}
	}
	for _, s := range spans {
		for k, v := range s.Attrs {
			if strings.Contains(fmt.Sprint(v), "Nice") {
				t.Errorf("span %s: attribute %s=%v leaks the tool arguments", s.Name, k, v)
			}
		}
	}
}

func TestMainOTLPFailureIsAWarning(t *testing.T) {
	t.Parallel()
	url, _ := startStreamable(t, false)
	recv := otlptest.NewReceiver(t, otlptest.WithBehavior(otlptest.Unavailable))
	code, out, errOut := runMain(t, "-otlp", recv.URL(), url)
	if code != 0 {
		t.Errorf("got exit %d, want 0: the server is healthy\n%s", code, out)
	}
	if !strings.Contains(errOut, "warning: OTLP export to "+recv.URL()+"/v1/traces failed") {
		t.Errorf("got stderr %q, want an OTLP warning", errOut)
	}
	if recv.Requests() != 1 {
		t.Errorf("got %d export requests, want 1: the probe does not retry", recv.Requests())
	}
}

func TestMainInterval(t *testing.T) {
	t.Parallel()
	healthy, _ := startStreamable(t, false)
	tests := []struct {
		name     string
		url      string
		json     bool
		wantCode int
		wantUp   float64
		wantRuns string // the series that counts every run
		wantNone string // the series that stays at zero
	}{
		{name: "healthy json", url: healthy, json: true, wantCode: 0, wantUp: 1,
			wantRuns: `tracegate_probe_runs_total{result="ok"}`, wantNone: `tracegate_probe_runs_total{result="fail"}`},
		{name: "healthy text", url: healthy, wantCode: 0, wantUp: 1,
			wantRuns: `tracegate_probe_runs_total{result="ok"}`, wantNone: `tracegate_probe_runs_total{result="fail"}`},
		{name: "down", url: "http://" + testnet.RefusedAddr(t) + "/mcp", wantCode: 1, wantUp: 0,
			wantRuns: `tracegate_probe_runs_total{result="fail"}`, wantNone: `tracegate_probe_runs_total{result="ok"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stdout, stderr := newSyncBuffer(), newSyncBuffer()
			args := []string{"-interval", "10ms", "-metrics-listen", "127.0.0.1:0", "-timeout", "2s"}
			if tc.json {
				args = append(args, "-json")
			}
			exit := make(chan int, 1)
			go func() { exit <- Main(ctx, append(args, tc.url), stdout, stderr) }()

			metricsURL := strings.TrimPrefix(nextLine(t, stderr.lines), "metrics: ")
			runs := 0
			for runs < 3 {
				line := nextLine(t, stdout.lines)
				if strings.HasPrefix(line, "  ") {
					continue // a failed step under its run line
				}
				runs++
				if tc.json {
					var r map[string]any
					if err := json.Unmarshal([]byte(line), &r); err != nil {
						t.Fatalf("run %d: line does not parse: %v: %q", runs, err, line)
					}
				} else if !regexp.MustCompile(`(ok  |FAIL) \d+/\d+ steps .* availability=[0-9.]+% \(\d+/` + strconv.Itoa(runs) + `\)  trace_id=[0-9a-f]{32}$`).MatchString(line) {
					t.Errorf("run %d: got %q, want a run summary line", runs, line)
				}
			}
			metrics := httpGet(t, metricsURL)
			cancel()
			if code := <-exit; code != tc.wantCode {
				t.Errorf("got exit %d, want %d", code, tc.wantCode)
			}
			if got := metricValue(metrics, "tracegate_probe_up"); got != tc.wantUp {
				t.Errorf("got tracegate_probe_up %v, want %v\n%s", got, tc.wantUp, metrics)
			}
			if got := metricValue(metrics, tc.wantRuns); got < 3 {
				t.Errorf("got %s %v, want at least 3", tc.wantRuns, got)
			}
			if got := metricValue(metrics, tc.wantNone); got != 0 {
				t.Errorf("got %s %v, want 0", tc.wantNone, got)
			}
			if got := metricValue(metrics, `tracegate_probe_step_duration_seconds{step="initialize",quantile="0.99"}`); got <= 0 {
				t.Errorf("got initialize p99 %v, want > 0\n%s", got, metrics)
			}
			if got := metricValue(metrics, `tracegate_probe_step_duration_seconds_count{step="initialize"}`); got < 3 {
				t.Errorf("got initialize count %v, want at least 3", got)
			}
			summary := stdout.String()
			if tc.json {
				summary = stderr.String()
			}
			if !strings.Contains(summary, "summary runs=") || !strings.Contains(summary, "p99=") {
				t.Errorf("got no final summary with percentiles in:\n%s", summary)
			}
		})
	}
}

// nextLine waits for the next complete output line, failing the test if
// none comes: a broken loop must not hang the suite.
func nextLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l := <-lines:
		return l
	case <-time.After(15 * time.Second):
		t.Fatal("got no output line within 15s")
		return ""
	}
}

func TestMainMetricsListenerInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	url, srv := startStreamable(t, false)
	code, out, errOut := runMain(t, "-interval", "1s", "-metrics-listen", ln.Addr().String(), url)
	if code != 2 {
		t.Errorf("got exit %d, want 2: the probe could not run as asked, which says nothing of the server", code)
	}
	if !strings.HasPrefix(errOut, "tracegate probe: -metrics-listen: ") || out != "" {
		t.Errorf("got stdout %q stderr %q, want only the listener error", out, errOut)
	}
	if n := len(srv.httpSeen()); n != 0 {
		t.Errorf("server got %d requests, want none before the listener is up", n)
	}
}

// metricValue returns the value of the sample whose name and labels are
// exactly series, or -1.
func metricValue(metrics, series string) float64 {
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return b.String()
}

func TestMainSessionDeleteOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   int
		wantWarn string
	}{
		{"refused with 405 is fine", http.StatusMethodNotAllowed, ""},
		{"server error is a warning", http.StatusInternalServerError, "warn ending the session (DELETE): HTTP 500 Internal Server Error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newMCPServer(nil, nil)
			h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
			url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodDelete {
					http.Error(w, "no", tc.status)
					return
				}
				h.ServeHTTP(w, r)
			}))
			code, out, _ := runMain(t, url)
			if code != 0 {
				t.Errorf("got exit %d, want 0: a failed DELETE does not fail the probe", code)
			}
			gotWarn := ""
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "warn ") {
					gotWarn = line
				}
			}
			if !strings.HasPrefix(gotWarn, tc.wantWarn) || (tc.wantWarn == "") != (gotWarn == "") {
				t.Errorf("got warning %q, want %q", gotWarn, tc.wantWarn)
			}
		})
	}
}

// TestMainOTLPFailureHidesCredentials: an OTLP endpoint with a secret in
// its user info and query, on which nothing listens. The warning names the
// endpoint and the failure, without the secret.
func TestMainOTLPFailureHidesCredentials(t *testing.T) {
	t.Parallel()
	url, _ := startStreamable(t, false)
	const secret = "pr0be-S3CRET-value"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	code, out, errOut := runMain(t, "-otlp", "http://user:"+secret+"@"+dead+"/otel?api_key="+secret, url)
	if code != 0 {
		t.Errorf("got exit %d, want 0: the server is healthy\n%s", code, out)
	}
	if !strings.Contains(errOut, "warning: OTLP export to http://REDACTED@"+dead+"/otel") {
		t.Errorf("got stderr %q, want a warning naming the endpoint", errOut)
	}
	if strings.Contains(errOut+out, secret) {
		t.Errorf("the secret leaked:\n%s\n%s", errOut, out)
	}
}
