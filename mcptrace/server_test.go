package mcptrace

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestMiddlewareJoinsOneTrace runs a real client and server over both
// transports and both protocol generations and checks the span tree:
// agent span -> CLIENT span -> SERVER span -> handler.
func TestMiddlewareJoinsOneTrace(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"memory", "http"} {
		for _, protocol := range []string{legacyProtocol, statelessProtocol} {
			t.Run(transport+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				tel := newTelemetry(t)
				r := rig{transport: transport, protocol: protocol, clientMiddleware: true}
				if transport == "http" {
					r.roundTripper = func(base http.RoundTripper) http.RoundTripper { return NewTransport(base) }
				}
				s := r.start(t, tel)

				ctx, agent := tel.tp.Tracer("agent").Start(context.Background(), "agent")
				if _, err := s.cs.CallTool(ctx, &mcp.CallToolParams{Name: "greet", Arguments: map[string]any{"name": "world"}}); err != nil {
					t.Fatalf("calling greet: %v", err)
				}
				seen := inspect(ctx, t, s.cs, nil)
				agent.End()

				client := tel.span(t, "tools/call greet", trace.SpanKindClient)
				server := tel.span(t, "tools/call greet", trace.SpanKindServer)
				agentSC := agent.SpanContext()
				if got := client.Parent().SpanID(); got != agentSC.SpanID() {
					t.Errorf("client span parent: got %s, want the agent span %s", got, agentSC.SpanID())
				}
				if got := server.Parent().SpanID(); got != client.SpanContext().SpanID() {
					t.Errorf("server span parent: got %s, want the client span %s", got, client.SpanContext().SpanID())
				}
				if !server.Parent().IsRemote() {
					t.Errorf("server span parent is local, want remote")
				}
				for _, s := range []sdktrace.ReadOnlySpan{client, server} {
					if got := s.SpanContext().TraceID(); got != agentSC.TraceID() {
						t.Errorf("%s %s: got trace %s, want %s", s.SpanKind(), s.Name(), got, agentSC.TraceID())
					}
				}

				wantTransport, wantProto := "pipe", any(nil)
				if transport == "http" {
					wantTransport, wantProto = "tcp", "http"
				}
				common := map[attribute.Key]any{
					"mcp.method.name":       "tools/call",
					"gen_ai.tool.name":      "greet",
					"gen_ai.operation.name": "execute_tool",
					"mcp.protocol.version":  protocol,
					"error.type":            nil,
				}
				wantAttrs(t, client, common)
				wantAttrs(t, server, common)
				wantAttrs(t, server, map[attribute.Key]any{
					"network.transport":                wantTransport,
					"network.protocol.name":            wantProto,
					"tracegate.trace_context.source":   "meta",
					"tracegate.trace_context.conflict": nil,
					"gen_ai.tool.call.arguments":       nil, // not opted in
				})
				if id := s.cs.ID(); id != "" {
					wantAttrs(t, client, map[attribute.Key]any{"mcp.session.id": id})
					wantAttrs(t, server, map[attribute.Key]any{"mcp.session.id": id})
				} else if transport == "http" && protocol == legacyProtocol {
					t.Errorf("got no session ID over stateful HTTP")
				}

				inspectSpan := tel.span(t, "tools/call inspect", trace.SpanKindServer)
				if seen.TraceID != agentSC.TraceID().String() || seen.SpanID != inspectSpan.SpanContext().SpanID().String() {
					t.Errorf("handler saw span %s/%s, want the server span %s/%s", seen.TraceID, seen.SpanID, agentSC.TraceID(), inspectSpan.SpanContext().SpanID())
				}

				// The handshake is traced too, client and server.
				handshake := "initialize"
				if protocol == statelessProtocol {
					handshake = "server/discover"
				}
				hc := tel.span(t, handshake, trace.SpanKindClient)
				hs := tel.span(t, handshake, trace.SpanKindServer)
				if hs.Parent().SpanID() != hc.SpanContext().SpanID() {
					t.Errorf("%s: server span parent %s, want client span %s", handshake, hs.Parent().SpanID(), hc.SpanContext().SpanID())
				}
			})
		}
	}
}

