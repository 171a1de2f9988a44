package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/examples/demo"
	"github.com/tracegate/tracegate/internal/auth"
	"github.com/tracegate/tracegate/internal/otlptest"
	"github.com/tracegate/tracegate/internal/plugin"
)

// weatherServer serves the weather demo over Streamable HTTP and returns
// its MCP URL.
func weatherServer(t *testing.T) string {
	t.Helper()
	s := demo.NewWeatherServer(demo.WeatherOptions{})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	return srv.URL
}

type tokenTransport struct{ token string }

func (tt tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if tt.token != "" {
		r.Header.Set("Authorization", "Bearer "+tt.token)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// agent opens a go-sdk session on url with token ("" for none).
func agent(t *testing.T, url, token string, opts *mcp.ClientOptions) (*mcp.ClientSession, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, opts)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: tokenTransport{token}}},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err == nil {
		t.Cleanup(func() { cs.Close() })
	}
	return cs, err
}

// callUntilReady calls tool until the gateway routes it: backends connect
// in the background.
func callUntilReady(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
		if err == nil {
			return res
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func rpcCodeOf(err error) int64 {
	var rpc *jsonrpc.Error
	if errors.As(err, &rpc) {
		return rpc.Code
	}
	return 0
}

func toolNamesOf(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	return names
}

// waitForLog waits for a log line that holds every one of parts.
func waitForLog(t *testing.T, logs *lockedLines, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, line := range strings.Split(logs.String(), "\n") {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q:\n%s", parts, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// postReload sends POST /admin/reload with token and decodes the answer.
func postReload(t *testing.T, admin, token string) (int, reloadReport) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, admin+"/admin/reload", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var rep reloadReport
	if resp.StatusCode != http.StatusUnauthorized {
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Fatalf("POST /admin/reload: HTTP %d, body %s: %v", resp.StatusCode, body, err)
		}
	}
	return resp.StatusCode, rep
}

func adminConfig(t *testing.T, admin, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, admin+"/admin/config", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ec effectiveConfig
	if err := json.NewDecoder(resp.Body).Decode(&ec); err != nil {
		t.Fatal(err)
	}
	return ec.Config
}

func backendNames(cfg map[string]any) []string {
	var names []string
	bs, _ := cfg["backends"].([]any)
	for _, b := range bs {
		m, _ := b.(map[string]any)
		names = append(names, fmt.Sprint(m["name"]))
	}
	return names
}

func writeConfig(t *testing.T, path, yaml string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestServeReloadsUnderLoad runs `tracegate serve` as a child process and
// reloads it with POST /admin/reload while go-sdk clients call tools
// without pause. The reload adds a backend and removes the stdio one,
// moves a deny rule, swaps a bearer token, raises a limit, starts OTLP
// export. No call fails, no session is
// dropped, /mcp's clients get tools/list_changed, and each change is in
// force afterwards. A file that does not validate is then refused with
// its errors, and the running configuration keeps serving.
func TestServeReloadsUnderLoad(t *testing.T) {
	recv := otlptest.NewReceiver(t)
	weatherURL, extraURL := weatherServer(t), weatherServer(t)
	const head = `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
admin: {bearer_tokens: [admin-secret]}
`
	first := head + fmt.Sprintf(`
auth:
  bearer_tokens: [{name: agent, token: keep-token}, {name: retired, token: old-token}]
limits: {max_concurrent_requests: 32}
backends:
  - {name: weather, url: %s}
  - name: files
    command: [%s, %s, files]
    env: {OTEL_SDK_DISABLED: "true"}
plugins:
  - {name: policy, type: deny, tools: ["weather_flaky_radar"]}
telemetry:
  viewer: {enabled: false}
`, weatherURL, selfBin, demoBackendCmd)
	p := startServe(t, first, "OTEL_BSP_SCHEDULE_DELAY=100")

	listChanged := make(chan struct{}, 16)
	watcher, err := agent(t, p.mcpURL, "keep-token", &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			select {
			case listChanged <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	callUntilReady(t, watcher, "weather_get_weather", map[string]any{"city": "Oslo"})
	callUntilReady(t, watcher, "files_list_files", map[string]any{})
	if _, err := watcher.CallTool(context.Background(), &mcp.CallToolParams{Name: "weather_flaky_radar", Arguments: map[string]any{"city": "Oslo"}}); rpcCodeOf(err) != plugin.CodeDenied {
		t.Fatalf("weather_flaky_radar before the reload: got %v, want denied", err)
	}
	if len(recv.Spans()) != 0 {
		t.Fatalf("spans exported before OTLP export is configured: %d", len(recv.Spans()))
	}

	var (
		reloaded atomic.Bool
		calls    atomic.Int64
		mu       sync.Mutex
		failures []string
		after    [4]atomic.Int64
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	for i := range after {
		cs, err := agent(t, p.mcpURL, "keep-token", nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				city := fmt.Sprintf("City%d-%d", i, n)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "weather_get_weather", Arguments: map[string]any{"city": city}})
				cancel()
				done := reloaded.Load()
				if err != nil || res.IsError || !strings.Contains(fmt.Sprint(res.StructuredContent), city) {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("client %d: %v %v", i, err, res))
					mu.Unlock()
				}
				calls.Add(1)
				if done {
					after[i].Add(1)
				}
			}
		})
	}
	for deadline := time.Now().Add(time.Minute); calls.Load() < 20; {
		if time.Now().After(deadline) {
			close(stop)
			t.Fatal("no load before the reload")
		}
		time.Sleep(10 * time.Millisecond)
	}

	second := head + fmt.Sprintf(`
auth:
  bearer_tokens: [{name: agent, token: keep-token}, {name: fresh, token: new-token}]
limits: {max_concurrent_requests: 64}
backends:
  - {name: weather, url: %s}
  - {name: extra, url: %s}
plugins:
  - {name: policy, type: deny, tools: ["weather_slow_forecast"]}
telemetry:
  exporter: otlp
  otlp: {endpoint: %s}
  viewer: {enabled: false}
`, weatherURL, extraURL, recv.URL())
	writeConfig(t, p.path, second)
	if code, _ := postReload(t, p.adminURL, ""); code != http.StatusUnauthorized {
		t.Errorf("POST /admin/reload without the admin token: HTTP %d, want 401", code)
	}
	code, rep := postReload(t, p.adminURL, "admin-secret")
	reloaded.Store(true)
	if code != http.StatusOK || rep.Status != "reloaded" {
		t.Fatalf("POST /admin/reload: HTTP %d %+v\n%s", code, rep, p.logs)
	}
	if fmt.Sprint(rep.Added, rep.Removed, rep.Changed, rep.RestartRequired) != "[extra] [files] [] []" {
		t.Errorf("reload report: added %v removed %v changed %v restart %v; want [extra] [files] [] []", rep.Added, rep.Removed, rep.Changed, rep.RestartRequired)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		n := int64(1 << 62)
		for i := range after {
			n = min(n, after[i].Load())
		}
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			t.Fatalf("clients answered after the reload: %d at least, want 3 each", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d calls failed across the reload:\n%s", len(failures), calls.Load(), strings.Join(failures, "\n"))
	}

	select {
	case <-listChanged:
	case <-time.After(20 * time.Second):
		t.Fatal("no notifications/tools/list_changed after the reload")
	}
	names := toolNamesOf(t, watcher)
	if !slices.Contains(names, "extra_get_weather") || slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "files_") }) {
		t.Errorf("tools after the reload: %v, want extra_* and no files_*", names)
	}
	if res, err := watcher.CallTool(context.Background(), &mcp.CallToolParams{Name: "weather_flaky_radar", Arguments: map[string]any{"city": "Oslo"}}); err != nil || !res.IsError {
		t.Errorf("weather_flaky_radar after the reload: %v %v, want the tool's own error", res, err)
	}
	if _, err := watcher.CallTool(context.Background(), &mcp.CallToolParams{Name: "weather_slow_forecast", Arguments: map[string]any{"city": "Oslo"}}); rpcCodeOf(err) != plugin.CodeDenied {
		t.Errorf("weather_slow_forecast after the reload: got %v, want denied", err)
	}
	if _, err := agent(t, p.mcpURL, "old-token", nil); err == nil {
		t.Error("a removed token still opens a session")
	}
	if _, err := agent(t, p.mcpURL, "new-token", nil); err != nil {
		t.Errorf("an added token: %v", err)
	}
	// Telemetry: calls after the reload are exported over OTLP.
	recv.WaitForSpans(t, 20*time.Second, func(spans []otlptest.Span) bool {
		for _, s := range spans {
			if s.Name == "tools/call weather_get_weather" && s.Kind == "server" {
				return true
			}
		}
		return false
	})
	waitForLog(t, p.logs, `"msg":"backend removed by a reload is closed"`, `"backend":"files"`)
	cfg := adminConfig(t, p.adminURL, "admin-secret")
	if got := backendNames(cfg); !slices.Equal(got, []string{"weather", "extra"}) {
		t.Errorf("/admin/config backends after the reload: %v", got)
	}
	if l, _ := cfg["limits"].(map[string]any); fmt.Sprint(l["max_concurrent_requests"]) != "64" {
		t.Errorf("/admin/config limits after the reload: %v", cfg["limits"])
	}

	// A file that does not validate is refused; the running
	// configuration stays.
	writeConfig(t, p.path, strings.Replace(second, `  - {name: policy, type: deny, tools: ["weather_slow_forecast"]}`,
		`  - {name: policy, type: deny, tools: ["weather_slow_forecast"]}
  - {name: burst, type: ratelimit, rate: fast}`, 1))
	code, rep = postReload(t, p.adminURL, "admin-secret")
	if code != http.StatusBadRequest || rep.Status != "refused" || len(rep.Errors) == 0 {
		t.Fatalf("POST /admin/reload of an invalid file: HTTP %d %+v, want 400 refused with errors", code, rep)
	}
	if e := rep.Errors[0]; e.Path != "plugins[1].rate" || e.Line == 0 || e.Column == 0 {
		t.Errorf("refusal: got %+v, want plugins[1].rate with its line and column", e)
	}
	waitForLog(t, p.logs, `"msg":"configuration reload refused; the running configuration is kept"`, "plugins[1].rate")
	if res, err := watcher.CallTool(context.Background(), &mcp.CallToolParams{Name: "extra_get_weather", Arguments: map[string]any{"city": "Lima"}}); err != nil || res.IsError {
		t.Errorf("extra_get_weather after a refused reload: %v %v", res, err)
	}
	if got := backendNames(adminConfig(t, p.adminURL, "admin-secret")); !slices.Equal(got, []string{"weather", "extra"}) {
		t.Errorf("/admin/config backends after a refused reload: %v", got)
	}

	// A setting that needs a restart is kept, and named.
	writeConfig(t, p.path, strings.Replace(second, "listen: 127.0.0.1:0\n", "listen: 127.0.0.1:18080\n", 1))
	code, rep = postReload(t, p.adminURL, "admin-secret")
	if code != http.StatusOK || !slices.Equal(rep.RestartRequired, []string{"listen"}) {
		t.Errorf("reload with a new listen address: HTTP %d restart_required %v, want 200 [listen]", code, rep.RestartRequired)
	}
	waitForLog(t, p.logs, `"msg":"configuration: listen changed, which takes effect at the next restart; the running value is kept"`)
	if got := adminConfig(t, p.adminURL, "admin-secret")["listen"]; got != "127.0.0.1:0" {
		t.Errorf("/admin/config listen: %v, want the running 127.0.0.1:0", got)
	}
	wantSame := callUntilReady(t, watcher, "weather_get_weather", map[string]any{"city": "Quito"})
	if !strings.Contains(fmt.Sprint(wantSame.StructuredContent), "Quito") {
		t.Errorf("the first session after three reloads: %v", wantSame.StructuredContent)
	}
}

