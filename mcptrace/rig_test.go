package mcptrace

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Protocol generations the middleware must serve.
const (
	legacyProtocol    = "2025-11-25" // stateful: initialize, sessions
	statelessProtocol = "2026-07-28" // no initialize, version in every _meta
)

// rig describes one client-server pair for a test.
type rig struct {
	transport  string // "memory" or "http"
	protocol   string // client's protocol version; "" for the SDK default
	serverOpts []Option
	// clientMiddleware installs ClientMiddleware with clientOpts.
	clientMiddleware bool
	clientOpts       []Option
	// clientSending is installed after (inside) ClientMiddleware.
	clientSending []mcp.Middleware
	// clientReceiving is installed on the client's receiving side.
	clientReceiving []mcp.Middleware
	// roundTripper wraps the client's HTTP transport (http only).
	roundTripper  func(http.RoundTripper) http.RoundTripper
	clientOptions *mcp.ClientOptions
	// serverCtx is the context the server session is connected with
	// (memory only); nil for context.Background.
	serverCtx context.Context
}

// started is a connected rig.
type started struct {
	cs     *mcp.ClientSession
	server *serverTracer
	url    string // http only
}

// start connects a client and a server carrying the test tools, with
// telemetry going to tel. Both are closed when the test ends.
func (r rig) start(t *testing.T, tel *telemetry) started {
	t.Helper()
	ctx := context.Background()
	st := newServerTracer(tel.options(r.serverOpts...))
	server := newTestServer(st)

	client := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1.0.0"}, r.clientOptions)
	if r.clientMiddleware {
		client.AddSendingMiddleware(ClientMiddleware(tel.options(r.clientOpts...)...))
	}
	client.AddSendingMiddleware(r.clientSending...)
	client.AddReceivingMiddleware(r.clientReceiving...)
	var sessOpts *mcp.ClientSessionOptions
	if r.protocol != "" {
		sessOpts = &mcp.ClientSessionOptions{ProtocolVersion: r.protocol}
	}

	var transport mcp.Transport
	var url string
	switch r.transport {
	case "memory":
		ct, stt := mcp.NewInMemoryTransports()
		sctx := ctx
		if r.serverCtx != nil {
			sctx = r.serverCtx
		}
		ss, err := server.Connect(sctx, stt, nil)
		if err != nil {
			t.Fatalf("server connect: %v", err)
		}
		t.Cleanup(func() { _ = ss.Close() })
		transport = ct
	case "http":
		// The 2026-07-28 protocol needs a stateless handler.
		opts := &mcp.StreamableHTTPOptions{Stateless: r.protocol == statelessProtocol}
		ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, opts))
		t.Cleanup(ts.Close)
		var rt http.RoundTripper = http.DefaultTransport
		if r.roundTripper != nil {
			rt = r.roundTripper(rt)
		}
		transport = &mcp.StreamableClientTransport{Endpoint: ts.URL, HTTPClient: &http.Client{Transport: rt}, DisableStandaloneSSE: true}
		url = ts.URL
	default:
		t.Fatalf("unknown transport %q", r.transport)
	}
	cs, err := client.Connect(ctx, transport, sessOpts)
	if err != nil {
		t.Fatalf("client connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return started{cs: cs, server: st, url: url}
}

// inspection is what the inspect tool saw inside its handler.
type inspection struct {
	TraceID  string   `json:"trace_id"`
	SpanID   string   `json:"span_id"`
	Sampled  bool     `json:"sampled"`
	Baggage  string   `json:"baggage"`
	MetaKeys []string `json:"meta_keys"`
}

type downstreamArgs struct {
	URL string `json:"url"`
}

// newTestServer builds a server with tools, a prompt and a resource, and
// st's middleware.
func newTestServer(st *serverTracer) *mcp.Server {
	server := mcp.NewServer(&mcp.Implementation{Name: "test-server", Version: "1.0.0"}, nil)
	server.AddReceivingMiddleware(st.wrap)
	server.AddSendingMiddleware(ServerSendingMiddleware(WithTracerProvider(st.cfg.tracerProvider)))

	type greetArgs struct {
		Name string `json:"name"`
	}
	mcp.AddTool(server, &mcp.Tool{Name: "greet"}, func(ctx context.Context, req *mcp.CallToolRequest, in greetArgs) (*mcp.CallToolResult, any, error) {
		return text("hello " + in.Name), nil, nil
	})
	mcp.AddTool(server, &mcp.Tool{Name: "fail"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		return nil, nil, errors.New("the tool broke")
	})
	mcp.AddTool(server, &mcp.Tool{Name: "rpcfail"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		return nil, nil, &jsonrpc.Error{Code: -32001, Message: "backend unavailable"}
	})
	mcp.AddTool(server, &mcp.Tool{Name: "inspect"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		sc := trace.SpanFromContext(ctx).SpanContext()
		in := inspection{TraceID: sc.TraceID().String(), SpanID: sc.SpanID().String(), Sampled: sc.IsSampled(), Baggage: baggage.FromContext(ctx).String()}
		for k := range req.Params.Meta {
			in.MetaKeys = append(in.MetaKeys, k)
		}
		slices.Sort(in.MetaKeys)
		data, _ := json.Marshal(in)
		return text(string(data)), nil, nil
	})
	mcp.AddTool(server, &mcp.Tool{Name: "downstream"}, func(ctx context.Context, req *mcp.CallToolRequest, in downstreamArgs) (*mcp.CallToolResult, any, error) {
		hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, in.URL, nil)
		if err != nil {
			return nil, nil, err
		}
		resp, err := (&http.Client{Transport: NewTransport(nil)}).Do(hreq)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return text(string(body)), nil, nil
	})
	mcp.AddTool(server, &mcp.Tool{Name: "callback"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		if tok := req.Params.GetProgressToken(); tok != nil {
			if err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 2}); err != nil {
				return nil, nil, err
			}
		}
		res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
			Messages:  []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "hi"}}},
			MaxTokens: 10,
		})
		if err != nil {
			return nil, nil, err
		}
		return text(res.Model), nil, nil
	})
	server.AddPrompt(&mcp.Prompt{Name: "summary"}, func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "summarize"}}}}, nil
	})
	server.AddResource(&mcp.Resource{URI: "file:///notes.txt", Name: "notes"}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "notes"}}}, nil
	})
	return server
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

