package traceview

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// hugeSpan is a span as a hostile or broken exporter might send it: long
// name, many long attributes with long keys, events full of them.
func hugeSpan(n uint64) *tracepb.Span {
	tid := make([]byte, 16)
	binary.BigEndian.PutUint64(tid[8:], n+1)
	sid := make([]byte, 8)
	binary.BigEndian.PutUint64(sid, n+1)
	long := strings.Repeat("v", 20<<10)
	var attrs []*commonpb.KeyValue
	for i := range 100 {
		attrs = append(attrs, strAttr(strings.Repeat("k", 1000)+string(rune('a'+i%26)), long))
	}
	sp := &tracepb.Span{TraceId: tid, SpanId: sid, Name: strings.Repeat("n", 20<<10), StartTimeUnixNano: 1, EndTimeUnixNano: 2, Attributes: attrs}
	for range 3 {
		sp.Events = append(sp.Events, &tracepb.Span_Event{Name: long, Attributes: attrs[:10]})
	}
	return sp
}

func postOTLP(t *testing.T, h http.Handler, req *coltracepb.ExportTraceServiceRequest) *coltracepb.ExportTraceServiceResponse {
	t.Helper()
	body, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-protobuf")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Fatalf("POST /v1/traces: got %d %s, want 200", rec.Code, rec.Body)
	}
	resp := &coltracepb.ExportTraceServiceResponse{}
	if err := proto.Unmarshal(rec.Body.Bytes(), resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestStoreBytesBound feeds a store bounded at 8 MiB with 20 times that
// in oversized spans over OTLP/HTTP, and checks both the store's own
// figure and the real heap (runtime.MemStats) stay near the bound.
// Not parallel: it reads the process heap.
func TestStoreBytesBound(t *testing.T) {
	const maxBytes = 8 << 20
	s := New(Limits{MaxSpans: 1 << 20, MaxBytes: maxBytes})
	h := s.OTLPHandler()
	empty := heapAfterGC()
	spans := 0
	for i := range 20 {
		req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
			Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", strings.Repeat("s", 10<<10)), strAttr("host.name", strings.Repeat("h", 1<<20))}},
			ScopeSpans: []*tracepb.ScopeSpans{{}},
		}}}
		ss := req.ResourceSpans[0].ScopeSpans[0]
		for j := range 2 {
			ss.Spans = append(ss.Spans, hugeSpan(uint64(i*2+j)))
			spans++
		}
		// An 8 KiB trace ID is refused, not stored.
		bad := hugeSpan(0)
		bad.TraceId = bytes.Repeat([]byte{1}, 8<<10)
		ss.Spans = append(ss.Spans, bad)
		if resp := postOTLP(t, h, req); resp.GetPartialSuccess().GetRejectedSpans() != 1 {
			t.Fatalf("request %d: got %v, want the span with an 8 KiB trace ID rejected", i, resp.GetPartialSuccess())
		}
	}
	full := heapAfterGC()
	st := s.Stats()
	grew := int64(full) - int64(empty)
	t.Logf("store: %d spans, %d bytes by its estimate; heap grew %d bytes", st.Spans, st.Bytes, grew)
	if st.Bytes > maxBytes || st.Bytes < maxBytes/2 {
		t.Errorf("store estimate: got %d bytes, want within (%d, %d]", st.Bytes, maxBytes/2, maxBytes)
	}
	var l struct {
		StoredBytes int64 `json:"stored_bytes"`
		MaxBytes    int64 `json:"max_bytes"`
	}
	getJSON(t, s.Handler(), "/api/traces?limit=1", &l)
	if l.StoredBytes != st.Bytes || l.MaxBytes != maxBytes {
		t.Errorf("list response: got stored_bytes %d max_bytes %d, want %d and %d", l.StoredBytes, l.MaxBytes, st.Bytes, maxBytes)
	}
	if st.Spans == 0 || st.Spans >= spans {
		t.Errorf("got %d spans stored of %d sent, want some evicted", st.Spans, spans)
	}
	if grew > 2*maxBytes {
		t.Errorf("heap grew %d bytes for a store bounded at %d, want at most twice the bound", grew, maxBytes)
	}

	// What is kept is cut to the per-span limits.
	for _, sn := range *s.snapshotAll() {
		for _, sp := range sn.spans {
			if len(sp.name) > maxNameLen+len("…") || len(sp.service) > maxNameLen+len("…") {
				t.Fatalf("name of %d bytes, service of %d, want at most %d", len(sp.name), len(sp.service), maxNameLen)
			}
			for _, kv := range sp.attrs {
				if len(kv.Key) > maxKeyLen+len("…") {
					t.Fatalf("attribute key of %d bytes, want at most %d", len(kv.Key), maxKeyLen)
				}
			}
			if c := sp.cost(); c > 2*maxSpanStrings {
				t.Fatalf("one span costs %d bytes, want under %d", c, 2*maxSpanStrings)
			}
		}
	}
	runtime.KeepAlive(s)
}

func TestBudgetSharedBySpan(t *testing.T) {
	t.Parallel()
	b := newBudget()
	long := strings.Repeat("x", maxValueLen*2)
	attrs := make([]attribute.KeyValue, maxAttrsPerSpan)
	for i := range attrs {
		attrs[i] = attribute.String(strings.Repeat("k", maxKeyLen*2), long)
	}
	var total int
	for range 10 {
		for _, kv := range b.attrs(attrs) {
			total += len(kv.Key) + len(kv.Value.AsString())
		}
	}
	if total > maxSpanStrings+10*maxAttrsPerSpan*2*len("…") {
		t.Errorf("strings kept: got %d bytes, want at most the span budget %d", total, maxSpanStrings)
	}
	if got := b.str("abc", 10); got != "" && got != "…" {
		t.Errorf("exhausted budget: got %q, want nothing", got)
	}
}

func TestStoreSpanLargerThanStore(t *testing.T) {
	t.Parallel()
	s := New(Limits{MaxBytes: 1000})
	s.add(&span{traceID: trace.TraceID{1}, spanID: trace.SpanID{1}, name: strings.Repeat("n", 900)}, 0)
	if st := s.Stats(); st.Spans != 0 || st.Dropped != 1 || st.Bytes != 0 {
		t.Errorf("got %+v, want the span dropped", st)
	}
	s.add(&span{traceID: trace.TraceID{1}, spanID: trace.SpanID{2}, name: "small"}, 0)
	if st := s.Stats(); st.Spans != 1 || st.Bytes == 0 {
		t.Errorf("got %+v, want a small span kept", st)
	}
}
