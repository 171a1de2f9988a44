package telemetry

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"compress/gzip"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func testSpans(t *testing.T) []sdktrace.ReadOnlySpan {
	t.Helper()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	psid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	lsid, _ := trace.SpanIDFromHex("1111111111111111")
	ts, _ := trace.ParseTraceState("vendor=v1,other=x")
	start := time.Unix(1700000000, 123456789)
	resA := resource.NewSchemaless(attribute.String("service.name", "tracegate"), attribute.Int("pid", 42))
	resB := resource.NewSchemaless(attribute.String("service.name", "weather"))
	scope := instrumentation.Scope{Name: "mcptrace", Version: "1.2.3", Attributes: attribute.NewSet(attribute.Bool("lib", true))}
	stubs := tracetest.SpanStubs{
		{
			Name:      "tools/call weather_get_weather",
			SpanKind:  trace.SpanKindServer,
			StartTime: start,
			EndTime:   start.Add(1500 * time.Microsecond),
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts,
			}),
			Parent: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: psid, Remote: true}),
			Attributes: []attribute.KeyValue{
				attribute.String("mcp.method.name", "tools/call"),
				attribute.Int64("server.port", 8080),
				attribute.Float64("ratio", 0.25),
				attribute.Bool("ok", false),
				attribute.StringSlice("tags", []string{"a", "b"}),
				attribute.Int64Slice("codes", []int64{-1, 2}),
				attribute.Float64Slice("fs", []float64{1.5}),
				attribute.BoolSlice("bs", []bool{true, false}),
			},
			DroppedAttributes: 3,
			Events:            []sdktrace.Event{{Name: "redact", Time: start.Add(time.Microsecond), Attributes: []attribute.KeyValue{attribute.Int("count", 2)}, DroppedAttributeCount: 1}},
			Links: []sdktrace.Link{{
				SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: lsid, TraceFlags: trace.FlagsSampled, Remote: true}),
				Attributes:  []attribute.KeyValue{attribute.String("tracegate.trace_context.source", "header")},
			}},
			DroppedLinks:         1,
			DroppedEvents:        2,
			Status:               sdktrace.Status{Code: codes.Error, Description: "-32010"},
			Resource:             resA,
			InstrumentationScope: scope,
		},
		{
			Name:                 "tools/call get_weather",
			SpanKind:             trace.SpanKindClient,
			StartTime:            start,
			EndTime:              start.Add(time.Millisecond),
			SpanContext:          trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: psid}),
			Resource:             resA,
			InstrumentationScope: instrumentation.Scope{Name: "other"},
		},
		{
			Name:                 "GET /forecast",
			SpanKind:             trace.SpanKindInternal,
			StartTime:            start,
			EndTime:              start,
			SpanContext:          trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: lsid}),
			Status:               sdktrace.Status{Code: codes.Ok},
			Resource:             resB,
			InstrumentationScope: scope,
		},
	}
	return stubs.Snapshots()
}

func str(v string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}
}

