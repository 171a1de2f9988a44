package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
	"github.com/tracegate/tracegate/internal/h1"
	"github.com/tracegate/tracegate/mcptrace"
)

// recordingBackend is a go-sdk server over Streamable HTTP that keeps the
// raw bodies and headers of the tools/call requests it receives.
type recordingBackend struct {
	srv *httptest.Server

	mu       sync.Mutex
	bodies   [][]byte
	headers  []http.Header
	canceled chan struct{}
	// cancels are the notifications/cancelled the backend received.
	cancels [][]byte
	// slowLevel delays a logging/setLevel to this level by 300ms.
	slowLevel string
	// levelsSet counts the logging/setLevel requests the backend handled.
	levelsSet int
}

func startRecordingBackend(t testing.TB, jsonResponse bool) *recordingBackend {
	t.Helper()
	rb := &recordingBackend{canceled: make(chan struct{}, 8)}
	s := mcp.NewServer(&mcp.Implementation{Name: "echo", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "echo", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			meta, _ := json.Marshal(req.Params.Meta)
			return &mcp.CallToolResult{Content: []mcp.Content{
				&mcp.TextContent{Text: string(req.Params.Arguments)},
				&mcp.TextContent{Text: string(meta)},
			}}, nil
		})
	s.AddTool(&mcp.Tool{Name: "fail", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "no such city"}}}, nil
		})
	s.AddTool(&mcp.Tool{Name: "reject", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return nil, &jsonrpc.Error{Code: -32099, Message: "quota exhausted"}
		})
	s.AddTool(&mcp.Tool{Name: "chatty", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			for _, level := range []mcp.LoggingLevel{"debug", "info"} {
				req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: level, Logger: "chatty", Data: "at " + string(level)})
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil
		})
	s.AddTool(&mcp.Tool{Name: "hang", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, _ *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			<-ctx.Done()
			rb.canceled <- struct{}{}
			return nil, ctx.Err()
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{JSONResponse: jsonResponse})
	rb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			if bytes.Contains(body, []byte(`"notifications/cancelled"`)) {
				rb.mu.Lock()
				rb.cancels = append(rb.cancels, body)
				rb.mu.Unlock()
			}
			if bytes.Contains(body, []byte(`"tools/call"`)) {
				rb.mu.Lock()
				rb.bodies = append(rb.bodies, body)
				rb.headers = append(rb.headers, r.Header.Clone())
				rb.mu.Unlock()
			}
			if bytes.Contains(body, []byte(`"logging/setLevel"`)) {
				rb.mu.Lock()
				slow := rb.slowLevel != "" && bytes.Contains(body, []byte(`"level":"`+rb.slowLevel+`"`))
				rb.mu.Unlock()
				if slow {
					time.Sleep(300 * time.Millisecond)
				}
				defer func() {
					rb.mu.Lock()
					rb.levelsSet++
					rb.mu.Unlock()
				}()
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(rb.srv.Close)
	return rb
}

func (rb *recordingBackend) last(t *testing.T) (map[string]json.RawMessage, http.Header) {
	t.Helper()
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if len(rb.bodies) == 0 {
		t.Fatal("the backend received no tools/call")
	}
	var msg map[string]json.RawMessage
	if err := json.Unmarshal(rb.bodies[len(rb.bodies)-1], &msg); err != nil {
		t.Fatal(err)
	}
	return msg, rb.headers[len(rb.headers)-1]
}

// tracedGateway runs a gateway with the tracing middleware over an
// in-memory span recorder.
func tracedGateway(t *testing.T, backendURL string, timeout time.Duration) (*testGateway, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	common := []mcptrace.Option{mcptrace.WithTracerProvider(tp), mcptrace.WithPropagators(prop)}
	opts := gateway.Options{
		Server: mcptrace.NewServerTracer(append(common, mcptrace.WithRequestAttributes(gateway.RequestAttributes))...),
		Backend: func(config.Backend) *mcptrace.ClientTracer {
			return mcptrace.NewClientTracer(common...)
		},
		BackendTransport: func(config.Backend) http.RoundTripper {
			return mcptrace.NewTransport(h1.New(backend.NewHTTPTransport()), common...)
		},
	}
	cfg := baseConfig(config.Backend{Name: "echo", URL: backendURL, Transport: config.TransportStreamable, Timeout: config.Duration(timeout)})
	return startGateway(t, cfg, opts), rec
}

func spanNamed(spans []sdktrace.ReadOnlySpan, name string, kind trace.SpanKind) sdktrace.ReadOnlySpan {
	for _, s := range spans {
		if s.Name() == name && s.SpanKind() == kind {
			return s
		}
	}
	return nil
}

func attr(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// A tools/call is forwarded as bytes: the backend gets the client's
// arguments and _meta keys exactly, the trace context of the gateway's
// CLIENT span in both _meta and the headers, over a JSON and an SSE
// backend, for both protocol generations.
func TestForwardedCallKeepsBytesAndTrace(t *testing.T) {
	for _, mode := range []struct {
		name     string
		json     bool
		revision string
	}{
		{"sse-backend/2025-11-25", false, "2025-11-25"},
		{"json-backend/2025-11-25", true, "2025-11-25"},
		{"sse-backend/2026-07-28", false, "2026-07-28"},
		{"json-backend/2025-06-18", true, "2025-06-18"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			rb := startRecordingBackend(t, mode.json)
			gw, rec := tracedGateway(t, rb.srv.URL, 5*time.Second)
			cs := connect(t, gw.url+"/mcp", nil, &mcp.ClientSessionOptions{ProtocolVersion: mode.revision})

			// Precision a float64 would lose, a non-ASCII string with an
			// escape, and key order a map would not keep.
			args := json.RawMessage(`{"z":1,"big":12345678901234567890,"city":"Z\u00fcrich é","nested":{"a":[1,{"b":null}]}}`)
			const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
			meta := mcp.Meta{
				"traceparent":                      "00-" + clientTrace + "-00f067aa0ba902b7-01",
				"tenant":                           map[string]any{"id": 7, "tags": []any{"a", "b"}},
				"io.modelcontextprotocol/logLevel": "debug",
			}
			res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo_echo", Arguments: args, Meta: meta})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Content[0].(*mcp.TextContent).Text; got != string(args) {
				t.Errorf("the backend saw arguments %s, want the client's bytes %s", got, args)
			}

			msg, hdr := rb.last(t)
			var params struct {
				Name string                     `json:"name"`
				Args json.RawMessage            `json:"arguments"`
				Meta map[string]json.RawMessage `json:"_meta"`
			}
			if err := json.Unmarshal(msg["params"], &params); err != nil {
				t.Fatal(err)
			}
			if params.Name != "echo" {
				t.Errorf("backend got tool %q, want its original name echo", params.Name)
			}
			if string(params.Args) != string(args) {
				t.Errorf("backend got arguments %s, want %s", params.Args, args)
			}
			if got := string(params.Meta["tenant"]); got != `{"id":7,"tags":["a","b"]}` {
				t.Errorf("_meta.tenant = %s, want it unchanged", got)
			}
			if _, ok := params.Meta["io.modelcontextprotocol/logLevel"]; ok {
				t.Error("the hop-by-hop key io.modelcontextprotocol/logLevel reached the backend")
			}
			var tp string
			json.Unmarshal(params.Meta["traceparent"], &tp)
			if !strings.HasPrefix(tp, "00-"+clientTrace+"-") || strings.Contains(tp, "00f067aa0ba902b7") {
				t.Errorf("_meta.traceparent = %q, want the client's trace with the gateway's span", tp)
			}
			if h := hdr.Get("traceparent"); h != tp {
				t.Errorf("traceparent header %q, _meta %q: want the same context in both", h, tp)
			}

			spans := rec.Ended()
			server := spanNamed(spans, "tools/call echo_echo", trace.SpanKindServer)
			client := spanNamed(spans, "tools/call echo", trace.SpanKindClient)
			if server == nil || client == nil {
				t.Fatalf("want a SERVER and a CLIENT span, got %d spans", len(spans))
			}
			if got := server.Parent().SpanID().String(); got != "00f067aa0ba902b7" {
				t.Errorf("SERVER span parent %s, want the client's span", got)
			}
			if client.Parent().SpanID() != server.SpanContext().SpanID() {
				t.Error("CLIENT span is not a child of the SERVER span")
			}
			if !strings.Contains(tp, client.SpanContext().SpanID().String()) {
				t.Errorf("injected traceparent %q does not name the CLIENT span", tp)
			}
			if v, ok := attr(server, "gen_ai.tool.name"); !ok || v.AsString() != "echo_echo" {
				t.Errorf("gen_ai.tool.name = %v", v.Emit())
			}
			if v, ok := attr(server, "jsonrpc.request.id"); !ok || v.AsString() == "" {
				t.Error("SERVER span has no jsonrpc.request.id")
			}
			if v, ok := attr(server, "client.address"); !ok || v.AsString() != "127.0.0.1" {
				t.Errorf("client.address = %q, want 127.0.0.1", v.Emit())
			}
			for _, s := range spans {
				if s.SpanKind() == trace.SpanKindServer && s.Name() == "tools/call echo_echo" && s != server {
					t.Error("two SERVER spans for one call")
				}
			}
		})
	}
}