// TestServerParentSource checks the precedence of parents over HTTP.
func TestServerParentSource(t *testing.T) {
	t.Parallel()
	conflictHeader := func(base http.RoundTripper) http.RoundTripper {
		return headerSetter{base: base, header: http.Header{"Traceparent": {traceparentA}}}
	}
	tests := []struct {
		name             string
		clientMiddleware bool
		roundTripper     func(http.RoundTripper) http.RoundTripper
		wantSource       string
		wantParent       string // "agent", "client", "none"
		wantConflict     bool
	}{
		{"header only", false, func(b http.RoundTripper) http.RoundTripper { return NewTransport(b) }, "header", "agent", false},
		{"meta wins over header", true, conflictHeader, "meta", "client", true},
		{"no context", false, nil, "none", "none", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tel := newTelemetry(t)
			s := rig{transport: "http", protocol: legacyProtocol, clientMiddleware: tt.clientMiddleware, roundTripper: tt.roundTripper}.start(t, tel)

			ctx, agent := tel.tp.Tracer("agent").Start(context.Background(), "agent")
			seen := inspect(ctx, t, s.cs, nil)
			agent.End()

			server := tel.span(t, "tools/call inspect", trace.SpanKindServer)
			var want trace.SpanContext
			switch tt.wantParent {
			case "agent":
				want = agent.SpanContext()
			case "client":
				want = tel.span(t, "tools/call inspect", trace.SpanKindClient).SpanContext()
			}
			if got := server.Parent(); got.SpanID() != want.SpanID() || got.TraceID() != want.TraceID() {
				t.Errorf("got parent %s/%s, want %s %s/%s", got.TraceID(), got.SpanID(), tt.wantParent, want.TraceID(), want.SpanID())
			}
			if seen.SpanID != server.SpanContext().SpanID().String() {
				t.Errorf("handler saw span %s, want %s", seen.SpanID, server.SpanContext().SpanID())
			}
			wantAttrs(t, server, map[attribute.Key]any{"tracegate.trace_context.source": tt.wantSource})
			if tt.wantConflict {
				wantAttrs(t, server, map[attribute.Key]any{"tracegate.trace_context.conflict": true})
				links := server.Links()
				if len(links) != 1 || links[0].SpanContext.TraceID().String() != traceIDA || links[0].SpanContext.SpanID().String() != spanIDA {
					t.Errorf("got links %v, want one to the header context %s", links, traceparentA)
				}
			} else {
				wantAttrs(t, server, map[attribute.Key]any{"tracegate.trace_context.conflict": nil})
				if len(server.Links()) != 0 {
					t.Errorf("got links %v, want none", server.Links())
				}
			}
		})
	}
}

// TestServerHTTPSpanContext checks the hook for an HTTP server span: the
// MCP span is its child for header or no context, and links it otherwise.
func TestServerHTTPSpanContext(t *testing.T) {
	t.Parallel()
	httpSpan := mustSpanContext(t, traceparentB)
	hook := WithHTTPSpanContext(func(ctx context.Context, h http.Header) trace.SpanContext {
		if h == nil {
			t.Errorf("hook got nil header over HTTP")
		}
		return httpSpan
	})
	tests := []struct {
		name             string
		clientMiddleware bool
		wantChild        bool
	}{
		{"header or none: child of the HTTP span", false, true},
		{"meta: linked to the HTTP span", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tel := newTelemetry(t)
			s := rig{transport: "http", protocol: legacyProtocol, clientMiddleware: tt.clientMiddleware, serverOpts: []Option{hook}}.start(t, tel)
			inspect(context.Background(), t, s.cs, nil)

			server := tel.span(t, "tools/call inspect", trace.SpanKindServer)
			isChild := server.Parent().SpanID() == httpSpan.SpanID()
			linked := slices.ContainsFunc(server.Links(), func(l sdktrace.Link) bool { return l.SpanContext.SpanID() == httpSpan.SpanID() })
			if isChild != tt.wantChild || linked == tt.wantChild {
				t.Errorf("got child=%v linked=%v, want child=%v linked=%v", isChild, linked, tt.wantChild, !tt.wantChild)
			}
		})
	}
}

// TestServerSessionContext checks rule 3: a stateful session keeps the
// context extracted at initialize for requests that carry none, and the
// store forgets the session when it ends.
func TestServerSessionContext(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"memory", "http"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			tel := newTelemetry(t)
			s := rig{
				transport:     transport,
				protocol:      legacyProtocol,
				clientSending: []mcp.Middleware{metaSetter(map[string]any{"traceparent": traceparentA, "baggage": "tenant=acme"}, "initialize")},
			}.start(t, tel)

			seen := inspect(context.Background(), t, s.cs, nil)
			server := tel.span(t, "tools/call inspect", trace.SpanKindServer)
			if got := server.Parent(); got.TraceID().String() != traceIDA || got.SpanID().String() != spanIDA {
				t.Errorf("got parent %s/%s, want the initialize context %s/%s", got.TraceID(), got.SpanID(), traceIDA, spanIDA)
			}
			wantAttrs(t, server, map[attribute.Key]any{"tracegate.trace_context.source": "session"})
			if seen.Baggage != "tenant=acme" {
				t.Errorf("handler saw baggage %q, want the session's %q", seen.Baggage, "tenant=acme")
			}
			initSpan := tel.span(t, "initialize", trace.SpanKindServer)
			wantAttrs(t, initSpan, map[attribute.Key]any{"tracegate.trace_context.source": "meta", "mcp.protocol.version": legacyProtocol})

			if got := s.server.sessions.len(); got != 1 {
				t.Fatalf("got %d stored sessions, want 1", got)
			}
			if err := s.cs.Close(); err != nil {
				t.Fatalf("closing client: %v", err)
			}
			eventually(t, "the session store to empty", func() bool { return s.server.sessions.len() == 0 })
			eventually(t, "mcp.server.session.duration", func() bool {
				points := tel.histogramPoints(t, metricServerSession)
				return len(points) == 1 && points[0].Count == 1
			})
		})
	}
}

