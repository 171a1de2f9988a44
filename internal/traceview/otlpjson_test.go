package traceview

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// TestOTLPDownloadRoundTrip downloads a trace as OTLP/JSON, posts the file
// to another store's OTLP/HTTP receiver, and checks the second store shows
// the same trace: the download opens again.
func TestOTLPDownloadRoundTrip(t *testing.T) {
	t.Parallel()
	s := NewStore(0)
	call, _, _, _ := fixtureTraces(t, s)
	// One more span with every attribute type, an event and a link.
	tp := newProvider(t, s, "tracegate")
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: call, SpanID: trace.SpanID{9}, TraceFlags: trace.FlagsSampled, Remote: true})
	_, sp := tp.Tracer("t").Start(trace.ContextWithRemoteSpanContext(context.Background(), parent), "typed",
		trace.WithTimestamp(base.Add(time.Millisecond)),
		trace.WithLinks(trace.Link{SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{7}, SpanID: trace.SpanID{8}}), Attributes: []attribute.KeyValue{attribute.String("why", "retry")}}),
		trace.WithAttributes(attribute.Bool("b", true), attribute.Int64("i", 1<<60), attribute.Float64("f", 1.5),
			attribute.StringSlice("ss", []string{"x", "y"}), attribute.Int64Slice("is", []int64{1, 2}), attribute.BoolSlice("bs", []bool{false})))
	sp.AddEvent("retry", trace.WithTimestamp(base.Add(2*time.Millisecond)), trace.WithAttributes(attribute.Int("attempt", 2)))
	sp.End(trace.WithTimestamp(base.Add(3 * time.Millisecond)))

	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/traces/"+call.String()+"/otlp", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Content-Disposition"), "trace-"+call.String()+".otlp.json") {
		t.Fatalf("download: got %d, Content-Disposition %q", rec.Code, rec.Header().Get("Content-Disposition"))
	}
	file := rec.Body.Bytes()
	if !bytes.Contains(file, []byte(`"traceId":"`+call.String()+`"`)) {
		t.Errorf("download does not carry the trace ID in hex: %.300s", file)
	}

	s2 := NewStore(0)
	req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(file))
	req.Header.Set("Content-Type", "application/json")
	rec = httptest.NewRecorder()
	s2.OTLPHandler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "rejected") {
		t.Fatalf("re-import: got %d %s", rec.Code, rec.Body)
	}
	var a, b json.RawMessage
	getJSON(t, s.Handler(), "/api/traces/"+call.String(), &a)
	getJSON(t, s2.Handler(), "/api/traces/"+call.String(), &b)
	var da, db map[string]any
	_ = json.Unmarshal(a, &da)
	_ = json.Unmarshal(b, &db)
	if !reflect.DeepEqual(da, db) {
		t.Errorf("re-imported trace differs:\n got %s\nwant %s", b, a)
	}
	if n := len(da["spans"].([]any)); n != 3 {
		t.Errorf("got %d spans, want 3", n)
	}

	for _, tt := range []struct {
		url  string
		code int
	}{
		{"/api/traces/xyz/otlp", http.StatusBadRequest},
		{"/api/traces/" + strings.Repeat("ab", 16) + "/otlp", http.StatusNotFound},
	} {
		if code := getJSON(t, s.Handler(), tt.url, nil); code != tt.code {
			t.Errorf("%s: got %d, want %d", tt.url, code, tt.code)
		}
	}
}
