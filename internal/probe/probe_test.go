package probe

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func newRecorderProvider(t *testing.T) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, rec
}

// fullOptions exercises every step against the test server's features.
func fullOptions(url string) Options {
	return Options{
		URL:        url,
		Tool:       "get_weather",
		Args:       json.RawMessage(`{"city":"Paris"}`),
		Expect:     "sunny in Paris",
		Resource:   "file:///readme.txt",
		Prompt:     "greet",
		PromptArgs: map[string]string{"name": "Ada"},
	}
}

func TestRunPassesEveryStep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		stateless bool // server mode
		sse       bool
		protocol  string
		wantSteps []string
		wantProto string
		wantSess  bool
	}{
		{name: "streamable default", wantProto: "2025-11-25", wantSess: true,
			wantSteps: []string{"initialize", "tools/list", "tools/call get_weather", "resources/read", "prompts/get greet"}},
		{name: "streamable 2025-06-18", protocol: "2025-06-18", wantProto: "2025-06-18", wantSess: true,
			wantSteps: []string{"initialize", "tools/list", "tools/call get_weather", "resources/read", "prompts/get greet"}},
		{name: "streamable 2025-03-26", protocol: "2025-03-26", wantProto: "2025-03-26", wantSess: true,
			wantSteps: []string{"initialize", "tools/list", "tools/call get_weather", "resources/read", "prompts/get greet"}},
		{name: "stateless discover", stateless: true, protocol: ProtocolStateless, wantProto: ProtocolStateless,
			wantSteps: []string{"server/discover", "tools/list", "tools/call get_weather", "resources/read", "prompts/get greet"}},
		{name: "auto on stateless server", stateless: true, protocol: ProtocolAuto, wantProto: ProtocolStateless,
			wantSteps: []string{"server/discover", "tools/list", "tools/call get_weather", "resources/read", "prompts/get greet"}},
		{name: "auto falls back on stateful server", protocol: ProtocolAuto, wantProto: "2025-11-25", wantSess: true,
			wantSteps: []string{"server/discover", "initialize", "tools/list", "tools/call get_weather", "resources/read", "prompts/get greet"}},
		{name: "legacy sse", sse: true, wantProto: "2025-11-25",
			wantSteps: []string{"initialize", "tools/list", "tools/call get_weather", "resources/read", "prompts/get greet"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var url string
			var srv *recorder
			if tc.sse {
				url, srv = startSSE(t)
			} else {
				url, srv = startStreamable(t, tc.stateless)
			}
			tp, spans := newRecorderProvider(t)
			opts := fullOptions(url)
			opts.Protocol = tc.protocol
			opts.TracerProvider = tp

			report, err := Run(context.Background(), opts)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if !report.OK {
				t.Fatalf("got report not OK: %+v", report.Steps)
			}
			var names []string
			for _, s := range report.Steps {
				names = append(names, s.Name)
				if s.Latency <= 0 {
					t.Errorf("step %s: got latency %v, want > 0", s.Name, s.Latency)
				}
			}
			if !slices.Equal(names, tc.wantSteps) {
				t.Errorf("got steps %q, want %q", names, tc.wantSteps)
			}
			if report.Protocol != tc.wantProto {
				t.Errorf("got protocol %q, want %q", report.Protocol, tc.wantProto)
			}
			if report.Server != "weather-demo 1.2.0" {
				t.Errorf("got server %q, want %q", report.Server, "weather-demo 1.2.0")
			}
			if got := report.SessionID != ""; got != tc.wantSess {
				t.Errorf("got session %q, want one: %v", report.SessionID, tc.wantSess)
			}
			if len(report.Warnings) != 0 {
				t.Errorf("got warnings %q, want none", report.Warnings)
			}

			byMethod := checkSpans(t, spans.Ended(), report, tc.wantSteps)
			checkServerSawContext(t, srv, report, byMethod)
			if tc.wantSess && srv.deleteCount() != 1 {
				t.Errorf("got %d DELETE requests, want 1 to end the session", srv.deleteCount())
			}
			if !tc.wantSess && srv.deleteCount() != 0 {
				t.Errorf("got %d DELETE requests, want none without a session", srv.deleteCount())
			}
		})
	}
}

