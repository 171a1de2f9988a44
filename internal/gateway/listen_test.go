package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
)

// A tool added on a backend reaches clients as tools/list_changed: a
// stateful client on its GET stream, a 2026-07-28 client on its
// subscriptions/listen stream.
func TestToolListChangedReachesBothGenerations(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "grower", Version: "1"}, nil)
	tool := func(name string) {
		s.AddTool(&mcp.Tool{Name: name, InputSchema: json.RawMessage(`{"type":"object"}`)},
			func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return &mcp.CallToolResult{}, nil
			})
	}
	tool("first")
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	cfg := baseConfig(config.Backend{Name: "g", URL: srv.URL, Transport: config.TransportStreamable, Timeout: config.Duration(5 * time.Second)})
	gw := startGateway(t, cfg, gateway.Options{})

	var stateful, stateless atomic.Int32
	connect(t, gw.url+"/mcp", &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { stateful.Add(1) }},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	modern := connect(t, gw.url+"/mcp", &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { stateless.Add(1) }},
		&mcp.ClientSessionOptions{ProtocolVersion: "2026-07-28"})
	if modern.ID() != "" {
		t.Fatalf("the 2026-07-28 client has a session (%s): the test needs a stateless one", modern.ID())
	}
	time.Sleep(200 * time.Millisecond) // both streams open
	tool("second")
	eventually(t, 10*time.Second, "tools/list_changed at both clients", func() bool {
		return stateful.Load() > 0 && stateless.Load() > 0
	})
	if n := len(toolNames(t, modern)); n != 2 {
		t.Errorf("after the change the catalog has %d tools, want 2", n)
	}
}
