package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// seen is what the test server observed of one JSON-RPC message.
type seen struct {
	method        string
	headerParent  string // traceparent HTTP header
	metaParent    string // params._meta.traceparent
	header        http.Header
	meta          map[string]any
	httpMethodGet bool
}

// recorder collects what a test server saw, from the HTTP layer (headers)
// and from a receiving middleware (_meta).
type recorder struct {
	mu      sync.Mutex
	http    []seen // one per HTTP request
	meta    []seen // one per MCP message handled
	deletes int
}

func (r *recorder) httpSeen() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.http...)
}

func (r *recorder) metaSeen() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.meta...)
}

func (r *recorder) deleteCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deletes
}

// wrap records each HTTP request's method, JSON-RPC method and traceparent.
func (r *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s := seen{headerParent: req.Header.Get("traceparent"), header: req.Header.Clone(), httpMethodGet: req.Method == http.MethodGet}
		if req.Method == http.MethodPost {
			body, _ := io.ReadAll(req.Body)
			req.Body = io.NopCloser(bytes.NewReader(body))
			var msg struct {
				Method string `json:"method"`
			}
			_ = json.Unmarshal(body, &msg)
			s.method = msg.Method
		}
		r.mu.Lock()
		if req.Method == http.MethodDelete {
			r.deletes++
		}
		r.http = append(r.http, s)
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	})
}

func (r *recorder) middleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		s := seen{method: method}
		if p := req.GetParams(); p != nil {
			s.meta = p.GetMeta()
			s.metaParent, _ = s.meta["traceparent"].(string)
		}
		r.mu.Lock()
		r.meta = append(r.meta, s)
		r.mu.Unlock()
		return next(ctx, method, req)
	}
}

type weatherArgs struct {
	City string `json:"city" jsonschema:"the city"`
}

// newMCPServer returns a go-sdk server with tools, a resource and a prompt:
//   - get_weather returns "sunny in {city}";
//   - broken returns isError with a message;
//   - slow blocks until its request is cancelled or release is closed.
func newMCPServer(rec *recorder, release <-chan struct{}) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "weather-demo", Version: "1.2.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "get_weather", Description: "weather by city"},
		func(ctx context.Context, req *mcp.CallToolRequest, in weatherArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "sunny in " + in.City}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "broken", Description: "always fails"},
		func(ctx context.Context, req *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "backend database unreachable"}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "slow", Description: "never answers"},
		func(ctx context.Context, req *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, any, error) {
			select {
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-release:
				return nil, nil, errors.New("released")
			}
		})
	s.AddResource(&mcp.Resource{URI: "file:///readme.txt", Name: "readme", MIMEType: "text/plain"},
		func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: "hello"}}}, nil
		})
	s.AddPrompt(&mcp.Prompt{Name: "greet", Arguments: []*mcp.PromptArgument{{Name: "name", Required: true}}},
		func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "Hello " + req.Params.Arguments["name"]}}}}, nil
		})
	if rec != nil {
		s.AddReceivingMiddleware(rec.middleware)
	}
	return s
}

// startStreamable serves a go-sdk server over Streamable HTTP at /mcp.
func startStreamable(t *testing.T, stateless bool) (string, *recorder) {
	t.Helper()
	rec := &recorder{}
	release := make(chan struct{})
	srv := newMCPServer(rec, release)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{Stateless: stateless})
	url := serve(t, rec.wrap(h))
	t.Cleanup(func() { close(release) }) // runs before the server closes
	return url, rec
}

// startSSE serves a go-sdk server over the 2024-11-05 HTTP+SSE transport at /sse.
func startSSE(t *testing.T) (string, *recorder) {
	t.Helper()
	rec := &recorder{}
	release := make(chan struct{})
	srv := newMCPServer(rec, release)
	h := mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	mux := http.NewServeMux()
	mux.Handle("/sse", rec.wrap(h))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(release) })
	return ts.URL + "/sse", rec
}

// serve mounts h at /mcp on a test server and returns that URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL + "/mcp"
}
