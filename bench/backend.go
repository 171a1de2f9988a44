package main

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// echoArgs are the arguments every benchmark call sends. The backend
// answers with them as text, so a worker can check that its call went the
// whole way and back.
const echoArgs = `{"text":"hello"}`

// backend is the fast Go MCP server every scenario ends at: a go-sdk
// server over Streamable HTTP with one raw tool, echo. A raw handler skips
// schema validation, so the backend costs as little as the SDK allows and
// the figures show the path in front of it.
type backend struct {
	url string // the /mcp endpoint
	srv *http.Server
}

func startBackend(ctx context.Context) (*backend, error) {
	s := newEchoServer()
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("backend: listening: %w", err)
	}
	mux := http.NewServeMux()
	// A plain stateful handler, as most servers deploy today: a client
	// offering 2026-07-28 falls back to initialize and a session.
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Logger: discardLogger}))
	b := &backend{url: "http://" + ln.Addr().String() + "/mcp", srv: &http.Server{Handler: mux}}
	go b.srv.Serve(ln)
	return b, nil
}

func (b *backend) close() { b.srv.Close() }

// newEchoServer is the backend's MCP server, whatever its transport.
func newEchoServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "bench-backend", Version: "1"}, &mcp.ServerOptions{Logger: discardLogger})
	s.AddTool(&mcp.Tool{
		Name:        "echo",
		Description: "Returns its arguments as text.",
		InputSchema: map[string]any{"type": "object"},
	}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(req.Params.Arguments)}}}, nil
	})
	return s
}
