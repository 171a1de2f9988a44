package traceview

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// gatewaySpans records n traces of four spans shaped like the gateway's
// (server, plugin hook, client, with the usual MCP attributes and a
// per-request session ID) through a real provider, and returns the
// finished spans as the SDK hands them to processors.
func gatewaySpans(tb testing.TB, n int) []sdktrace.ReadOnlySpan {
	tb.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "tracegate"))),
		sdktrace.WithSpanProcessor(rec),
	)
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr := tp.Tracer("bench")
	for i := range n {
		attrs := []attribute.KeyValue{
			attribute.String("mcp.method.name", "tools/call"),
			attribute.String("gen_ai.tool.name", "get_weather"),
			attribute.String("gen_ai.operation.name", "execute_tool"),
			attribute.String("jsonrpc.request.id", fmt.Sprint(i)),
			attribute.String("mcp.session.id", fmt.Sprintf("session-%08d", i)),
			attribute.String("mcp.protocol.version", "2025-11-25"),
			attribute.String("network.transport", "tcp"),
			attribute.String("network.protocol.name", "http"),
			attribute.String("client.address", "127.0.0.1"),
			attribute.String("tracegate.trace_context.source", "header"),
		}
		ctx, server := tr.Start(context.Background(), "tools/call get_weather", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
		_, hook := tr.Start(ctx, "plugin.hook.invoke", trace.WithAttributes(attribute.String("plugin.hook.name", "tool_pre_invoke"), attribute.Int("plugin.count", 2)))
		hook.End()
		ctx, client := tr.Start(ctx, "tools/call get_weather", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(append(attrs, attribute.String("tracegate.backend.name", "weather"), attribute.String("server.address", "127.0.0.1"), attribute.Int("server.port", 9001))...))
		_, backend := tr.Start(ctx, "tools/call get_weather", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
		backend.End()
		client.End()
		server.End()
	}
	return rec.Ended()
}

// BenchmarkStoreOnEnd is the cost on the request path: one finished span
// filed in a full store that evicts as it goes.
func BenchmarkStoreOnEnd(b *testing.B) {
	spans := gatewaySpans(b, 1024)
	s := NewStore(2000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.OnEnd(spans[i%len(spans)])
	}
}

// BenchmarkStoreOnEndParallel shows contention on the store's lock.
func BenchmarkStoreOnEndParallel(b *testing.B) {
	spans := gatewaySpans(b, 1024)
	s := NewStore(2000)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.OnEnd(spans[i%len(spans)])
			i++
		}
	})
}

// BenchmarkStoreRetainedBytes is the store's memory under sustained load:
// it records gateway-shaped traces through a real provider until ten times
// the store's capacity has passed through it, and reports the heap the
// store keeps per span once the SDK's garbage is collected (bytes/span),
// and how much that heap grew between the first fill and the tenth
// (growth-%), which stays near zero because eviction frees whole traces.
//
//	go test -run '^$' -bench StoreRetainedBytes -benchtime 3x ./internal/traceview/
func BenchmarkStoreRetainedBytes(b *testing.B) {
	const (
		n     = 20000
		fills = 10
	)
	var perSpan, growth float64
	for range b.N {
		b.StopTimer()
		s := NewStore(n)
		tp := sdktrace.NewTracerProvider(
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "tracegate"))),
			sdktrace.WithSpanProcessor(s),
		)
		empty := heapAfterGC()
		b.StartTimer()
		// Record through the provider, so that what the store keeps is what
		// the gateway's store keeps: the spans' own attribute slices.
		recordGateway(tp, n/4)
		b.StopTimer()
		first := heapAfterGC()
		b.StartTimer()
		for range fills - 1 {
			recordGateway(tp, n/4)
		}
		b.StopTimer()
		last := heapAfterGC()
		if got := s.Stats().Spans; got != n {
			b.Fatalf("got %d spans, want %d", got, n)
		}
		perSpan += float64(last-empty) / n
		growth += 100 * (float64(last) - float64(first)) / float64(first-empty)
		runtime.KeepAlive(s)
		_ = tp.Shutdown(context.Background())
		b.StartTimer()
	}
	b.ReportMetric(perSpan/float64(b.N), "bytes/span")
	b.ReportMetric(growth/float64(b.N), "growth-%")
}

// heapAfterGC is the live heap, in bytes, after a full collection.
func heapAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func recordGateway(tp trace.TracerProvider, traces int) {
	tr := tp.Tracer("bench")
	for i := range traces {
		attrs := []attribute.KeyValue{
			attribute.String("mcp.method.name", "tools/call"),
			attribute.String("gen_ai.tool.name", "get_weather"),
			attribute.String("jsonrpc.request.id", fmt.Sprint(i)),
			attribute.String("mcp.session.id", fmt.Sprintf("session-%08d", i)),
			attribute.String("mcp.protocol.version", "2025-11-25"),
			attribute.String("network.transport", "tcp"),
			attribute.String("client.address", "127.0.0.1"),
		}
		ctx, server := tr.Start(context.Background(), "tools/call get_weather", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
		_, hook := tr.Start(ctx, "plugin.hook.invoke", trace.WithAttributes(attribute.String("plugin.hook.name", "tool_pre_invoke")))
		hook.End()
		ctx, client := tr.Start(ctx, "tools/call get_weather", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(append(attrs, attribute.String("tracegate.backend.name", "weather"))...))
		_, backend := tr.Start(ctx, "tools/call get_weather", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
		backend.End()
		client.End()
		server.End()
	}
}

// BenchmarkList is one request to each list and aggregate endpoint of
// the API, as the UI sends them, against a full default-sized store
// (100000 spans in 25000 traces, each its own session, the most sessions
// a store of gateway traces holds). The budget is 20 ms each. cpu-ms/op
// is the process's CPU time per request (garbage collection included),
// which a busy shared machine inflates less than ns/op:
//
//	go test -run '^$' -bench 'List' -benchtime 20x ./internal/traceview/
func BenchmarkList(b *testing.B) {
	s := NewStore(0)
	for _, sp := range gatewaySpans(b, DefaultMaxSpans/4) {
		s.OnEnd(sp)
	}
	s.RecordBackendState("weather", BackendReady, time.Now(), "")
	h := s.Handler()
	for _, path := range []string{
		"/api/traces",
		"/api/traces?tool=get_weather&error=true",
		"/api/traces?attr=mcp.session.id%3Dsession-00012345&attr=service.name%3Dtracegate",
		"/api/traces?sort=duration&offset=500",
		"/api/services",
		"/api/sessions",
		"/api/sessions?error=false&offset=200",
		"/api/tools",
		"/api/tools?sort=p95",
		"/api/backends",
	} {
		b.Run(path, func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU()
			for range b.N {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("got %d", rec.Code)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
		})
	}
}

// BenchmarkOTLPIngest posts one 512-span protobuf export request.
func BenchmarkOTLPIngest(b *testing.B) {
	var spans []*tracepb.Span
	for i := range 512 {
		spans = append(spans, &tracepb.Span{
			TraceId: bytes.Repeat([]byte{byte(i/4 + 1)}, 16), SpanId: bytes.Repeat([]byte{byte(i + 1)}, 8),
			Name: "GET /forecast", Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: 1, EndTimeUnixNano: 2,
			Attributes: []*commonpb.KeyValue{
				{Key: "http.route", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "/forecast"}}},
				{Key: "http.response.status_code", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 200}}},
			},
		})
	}
	body, _ := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}},
	}}})
	s := NewStore(10000)
	h := s.OTLPHandler()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for range b.N {
		req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("got %d", rec.Code)
		}
	}
}