// checkSpans verifies one trace: an INTERNAL probe root and one CLIENT span
// per step, named like the step, with the MCP attributes. It returns the
// step spans by mcp.method.name.
func checkSpans(t *testing.T, ended []sdktrace.ReadOnlySpan, report Report, wantSteps []string) map[string]sdktrace.ReadOnlySpan {
	t.Helper()
	var root sdktrace.ReadOnlySpan
	byMethod := map[string]sdktrace.ReadOnlySpan{}
	var names []string
	for _, s := range ended {
		if got := s.SpanContext().TraceID().String(); got != report.TraceID {
			t.Errorf("span %s: got trace ID %s, want %s", s.Name(), got, report.TraceID)
		}
		if !s.SpanContext().IsSampled() {
			t.Errorf("span %s: got unsampled, want sampled", s.Name())
		}
		if s.Name() == "probe" {
			root = s
			continue
		}
		names = append(names, s.Name())
		if s.SpanKind() != trace.SpanKindClient {
			t.Errorf("span %s: got kind %v, want client", s.Name(), s.SpanKind())
		}
		attrs := attrMap(s.Attributes())
		byMethod[attrs["mcp.method.name"].AsString()] = s
		if attrs["server.address"].AsString() != "127.0.0.1" || attrs["server.port"].AsInt64() == 0 {
			t.Errorf("span %s: got server %q:%d, want 127.0.0.1 and a port", s.Name(), attrs["server.address"].AsString(), attrs["server.port"].AsInt64())
		}
		if report.SessionID != "" && s.Name() != "server/discover" {
			if got := attrs["mcp.session.id"].AsString(); got != report.SessionID {
				t.Errorf("span %s: got mcp.session.id %q, want %q", s.Name(), got, report.SessionID)
			}
		}
		if strings.HasPrefix(s.Name(), "tools/call ") {
			if got := attrs["gen_ai.tool.name"].AsString(); got != "get_weather" {
				t.Errorf("span %s: got gen_ai.tool.name %q, want get_weather", s.Name(), got)
			}
		}
	}
	if root == nil {
		t.Fatalf("got no probe root span among %q", names)
	}
	if root.SpanKind() != trace.SpanKindInternal || root.Parent().IsValid() {
		t.Errorf("root: got kind %v parent %v, want internal root", root.SpanKind(), root.Parent())
	}
	for _, s := range byMethod {
		if s.Parent().SpanID() != root.SpanContext().SpanID() {
			t.Errorf("span %s: got parent %s, want the probe root %s", s.Name(), s.Parent().SpanID(), root.SpanContext().SpanID())
		}
	}
	if !slices.Equal(names, wantSteps) {
		t.Errorf("got spans %q, want %q", names, wantSteps)
	}
	return byMethod
}

// checkServerSawContext verifies that every message reached the server with
// its step's span context in both the traceparent header and
// params._meta.traceparent.
func checkServerSawContext(t *testing.T, srv *recorder, report Report, byMethod map[string]sdktrace.ReadOnlySpan) {
	t.Helper()
	spanFor := func(method string) sdktrace.ReadOnlySpan {
		if method == "notifications/initialized" {
			method = "initialize"
		}
		return byMethod[method]
	}
	metaCount := 0
	for _, m := range srv.metaSeen() {
		s := spanFor(m.method)
		if s == nil {
			continue
		}
		metaCount++
		if want := traceparentOf(s); m.metaParent != want {
			t.Errorf("%s: server got _meta.traceparent %q, want %q", m.method, m.metaParent, want)
		}
	}
	if metaCount < len(byMethod) {
		t.Errorf("server middleware saw %d traced messages, want at least %d", metaCount, len(byMethod))
	}
	headerCount := 0
	for _, h := range srv.httpSeen() {
		if h.method == "" {
			// GET (SSE stream) and DELETE carry the run's trace too.
			if !strings.Contains(h.headerParent, report.TraceID) {
				t.Errorf("non-POST request: got traceparent %q, want trace %s", h.headerParent, report.TraceID)
			}
			continue
		}
		s := spanFor(h.method)
		if s == nil {
			continue
		}
		headerCount++
		if want := traceparentOf(s); h.headerParent != want {
			t.Errorf("%s: server got traceparent header %q, want %q", h.method, h.headerParent, want)
		}
	}
	if headerCount < len(byMethod) {
		t.Errorf("server saw %d traced POSTs, want at least %d", headerCount, len(byMethod))
	}
}

