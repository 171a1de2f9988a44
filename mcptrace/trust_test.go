package mcptrace

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestIncomingContextTrust runs a caller whose _meta and headers carry
// different sampled contexts, plus baggage, through each trust mode.
func TestIncomingContextTrust(t *testing.T) {
	t.Parallel()
	callerHeaders := func(base http.RoundTripper) http.RoundTripper {
		return headerSetter{base: base, header: http.Header{"Traceparent": {traceparentA}, "Baggage": {"tenant=acme"}}}
	}
	for _, tt := range []struct {
		trust       Trust
		wantRoot    bool
		wantLinks   int // the _meta context and the header context
		wantBaggage string
		wantAttr    any
	}{
		{TrustParent, false, 1, "tenant=acme", nil}, // the conflict link only
		{TrustLink, true, 2, "tenant=acme", "link"},
		{TrustIgnore, true, 0, "", "ignore"},
	} {
		t.Run(tt.trust.String(), func(t *testing.T) {
			t.Parallel()
			tel := newTelemetry(t)
			decide := func(context.Context) Trust { return tt.trust }
			s := rig{transport: "http", protocol: legacyProtocol, clientMiddleware: true, roundTripper: callerHeaders,
				serverOpts: []Option{WithIncomingContext(decide)}}.start(t, tel)

			ctx, agent := tel.tp.Tracer("agent").Start(context.Background(), "agent")
			seen := inspect(ctx, t, s.cs, nil)
			agent.End()

			server := tel.span(t, "tools/call inspect", trace.SpanKindServer)
			client := tel.span(t, "tools/call inspect", trace.SpanKindClient)
			if root := !server.Parent().IsValid(); root != tt.wantRoot {
				t.Errorf("root: got %v, want %v (parent %s)", root, tt.wantRoot, server.Parent().SpanID())
			}
			sameTrace := server.SpanContext().TraceID() == agent.SpanContext().TraceID()
			if sameTrace == tt.wantRoot {
				t.Errorf("in the caller's trace: got %v, want %v", sameTrace, !tt.wantRoot)
			}
			if seen.Baggage != tt.wantBaggage {
				t.Errorf("handler baggage: got %q, want %q", seen.Baggage, tt.wantBaggage)
			}
			links := server.Links()
			if len(links) != tt.wantLinks {
				t.Fatalf("links: got %d %v, want %d", len(links), links, tt.wantLinks)
			}
			if tt.trust == TrustLink {
				if links[0].SpanContext.SpanID() != client.SpanContext().SpanID() || links[1].SpanContext.SpanID().String() != spanIDA {
					t.Errorf("links: got %v, want the _meta context (the client span) then the header context", links)
				}
				wantSources := []string{"meta", "header"}
				for i, l := range links {
					if len(l.Attributes) != 1 || l.Attributes[0].Value.AsString() != wantSources[i] {
						t.Errorf("link %d attributes: %v, want source %s", i, l.Attributes, wantSources[i])
					}
				}
			}
			want := map[attribute.Key]any{"tracegate.trace_context.incoming": tt.wantAttr}
			if tt.trust != TrustParent {
				want["tracegate.trace_context.source"] = "none"
				want["tracegate.trace_context.conflict"] = nil
			}
			wantAttrs(t, server, want)
		})
	}
}

// TestLinkCannotForceSampling: under link, a caller's sampled flag does
// not make the gateway record; the gateway's own sampler decides.
func TestLinkCannotForceSampling(t *testing.T) {
	t.Parallel()
	for _, trust := range []Trust{TrustParent, TrustLink} {
		t.Run(trust.String(), func(t *testing.T) {
			t.Parallel()
			tel := newTelemetry(t)
			// Roots are never sampled; a sampled parent is obeyed.
			serverTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
			t.Cleanup(func() { serverTP.Shutdown(context.Background()) })
			decide := func(context.Context) Trust { return trust }
			s := rig{transport: "http", protocol: legacyProtocol, clientMiddleware: true,
				serverOpts: []Option{WithTracerProvider(serverTP), WithIncomingContext(decide)}}.start(t, tel)
			ctx, agent := tel.tp.Tracer("agent").Start(context.Background(), "agent")
			seen := inspect(ctx, t, s.cs, nil)
			agent.End()
			if seen.Sampled != (trust == TrustParent) {
				t.Errorf("server span sampled: got %v, want %v", seen.Sampled, trust == TrustParent)
			}
			if seen.TraceID == agent.SpanContext().TraceID().String() && trust == TrustLink {
				t.Error("under link, the caller chose the trace ID")
			}
		})
	}
}

// TestUntrustedSkipsSessionContext: a request without context on a session
// whose initialize carried some does not inherit it when untrusted.
func TestUntrustedSkipsSessionContext(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	var calls int
	decide := func(context.Context) Trust {
		// initialize is trusted, everything after is linked.
		calls++
		if calls == 1 {
			return TrustParent
		}
		return TrustLink
	}
	s := rig{transport: "memory", protocol: legacyProtocol, serverOpts: []Option{WithIncomingContext(decide)},
		clientSending: []mcp.Middleware{metaSetter(map[string]any{"traceparent": traceparentA}, "initialize")}}.start(t, tel)
	seen := inspect(context.Background(), t, s.cs, nil)
	if seen.TraceID == traceIDA {
		t.Error("an untrusted request took the session's context from initialize")
	}
}