// TestServeReloadsOnSIGHUP: SIGHUP makes `tracegate serve` read its file
// again and apply it; a file that does not validate is refused with a
// log line naming the error at file:line:column, and the process goes on
// serving what it served.
func TestServeReloadsOnSIGHUP(t *testing.T) {
	weatherURL, extraURL := weatherServer(t), weatherServer(t)
	first := fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: "off"
backends:
  - {name: weather, url: %s}
plugins:
  - {name: policy, type: deny, tools: ["weather_flaky_radar"]}
`, weatherURL)
	p := startServe(t, first)
	listChanged := make(chan struct{}, 16)
	cs, err := agent(t, p.mcpURL, "", &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			select {
			case listChanged <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	callUntilReady(t, cs, "weather_get_weather", map[string]any{"city": "Oslo"})

	writeConfig(t, p.path, fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: "off"
backends:
  - {name: weather, url: %s}
  - {name: extra, url: %s}
`, weatherURL, extraURL))
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, p.logs, `"msg":"configuration reloaded"`, `"trigger":"SIGHUP"`, `"added":["extra"]`)
	select {
	case <-listChanged:
	case <-time.After(20 * time.Second):
		t.Fatal("no notifications/tools/list_changed after SIGHUP")
	}
	if names := toolNamesOf(t, cs); !slices.Contains(names, "extra_get_weather") {
		t.Errorf("tools after SIGHUP: %v, want extra_get_weather", names)
	}
	if res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "weather_flaky_radar", Arguments: map[string]any{"city": "Oslo"}}); err != nil || !res.IsError {
		t.Errorf("weather_flaky_radar after SIGHUP removed the deny rule: %v %v", res, err)
	}

	// An invalid file: the reason is logged at file:line:column, and the
	// process serves on, unchanged.
	writeConfig(t, p.path, fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: "off"
backends:
  - {name: weather, url: %s}
  - {name: extra, url: "ftp://nowhere"}
`, weatherURL))
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	line := waitForLog(t, p.logs, `"msg":"configuration reload refused; the running configuration is kept"`, `"trigger":"SIGHUP"`)
	if want := p.path + ":6:"; !strings.Contains(line, want) || !strings.Contains(line, "backends[1].url") {
		t.Errorf("refusal log line: %s\nwant %s… backends[1].url", line, want)
	}
	if res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "extra_get_weather", Arguments: map[string]any{"city": "Lima"}}); err != nil || res.IsError {
		t.Errorf("extra_get_weather after a refused SIGHUP: %v %v", res, err)
	}
	select {
	case <-p.exited:
		t.Fatalf("tracegate exited after SIGHUP:\n%s", p.logs)
	default:
	}
}

// TestReloadWithoutAFile: a gateway not started from a file (the demo,
// stdio) answers POST /admin/reload with 409 and changes nothing.
func TestReloadWithoutAFile(t *testing.T) {
	rt := &runtime{}
	rep := rt.tryReload(context.Background())
	if rep.status != http.StatusConflict || rep.Status != "refused" {
		t.Errorf("reload with no file: %d %+v, want 409 refused", rep.status, rep)
	}
	var buf bytes.Buffer
	json.NewEncoder(&buf).Encode(rep)
	if !strings.Contains(buf.String(), "nothing to reload") {
		t.Errorf("body %s does not say why", buf.String())
	}
}

// TestReloadAppliesLogSettings: log.level and telemetry.capture_identity
// change the running process's logger, and admin.bearer_tokens the
// admin listener's tokens.
func TestReloadAppliesLogSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tracegate.yaml")
	writeConfig(t, path, "listen: 127.0.0.1:0\nadmin_listen: \"off\"\nadmin: {bearer_tokens: [first-admin]}\n")
	r := loadConfig(path, io.Discard)
	if r == nil {
		t.Fatal("the first file does not load")
	}
	var logs syncBuffer
	rt, err := newRuntime(context.Background(), r.Config, &logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.close(context.Background()) })
	rt.path = path
	rt.gateway.Start(context.Background())
	admin := httptest.NewServer(rt.adminHandler(nil))
	t.Cleanup(admin.Close)
	adminStatus := func(token string) int {
		req, _ := http.NewRequest(http.MethodGet, admin.URL+"/admin/config", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := adminStatus("first-admin"); got != http.StatusOK {
		t.Fatalf("admin token before the reload: HTTP %d", got)
	}
	ctx := auth.NewContext(context.Background(), auth.Identity{Method: auth.MethodStatic, TokenName: "alice"})

	rt.log.DebugContext(ctx, "before the reload")
	writeConfig(t, path, "listen: 127.0.0.1:0\nadmin_listen: \"off\"\nadmin: {bearer_tokens: [second-admin]}\nlog: {level: debug}\ntelemetry: {capture_identity: true}\n")
	if rep := rt.reload(context.Background(), "test"); rep.Status != "reloaded" {
		t.Fatalf("reload: %+v", rep)
	}
	rt.log.DebugContext(ctx, "after the reload")
	if a, b := adminStatus("first-admin"), adminStatus("second-admin"); a != http.StatusUnauthorized || b != http.StatusOK {
		t.Errorf("admin tokens after the reload: the old one gets HTTP %d, the new one %d; want 401 and 200", a, b)
	}
	out := logs.String()
	if strings.Contains(out, "before the reload") {
		t.Errorf("a debug line was written at level info:\n%s", out)
	}
	line := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "after the reload") {
			line = l
		}
	}
	if line == "" || !strings.Contains(line, `"enduser.id":"token:alice"`) {
		t.Errorf("after the reload, want the debug line with enduser.id; got:\n%s", out)
	}
}
