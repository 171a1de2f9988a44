package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
)

// A 2026-07-28 client calls a tool whose stateful backend samples its
// caller mid-call: the gateway answers the client with input_required,
// passes the client's answer back to the held backend call, and the
// client gets the tool's result. The go-sdk client fulfils input requests
// with its sampling handler and calls again, as SEP-2322 says.
func TestStatelessClientSamplingOnStatefulBackend(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "asker", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "ask", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
				MaxTokens: 5, Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "who are you?"}}},
			})
			if err != nil {
				return nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "the caller said: " + res.Content.(*mcp.TextContent).Text}}}, nil
		})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	cfg := baseConfig(config.Backend{Name: "asker", URL: srv.URL, Transport: config.TransportStreamable, Timeout: config.Duration(10 * time.Second)})
	gw := startGateway(t, cfg, gateway.Options{})

	sampled := 0
	copts := &mcp.ClientOptions{CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
		sampled++
		return &mcp.CreateMessageResult{Role: "assistant", Model: "m", Content: &mcp.TextContent{Text: "a stateless client"}}, nil
	}}
	cs := connect(t, gw.url+"/mcp", copts, &mcp.ClientSessionOptions{ProtocolVersion: "2026-07-28"})
	if cs.ID() != "" {
		t.Fatalf("the client negotiated a session (%s): the test needs a stateless one", cs.ID())
	}
	res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "asker_ask", Arguments: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := text(res); got != "the caller said: a stateless client" || sampled != 1 {
		t.Errorf("got %q after %d samplings, want the client's answer after 1", got, sampled)
	}
}