// A tool error and a JSON-RPC error come back as the backend sent them, and
// the spans say so.
func TestForwardedCallErrors(t *testing.T) {
	rb := startRecordingBackend(t, false)
	gw, rec := tracedGateway(t, rb.srv.URL, 5*time.Second)
	cs := connect(t, gw.url+"/mcp", nil, nil)

	res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo_fail", Arguments: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || text(res) != "no such city" {
		t.Errorf("tool error: got isError=%v %q", res.IsError, text(res))
	}
	_, err = cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo_reject", Arguments: map[string]any{}})
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != -32099 || rpcErr.Message != "quota exhausted" {
		t.Fatalf("JSON-RPC error: got %v, want -32099 quota exhausted", err)
	}

	spans := rec.Ended()
	for name, want := range map[string]string{"tools/call echo_fail": "tool_error", "tools/call echo_reject": "-32099"} {
		s := spanNamed(spans, name, trace.SpanKindServer)
		if s == nil {
			t.Fatalf("no SERVER span %q", name)
		}
		if v, _ := attr(s, "error.type"); v.AsString() != want {
			t.Errorf("%s: error.type %q, want %q", name, v.Emit(), want)
		}
	}
}

// A call past the backend's timeout gets -32011, and the backend is told
// to stop.
func TestForwardedCallTimeout(t *testing.T) {
	rb := startRecordingBackend(t, false)
	gw, _ := tracedGateway(t, rb.srv.URL, time.Second)
	cs := connect(t, gw.url+"/mcp", nil, nil)

	_, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo_hang", Arguments: map[string]any{}})
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != gateway.CodeTimeout || !strings.Contains(rpcErr.Message, `"echo"`) {
		t.Fatalf("got %v, want -32011 naming the backend", err)
	}
	select {
	case <-rb.canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend's handler was never cancelled")
	}
	// The session and the backend keep serving.
	if _, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo_echo", Arguments: map[string]any{}}); err != nil {
		t.Fatalf("call after a timeout: %v", err)
	}
}

