package traceview

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// newProvider returns a tracer provider for service that records into s
// synchronously, as the gateway's in-process viewer does.
func newProvider(t testing.TB, s *Store, service string) *sdktrace.TracerProvider {
	t.Helper()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))),
		sdktrace.WithSpanProcessor(s),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
	)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// spanOpts describes one span to create at fixed times, relative to base.
type spanOpts struct {
	name   string
	kind   trace.SpanKind
	from   time.Duration
	to     time.Duration
	attrs  []attribute.KeyValue
	links  []trace.Link
	status bool      // set status Error
	at     time.Time // the origin of from and to; base when zero
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// start creates and ends one span under parent; it returns its context.
func start(ctx context.Context, tp trace.TracerProvider, o spanOpts) context.Context {
	if o.at.IsZero() {
		o.at = base
	}
	ctx, sp := tp.Tracer("traceview-test").Start(ctx, o.name,
		trace.WithSpanKind(o.kind),
		trace.WithTimestamp(o.at.Add(o.from)),
		trace.WithAttributes(o.attrs...),
		trace.WithLinks(o.links...),
	)
	if o.status {
		sp.SetStatus(codes.Error, "boom")
	}
	sp.End(trace.WithTimestamp(o.at.Add(o.to)))
	return ctx
}

// getJSON fetches url from h and decodes the body into v, returning the
// status code.
func getJSON(t testing.TB, h http.Handler, url string, v any) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: got Content-Type %q, want application/json", url, ct)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: decode %s: %v", url, body, err)
		}
	}
	return res.StatusCode
}

// listResult mirrors the list response for tests.
type listResult struct {
	Traces []struct {
		TraceID     string   `json:"trace_id"`
		RootName    string   `json:"root_name"`
		RootService string   `json:"root_service"`
		Services    []string `json:"services"`
		SpanCount   int      `json:"span_count"`
		DurationMS  float64  `json:"duration_ms"`
		Error       bool     `json:"error"`
		StartTime   string   `json:"start_time"`
	} `json:"traces"`
	Matched     int `json:"matched"`
	StoredSpans int `json:"stored_spans"`
}

func (l listResult) ids() []string {
	out := make([]string, len(l.Traces))
	for i, t := range l.Traces {
		out[i] = t.TraceID
	}
	return out
}

// traceResult mirrors the trace response for tests.
type traceResult struct {
	TraceID    string   `json:"trace_id"`
	StartTime  string   `json:"start_time"`
	DurationMS float64  `json:"duration_ms"`
	Services   []string `json:"services"`
	SpanCount  int      `json:"span_count"`
	Spans      []struct {
		TraceID       string         `json:"trace_id"`
		SpanID        string         `json:"span_id"`
		ParentSpanID  string         `json:"parent_span_id"`
		Name          string         `json:"name"`
		Kind          string         `json:"kind"`
		Service       string         `json:"service"`
		StartTime     string         `json:"start_time"`
		EndTime       string         `json:"end_time"`
		StartUnixNano string         `json:"start_unix_nano"`
		EndUnixNano   string         `json:"end_unix_nano"`
		OffsetMS      float64        `json:"offset_ms"`
		DurationMS    float64        `json:"duration_ms"`
		Error         bool           `json:"error"`
		Attributes    map[string]any `json:"attributes"`
		Status        struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"status"`
		Events []struct {
			Name       string         `json:"name"`
			Time       string         `json:"time"`
			Attributes map[string]any `json:"attributes"`
		} `json:"events"`
		Links []struct {
			TraceID    string         `json:"trace_id"`
			SpanID     string         `json:"span_id"`
			Attributes map[string]any `json:"attributes"`
			Present    bool           `json:"present"`
		} `json:"links"`
	} `json:"spans"`
}
