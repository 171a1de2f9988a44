package main

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/otlptest"
)

// hop is the gateway's part of one traced tools/call: its SERVER span, its
// CLIENT span to the backend, and the backend's SERVER span.
type hop struct {
	server, client, backend otlptest.Span
}

// tracedHop waits for the three spans of a call of backend's tool in
// traceID, and checks what every call has: names, kinds, that each is the
// child of the one before, and the attributes the MCP semantic conventions
// give them.
func tracedHop(t *testing.T, s *stack, cs *mcp.ClientSession, traceID, backend, tool string) hop {
	t.Helper()
	gwName, beName := "tools/call "+backend+"_"+tool, "tools/call "+tool
	in := s.spans(t, traceID,
		[3]string{gwName, "server", "tracegate"},
		[3]string{beName, "client", "tracegate"},
		[3]string{beName, "server", "witness-" + backend})
	h := hop{
		server:  one(t, in, gwName, "server", "tracegate"),
		client:  one(t, in, beName, "client", "tracegate"),
		backend: one(t, in, beName, "server", "witness-"+backend),
	}
	if h.client.ParentSpanID != h.server.SpanID || h.backend.ParentSpanID != h.client.SpanID {
		t.Fatalf("want gateway SERVER > gateway CLIENT > backend SERVER, got:\n%s", s.recv.Tree(traceID))
	}
	wantAttrs(t, h.server, map[string]any{
		"mcp.method.name":       "tools/call",
		"gen_ai.tool.name":      backend + "_" + tool,
		"gen_ai.operation.name": "execute_tool",
		"mcp.session.id":        cs.ID(),
		"mcp.protocol.version":  "2025-11-25",
		"network.transport":     "tcp",
		"network.protocol.name": "http",
	})
	wantAttrs(t, h.client, map[string]any{
		"mcp.method.name":                "tools/call",
		"gen_ai.tool.name":               tool,
		"gen_ai.operation.name":          "execute_tool",
		"tracegate.backend.name":         backend,
		"server.address":                 "127.0.0.1",
		"network.transport":              "tcp",
		"tracegate.trace_context.source": nil, // a SERVER span attribute
	})
	if port, _ := h.client.Attrs["server.port"].(int64); !strings.HasSuffix(s.witnesses[backend].url, ":"+strconv.FormatInt(port, 10)) {
		t.Errorf("CLIENT span server.port=%v, want the port of %s", h.client.Attrs["server.port"], s.witnesses[backend].url)
	}
	// The backend's own session ID, which is not the client's.
	if id, _ := h.client.Attrs["mcp.session.id"].(string); backendTransport(s, backend) == config.TransportStreamable && (id == "" || id == cs.ID()) {
		t.Errorf("CLIENT span mcp.session.id=%q, want the backend session's ID", id)
	}
	return h
}

func backendTransport(s *stack, name string) config.Transport {
	for _, b := range s.rt.cfg.Backends {
		if b.Name == name {
			return b.Transport
		}
	}
	return ""
}

// wantSentContext checks that the backend received the gateway CLIENT
// span's context both in _meta and in the HTTP headers.
func wantSentContext(t *testing.T, s *stack, backend string, got seenMeta, client otlptest.Span) {
	t.Helper()
	want := "00-" + client.TraceID + "-" + client.SpanID + "-01"
	if got.Traceparent != want {
		t.Errorf("backend %s got _meta.traceparent %q, want the gateway CLIENT span's %q", backend, got.Traceparent, want)
	}
	if h := s.witnesses[backend].header(t, client.TraceID).Get("Traceparent"); h != want {
		t.Errorf("backend %s got traceparent header %q, want %q", backend, h, want)
	}
}

