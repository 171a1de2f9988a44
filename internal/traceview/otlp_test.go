package traceview

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// newAdmin serves the store's API and OTLP receiver as the gateway's
// admin listener does.
func newAdmin(t testing.TB, s *Store) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/v1/traces", s.OTLPHandler())
	mux.Handle("/", s.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// newRemoteProvider is a tracer provider in "another process": it exports
// each span over OTLP/HTTP protobuf to the admin server as it ends.
func newRemoteProvider(t testing.TB, adminURL, service string, gzipped bool) *sdktrace.TracerProvider {
	t.Helper()
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(adminURL + "/v1/traces")}
	if gzipped {
		opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	}
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		t.Fatalf("otlptracehttp.New: %v", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))),
		sdktrace.WithSyncer(exp),
	)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// TestOTLPMergesWithInProcess builds the gateway's trace shape across
// three "processes": the gateway records in process, the weather backend
// and the forecast API export over OTLP/HTTP with the real exporter.
func TestOTLPMergesWithInProcess(t *testing.T) {
	t.Parallel()
	s := NewStore(0)
	admin := newAdmin(t, s)
	gw := newProvider(t, s, "tracegate")
	weather := newRemoteProvider(t, admin.URL, "weather", true)
	forecast := newRemoteProvider(t, admin.URL, "forecast-api", false)

	tool := attribute.String("gen_ai.tool.name", "get_weather")
	ctx, server := gw.Tracer("gw").Start(context.Background(), "tools/call get_weather",
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(tool))
	ctx, client := gw.Tracer("gw").Start(ctx, "tools/call get_weather",
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(tool, attribute.String("tracegate.backend.name", "weather")))
	// The backend continues the trace from the propagated span context.
	bctx := trace.ContextWithRemoteSpanContext(context.Background(), client.SpanContext())
	bctx, bserver := weather.Tracer("weather").Start(bctx, "tools/call get_weather", trace.WithSpanKind(trace.SpanKindServer))
	bctx, bclient := weather.Tracer("weather").Start(bctx, "GET /forecast", trace.WithSpanKind(trace.SpanKindClient))
	fctx := trace.ContextWithRemoteSpanContext(context.Background(), bclient.SpanContext())
	_, fserver := forecast.Tracer("api").Start(fctx, "GET /forecast", trace.WithSpanKind(trace.SpanKindServer))
	for _, sp := range []trace.Span{fserver, bclient, bserver, client, server} {
		sp.End()
	}
	_ = bctx

	id := server.SpanContext().TraceID().String()
	var tr traceResult
	if code := getJSON(t, admin.Config.Handler, "/api/traces/"+id, &tr); code != http.StatusOK {
		t.Fatalf("GET trace: got %d, want 200", code)
	}
	if want := []string{"tracegate", "weather", "forecast-api"}; !slices.Equal(tr.Services, want) {
		t.Errorf("services: got %v, want %v", tr.Services, want)
	}
	want := []struct {
		span    trace.Span
		parent  trace.Span
		kind    string
		service string
	}{
		{server, nil, "server", "tracegate"},
		{client, server, "client", "tracegate"},
		{bserver, client, "server", "weather"},
		{bclient, bserver, "client", "weather"},
		{fserver, bclient, "server", "forecast-api"},
	}
	if len(tr.Spans) != len(want) {
		t.Fatalf("got %d spans, want %d", len(tr.Spans), len(want))
	}
	for i, w := range want {
		got := tr.Spans[i]
		wantParent := ""
		if w.parent != nil {
			wantParent = w.parent.SpanContext().SpanID().String()
		}
		if got.SpanID != w.span.SpanContext().SpanID().String() || got.ParentSpanID != wantParent ||
			got.Kind != w.kind || got.Service != w.service || got.TraceID != id {
			t.Errorf("span %d: got {%s parent %q %s %s trace %s}, want {%s parent %q %s %s trace %s}", i,
				got.SpanID, got.ParentSpanID, got.Kind, got.Service, got.TraceID,
				w.span.SpanContext().SpanID(), wantParent, w.kind, w.service, id)
		}
	}

	var l listResult
	getJSON(t, admin.Config.Handler, "/api/traces", &l)
	if len(l.Traces) != 1 {
		t.Fatalf("list: got %d traces, want 1", len(l.Traces))
	}
	if got := l.Traces[0]; got.RootName != "tools/call get_weather" || got.RootService != "tracegate" || got.SpanCount != 5 {
		t.Errorf("list item: got root %q of %q with %d spans, want tools/call get_weather of tracegate with 5", got.RootName, got.RootService, got.SpanCount)
	}
}

