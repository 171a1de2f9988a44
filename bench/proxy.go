package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// perSessionBackend emulates the design tracegate did not choose: a
// gateway that opens one backend session for each client session, at the
// client's initialize, and closes it when the client session ends. It is
// the smallest proxy that does so, on the same SDK path as the gateway (the
// SDK server decodes, the SDK client re-encodes), so that comparing it with
// the gateway scenario measures the session design and not the rest.
func perSessionBackend(ctx context.Context, up upstream) (*path, error) {
	_, pt, err := startSessionProxy(ctx, up.BackendURL)
	return pt, err
}

func startSessionProxy(ctx context.Context, backendURL string) (*sessionProxy, *path, error) {
	p := &sessionProxy{
		backendURL: backendURL,
		client:     mcp.NewClient(&mcp.Implementation{Name: "bench-per-session-proxy", Version: "1"}, &mcp.ClientOptions{Logger: discardLogger}),
		// The same HTTP client the gateway gets by default.
		httpClient: &http.Client{Transport: http.DefaultTransport},
		sessions:   map[*mcp.ServerSession]*mcp.ClientSession{},
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "bench-per-session-proxy", Version: "1"}, &mcp.ServerOptions{
		Logger:       discardLogger,
		Capabilities: &mcp.ServerCapabilities{Tools: &mcp.ToolCapabilities{}},
	})
	// Listed so that clients see the tool; calls never reach this handler
	// because forward answers tools/call first, as the gateway's dispatch
	// middleware does.
	s.AddTool(&mcp.Tool{Name: "echo", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return nil, fmt.Errorf("not forwarded")
	})
	s.AddReceivingMiddleware(p.forward)
	srv, url, err := serveHTTP(ctx, mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Logger: discardLogger}))
	if err != nil {
		return nil, nil, err
	}
	return p, &path{endpoint: url + "/mcp", tool: "echo", close: func() {
		srv.Close()
		p.closeAll()
	}}, nil
}

type sessionProxy struct {
	backendURL string
	client     *mcp.Client
	httpClient *http.Client

	mu       sync.Mutex
	sessions map[*mcp.ServerSession]*mcp.ClientSession
}

func (p *sessionProxy) forward(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		switch method {
		case "initialize":
			// The client's initialize waits for its backend session, as it
			// would in a gateway built this way.
			ss, _ := req.GetSession().(*mcp.ServerSession)
			if err := p.open(ctx, ss); err != nil {
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: err.Error()}
			}
		case "tools/call":
			r := req.(*mcp.CallToolRequest)
			p.mu.Lock()
			cs := p.sessions[r.Session]
			p.mu.Unlock()
			if cs == nil {
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "no backend session"}
			}
			params := &mcp.CallToolParams{Meta: r.Params.Meta, Name: r.Params.Name}
			if len(r.Params.Arguments) > 0 {
				params.Arguments = r.Params.Arguments
			}
			return cs.CallTool(ctx, params)
		}
		return next(ctx, method, req)
	}
}

func (p *sessionProxy) open(ctx context.Context, ss *mcp.ServerSession) error {
	// The backend session lives as long as the client session, not as
	// long as the initialize request.
	cs, err := p.client.Connect(context.WithoutCancel(ctx), &mcp.StreamableClientTransport{Endpoint: p.backendURL, HTTPClient: p.httpClient, MaxRetries: 2}, nil)
	if err != nil {
		return fmt.Errorf("opening backend session: %w", err)
	}
	p.mu.Lock()
	p.sessions[ss] = cs
	p.mu.Unlock()
	go func() {
		ss.Wait()
		p.mu.Lock()
		delete(p.sessions, ss)
		p.mu.Unlock()
		cs.Close()
	}()
	return nil
}

// count returns how many backend sessions are open.
func (p *sessionProxy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sessions)
}

func (p *sessionProxy) closeAll() {
	p.mu.Lock()
	all := make([]*mcp.ClientSession, 0, len(p.sessions))
	for _, cs := range p.sessions {
		all = append(all, cs)
	}
	p.mu.Unlock()
	for _, cs := range all {
		cs.Close()
	}
}