// TestServerRootIgnoresSessionSpan checks rule 4 when the session's own
// context holds a span: a request without context is still a new root.
func TestServerRootIgnoresSessionSpan(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	serverCtx := remoteContext(context.Background(), t, traceparentB)
	s := rig{transport: "memory", protocol: legacyProtocol, serverCtx: serverCtx}.start(t, tel)
	inspect(context.Background(), t, s.cs, nil)
	server := tel.span(t, "tools/call inspect", trace.SpanKindServer)
	if server.Parent().IsValid() || server.SpanContext().TraceID().String() == traceIDB {
		t.Errorf("got parent %v in trace %s, want a new root", server.Parent(), server.SpanContext().TraceID())
	}
	wantAttrs(t, server, map[attribute.Key]any{"tracegate.trace_context.source": "none"})
}

// TestServerStatelessHasNoSessionContext checks that with the 2026-07-28
// protocol each request stands alone.
func TestServerStatelessHasNoSessionContext(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	s := rig{
		transport:     "http",
		protocol:      statelessProtocol,
		clientSending: []mcp.Middleware{metaSetter(map[string]any{"traceparent": traceparentA}, "server/discover")},
	}.start(t, tel)
	inspect(context.Background(), t, s.cs, nil)
	server := tel.span(t, "tools/call inspect", trace.SpanKindServer)
	if server.Parent().IsValid() {
		t.Errorf("got parent %v, want a root span", server.Parent())
	}
	wantAttrs(t, server, map[attribute.Key]any{"tracegate.trace_context.source": "none", "mcp.protocol.version": statelessProtocol})
}

// TestServerUnsampledParent checks that an upstream "not sampled" flag is
// obeyed: nothing is recorded, yet the context still flows downstream.
func TestServerUnsampledParent(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	unsampled := "00-" + traceIDA + "-" + spanIDA + "-00"
	var mu sync.Mutex
	var got http.Header
	downstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(downstream.Close)

	s := rig{transport: "memory", protocol: legacyProtocol, clientSending: []mcp.Middleware{metaSetter(map[string]any{"traceparent": unsampled})}}.start(t, tel)
	if _, err := s.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "downstream", Arguments: downstreamArgs{URL: downstream.URL}}); err != nil {
		t.Fatalf("calling downstream: %v", err)
	}

	for _, sp := range tel.spans.Ended() {
		if sp.SpanContext().TraceID().String() == traceIDA {
			t.Errorf("recorded span %q of the unsampled trace, want none", sp.Name())
		}
	}
	mu.Lock()
	tp := got.Get("Traceparent")
	mu.Unlock()
	if !validTraceparent(tp) || tp[3:35] != traceIDA || tp[53:] != "00" {
		t.Fatalf("downstream got traceparent %q, want trace %s with flags 00", tp, traceIDA)
	}
	if tp[36:52] == spanIDA {
		t.Errorf("downstream got the upstream span ID %s, want the server span's", spanIDA)
	}
	points := tel.histogramPoints(t, metricServerOperation)
	if !slices.ContainsFunc(points, func(p metricdataPoint) bool {
		v, _ := p.Attributes.Value("gen_ai.tool.name")
		return v.AsString() == "downstream"
	}) {
		t.Errorf("got no mcp.server.operation.duration point for the unsampled call")
	}
}