func traceparentOf(s sdktrace.ReadOnlySpan) string {
	sc := s.SpanContext()
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
}

func attrMap(kvs []attribute.KeyValue) map[string]attribute.Value {
	m := map[string]attribute.Value{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value
	}
	return m
}

func TestRunStatelessSendsSEP2575MetaAndHeaders(t *testing.T) {
	t.Parallel()
	url, srv := startStreamable(t, true)
	opts := fullOptions(url)
	opts.Protocol = ProtocolStateless
	report, err := Run(context.Background(), opts)
	if err != nil || !report.OK {
		t.Fatalf("Run: got %v %+v, want OK", err, report.Steps)
	}
	for _, m := range srv.metaSeen() {
		if got := m.meta[metaProtocolVersion]; got != ProtocolStateless {
			t.Errorf("%s: got _meta protocolVersion %v, want %s", m.method, got, ProtocolStateless)
		}
		if _, ok := m.meta[metaClientCapabilities]; !ok {
			t.Errorf("%s: got no _meta clientCapabilities, want it", m.method)
		}
		info, _ := m.meta[metaClientInfo].(map[string]any)
		if info["name"] != "tracegate-probe" {
			t.Errorf("%s: got _meta clientInfo %v, want name tracegate-probe", m.method, info)
		}
	}
	wantName := map[string]string{"tools/call": "get_weather", "prompts/get": "greet", "resources/read": "file:///readme.txt"}
	for _, h := range srv.httpSeen() {
		if got := h.header.Get("Mcp-Protocol-Version"); got != ProtocolStateless {
			t.Errorf("%s: got Mcp-Protocol-Version %q, want %s", h.method, got, ProtocolStateless)
		}
		if got := h.header.Get("Mcp-Method"); got != h.method {
			t.Errorf("%s: got Mcp-Method %q, want the method", h.method, got)
		}
		if got := h.header.Get("Mcp-Name"); got != wantName[h.method] {
			t.Errorf("%s: got Mcp-Name %q, want %q", h.method, got, wantName[h.method])
		}
		if got := h.header.Get("Mcp-Session-Id"); got != "" {
			t.Errorf("%s: got Mcp-Session-Id %q, want none", h.method, got)
		}
	}
}

func TestRunStatefulSendsSessionAndVersionAfterInitialize(t *testing.T) {
	t.Parallel()
	url, srv := startStreamable(t, false)
	report, err := Run(context.Background(), Options{URL: url, Protocol: "2025-06-18"})
	if err != nil || !report.OK {
		t.Fatalf("Run: got %v %+v, want OK", err, report.Steps)
	}
	var methods []string
	for _, h := range srv.httpSeen() {
		methods = append(methods, h.method)
		if h.method == "initialize" {
			if got := h.header.Get("Mcp-Session-Id"); got != "" {
				t.Errorf("initialize: got Mcp-Session-Id %q, want none", got)
			}
			continue
		}
		if got := h.header.Get("Mcp-Session-Id"); got != report.SessionID {
			t.Errorf("%q: got Mcp-Session-Id %q, want %q", h.method, got, report.SessionID)
		}
		if got := h.header.Get("Mcp-Protocol-Version"); got != "2025-06-18" {
			t.Errorf("%q: got Mcp-Protocol-Version %q, want 2025-06-18", h.method, got)
		}
	}
	if want := []string{"initialize", "notifications/initialized", "tools/list", ""}; !slices.Equal(methods, want) {
		t.Errorf("got requests %q, want %q (the last is DELETE)", methods, want)
	}
}