const otlpJSONBody = `{
  "resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "probe"}}]},
    "scopeSpans": [{
      "scope": {"name": "probe"},
      "spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "parentSpanId": "eee19b7ec3c1b173",
        "name": "tools/call get_weather",
        "kind": 3,
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "attributes": [
          {"key": "mcp.method.name", "value": {"stringValue": "tools/call"}},
          {"key": "attempt", "value": {"intValue": "42"}},
          {"key": "ratio", "value": {"doubleValue": 0.5}},
          {"key": "ok", "value": {"boolValue": true}},
          {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": 7}]}}},
          {"key": "obj", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}}},
          {"key": "raw", "value": {"bytesValue": "aGk="}}
        ],
        "events": [{"timeUnixNano": "1544712660500000000", "name": "exception",
                    "attributes": [{"key": "exception.message", "value": {"stringValue": "timeout"}}]}],
        "links": [{"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708"}],
        "status": {"code": "STATUS_CODE_ERROR", "message": "upstream timeout"},
        "someFutureField": {"ignored": true}
      }]
    }]
  }]
}`

func TestOTLPJSON(t *testing.T) {
	t.Parallel()
	s := NewStore(0)
	admin := newAdmin(t, s)

	var zbody bytes.Buffer
	zw := gzip.NewWriter(&zbody)
	_, _ = zw.Write([]byte(otlpJSONBody))
	_ = zw.Close()
	req, _ := http.NewRequest(http.MethodPost, admin.URL+"/v1/traces", &zbody)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("POST: got %d %q %s, want 200 application/json", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	var resp coltracepb.ExportTraceServiceResponse
	if err := protojson.Unmarshal(body, &resp); err != nil || resp.GetPartialSuccess().GetRejectedSpans() != 0 {
		t.Fatalf("response: got %s (%v), want no rejected spans", body, err)
	}

	var tr traceResult
	if code := getJSON(t, admin.Config.Handler, "/api/traces/5b8efff798038103d269b633813fc60c", &tr); code != 200 {
		t.Fatalf("GET trace: got %d, want 200", code)
	}
	sp := tr.Spans[0]
	checks := []struct {
		what      string
		got, want any
	}{
		{"span id", sp.SpanID, "eee19b7ec3c1b174"},
		{"parent", sp.ParentSpanID, "eee19b7ec3c1b173"},
		{"kind", sp.Kind, "client"},
		{"service", sp.Service, "probe"},
		{"start", sp.StartUnixNano, "1544712660000000000"},
		{"duration", sp.DurationMS, 1000.0},
		{"status", sp.Status.Code, "Error"},
		{"status message", sp.Status.Message, "upstream timeout"},
		{"error", sp.Error, true},
		{"string attr", sp.Attributes["mcp.method.name"], "tools/call"},
		{"int attr", sp.Attributes["attempt"], 42.0},
		{"double attr", sp.Attributes["ratio"], 0.5},
		{"bool attr", sp.Attributes["ok"], true},
		{"bytes attr", sp.Attributes["raw"], "aGk="},
		{"event", sp.Events[0].Name, "exception"},
		{"event attr", sp.Events[0].Attributes["exception.message"], "timeout"},
		{"link trace", sp.Links[0].TraceID, "0102030405060708090a0b0c0d0e0f10"},
		{"link span", sp.Links[0].SpanID, "0102030405060708"},
		{"link present", sp.Links[0].Present, false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v (%T), want %v", c.what, c.got, c.got, c.want)
		}
	}
	if got, ok := sp.Attributes["tags"].([]any); !ok || len(got) != 2 || got[0] != "a" || got[1] != 7.0 {
		t.Errorf("array attr: got %#v, want [a 7]", sp.Attributes["tags"])
	}
	if got, ok := sp.Attributes["obj"].(map[string]any); !ok || got["k"] != "v" {
		t.Errorf("kvlist attr: got %#v, want {k: v}", sp.Attributes["obj"])
	}
}

func TestOTLPPartialSuccess(t *testing.T) {
	t.Parallel()
	s := NewStore(0)
	admin := newAdmin(t, s)
	good := &tracepb.Span{
		TraceId: bytes.Repeat([]byte{0xab}, 16), SpanId: bytes.Repeat([]byte{0xcd}, 8),
		Name: "ok", StartTimeUnixNano: 1, EndTimeUnixNano: 2, Kind: tracepb.Span_SPAN_KIND_SERVER,
	}
	bad := []*tracepb.Span{
		{TraceId: []byte{1, 2, 3}, SpanId: bytes.Repeat([]byte{1}, 8), Name: "short trace id"},
		{TraceId: make([]byte, 16), SpanId: bytes.Repeat([]byte{1}, 8), Name: "zero trace id"},
		{TraceId: bytes.Repeat([]byte{1}, 16), SpanId: nil, Name: "no span id"},
	}
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{
			Key: "service.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "remote"}},
		}}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: append([]*tracepb.Span{good}, bad...)}},
	}}}
	b, _ := proto.Marshal(req)
	res, err := http.Post(admin.URL+"/v1/traces", "application/x-protobuf", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var resp coltracepb.ExportTraceServiceResponse
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/x-protobuf" {
		t.Fatalf("POST: got %d %q, want 200 application/x-protobuf", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if err := proto.Unmarshal(body, &resp); err != nil {
		t.Fatalf("decode response: %v", err)
	}
	if got := resp.GetPartialSuccess().GetRejectedSpans(); got != int64(len(bad)) {
		t.Errorf("rejected: got %d, want %d", got, len(bad))
	}
	if got := s.Stats(); got.Spans != 1 || got.Dropped != uint64(len(bad)) {
		t.Errorf("stats: got %+v, want 1 span and %d dropped", got, len(bad))
	}
	var tr traceResult
	getJSON(t, admin.Config.Handler, "/api/traces/"+strings.Repeat("ab", 16), &tr)
	if len(tr.Spans) != 1 || tr.Spans[0].Service != "remote" || tr.Spans[0].Kind != "server" {
		t.Errorf("stored span: got %+v, want one server span of remote", tr.Spans)
	}
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func TestOTLPErrors(t *testing.T) {
	t.Parallel()
	s := NewStore(0)
	s.otlpLimit = 1 << 10
	h := s.OTLPHandler()
	tests := []struct {
		name       string
		method     string
		ctype      string
		encoding   string
		body       []byte
		wantCode   int
		wantStatus bool // body is a google.rpc.Status in the request's encoding
	}{
		{"GET", http.MethodGet, "", "", nil, http.StatusMethodNotAllowed, false},
		{"text body", http.MethodPost, "text/plain", "", []byte("hi"), http.StatusUnsupportedMediaType, false},
		{"no content type", http.MethodPost, "", "", []byte("hi"), http.StatusUnsupportedMediaType, false},
		{"broken protobuf", http.MethodPost, "application/x-protobuf", "", []byte{0xff, 0xff, 0xff}, http.StatusBadRequest, true},
		{"broken JSON", http.MethodPost, "application/json", "", []byte("{not json"), http.StatusBadRequest, true},
		{"JSON with bad hex id", http.MethodPost, "application/json", "",
			[]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz","spanId":"eee19b7ec3c1b174"}]}]}]}`),
			http.StatusBadRequest, true},
		{"unknown encoding", http.MethodPost, "application/x-protobuf", "br", []byte{1}, http.StatusUnsupportedMediaType, true},
		{"not gzip", http.MethodPost, "application/x-protobuf", "gzip", []byte("plain"), http.StatusBadRequest, true},
		{"too large", http.MethodPost, "application/x-protobuf", "", make([]byte, 1<<10+1), http.StatusRequestEntityTooLarge, true},
		{"too large after gunzip", http.MethodPost, "application/x-protobuf", "gzip", gz(make([]byte, 1<<10+1)), http.StatusRequestEntityTooLarge, true},
		{"exactly at the limit is fine", http.MethodPost, "application/x-protobuf", "gzip", gz(bytes.Repeat([]byte{0x0a, 0x00}, 1<<9)), http.StatusOK, false},
		{"empty protobuf is fine", http.MethodPost, "application/x-protobuf", "", nil, http.StatusOK, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/v1/traces", bytes.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			if tt.encoding != "" {
				req.Header.Set("Content-Encoding", tt.encoding)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Fatalf("got %d %s, want %d", rec.Code, rec.Body, tt.wantCode)
			}
			if tt.method == http.MethodGet && rec.Header().Get("Allow") != http.MethodPost {
				t.Errorf("Allow: got %q, want POST", rec.Header().Get("Allow"))
			}
			if !tt.wantStatus {
				return
			}
			var st statuspb.Status
			var err error
			if tt.ctype == "application/json" {
				err = protojson.Unmarshal(rec.Body.Bytes(), &st)
			} else {
				err = proto.Unmarshal(rec.Body.Bytes(), &st)
			}
			if err != nil || st.GetMessage() == "" {
				t.Errorf("status body: got %q (%v), want a google.rpc.Status with a message", rec.Body, err)
			}
		})
	}
	if got := s.Stats().Spans; got != 0 {
		t.Errorf("spans after bad requests: got %d, want 0", got)
	}
}
