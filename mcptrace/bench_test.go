package mcptrace

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"
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