// TestErrors checks isError and JSON-RPC errors on both sides.
func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tool           string
		wantErrorType  string
		wantStatusCode any
		wantMessage    string
	}{
		{"fail", "tool_error", nil, "tool_error"},
		{"rpcfail", "-32001", "-32001", "backend unavailable"},
		{"nope", "-32602", "-32602", `unknown tool "nope"`},
	}
	for _, tt := range tests {
		for _, transport := range []string{"memory", "http"} {
			t.Run(transport+"/"+tt.tool, func(t *testing.T) {
				t.Parallel()
				tel := newTelemetry(t)
				s := rig{transport: transport, protocol: legacyProtocol, clientMiddleware: true}.start(t, tel)
				_, _ = s.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tt.tool})

				for _, kind := range []trace.SpanKind{trace.SpanKindClient, trace.SpanKindServer} {
					sp := tel.span(t, "tools/call "+tt.tool, kind)
					wantAttrs(t, sp, map[attribute.Key]any{"error.type": tt.wantErrorType, "rpc.response.status_code": tt.wantStatusCode})
					if st := sp.Status(); st.Code != codes.Error || st.Description != tt.wantMessage {
						t.Errorf("%s: got status %v %q, want Error %q", kind, st.Code, st.Description, tt.wantMessage)
					}
				}
				for _, name := range []string{metricServerOperation, metricClientOperation} {
					points := tel.histogramPoints(t, name)
					if !slices.ContainsFunc(points, func(p metricdataPoint) bool {
						v, _ := p.Attributes.Value("error.type")
						return v.AsString() == tt.wantErrorType
					}) {
						t.Errorf("%s: got no point with error.type=%s", name, tt.wantErrorType)
					}
				}
			})
		}
	}
}

// TestSpanTargets checks names and attributes for prompts, resources and
// methods sent without params.
func TestSpanTargets(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	s := rig{transport: "memory", protocol: legacyProtocol, clientMiddleware: true}.start(t, tel)
	ctx := context.Background()
	if _, err := s.cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "summary"}); err != nil {
		t.Fatalf("prompts/get: %v", err)
	}
	if _, err := s.cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///notes.txt"}); err != nil {
		t.Fatalf("resources/read: %v", err)
	}
	if _, err := s.cs.ListTools(ctx, nil); err != nil {
		t.Fatalf("tools/list: %v", err)
	}

	prompt := tel.span(t, "prompts/get summary", trace.SpanKindServer)
	wantAttrs(t, prompt, map[attribute.Key]any{"gen_ai.prompt.name": "summary", "gen_ai.tool.name": nil, "gen_ai.operation.name": nil})
	resource := tel.span(t, "resources/read", trace.SpanKindServer)
	wantAttrs(t, resource, map[attribute.Key]any{"mcp.resource.uri": "file:///notes.txt", "mcp.method.name": "resources/read"})

	// tools/list was sent without params: _meta still carried the context.
	list := tel.span(t, "tools/list", trace.SpanKindServer)
	if got, want := list.Parent().SpanID(), tel.span(t, "tools/list", trace.SpanKindClient).SpanContext().SpanID(); got != want {
		t.Errorf("tools/list server parent: got %s, want client span %s", got, want)
	}
	wantAttrs(t, list, map[attribute.Key]any{"tracegate.trace_context.source": "meta"})
}

// TestServerSendingMiddleware checks that server-to-client requests and
// notifications carry the handler's context in _meta, and that a client's
// receiving middleware continues the trace.
func TestServerSendingMiddleware(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	progress := make(chan map[string]any, 1)
	opts := &mcp.ClientOptions{
		CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: trace.SpanFromContext(ctx).SpanContext().TraceID().String(), Role: "assistant", Content: &mcp.TextContent{Text: "ok"}}, nil
		},
		ProgressNotificationHandler: func(ctx context.Context, req *mcp.ProgressNotificationClientRequest) {
			progress <- req.Params.Meta
		},
	}
	s := rig{
		transport: "memory", protocol: legacyProtocol, clientMiddleware: true, clientOptions: opts,
		clientReceiving: []mcp.Middleware{ServerMiddleware(tel.options()...)}, // the client traces what it receives
	}.start(t, tel)

	callerMeta := map[string]any{"progressToken": "tok-1", "io.example/keep": "yes"}
	res, err := s.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "callback", Meta: callerMeta})
	if err != nil {
		t.Fatalf("calling callback: %v", err)
	}
	if _, ok := callerMeta["traceparent"]; ok || len(callerMeta) != 2 {
		t.Errorf("caller's _meta changed: %v", callerMeta)
	}

	server := tel.span(t, "tools/call callback", trace.SpanKindServer)
	if got := resultText(t, res); got != server.SpanContext().TraceID().String() {
		t.Errorf("sampling handler saw trace %s, want the server span's %s", got, server.SpanContext().TraceID())
	}
	meta := <-progress
	want := "00-" + server.SpanContext().TraceID().String() + "-" + server.SpanContext().SpanID().String() + "-01"
	if got := meta["traceparent"]; got != want {
		t.Errorf("progress notification traceparent: got %v, want %s", got, want)
	}
	sampling := tel.span(t, "sampling/createMessage", trace.SpanKindServer)
	if got := sampling.Parent().SpanID(); got != server.SpanContext().SpanID() {
		t.Errorf("client's sampling span parent: got %s, want the server's tools/call span %s", got, server.SpanContext().SpanID())
	}
	wantAttrs(t, sampling, map[attribute.Key]any{"tracegate.trace_context.source": "meta", "network.transport": "pipe"})
}