// A client that cancels a forwarded call gets the backend's handler
// cancelled too.
func TestForwardedCallCancellation(t *testing.T) {
	// 2025-11-25 cancels with notifications/cancelled, 2026-07-28 by
	// abandoning the request.
	for _, rev := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(rev, func(t *testing.T) { testForwardedCancellation(t, rev) })
	}
}

func testForwardedCancellation(t *testing.T, revision string) {
	rb := startRecordingBackend(t, false)
	gw, _ := tracedGateway(t, rb.srv.URL, 30*time.Second)
	cs := connect(t, gw.url+"/mcp", nil, &mcp.ClientSessionOptions{ProtocolVersion: revision})

	ctx, cancel := context.WithCancel(ctxT(t))
	errc := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo_hang", Arguments: map[string]any{}})
		errc <- err
	}()
	eventually(t, 5*time.Second, "the call to reach the backend", func() bool {
		rb.mu.Lock()
		defer rb.mu.Unlock()
		return len(rb.bodies) > 0
	})
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("a cancelled call succeeded")
	}
	select {
	case <-rb.canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend's handler was never cancelled")
	}
}

// A 2026-07-28 call whose Mcp-Name header does not match its body never
// reaches the backend: the SDK's header check answers it. The same call
// with matching headers is forwarded.
func TestForwardedStatelessCallChecksHeaders(t *testing.T) {
	rb := startRecordingBackend(t, false)
	gw, _ := tracedGateway(t, rb.srv.URL, 5*time.Second)
	c := &rawMCP{t: t, endpoint: gw.url + "/mcp", version: "2026-07-28"}
	body := `{"jsonrpc":"2.0","id":"a-1","method":"tools/call","params":{"name":"echo_echo","arguments":{"k":"v"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`

	a := c.post(body, http.Header{"Mcp-Method": {"tools/call"}, "Mcp-Name": {"echo_fail"}})
	if code, msg, ok := a.rpcError(); !ok || !strings.Contains(msg, "Mcp-Name") {
		t.Fatalf("mismatched Mcp-Name: HTTP %d, error %d %q, want the SDK's header mismatch error", a.status, code, msg)
	}
	rb.mu.Lock()
	n := len(rb.bodies)
	rb.mu.Unlock()
	if n != 0 {
		t.Fatalf("the backend received %d calls for a request with mismatched headers", n)
	}

	a = c.post(body, http.Header{"Mcp-Method": {"tools/call"}, "Mcp-Name": {"echo_echo"}})
	if a.status != http.StatusOK || a.msg == nil || a.msg["id"] != "a-1" || a.msg["result"] == nil {
		t.Fatalf("matching headers: HTTP %d %s", a.status, a.body)
	}
	if msg, _ := rb.last(t); msg["method"] == nil {
		t.Errorf("the backend got %v, not the call", msg)
	}
}

