package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/examples/demo"
	"github.com/tracegate/tracegate/internal/otlptest"
	"github.com/tracegate/tracegate/internal/plugin"
	"github.com/tracegate/tracegate/internal/testnet"
)

// lockedLines collects a child's stderr, line by line.
type lockedLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *lockedLines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *lockedLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// serveBinary runs `tracegate serve -config` on the YAML and returns the
// MCP URL from its "tracegate listening" log line, and its stderr.
func serveBinary(t *testing.T, yaml string) (string, *lockedLines) {
	t.Helper()
	p := startServe(t, yaml)
	return p.mcpURL, p.logs
}

// The plugins section of a config file reaches the running binary: a deny
// entry refuses a tool, a redact entry scrubs the arguments before the
// backend sees them, and with capture_arguments on the scrubbed value
// appears in no exported span and no log line.
func TestServeRunsConfiguredPlugins(t *testing.T) {
	recv := otlptest.NewReceiver(t)
	weather := demo.NewWeatherServer(demo.WeatherOptions{})
	backendSrv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return weather }, nil))
	t.Cleanup(backendSrv.Close)

	url, logs := serveBinary(t, fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: "off"
log: {level: debug}
backends:
  - {name: weather, url: %s}
plugins:
  - {name: no-slow, type: deny, tools: ["weather_slow*"], reason: slow tools are off}
  - name: scrub
    type: redact
    regex: [{name: city, pattern: "Lisbo[a-z]"}]
telemetry:
  exporter: otlp
  otlp: {endpoint: %s}
  viewer: {enabled: false}
  capture_arguments: true
`, backendSrv.URL, recv.URL()))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "agent"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	// The backend connects in the background; wait for its tool.
	var res *mcp.CallToolResult
	for {
		res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "weather_get_weather", Arguments: map[string]any{"city": "Lisbon"}})
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(res.StructuredContent); !strings.Contains(string(got), `"city":"[REDACTED]"`) {
		t.Errorf("the backend answered for %s, want the city redacted before forwarding", got)
	}

	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "weather_slow_forecast", Arguments: map[string]any{"city": "Oslo"}})
	var rpc *jsonrpc.Error
	if !errors.As(err, &rpc) || rpc.Code != plugin.CodeDenied || rpc.Message != `denied by plugin "no-slow": slow tools are off` {
		t.Errorf("weather_slow_forecast: got %v, want -32030 from no-slow", err)
	}

	spans := recv.WaitForSpans(t, 20*time.Second, func(spans []otlptest.Span) bool {
		n := 0
		for _, s := range spans {
			if s.Name == "plugin.hook.invoke" {
				n++
			}
		}
		// get_weather: pre and post (redact); slow_forecast: pre only.
		return n >= 3
	})
	var stopped []any
	for _, s := range spans {
		if strings.Contains(fmt.Sprint(s.Attrs, s.Events, s.StatusMessage), "Lisbon") {
			t.Errorf("span %s holds the redacted value: %v", s.Name, s.Attrs)
		}
		if by, ok := s.Attrs["plugin.stopped_by"]; ok {
			stopped = append(stopped, by)
		}
	}
	if fmt.Sprint(stopped) != "[no-slow]" {
		t.Errorf("plugin.stopped_by on hook spans: %v, want [no-slow]", stopped)
	}
	if strings.Contains(logs.String(), "Lisbon") {
		t.Errorf("the logs hold the redacted value:\n%s", logs)
	}
}

// A plugin entry serve cannot build stops it at start, naming the entry
// and the key.
func TestServeRejectsBadPluginOptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tracegate.yaml")
	os.WriteFile(path, []byte(`
listen: 127.0.0.1:0
admin_listen: "off"
plugins:
  - {name: limit, type: ratelimit, rate: lots}
`), 0o600)
	out, err := exec.Command(selfBin, "serve", "-config", path).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitFail {
		t.Fatalf("got %v, want exit %d\n%s", err, exitFail, out)
	}
	if !strings.Contains(string(out), `plugins[0] "limit": rate: invalid rate "lots"`) {
		t.Errorf("output does not name the entry and key:\n%s", out)
	}
}

// A replica whose Redis is unreachable at start still serves: a session
// opened on it works, and /readyz says the cluster is degraded.
func TestServeClusterStartsWithRedisDown(t *testing.T) {
	addr := freeAddr(t)
	p := startServe(t, fmt.Sprintf(`
listen: %s
admin_listen: 127.0.0.1:0
backends:
  - {name: weather, url: %s}
telemetry: {viewer: {enabled: false}}
cluster: {redis_url: "redis://%s/0", advertise_url: "http://%s"}
`, addr, weatherServer(t), testnet.RefusedAddr(t), addr))
	cs, err := agent(t, p.mcpURL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	callUntilReady(t, cs, "weather_get_weather", map[string]any{"city": "Oslo"})
	code, body := adminGet(t, p.adminURL, "/readyz", "")
	if code != http.StatusOK || !strings.Contains(body, `"degraded"`) {
		t.Fatalf("/readyz with Redis down: %d %s, want 200 and degraded", code, body)
	}
}
