package mcptrace_test

import (
	"context"
	"fmt"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tracegate/tracegate/mcptrace"
)

// An upstream caller's context, as it would arrive in _meta or a header.
const (
	callerTraceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	otherTraceparent  = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
)

func ExampleMetaCarrier() {
	meta := map[string]any{"traceparent": callerTraceparent, "progressToken": 7}
	ctx := propagation.TraceContext{}.Extract(context.Background(), mcptrace.MetaCarrier(meta))
	sc := trace.SpanContextFromContext(ctx)
	fmt.Println(sc.TraceID(), sc.SpanID(), sc.IsSampled())
	// Output: 0af7651916cd43dd8448eb211c80319c b7ad6b7169203331 true
}

func ExampleExtract() {
	header := http.Header{"Traceparent": {otherTraceparent}}
	meta := map[string]any{"traceparent": callerTraceparent}
	ctx, ex := mcptrace.Extract(context.Background(), header, meta)
	fmt.Println("source:", ex.Source, "conflict:", ex.Conflict)
	fmt.Println("parent trace:", trace.SpanContextFromContext(ctx).TraceID())
	fmt.Println("link to:", ex.Header.TraceID())

	// An invalid value (upper-case hex) is ignored, never an error.
	_, ex = mcptrace.Extract(context.Background(), nil, map[string]any{"traceparent": "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01"})
	fmt.Println("invalid:", ex.Source)
	// Output:
	// source: meta conflict: true
	// parent trace: 0af7651916cd43dd8448eb211c80319c
	// link to: 4bf92f3577b34da6a3ce929d0e0e4736
	// invalid: none
}

func ExamplePropagation_InjectMeta() {
	p := mcptrace.NewPropagation(mcptrace.WithBaggage(mcptrace.BaggageNone()))
	ctx, _ := p.Extract(context.Background(), nil, map[string]any{"traceparent": callerTraceparent})

	callers := map[string]any{"progressToken": "tok-1", "baggage": "secret=1"}
	sent := p.InjectMeta(ctx, callers)
	for _, k := range slices.Sorted(maps.Keys(sent)) {
		fmt.Printf("%s=%v\n", k, sent[k])
	}
	fmt.Println("caller's map:", len(callers), "keys")
	// Output:
	// progressToken=tok-1
	// traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
	// caller's map: 2 keys
}

func ExampleServerMiddleware() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))

	server := mcp.NewServer(&mcp.Implementation{Name: "weather", Version: "1.0.0"}, nil)
	server.AddReceivingMiddleware(mcptrace.ServerMiddleware(mcptrace.WithTracerProvider(tp)))
	mcp.AddTool(server, &mcp.Tool{Name: "forecast"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		// The handler's ctx holds the SERVER span.
		fmt.Println("handler in trace", trace.SpanFromContext(ctx).SpanContext().TraceID())
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "sunny"}}}, nil, nil
	})

	ctx := context.Background()
	ct, st := mcp.NewInMemoryTransports()
	ss, err := server.Connect(ctx, st, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1.0.0"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer cs.Close()

	// A caller that puts its context in _meta (SEP-414).
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "forecast", Meta: mcp.Meta{"traceparent": callerTraceparent}}); err != nil {
		log.Fatal(err)
	}
	for _, s := range spans.Ended() {
		if s.Name() != "tools/call forecast" {
			continue
		}
		source, _ := attrValue(s, mcptrace.AttrTraceContextSource)
		fmt.Println(s.Name(), s.SpanKind(), "parent", s.Parent().SpanID(), "source", source)
	}
	// Output:
	// handler in trace 0af7651916cd43dd8448eb211c80319c
	// tools/call forecast server parent b7ad6b7169203331 source meta
}

func attrValue(s sdktrace.ReadOnlySpan, key attribute.Key) (string, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value.Emit(), true
		}
	}
	return "", false
}

func ExampleClientMiddleware() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))

	server := mcp.NewServer(&mcp.Implementation{Name: "weather", Version: "1.0.0"}, nil)
	server.AddReceivingMiddleware(mcptrace.ServerMiddleware(mcptrace.WithTracerProvider(tp)))
	mcp.AddTool(server, &mcp.Tool{Name: "forecast"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "sunny"}}}, nil, nil
	})
	backend := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	defer backend.Close()

	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1.0.0"}, nil)
	client.AddSendingMiddleware(mcptrace.ClientMiddleware(mcptrace.WithTracerProvider(tp)))
	// The round tripper puts the same CLIENT span context in the headers.
	transport := &mcp.StreamableClientTransport{
		Endpoint:   backend.URL,
		HTTPClient: &http.Client{Transport: mcptrace.NewTransport(nil)},
	}
	ctx := context.Background()
	cs, err := client.Connect(ctx, transport, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		log.Fatal(err)
	}
	defer cs.Close()

	ctx, agent := tp.Tracer("agent").Start(ctx, "plan trip")
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "forecast"}); err != nil {
		log.Fatal(err)
	}
	agent.End()

	byID := map[trace.SpanID]string{}
	for _, s := range spans.Ended() {
		byID[s.SpanContext().SpanID()] = s.SpanKind().String() + " " + s.Name()
	}
	for _, s := range spans.Ended() {
		if s.SpanContext().TraceID() != agent.SpanContext().TraceID() {
			continue // the session's own initialize
		}
		line := fmt.Sprintf("%s %s <- %s", s.SpanKind(), s.Name(), byID[s.Parent().SpanID()])
		if source, ok := attrValue(s, mcptrace.AttrTraceContextSource); ok {
			line += " (" + source + ")"
		}
		fmt.Println(strings.TrimSpace(line))
	}
	// Output:
	// server tools/call forecast <- client tools/call forecast (meta)
	// client tools/call forecast <- internal plan trip
	// internal plan trip <-
}

func ExampleNewTransport() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("API got traceparent", r.Header.Get("Traceparent"))
	}))
	defer api.Close()

	// Inside a tool handler, ctx holds the SERVER span; here, a caller's.
	ctx, _ := mcptrace.Extract(context.Background(), nil, map[string]any{"traceparent": callerTraceparent})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.URL, nil)
	resp, err := (&http.Client{Transport: mcptrace.NewTransport(nil)}).Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	// Output: API got traceparent 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
}

// Trust the trace context of callers the application vouches for, and only
// link everyone else's: they cannot pick trace IDs or force sampling.
func ExampleWithIncomingContext() {
	type internalCaller struct{}
	decide := func(ctx context.Context) mcptrace.Trust {
		if ctx.Value(internalCaller{}) != nil {
			return mcptrace.TrustParent
		}
		return mcptrace.TrustLink
	}
	server := mcp.NewServer(&mcp.Implementation{Name: "example", Version: "1"}, nil)
	server.AddReceivingMiddleware(mcptrace.ServerMiddleware(mcptrace.WithIncomingContext(decide)))
	fmt.Println(decide(context.Background()), decide(context.WithValue(context.Background(), internalCaller{}, true)))
	// Output: link trust
}