// A backend logs once a client has asked for logs: the gateway passes the
// most verbose level any client session set to the shared backend session,
// and each client gets the messages its own level lets through, on both
// paths.
func TestLogLevelReachesBackendAndFiltersPerClient(t *testing.T) {
	// "slow first level": the backend takes its time over the first
	// client's setLevel, so the second client's, more verbose, would
	// overtake it if both were sent at once, and the backend would be
	// left at the first.
	for _, slow := range []string{"", "info"} {
		t.Run(map[string]string{"": "pipeline", "info": "slow first level"}[slow], func(t *testing.T) {
			rb := startRecordingBackend(t, false)
			rb.mu.Lock()
			rb.slowLevel = slow
			rb.mu.Unlock()
			gw, _ := tracedGateway(t, rb.srv.URL, 5*time.Second)
			type client struct {
				cs  *mcp.ClientSession
				mu  sync.Mutex
				got []string
			}
			open := func(level mcp.LoggingLevel) *client {
				c := &client{}
				c.cs = connect(t, gw.url+"/mcp", &mcp.ClientOptions{
					LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
						c.mu.Lock()
						c.got = append(c.got, fmt.Sprint(req.Params.Data))
						c.mu.Unlock()
					},
				}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
				if err := c.cs.SetLoggingLevel(ctxT(t), &mcp.SetLoggingLevelParams{Level: level}); err != nil {
					t.Fatal(err)
				}
				return c
			}
			info, debug := open("info"), open("debug")
			messages := func(c *client) []string {
				c.mu.Lock()
				defer c.mu.Unlock()
				return append([]string(nil), c.got...)
			}
			// The backend learns the levels asynchronously: wait until it
			// has handled both, then call until the debug client sees both
			// messages.
			eventually(t, 5*time.Second, "the backend to handle both levels", func() bool {
				rb.mu.Lock()
				defer rb.mu.Unlock()
				return rb.levelsSet >= 2
			})
			eventually(t, 10*time.Second, "the debug client to get both levels", func() bool {
				if _, err := debug.cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo_chatty", Arguments: map[string]any{}}); err != nil {
					t.Fatal(err)
				}
				got := messages(debug)
				return slices.Contains(got, "at debug") && slices.Contains(got, "at info")
			})
			if _, err := info.cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo_chatty", Arguments: map[string]any{}}); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, "the info client's message", func() bool { return slices.Contains(messages(info), "at info") })
			if slices.Contains(messages(info), "at debug") {
				t.Errorf("the info client got a debug message: %v", messages(info))
			}
		})
	}
}

