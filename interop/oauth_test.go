package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/examples/demo"
	"github.com/tracegate/tracegate/internal/auth/authtest"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
)

// TestTypeScriptClientOAuth runs the official TypeScript SDK's OAuth client
// support, headless, against tracegate as an OAuth 2.1 resource server and
// the in-process test authorization server: from the first 401 to a tool
// call with the token it obtained.
func TestTypeScriptClientOAuth(t *testing.T) {
	t.Parallel()
	node := requireNode(t)
	as := authtest.Start(t)

	weather := demo.NewWeatherServer(demo.WeatherOptions{})
	ws := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return weather }, nil))
	t.Cleanup(ws.Close)

	// The resource identifier is the gateway's own URL, so the listener
	// is bound before the configuration is written.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resource := "http://" + ln.Addr().String() + "/mcp"
	cfg := &config.Config{Backends: []config.Backend{
		{Name: "weather", URL: ws.URL, Transport: config.TransportStreamable, Timeout: config.Duration(10 * time.Second)},
	}}
	cfg.Tools.NameFormat = "{backend}_{tool}"
	cfg.Auth.OAuth = &config.OAuth{Issuer: as.URL, Audience: resource, RequiredScopes: []string{"mcp"}}
	gw, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	gw.Start(context.Background())
	t.Cleanup(func() { gw.Close() })
	srv := httptest.NewUnstartedServer(gw.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "oauth_client.mjs", resource, "weather_get_weather", `{"city":"Lisbon"}`)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node oauth_client.mjs: %v\nstderr:\n%s", err, stderr.String())
	}
	var out struct {
		Challenged       bool   `json:"challenged"`
		Redirects        int    `json:"redirects"`
		RegisteredClient string `json:"registeredClient"`
		Authorization    struct {
			Resource, Scope, CodeChallengeMethod string
		} `json:"authorization"`
		TokenType string   `json:"tokenType"`
		Tools     []string `json:"tools"`
		Call      struct {
			IsError bool   `json:"isError"`
			Text    string `json:"text"`
		} `json:"call"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("decoding %q: %v\nstderr:\n%s", stdout.String(), err, stderr.String())
	}
	t.Logf("oauth_client.mjs: %+v", out)
	if !out.Challenged || out.Redirects != 1 || out.RegisteredClient == "" {
		t.Errorf("flow: challenged %v, redirects %d, client %q; want one 401, one authorization, a registered client", out.Challenged, out.Redirects, out.RegisteredClient)
	}
	// RFC 8707: the client asked for a token for this gateway, with the
	// scope the challenge named.
	if out.Authorization.Resource != resource || !strings.Contains(out.Authorization.Scope, "mcp") || out.Authorization.CodeChallengeMethod != "S256" {
		t.Errorf("authorization request: %+v, want resource %s, scope mcp, PKCE S256", out.Authorization, resource)
	}
	if !strings.EqualFold(out.TokenType, "bearer") || as.TokenRequests.Load() < 1 {
		t.Errorf("token: type %q after %d token requests", out.TokenType, as.TokenRequests.Load())
	}
	if !slices.Contains(out.Tools, "weather_get_weather") || out.Call.IsError || !strings.Contains(out.Call.Text, "Lisbon") {
		t.Errorf("tools %v, call %+v; want weather_get_weather to answer for Lisbon", out.Tools, out.Call)
	}
}
