package mcptrace

import (
	"context"
	"net/http"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// BenchmarkExtractInjectMeta measures the per-request propagation work of
// a proxy: extract from a request's headers and _meta, then inject into a
// copy of _meta for the next hop.
//
//	go test -run '^$' -bench ExtractInjectMeta -benchmem ./mcptrace
func BenchmarkExtractInjectMeta(b *testing.B) {
	p := NewPropagation(WithMeterProvider(noop.NewMeterProvider()))
	header := http.Header{
		"Traceparent":  {traceparentA},
		"Content-Type": {"application/json"},
		"Accept":       {"application/json, text/event-stream"},
	}
	meta := map[string]any{
		"traceparent":   traceparentB,
		"tracestate":    "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
		"baggage":       "tenant=acme,user=alice",
		"progressToken": "tok-1",
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ectx, ex := p.Extract(ctx, header, meta)
		if ex.Source != SourceMeta {
			b.Fatalf("got source %q", ex.Source)
		}
		if out := p.InjectMeta(ectx, meta); len(out) != 4 {
			b.Fatalf("got %d keys", len(out))
		}
	}
}

// BenchmarkExtractNone is the cost on a request that carries no context.
func BenchmarkExtractNone(b *testing.B) {
	p := NewPropagation(WithMeterProvider(noop.NewMeterProvider()))
	header := http.Header{"Content-Type": {"application/json"}}
	meta := map[string]any{"progressToken": "tok-1"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		p.Extract(ctx, header, meta)
	}
}

// BenchmarkProxyHop measures what tracing costs a proxy per tools/call: the
// server middleware on the received call, then the client middleware on the
// call sent on, with real SDK tracer and meter providers (spans go to a
// processor that drops them; export is measured in bench/). The call's
// _meta carries a sampled or an unsampled traceparent.
//
//	go test -run '^$' -bench ProxyHop -benchmem ./mcptrace
func BenchmarkProxyHop(b *testing.B) {
	for _, bc := range []struct{ name, traceparent string }{
		{"sampled", traceparentA},
		{"unsampled", traceparentA[:len(traceparentA)-2] + "00"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discardProcessor{}))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			opts := []Option{WithTracerProvider(tp), WithMeterProvider(mp)}
			client := ClientMiddleware(append(opts, WithServerAddress("127.0.0.1", 9001), WithNetworkTransport("tcp", "http", "1.1"),
				WithAttributes(attribute.String("tracegate.backend.name", "fast")), WithBaggage(BaggageNone()))...)
			server := ServerMiddleware(append(opts, WithNetworkTransport("tcp", "http", "1.1"))...)
			result := &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}
			send := client(func(ctx context.Context, _ string, req mcp.Request) (mcp.Result, error) {
				if req.GetParams().GetMeta()["traceparent"] == nil {
					b.Fatal("no traceparent sent on")
				}
				return result, nil
			})
			forward := func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
				in := req.(*mcp.CallToolRequest).Params
				out := &mcp.ClientRequest[*mcp.CallToolParams]{Params: &mcp.CallToolParams{Meta: in.Meta, Name: "echo", Arguments: in.Arguments}}
				return send(ctx, method, out)
			}
			h := server(forward)
			header := http.Header{"Content-Type": {"application/json"}}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				req := &mcp.CallToolRequest{
					Params: &mcp.CallToolParamsRaw{Meta: mcp.Meta{"traceparent": bc.traceparent}, Name: "fast_echo", Arguments: []byte(`{}`)},
					Extra:  &mcp.RequestExtra{Header: header},
				}
				if _, err := h(ctx, "tools/call", req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type discardProcessor struct{}

func (discardProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discardProcessor) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discardProcessor) Shutdown(context.Context) error                  { return nil }
func (discardProcessor) ForceFlush(context.Context) error                { return nil }
