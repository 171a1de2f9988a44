package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/config"
)

// gate is the receiving middleware a gateway puts in front of tools/call:
// the chain runs on the raw arguments and its refusals become JSON-RPC
// errors through RPCError.
func gate(c *Chain) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			r, ok := req.(*mcp.CallToolRequest)
			if !ok || !c.Has(ToolPreInvoke, "demo", r.Params.Name) {
				return next(ctx, method, req)
			}
			res, err := c.Run(ctx, &Call{Hook: ToolPreInvoke, Backend: "demo", Name: r.Params.Name, SessionID: r.Session.ID(), Arguments: r.Params.Arguments})
			if rpc := RPCError(err); rpc != nil {
				return nil, rpc
			}
			if err != nil {
				return nil, err
			}
			r.Params.Arguments = res.Arguments
			return next(ctx, method, req)
		}
	}
}

// Refusals reach a real MCP client, over Streamable HTTP, as JSON-RPC
// errors with tracegate's codes, messages and data.
func TestRefusalsOverMCP(t *testing.T) {
	t.Parallel()
	cfgs := []config.Plugin{
		{Name: "no-deletes", Type: "deny", Tools: []string{"demo_delete*"}},
		{Name: "per-session", Type: "ratelimit", Tools: []string{"demo_echo"}, Options: map[string]any{"rate": "1/h"}},
		{Name: "scrub", Type: "redact", Options: map[string]any{"patterns": "email"}},
		{Name: "flaky", Type: "t:flaky", Tools: []string{"demo_flaky"}},
	}
	flaky := &testPlugin{handle: func(context.Context, *Call) (Outcome, error) { return Outcome{}, errBoom }}
	b := newBed(t, cfgs, registryOf(map[string]*testPlugin{"flaky": flaky}), newClock().now)

	server := mcp.NewServer(&mcp.Implementation{Name: "demo", Version: "1"}, nil)
	echo := func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(req.Params.Arguments)}}}, nil
	}
	for _, name := range []string{"demo_echo", "demo_delete", "demo_flaky"} {
		server.AddTool(&mcp.Tool{Name: name, InputSchema: json.RawMessage(`{"type":"object"}`)}, echo)
	}
	server.AddReceivingMiddleware(gate(b.chain))
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "demo_echo", Arguments: map[string]any{"to": "ann@example.com"}})
	if err != nil {
		t.Fatalf("first echo: %v", err)
	}
	if got, want := res.Content[0].(*mcp.TextContent).Text, `{"to":"[REDACTED]"}`; got != want {
		t.Errorf("backend got %s, want %s", got, want)
	}

	tests := []struct {
		tool     string
		wantCode int64
		wantMsg  string
		wantData string
	}{
		{"demo_delete", CodeDenied, `denied by plugin "no-deletes": tool "demo_delete" matches "demo_delete*"`, `{"plugin":"no-deletes"}`},
		{"demo_echo", CodeRateLimited, `denied by plugin "per-session": rate limit of 1/h per session exceeded, retry after 1h0m0s`, `{"plugin":"per-session","retryAfterMs":3600000}`},
		{"demo_flaky", CodePluginFailed, `plugin "flaky" failed: boom`, `{"plugin":"flaky"}`},
	}
	for _, tt := range tests {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tt.tool, Arguments: map[string]any{}})
		var rpc *jsonrpc.Error
		if !errors.As(err, &rpc) {
			t.Errorf("%s: got %v, want a JSON-RPC error", tt.tool, err)
			continue
		}
		if rpc.Code != tt.wantCode || rpc.Message != tt.wantMsg || string(rpc.Data) != tt.wantData {
			t.Errorf("%s: got %d %q %s, want %d %q %s", tt.tool, rpc.Code, rpc.Message, rpc.Data, tt.wantCode, tt.wantMsg, tt.wantData)
		}
	}
}
