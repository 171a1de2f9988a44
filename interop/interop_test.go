// Package interop runs tracegate against MCP peers that are not written in
// Go: the official TypeScript SDK as a client (client.mjs), and the
// reference "everything" server as a stdio backend.
//
// The Node dependencies are pinned in package.json and package-lock.json;
// install them with `npm ci` in this directory. Without node or
// node_modules the tests skip, unless TRACEGATE_REQUIRE_INTEROP=1.
package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/examples/demo"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
)

// everythingJS is the reference server's entry point; `stdio` selects its
// stdio transport.
const everythingJS = "node_modules/@modelcontextprotocol/server-everything/dist/index.js"

// requireNode returns the node binary, or skips (fails with
// TRACEGATE_REQUIRE_INTEROP=1) when node or the installed packages are
// missing.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "the TypeScript interop tests", "node is not on PATH")
	}
	requireFiles(t, "the TypeScript interop tests", "node_modules/@modelcontextprotocol/sdk/package.json", everythingJS)
	return node
}

// requireFiles skips what (fails it with TRACEGATE_REQUIRE_INTEROP=1)
// when a file npm ci installs is missing.
func requireFiles(t *testing.T, what string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			skipOrFail(t, what, "interop/"+p+" is missing (run `npm ci` in interop/)")
		}
	}
}

func skipOrFail(t *testing.T, what, missing string) {
	t.Helper()
	if os.Getenv("TRACEGATE_REQUIRE_INTEROP") == "1" {
		t.Fatalf("TRACEGATE_REQUIRE_INTEROP=1 but %s", missing)
	}
	t.Skipf("skipping %s: %s; set TRACEGATE_REQUIRE_INTEROP=1 to make this an error", what, missing)
}