// The encoder's output decodes with the official OTLP protobuf types into
// exactly the spans it was given.
func TestWireEncoderMatchesOTLP(t *testing.T) {
	var e wireEncoder
	data := e.encodeSpans(nil, testSpans(t))
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		t.Fatal(err)
	}
	if n := len(req.ResourceSpans); n != 2 {
		t.Fatalf("%d resource spans, want 2 (one per resource)", n)
	}
	rsA := req.ResourceSpans[0]
	if got := rsA.Resource.Attributes; len(got) != 2 || !proto.Equal(got[0], &commonpb.KeyValue{Key: "pid", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 42}}}) {
		t.Errorf("resource attributes: %v", got)
	}
	if n := len(rsA.ScopeSpans); n != 2 {
		t.Fatalf("%d scopes in resource A, want 2", n)
	}
	ss := rsA.ScopeSpans[0]
	wantScope := &commonpb.InstrumentationScope{Name: "mcptrace", Version: "1.2.3", Attributes: []*commonpb.KeyValue{{Key: "lib", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}}}}
	if !proto.Equal(ss.Scope, wantScope) {
		t.Errorf("scope %v, want %v", ss.Scope, wantScope)
	}
	s := ss.Spans[0]
	hexOf := func(b []byte) string { return hex.EncodeToString(b) }
	start := uint64(time.Unix(1700000000, 123456789).UnixNano())
	checks := []struct {
		what      string
		got, want any
	}{
		{"trace id", hexOf(s.TraceId), "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"span id", hexOf(s.SpanId), "00f067aa0ba902b7"},
		{"parent", hexOf(s.ParentSpanId), "b7ad6b7169203331"},
		{"trace state", s.TraceState, "vendor=v1,other=x"},
		{"name", s.Name, "tools/call weather_get_weather"},
		{"kind", s.Kind, tracepb.Span_SPAN_KIND_SERVER},
		{"start", s.StartTimeUnixNano, start},
		{"end", s.EndTimeUnixNano, start + 1500000},
		{"flags", s.Flags, uint32(0x301)},
		{"dropped attributes", s.DroppedAttributesCount, uint32(3)},
		{"dropped events", s.DroppedEventsCount, uint32(2)},
		{"dropped links", s.DroppedLinksCount, uint32(1)},
		{"status code", s.Status.GetCode(), tracepb.Status_STATUS_CODE_ERROR},
		{"status message", s.Status.GetMessage(), "-32010"},
		{"attributes", len(s.Attributes), 8},
		{"event", s.Events[0].Name + "@" + time.Duration(s.Events[0].TimeUnixNano-start).String(), "redact@1µs"},
		{"event dropped", s.Events[0].DroppedAttributesCount, uint32(1)},
		{"link span", hexOf(s.Links[0].SpanId), "1111111111111111"},
		{"link flags", s.Links[0].Flags, uint32(0x301)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	wantAttrs := []*commonpb.KeyValue{
		{Key: "mcp.method.name", Value: str("tools/call")},
		{Key: "server.port", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 8080}}},
		{Key: "ratio", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.25}}},
		{Key: "ok", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: false}}},
		{Key: "tags", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{str("a"), str("b")}}}}},
		{Key: "codes", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{
			{Value: &commonpb.AnyValue_IntValue{IntValue: -1}}, {Value: &commonpb.AnyValue_IntValue{IntValue: 2}}}}}}},
		{Key: "fs", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{
			{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1.5}}}}}}},
		{Key: "bs", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{
			{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}, {Value: &commonpb.AnyValue_BoolValue{BoolValue: false}}}}}}},
	}
	for i, want := range wantAttrs {
		if !proto.Equal(s.Attributes[i], want) {
			t.Errorf("attribute %d: got %v, want %v", i, s.Attributes[i], want)
		}
	}
	if !proto.Equal(s.Links[0].Attributes[0], &commonpb.KeyValue{Key: "tracegate.trace_context.source", Value: str("header")}) {
		t.Errorf("link attributes: %v", s.Links[0].Attributes)
	}
	// A local parent: flags say it is known not remote; no parent, no
	// parent_span_id; an unset status is left out.
	client := rsA.ScopeSpans[1].Spans[0]
	if client.Flags != 0x100 || client.ParentSpanId != nil || client.Status != nil || client.Kind != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("client span: flags %#x parent %x status %v kind %v", client.Flags, client.ParentSpanId, client.Status, client.Kind)
	}
	if rsA.ScopeSpans[1].Scope.GetName() != "other" {
		t.Errorf("second scope %v", rsA.ScopeSpans[1].Scope)
	}
	b := req.ResourceSpans[1].ScopeSpans[0].Spans[0]
	if b.Name != "GET /forecast" || b.Status.GetCode() != tracepb.Status_STATUS_CODE_OK {
		t.Errorf("resource B span: %v", b)
	}
}

// The exporter posts protobuf (gzip when asked), sends the configured
// headers, and retries a 503 within its timeout.
func TestWireExporterPosts(t *testing.T) {
	var calls atomic.Int32
	got := make(chan *coltracepb.ExportTraceServiceRequest, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Content-Type") != "application/x-protobuf" || r.Header.Get("Authorization") != "Bearer t" || r.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("headers %v", r.Header)
		}
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Error(err)
			return
		}
		data, _ := io.ReadAll(zr)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			t.Error(err)
		}
		got <- &req
	}))
	defer srv.Close()
	x := newWireExporter(otlpTarget{URL: srv.URL + "/v1/traces", Headers: map[string]string{"Authorization": "Bearer t"}, Timeout: 10 * time.Second, Compress: true})
	if err := x.ExportSpans(context.Background(), testSpans(t)); err != nil {
		t.Fatal(err)
	}
	req := <-got
	if n := len(req.ResourceSpans); n != 2 || calls.Load() != 2 {
		t.Errorf("%d resource spans after %d calls, want 2 after a retry", n, calls.Load())
	}
	x.Shutdown(context.Background())
	if err := x.ExportSpans(context.Background(), testSpans(t)); err == nil {
		t.Error("export after shutdown succeeded")
	}
}

// A 400 is not retried: the collector rejected the data.
func TestWireExporterDoesNotRetryRejections(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer srv.Close()
	x := newWireExporter(otlpTarget{URL: srv.URL, Timeout: 5 * time.Second})
	if err := x.ExportSpans(context.Background(), testSpans(t)); err == nil || calls.Load() != 1 {
		t.Errorf("err %v after %d calls, want an error after one", err, calls.Load())
	}
}

func BenchmarkWireEncoder(b *testing.B) {
	spans := testSpans(&testing.T{})
	var e wireEncoder
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = e.encodeSpans(buf[:0], spans)
	}
	b.ReportMetric(float64(len(buf)), "bytes/batch")
}

// BenchmarkWireEncoderBatch encodes a batch as the export queue sends it:
// allocations per batch stay flat as the batch grows.
func BenchmarkWireEncoderBatch(b *testing.B) {
	one := testSpans(&testing.T{})
	var spans []sdktrace.ReadOnlySpan
	for len(spans) < 512 {
		spans = append(spans, one...)
	}
	var e wireEncoder
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = e.encodeSpans(buf[:0], spans)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(spans)), "ns/span")
}