func TestRunRecordsFailuresOnSpans(t *testing.T) {
	t.Parallel()
	url, _ := startStreamable(t, false)
	tests := []struct {
		name       string
		opts       Options
		wantStep   string
		wantType   string
		wantRPC    string
		wantErrSub string
	}{
		{name: "tool isError", opts: Options{Tool: "broken"}, wantStep: "tools/call broken",
			wantType: "tool_error", wantErrSub: "backend database unreachable"},
		{name: "unknown tool", opts: Options{Tool: "nope"}, wantStep: "tools/call nope",
			wantType: "-32602", wantRPC: "-32602", wantErrSub: "JSON-RPC error -32602"},
		{name: "expect mismatch", opts: Options{Tool: "get_weather", Args: json.RawMessage(`{"city":"Oslo"}`), Expect: "rain"},
			wantStep: "tools/call get_weather", wantType: "expect_mismatch", wantErrSub: `does not contain "rain"`},
		{name: "unknown prompt", opts: Options{Prompt: "nope"}, wantStep: "prompts/get nope",
			wantType: "-32602", wantRPC: "-32602", wantErrSub: "JSON-RPC error"},
		{name: "hanging tool", opts: Options{Tool: "slow", Timeout: 600 * time.Millisecond}, wantStep: "tools/call slow",
			wantType: "timeout", wantErrSub: "timeout after 600ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tp, spans := newRecorderProvider(t)
			tc.opts.URL = url
			tc.opts.TracerProvider = tp
			report, err := Run(context.Background(), tc.opts)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if report.OK {
				t.Fatalf("got OK, want a failed %s", tc.wantStep)
			}
			if len(report.Warnings) != 0 {
				t.Errorf("got warnings %q, want none (a hung handler must be cancelled before DELETE)", report.Warnings)
			}
			last := report.Steps[len(report.Steps)-1]
			if last.Name != tc.wantStep || last.OK || last.ErrorType != tc.wantType || !strings.Contains(last.Error, tc.wantErrSub) {
				t.Errorf("got step %+v, want failed %s with type %s and error containing %q", last, tc.wantStep, tc.wantType, tc.wantErrSub)
			}
			for _, s := range spans.Ended() {
				if s.Name() != tc.wantStep {
					continue
				}
				attrs := attrMap(s.Attributes())
				if got := attrs["error.type"].AsString(); got != tc.wantType {
					t.Errorf("span: got error.type %q, want %q", got, tc.wantType)
				}
				if got := attrs["rpc.response.status_code"].AsString(); got != tc.wantRPC {
					t.Errorf("span: got rpc.response.status_code %q, want %q", got, tc.wantRPC)
				}
				if s.Status().Code != codes.Error {
					t.Errorf("span: got status %v, want error", s.Status())
				}
				for _, kv := range s.Attributes() {
					if strings.Contains(kv.Value.Emit(), "Oslo") || strings.Contains(kv.Value.Emit(), "unreachable") {
						t.Errorf("span: attribute %s=%q leaks tool arguments or results", kv.Key, kv.Value.Emit())
					}
				}
			}
		})
	}
}

func TestRunStatelessSendsParamHeaders(t *testing.T) {
	t.Parallel()
	// SEP-2243: a stateless server rejects a tools/call whose annotated
	// arguments are not mirrored in Mcp-Param-* headers.
	srv := mcp.NewServer(&mcp.Implementation{Name: "hdr", Version: "1"}, nil)
	schema := json.RawMessage(`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"opts":{"type":"object","properties":{"verbose":{"type":"boolean","x-mcp-header":"Verbose"}}}}}`)
	srv.AddTool(&mcp.Tool{Name: "where", InputSchema: schema}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "region " + req.Extra.Header.Get("Mcp-Param-Region")}}}, nil
	})
	rec := &recorder{}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{Stateless: true})
	url := serve(t, rec.wrap(h))
	report, err := Run(context.Background(), Options{
		URL: url, Protocol: ProtocolStateless, Tool: "where",
		Args: json.RawMessage(`{"region":"eu-west","opts":{"verbose":true}}`), Expect: "region eu-west",
	})
	if err != nil || !report.OK {
		t.Fatalf("Run: got %v %+v, want OK", err, report.Steps)
	}
	for _, h := range rec.httpSeen() {
		if h.method != "tools/call" {
			continue
		}
		if got := h.header.Get("Mcp-Param-Verbose"); got != "true" {
			t.Errorf("got Mcp-Param-Verbose %q, want true", got)
		}
	}
}

