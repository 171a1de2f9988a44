package main

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/gateway"
	"github.com/tracegate/tracegate/internal/otlptest"
	"github.com/tracegate/tracegate/internal/telemetry"
)

// TestRelayedMessagesCarryTraceContext checks that what a backend sends the
// client during a call (progress, a log message, sampling and elicitation
// requests) reaches the client with the trace context of the gateway's
// SERVER span for that call in _meta, in place of the backend's own.
func TestRelayedMessagesCarryTraceContext(t *testing.T) {
	// With a progress token and without one (the gateway maps tokens, so
	// the backend's progress notifications are rewritten), the gateway
	// rewrites the _meta of what the backend sends on the call's stream.
	for _, progress := range []bool{true, false} {
		name := "forwarded"
		if progress {
			name = "decoded"
		}
		t.Run(name, func(t *testing.T) { testRelayedMessagesCarryTraceContext(t, progress) })
	}
}

func testRelayedMessagesCarryTraceContext(t *testing.T, progress bool) {
	t.Parallel()
	ctx := context.Background()
	s := newStack(t, witnessSpec{name: "w"})

	var mu sync.Mutex
	got := map[string]mcp.Meta{} // message kind -> its _meta as the client got it
	keep := func(kind string, m mcp.Meta) {
		mu.Lock()
		defer mu.Unlock()
		got[kind] = m
	}
	cs := s.connect(t, ctx, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			keep("progress", req.Params.Meta)
		},
		LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
			keep("log", req.Params.Meta)
		},
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			keep("sampling", req.Params.Meta)
			return &mcp.CreateMessageResult{Model: "m", Role: "assistant", Content: &mcp.TextContent{Text: "hello"}}, nil
		},
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			keep("elicitation", req.Params.Meta)
			return &mcp.ElicitResult{Action: "accept"}, nil
		},
	})
	// The gateway passes the level on to its shared backend session, in
	// the background.
	if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
		t.Fatal(err)
	}

	kinds := []string{"log", "sampling", "elicitation"}
	if progress {
		kinds = append(kinds, "progress")
	}
	// The backend learns the level asynchronously: call, each time in a
	// trace of its own, until the call's log message arrives.
	var agent trace.SpanContext
	for deadline := time.Now().Add(5 * time.Second); ; {
		agent = newAgentSpan(true)
		p := &mcp.CallToolParams{Name: "w_chatty", Arguments: map[string]any{}, Meta: mcp.Meta{"traceparent": traceparentOf(agent)}}
		if progress {
			p.SetProgressToken("tok-7")
		}
		mu.Lock()
		clear(got)
		mu.Unlock()
		if res, err := cs.CallTool(ctx, p); err != nil || res.IsError {
			t.Fatalf("w_chatty: %v %v", res, err)
		}
		if waitKinds(&mu, got, kinds, 2*time.Second) || time.Now().After(deadline) {
			break
		}
	}
	h := tracedHop(t, s, cs, agent.TraceID().String(), "w", "chatty")
	want := "00-" + h.server.TraceID + "-" + h.server.SpanID + "-01"
	mu.Lock()
	defer mu.Unlock()
	for _, kind := range kinds {
		m, ok := got[kind]
		if !ok {
			t.Errorf("%s: never reached the client", kind)
			continue
		}
		if tp := m["traceparent"]; tp != want {
			t.Errorf("%s: client got _meta.traceparent %v, want the gateway SERVER span's %s (the backend's span is %s)", kind, tp, want, h.backend.SpanID)
		}
	}
	if tok := got["progress"]["progressToken"]; tok != nil {
		t.Errorf("progress _meta holds progressToken %v; it belongs in params", tok)
	}
}

// waitKinds waits until got has every kind, and reports whether it did.
func waitKinds(mu *sync.Mutex, got map[string]mcp.Meta, kinds []string, d time.Duration) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		all := true
		for _, k := range kinds {
			if _, ok := got[k]; !ok {
				all = false
			}
		}
		mu.Unlock()
		if all || time.Now().After(deadline) {
			return all
		}
	}
}