// The gateway keeps the sessions' idle clocks: a session whose only traffic
// is forwarded calls (which the SDK never sees) stays open, and a silent
// one is closed, after which its ID is unknown.
func TestIdleSessionsAreClosedBusyOnesKept(t *testing.T) {
	rb := startRecordingBackend(t, false)
	cfg := baseConfig(config.Backend{Name: "echo", URL: rb.srv.URL, Transport: config.TransportStreamable, Timeout: config.Duration(5 * time.Second)})
	gw := startGateway(t, cfg, gateway.Options{SessionIdleTimeout: time.Second})
	// No standalone stream: an open stream alone keeps a session.
	busy, err := mcp.NewClient(&mcp.Implementation{Name: "busy", Version: "1"}, nil).Connect(ctxT(t),
		&mcp.StreamableClientTransport{Endpoint: gw.url + "/mcp", DisableStandaloneSSE: true},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	quiet := rawInitialize(t, gw.url+"/mcp", nil)

	// Well past the timeout, with a forwarded call every 100ms.
	for deadline := time.Now().Add(2500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err := busy.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo_echo", Arguments: map[string]any{}}); err != nil {
			t.Fatalf("the busy session failed: %v", err)
		}
	}
	a := quiet.post(`{"jsonrpc":"2.0","id":5,"method":"tools/list"}`, nil)
	if a.status != http.StatusNotFound {
		t.Errorf("the silent session after the timeout: got HTTP %d %s, want 404 (closed)", a.status, a.body)
	}
}

// A client's notifications/cancelled reaches the backend with the
// client's own reason.
func TestCancelReasonReachesBackend(t *testing.T) {
	rb := startRecordingBackend(t, false)
	gw, _ := tracedGateway(t, rb.srv.URL, 30*time.Second)
	c := rawInitialize(t, gw.url+"/mcp", nil)
	done := make(chan rawAnswer, 1)
	go func() {
		done <- c.post(`{"jsonrpc":"2.0","id":"call-1","method":"tools/call","params":{"name":"echo_hang","arguments":{}}}`, nil)
	}()
	eventually(t, 5*time.Second, "the call to reach the backend", func() bool {
		rb.mu.Lock()
		defer rb.mu.Unlock()
		return len(rb.bodies) > 0
	})
	if a := c.post(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"call-1","reason":"the user pressed stop"}}`, nil); a.status != http.StatusAccepted {
		t.Fatalf("notifications/cancelled: HTTP %d %s", a.status, a.body)
	}
	<-done
	eventually(t, 5*time.Second, "notifications/cancelled at the backend", func() bool {
		rb.mu.Lock()
		defer rb.mu.Unlock()
		return len(rb.cancels) > 0
	})
	rb.mu.Lock()
	got := string(rb.cancels[0])
	rb.mu.Unlock()
	if !strings.Contains(got, `"reason":"the user pressed stop"`) {
		t.Errorf("the backend got %s, want the client's reason", got)
	}
}

// Calls reuse the gateway's connections to an HTTP backend: a go-sdk
// backend answers each call with an event stream, and a connection is
// only reusable once that stream was read to its end. 40 calls from four
// clients, traced and not, open no more connections to the backend than
// the clients' concurrency, the GET stream and the handshake need.
func TestBackendConnectionsAreReused(t *testing.T) {
	t.Parallel()
	for _, traced := range []bool{false, true} {
		t.Run(fmt.Sprintf("traced=%v", traced), func(t *testing.T) {
			t.Parallel()
			rb := startRecordingBackend(t, false)
			var dials atomic.Int64
			// The stream's last chunk follows the response a moment later,
			// as from a busy server.
			counted := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rb.srv.Config.Handler.ServeHTTP(w, r)
				if r.Method == http.MethodPost && w.Header().Get("Content-Type") == "text/event-stream" {
					time.Sleep(2 * time.Millisecond)
				}
			}))
			counted.Config.ConnState = func(_ net.Conn, st http.ConnState) {
				if st == http.StateNew {
					dials.Add(1)
				}
			}
			counted.Start()
			t.Cleanup(counted.Close)
			var gw *testGateway
			if traced {
				gw, _ = tracedGateway(t, counted.URL, 10*time.Second)
			} else {
				gw = startGateway(t, baseConfig(config.Backend{Name: "echo", URL: counted.URL, Transport: config.TransportStreamable}), gateway.Options{})
			}
			const clients, calls = 4, 10
			var wg sync.WaitGroup
			for range clients {
				cs := connect(t, gw.url+"/mcp", nil, nil)
				wg.Go(func() {
					for i := range calls {
						if _, err := call(t, cs, "echo_echo", map[string]any{"i": i}); err != nil {
							t.Errorf("call %d: %v", i, err)
							return
						}
					}
				})
			}
			wg.Wait()
			// The handshake's, the GET stream's and one per client at most.
			if n := dials.Load(); n > clients+2 {
				t.Errorf("%d calls opened %d connections to the backend, want at most %d", clients*calls, n, clients+2)
			}
		})
	}
}