// resultText returns the text of a one-item tool result.
func resultText(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	if len(res.Content) != 1 {
		t.Fatalf("got %d content items, want 1", len(res.Content))
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("got content %T, want text", res.Content[0])
	}
	return tc.Text
}

// inspect calls the inspect tool.
func inspect(ctx context.Context, t *testing.T, cs *mcp.ClientSession, meta map[string]any) inspection {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "inspect", Meta: meta})
	if err != nil {
		t.Fatalf("calling inspect: %v", err)
	}
	var in inspection
	if err := json.Unmarshal([]byte(resultText(t, res)), &in); err != nil {
		t.Fatalf("decoding inspection: %v", err)
	}
	return in
}

// metaSetter is sending middleware that sets fixed _meta keys on the
// methods given (all when methods is empty), as a foreign client would.
func metaSetter(kv map[string]any, methods ...string) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if len(methods) == 0 || slices.Contains(methods, method) {
				if p := req.GetParams(); !isNilParams(p) {
					m := map[string]any{}
					for k, v := range p.GetMeta() {
						m[k] = v
					}
					for k, v := range kv {
						m[k] = v
					}
					p.SetMeta(m)
				}
			}
			return next(ctx, method, req)
		}
	}
}

// headerSetter is a RoundTripper that sets fixed headers.
type headerSetter struct {
	base   http.RoundTripper
	header http.Header
}

func (h headerSetter) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	for k, v := range h.header {
		out.Header[k] = v
	}
	return h.base.RoundTrip(out)
}