func TestRunInvalidOptions(t *testing.T) {
	t.Parallel()
	for _, opts := range []Options{{}, {URL: "http://h/mcp", Timeout: -time.Second}, {URL: "http://h/mcp", Transport: "pigeon"}} {
		if _, err := Run(context.Background(), opts); err == nil {
			t.Errorf("Run(%+v): got nil error, want one", opts)
		}
	}
}

func TestRunReportsAnUnusableURLAsTheFirstStep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		protocol, wantStep string
	}{
		{"", "initialize"},
		{ProtocolStateless, "server/discover"},
		{ProtocolAuto, "server/discover"},
	}
	for _, tc := range tests {
		tp, spans := newRecorderProvider(t)
		report, err := Run(context.Background(), Options{URL: "ftp://u:pw@example.com/mcp", Protocol: tc.protocol, TracerProvider: tp})
		if err != nil {
			t.Fatalf("Run: got %v, want a report", err)
		}
		if report.OK || len(report.Steps) != 1 {
			t.Fatalf("protocol %q: got %+v, want one failed step", tc.protocol, report.Steps)
		}
		st := report.Steps[0]
		if st.Name != tc.wantStep || st.ErrorType != "invalid_url" || st.Error != `invalid URL: scheme "ftp" (want http or https)` {
			t.Errorf("protocol %q: got %+v, want %s failed with invalid_url", tc.protocol, st, tc.wantStep)
		}
		if report.URL != "ftp://xxxxx@example.com/mcp" {
			t.Errorf("got URL %q, want the user info redacted", report.URL)
		}
		var names []string
		for _, s := range spans.Ended() {
			names = append(names, s.Name())
			if s.Name() == tc.wantStep && attrMap(s.Attributes())["error.type"].AsString() != "invalid_url" {
				t.Errorf("span %s: got attributes %v, want error.type invalid_url", s.Name(), s.Attributes())
			}
		}
		if !slices.Equal(names, []string{tc.wantStep, "probe"}) {
			t.Errorf("got spans %q, want the step and the root", names)
		}
	}
}

func TestRunCancelledContext(t *testing.T) {
	t.Parallel()
	url, _ := startStreamable(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	report, err := Run(ctx, Options{URL: url})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if report.OK || len(report.Steps) != 1 || report.Steps[0].ErrorType != "cancelled" {
		t.Errorf("got %+v, want one cancelled step", report.Steps)
	}
}

func TestRunCancelsAbandonedRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		start      func(t *testing.T) (string, *recorder)
		protocol   string
		wantCancel bool
	}{
		{"stateful streamable", func(t *testing.T) (string, *recorder) { return startStreamable(t, false) }, "", true},
		{"legacy sse", startSSE, "", true},
		// Stateless requests are cancelled by closing the connection
		// (SEP-2575); there is no session to notify.
		{"stateless", func(t *testing.T) (string, *recorder) { return startStreamable(t, true) }, ProtocolStateless, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url, srv := tc.start(t)
			// The cancellation gets up to the step timeout to reach the
			// server: room enough on a loaded machine under -race.
			report, err := Run(context.Background(), Options{URL: url, Protocol: tc.protocol, Tool: "slow", Timeout: 1500 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if report.OK || report.Steps[len(report.Steps)-1].ErrorType != "timeout" {
				t.Fatalf("got %+v, want a timed-out tools/call", report.Steps)
			}
			// Counted as the server's HTTP layer received it: Run returns
			// after posting it, and the server may close the session (the
			// probe's DELETE) before its MCP layer gets to the notification.
			var cancelled []any
			for _, m := range srv.httpSeen() {
				if m.method == "notifications/cancelled" {
					cancelled = append(cancelled, m)
				}
			}
			if got := len(cancelled) == 1; got != tc.wantCancel {
				t.Logf("probe warnings: %q", report.Warnings)
				t.Errorf("got %d notifications/cancelled, want one: %v", len(cancelled), tc.wantCancel)
			}
		})
	}
}