// TestMetricsEndToEnd checks that real calls through the gateway produce
// the four MCP semantic-convention histograms and tracegate's counters, at
// the admin listener's /metrics and over OTLP.
func TestMetricsEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStack(t, witnessSpec{name: "w"})
	cs := s.connect(t, ctx, nil)
	for range 3 {
		seen(t, ctx, cs, "w", mcp.Meta{"traceparent": traceparentOf(newAgentSpan(true))})
	}
	seen(t, ctx, cs, "w", mcp.Meta{"traceparent": "00-not-a-traceparent"})
	// Session durations are recorded when sessions end: the client's at the
	// gateway, then the gateway's at the backend.
	cs.Close()
	s.waitScrape(t, "mcp_server_session_duration_seconds_count")
	s.rt.gateway.Close()
	text := s.waitScrape(t, "mcp_client_session_duration_seconds_count")

	for _, want := range []string{
		// Histograms in seconds, with the semconv buckets (first and last).
		`mcp_server_operation_duration_seconds_bucket{gen_ai_operation_name="execute_tool",gen_ai_tool_name="w_seen",mcp_method_name="tools/call",mcp_protocol_version="2025-11-25",network_protocol_name="http",network_protocol_version="1.1",network_transport="tcp",otel_scope_name="github.com/tracegate/tracegate/mcptrace",otel_scope_schema_url="",otel_scope_version="",le="0.01"}`,
		`mcp_server_operation_duration_seconds_count{gen_ai_operation_name="execute_tool",gen_ai_tool_name="w_seen",mcp_method_name="tools/call",mcp_protocol_version="2025-11-25",network_protocol_name="http",network_protocol_version="1.1",network_transport="tcp",otel_scope_name="github.com/tracegate/tracegate/mcptrace",otel_scope_schema_url="",otel_scope_version=""} 4`,
		`le="300"}`,
		`mcp_client_operation_duration_seconds_count{gen_ai_operation_name="execute_tool",gen_ai_tool_name="seen",mcp_method_name="tools/call",`,
		`mcp_server_session_duration_seconds_count{`,
		`mcp_client_session_duration_seconds_count{`,
		`tracegate_trace_context_dropped_total{otel_scope_name="github.com/tracegate/tracegate/mcptrace",otel_scope_schema_url="",otel_scope_version="",tracegate_carrier="meta",tracegate_reason="invalid_traceparent"} 1`,
		`tracegate_spans_dropped_total{otel_scope_name="github.com/tracegate/tracegate/internal/telemetry",otel_scope_schema_url="",otel_scope_version="",reason="queue_full"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, m := range []string{"mcp_client_operation_duration_seconds_count", "tracegate_backend_name=\"w\""} {
		if !strings.Contains(grepLines(text, "mcp_client_operation_duration_seconds_count"), m) {
			t.Errorf("mcp.client.operation.duration lacks %s:\n%s", m, grepLines(text, "mcp_client_operation_duration_seconds_count"))
		}
	}
	if t.Failed() {
		t.Logf("/metrics (mcp and tracegate lines):\n%s\n%s", grepLines(text, "mcp_"), grepLines(text, "tracegate_"))
	}

	// The same instruments go over OTLP.
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.rt.tel.MeterProvider.ForceFlush(fctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mcp.server.operation.duration", "mcp.client.operation.duration", "mcp.server.session.duration", "mcp.client.session.duration"} {
		pts := s.recv.WaitForMetric(t, 10*time.Second, name, func(pts []otlptest.Point) bool {
			return slices.ContainsFunc(pts, func(p otlptest.Point) bool { return p.Service == "tracegate" })
		})
		for _, p := range pts {
			if p.Service != "tracegate" {
				continue
			}
			if p.Type != "histogram" || p.Unit != "s" || !slices.Equal(p.Bounds, telemetry.MCPDurationBuckets) || p.Count == 0 {
				t.Errorf("%s over OTLP: got %s in %q, bounds %v, count %d; want a histogram in s with the semconv buckets", name, p.Type, p.Unit, p.Bounds, p.Count)
			}
		}
	}
	dropped := s.recv.WaitForMetric(t, 10*time.Second, "tracegate.trace_context.dropped", nil)
	if !slices.ContainsFunc(dropped, func(p otlptest.Point) bool {
		return p.Attrs["tracegate.reason"] == "invalid_traceparent" && p.Attrs["tracegate.carrier"] == "meta" && p.Value == 1
	}) {
		t.Errorf("tracegate.trace_context.dropped over OTLP: got %+v, want 1 invalid_traceparent in meta", dropped)
	}
	s.recv.WaitForMetric(t, 10*time.Second, "tracegate.spans.dropped", nil)
}

// waitScrape polls /metrics until it contains substr, and returns it.
func (s *stack) waitScrape(t *testing.T, substr string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		text := s.scrape(t)
		if strings.Contains(text, substr) {
			return text
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %s; mcp lines:\n%s", substr, grepLines(text, "mcp_"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLogLinesCarryTraceContext checks that a line the gateway logs while
// serving a call (here: the backend hung up on it) carries the call's
// trace_id and the gateway SERVER span's span_id.
func TestLogLinesCarryTraceContext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStack(t, witnessSpec{name: "w"})
	cs := s.connect(t, ctx, nil)
	agent := newAgentSpan(true)
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "w_hangup", Arguments: map[string]any{}, Meta: mcp.Meta{"traceparent": traceparentOf(agent)}})
	if rpcCode(err) != gateway.CodeUnavailable {
		t.Fatalf("w_hangup: got %v, want code %d", err, gateway.CodeUnavailable)
	}
	in := s.spans(t, agent.TraceID().String(), [3]string{"tools/call w_hangup", "server", "tracegate"})
	server := one(t, in, "tools/call w_hangup", "server", "tracegate")
	wantAttrs(t, server, map[string]any{"error.type": "-32010", "rpc.response.status_code": "-32010"})

	var line map[string]any
	for _, l := range s.logs.lines(t) {
		if l["msg"] == "backend call failed" {
			line = l
		}
	}
	if line == nil {
		t.Fatalf("no \"backend call failed\" line; log:\n%v", s.logs.lines(t))
	}
	if line["level"] != "WARN" || line["backend"] != "w" || line["trace_id"] != agent.TraceID().String() || line["span_id"] != server.SpanID {
		t.Errorf("got log line %v, want level WARN, backend w, trace_id %s, span_id %s (the gateway SERVER span)", line, agent.TraceID(), server.SpanID)
	}
	// Lines written outside any request carry no trace.
	for _, l := range s.logs.lines(t) {
		if l["msg"] == "backend state changed" && l["trace_id"] != nil {
			t.Errorf("state change line has a trace_id: %v", l)
		}
	}
}