// TestTraceContextThroughTheGateway runs each precedence rule of DESIGN.md
// section 3 through the real gateway (its runtime, exporting over OTLP/HTTP)
// to traced backends over Streamable HTTP and SSE, and checks the trace the
// OTLP receiver gets and the context each backend receives.
func TestTraceContextThroughTheGateway(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("sse backend", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, witnessSpec{name: "legacy", transport: config.TransportSSE})
		cs := s.connect(t, ctx, nil)
		agent := newAgentSpan(true)
		got := seen(t, ctx, cs, "legacy", mcp.Meta{"traceparent": traceparentOf(agent)})
		h := tracedHop(t, s, cs, agent.TraceID().String(), "legacy", "seen")
		if h.server.ParentSpanID != agent.SpanID().String() {
			t.Errorf("gateway SERVER span parent %s, want the agent's span %s", h.server.ParentSpanID, agent.SpanID())
		}
		wantAttrs(t, h.server, map[string]any{"tracegate.trace_context.source": "meta", "tracegate.trace_context.conflict": nil})
		wantSentContext(t, s, "legacy", got, h.client)
	})

	t.Run("context only in the HTTP header", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, witnessSpec{name: "w"})
		cs := s.connect(t, ctx, nil)
		agent := newAgentSpan(true)
		got := seen(t, trace.ContextWithRemoteSpanContext(ctx, agent), cs, "w", nil)
		h := tracedHop(t, s, cs, agent.TraceID().String(), "w", "seen")
		if h.server.ParentSpanID != agent.SpanID().String() {
			t.Errorf("gateway SERVER span parent %s, want the agent's span %s\n%s", h.server.ParentSpanID, agent.SpanID(), s.recv.Tree(agent.TraceID().String()))
		}
		wantAttrs(t, h.server, map[string]any{"tracegate.trace_context.source": "header"})
		// The gateway puts context in _meta even when the client did not.
		wantSentContext(t, s, "w", got, h.client)
	})

	t.Run("no context on the call: the session's initialize context", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, witnessSpec{name: "w"})
		agent := newAgentSpan(true)
		cs := s.connect(t, trace.ContextWithRemoteSpanContext(ctx, agent), nil)
		got := seen(t, ctx, cs, "w", nil)
		h := tracedHop(t, s, cs, agent.TraceID().String(), "w", "seen")
		if h.server.ParentSpanID != agent.SpanID().String() {
			t.Errorf("gateway SERVER span parent %s, want the span of the session's initialize %s\n%s", h.server.ParentSpanID, agent.SpanID(), s.recv.Tree(agent.TraceID().String()))
		}
		wantAttrs(t, h.server, map[string]any{"tracegate.trace_context.source": "session"})
		init := one(t, s.recv.Trace(agent.TraceID().String()), "initialize", "server", "tracegate")
		wantAttrs(t, init, map[string]any{"tracegate.trace_context.source": "header", "mcp.method.name": "initialize"})
		if init.ParentSpanID != agent.SpanID().String() {
			t.Errorf("initialize SERVER span parent %s, want %s", init.ParentSpanID, agent.SpanID())
		}
		wantSentContext(t, s, "w", got, h.client)
	})

	t.Run("header and _meta disagree: _meta wins, header linked", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, witnessSpec{name: "w"})
		cs := s.connect(t, ctx, nil)
		inHeader, inMeta := newAgentSpan(true), newAgentSpan(true)
		got := seen(t, trace.ContextWithRemoteSpanContext(ctx, inHeader), cs, "w", mcp.Meta{"traceparent": traceparentOf(inMeta)})
		h := tracedHop(t, s, cs, inMeta.TraceID().String(), "w", "seen")
		if h.server.ParentSpanID != inMeta.SpanID().String() {
			t.Errorf("gateway SERVER span parent %s, want the _meta span %s", h.server.ParentSpanID, inMeta.SpanID())
		}
		wantAttrs(t, h.server, map[string]any{"tracegate.trace_context.source": "meta", "tracegate.trace_context.conflict": true})
		linked := false
		for _, l := range h.server.Links {
			linked = linked || l.TraceID == inHeader.TraceID().String() && l.SpanID == inHeader.SpanID().String()
		}
		if !linked {
			t.Errorf("gateway SERVER span links %+v, want one to the header context %s", h.server.Links, traceparentOf(inHeader))
		}
		if n := len(s.recv.Trace(inHeader.TraceID().String())); n != 0 {
			t.Errorf("got %d spans in the header's trace, want none: the header only gets a link", n)
		}
		wantSentContext(t, s, "w", got, h.client)
	})

	t.Run("invalid traceparent is dropped and counted", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, witnessSpec{name: "w"})
		cs := s.connect(t, ctx, nil)
		agent := newAgentSpan(true)
		// All-zero trace-id: invalid per W3C Trace Context 3.2.2.3.
		bad := "00-00000000000000000000000000000000-" + agent.SpanID().String() + "-01"
		got := seen(t, trace.ContextWithRemoteSpanContext(ctx, agent), cs, "w", mcp.Meta{"traceparent": bad})
		h := tracedHop(t, s, cs, agent.TraceID().String(), "w", "seen")
		if h.server.ParentSpanID != agent.SpanID().String() {
			t.Errorf("gateway SERVER span parent %s, want the header's %s", h.server.ParentSpanID, agent.SpanID())
		}
		wantAttrs(t, h.server, map[string]any{"tracegate.trace_context.source": "header", "tracegate.trace_context.conflict": nil})
		wantSentContext(t, s, "w", got, h.client)

		// Alone, it gives a new root, and the call still succeeds.
		got = seen(t, ctx, cs, "w", mcp.Meta{"traceparent": "00-" + agent.TraceID().String() + "-zzzzzzzzzzzzzzzz-01"})
		if strings.Contains(got.Traceparent, agent.TraceID().String()) || got.Traceparent == "" {
			t.Errorf("backend got traceparent %q, want a fresh trace, not the invalid one's", got.Traceparent)
		}
		root := s.spans(t, strings.Split(got.Traceparent, "-")[1], [3]string{"tools/call w_seen", "server", "tracegate"})
		sp := one(t, root, "tools/call w_seen", "server", "tracegate")
		if sp.ParentSpanID != "" {
			t.Errorf("gateway SERVER span parent %q, want a root", sp.ParentSpanID)
		}
		wantAttrs(t, sp, map[string]any{"tracegate.trace_context.source": "none"})

		text := s.scrape(t)
		want := `tracegate_trace_context_dropped_total{otel_scope_name="github.com/tracegate/tracegate/mcptrace",otel_scope_schema_url="",otel_scope_version="",tracegate_carrier="meta",tracegate_reason="invalid_traceparent"} 2`
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s; dropped lines:\n%s", want, grepLines(text, "tracegate_trace_context_dropped"))
		}
	})

	t.Run("baggage per backend", func(t *testing.T) {
		t.Parallel()
		s := newStack(t,
			witnessSpec{name: "all", baggage: config.BaggagePolicy{Mode: config.BaggageAll}},
			witnessSpec{name: "none", baggage: config.BaggagePolicy{Mode: config.BaggageNone}},
			witnessSpec{name: "keys", baggage: config.BaggagePolicy{Mode: config.BaggageKeys, Keys: []string{"tenant"}}},
		)
		cs := s.connect(t, ctx, nil)
		for _, tt := range []struct {
			backend string
			want    []string // members, in any order
		}{
			{"all", []string{"tenant=acme", "user=alice"}},
			{"none", nil},
			{"keys", []string{"tenant=acme"}},
		} {
			agent := newAgentSpan(true)
			got := seen(t, ctx, cs, tt.backend, mcp.Meta{"traceparent": traceparentOf(agent), "baggage": "tenant=acme,user=alice"})
			hdr := s.witnesses[tt.backend].header(t, agent.TraceID().String()).Get("Baggage")
			for carrier, v := range map[string]string{"_meta": got.Baggage, "header": hdr} {
				if !sameMembers(v, tt.want) {
					t.Errorf("backend %s (baggage %s): got %s baggage %q, want %q", tt.backend, tt.backend, carrier, v, strings.Join(tt.want, ","))
				}
			}
		}
	})

	t.Run("unsampled: nothing recorded, context still propagated", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, witnessSpec{name: "w"})
		cs := s.connect(t, ctx, nil)
		agent := newAgentSpan(false)
		got := seen(t, ctx, cs, "w", mcp.Meta{"traceparent": traceparentOf(agent)})
		tid := agent.TraceID().String()
		hdr := s.witnesses["w"].header(t, tid).Get("Traceparent")
		for carrier, tp := range map[string]string{"_meta": got.Traceparent, "header": hdr} {
			f := strings.Split(tp, "-")
			if len(f) != 4 || f[1] != tid || f[3] != "00" || f[2] == agent.SpanID().String() {
				t.Errorf("backend got %s traceparent %q, want trace %s, flags 00 and the gateway's own span id", carrier, tp, tid)
			}
		}
		// A sampled call afterwards goes through the same pipelines.
		after := newAgentSpan(true)
		seen(t, ctx, cs, "w", mcp.Meta{"traceparent": traceparentOf(after)})
		tracedHop(t, s, cs, after.TraceID().String(), "w", "seen")
		if spans := s.recv.Trace(tid); len(spans) != 0 {
			t.Errorf("unsampled trace recorded %d spans:\n%s", len(spans), s.recv.Tree(tid))
		}
	})

	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, witnessSpec{name: "w"})
		cs := s.connect(t, ctx, nil)
		agent := newAgentSpan(true)
		call(t, ctx, cs, "w_fail", mcp.Meta{"traceparent": traceparentOf(agent)})
		h := tracedHop(t, s, cs, agent.TraceID().String(), "w", "fail")
		for _, sp := range []otlptest.Span{h.server, h.client, h.backend} {
			wantAttrs(t, sp, map[string]any{"error.type": "tool_error"})
		}

		agent = newAgentSpan(true)
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "w_nope", Arguments: map[string]any{}, Meta: mcp.Meta{"traceparent": traceparentOf(agent)}})
		if err == nil {
			t.Fatal("unknown tool: got no error")
		}
		// A name outside the catalog is _OTHER on the span and its metric,
		// so clients cannot make names and series without bound; the
		// status message still names what was asked for.
		in := s.spans(t, agent.TraceID().String(), [3]string{"tools/call _OTHER", "server", "tracegate"})
		sp := one(t, in, "tools/call _OTHER", "server", "tracegate")
		wantAttrs(t, sp, map[string]any{"error.type": "-32602", "rpc.response.status_code": "-32602", "gen_ai.tool.name": "_OTHER"})
		if sp.StatusCode != "error" || !strings.Contains(sp.StatusMessage, "w_nope") || sp.ParentSpanID != agent.SpanID().String() {
			t.Errorf("unknown tool SERVER span: status %s %q, parent %s; want error naming the tool, parent %s", sp.StatusCode, sp.StatusMessage, sp.ParentSpanID, agent.SpanID())
		}
		if len(in) != 1 {
			t.Errorf("unknown tool: got %d spans, want only the SERVER span:\n%s", len(in), s.recv.Tree(agent.TraceID().String()))
		}
	})
}

// sameMembers reports whether the W3C baggage header value v holds exactly
// the members want, in any order.
func sameMembers(v string, want []string) bool {
	var got []string
	if v != "" {
		got = strings.Split(v, ",")
	}
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.TrimSpace(g) == w
		}
		if !found {
			return false
		}
	}
	return true
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