// startGateway runs a gateway in-process with two backends: the Go weather
// demo over Streamable HTTP, and the reference TypeScript server as a
// stdio child of the gateway.
func startGateway(t *testing.T, node, token string) string {
	t.Helper()
	weather := demo.NewWeatherServer(demo.WeatherOptions{})
	ws := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return weather }, nil))
	t.Cleanup(ws.Close)

	entry, err := filepath.Abs(everythingJS)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Backends: []config.Backend{
		{Name: "weather", URL: ws.URL, Transport: config.TransportStreamable, Timeout: config.Duration(10 * time.Second)},
		{Name: "everything", Command: []string{node, entry, "stdio"}, Transport: config.TransportStdio, Timeout: config.Duration(20 * time.Second)},
	}}
	cfg.Tools.NameFormat = "{backend}_{tool}"
	if token != "" {
		cfg.Auth.BearerTokens = []config.BearerToken{{Token: token}}
	}
	gw, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	gw.Start(context.Background())
	t.Cleanup(func() { gw.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for gw.Readiness().Status != "ready" {
		if time.Now().After(deadline) {
			t.Fatalf("backends not ready: %+v", gw.Readiness())
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// clientOutput is what client.mjs prints.
type clientOutput struct {
	ProtocolVersion string              `json:"protocolVersion"`
	Server          *mcp.Implementation `json:"server"`
	SessionID       string              `json:"sessionId"`
	Tools           []string            `json:"tools"`
	Calls           []struct {
		Name              string         `json:"name"`
		IsError           bool           `json:"isError"`
		Text              string         `json:"text"`
		StructuredContent map[string]any `json:"structuredContent"`
		Error             *struct {
			Code    int64  `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"calls"`
}

func runClient(t *testing.T, node, url, token string, calls ...string) clientOutput {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"client.mjs", url}, calls...)...)
	cmd.Env = append(os.Environ(), "TRACEGATE_TOKEN="+token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node client.mjs: %v\nstderr:\n%s", err, stderr.String())
	}
	var out clientOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("decoding client.mjs output %q: %v\nstderr:\n%s", stdout.String(), err, stderr.String())
	}
	return out
}

func TestTypeScriptClientThroughGateway(t *testing.T) {
	t.Parallel()
	node := requireNode(t)
	const token = "interop-token"
	url := startGateway(t, node, token)

	t.Run("aggregate endpoint", func(t *testing.T) {
		out := runClient(t, node, url+"/mcp", token,
			"weather_get_weather", `{"city":"Lisbon"}`,
			"everything_echo", `{"message":"hello from node"}`,
			"everything_get-sum", `{"a":2,"b":40}`,
			"weather_flaky_radar", `{"city":"Oslo"}`,
			"weather_nope", `{}`,
		)
		t.Logf("client.mjs: protocol %s, %d tools", out.ProtocolVersion, len(out.Tools))
		if out.Server == nil || out.Server.Name != "tracegate" {
			t.Errorf("serverInfo: got %+v, want tracegate", out.Server)
		}
		if out.SessionID != "present" {
			t.Errorf("Mcp-Session-Id: got %s, want one for a stateful session", out.SessionID)
		}
		for _, want := range []string{"weather_get_weather", "weather_slow_forecast", "everything_echo", "everything_get-sum"} {
			if !slices.Contains(out.Tools, want) {
				t.Errorf("tools/list: missing %q in %v", want, out.Tools)
			}
		}
		if len(out.Calls) != 5 {
			t.Fatalf("got %d call results, want 5: %+v", len(out.Calls), out.Calls)
		}
		tests := []struct {
			name, wantText string
			wantIsError    bool
			wantCode       int64
		}{
			{name: "weather_get_weather", wantText: `"city":"Lisbon"`},
			{name: "everything_echo", wantText: "Echo: hello from node"},
			{name: "everything_get-sum", wantText: "The sum of 2 and 40 is 42."},
			{name: "weather_flaky_radar", wantText: "radar station for Oslo is not responding", wantIsError: true},
			{name: "weather_nope", wantCode: -32602},
		}
		for i, tt := range tests {
			c := out.Calls[i]
			if c.Name != tt.name {
				t.Fatalf("call %d: got %q, want %q", i, c.Name, tt.name)
			}
			if tt.wantCode != 0 {
				if c.Error == nil || c.Error.Code != tt.wantCode || !strings.Contains(c.Error.Message, tt.name) {
					t.Errorf("%s: got %+v, want JSON-RPC error %d naming the tool", tt.name, c.Error, tt.wantCode)
				}
				continue
			}
			if c.Error != nil || c.IsError != tt.wantIsError || !strings.Contains(c.Text, tt.wantText) {
				t.Errorf("%s: got error %+v, isError %v, text %q; want isError %v and %q", tt.name, c.Error, c.IsError, c.Text, tt.wantIsError, tt.wantText)
			}
		}
		if sc := out.Calls[0].StructuredContent; sc["city"] != "Lisbon" {
			t.Errorf("weather_get_weather structuredContent: got %v, want city Lisbon", sc)
		}
	})

	t.Run("single backend endpoint", func(t *testing.T) {
		out := runClient(t, node, url+"/mcp/everything", token, "echo", `{"message":"direct"}`)
		if slices.Contains(out.Tools, "everything_echo") || !slices.Contains(out.Tools, "echo") {
			t.Errorf("/mcp/everything tools: got %v, want the original names", out.Tools)
		}
		if len(out.Calls) != 1 || out.Calls[0].Text != "Echo: direct" {
			t.Errorf("echo via /mcp/everything: got %+v", out.Calls)
		}
	})

	t.Run("wrong token", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, "client.mjs", url+"/mcp")
		cmd.Env = append(os.Environ(), "TRACEGATE_TOKEN=wrong")
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("client.mjs with a wrong token: got success %s, want a failure", out)
		}
		if !strings.Contains(string(out), "401") {
			t.Errorf("client.mjs with a wrong token: got %q, want it to report HTTP 401", out)
		}
	})
}
