package mcptrace

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
)

// headerRecorder is an HTTP server that keeps the last request's headers.
type headerRecorder struct {
	mu     sync.Mutex
	header http.Header
}

func (h *headerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.header = r.Header.Clone()
	h.mu.Unlock()
}

func (h *headerRecorder) last() http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.header
}

func TestTransport(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	rec := &headerRecorder{}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)

	bag, _ := baggage.Parse("tenant=acme,secret=s3")
	ctx, span := tel.tp.Tracer("test").Start(context.Background(), "caller")
	defer span.End()
	ctx = baggage.ContextWithBaggage(ctx, bag)
	sc := span.SpanContext()
	want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"

	tests := []struct {
		name        string
		opts        []Option
		header      http.Header
		wantBaggage string
	}{
		{"replaces stale context", []Option{WithBaggage(BaggageKeys("tenant"))}, http.Header{"Traceparent": {traceparentB}, "X-Caller": {"kept"}}, "tenant=acme"},
		{"no baggage", []Option{WithBaggage(BaggageNone())}, http.Header{}, ""},
		{"nil header", nil, nil, "secret=s3,tenant=acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tt.header
			before := tt.header.Clone()
			resp, err := (&http.Client{Transport: NewTransport(nil, tt.opts...)}).Do(req)
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			resp.Body.Close()

			got := rec.last()
			if tp := got.Get("Traceparent"); tp != want {
				t.Errorf("server got traceparent %q, want the caller's span %q", tp, want)
			}
			if b := sortedMembers(got.Get("Baggage")); b != tt.wantBaggage {
				t.Errorf("server got baggage %q, want %q", b, tt.wantBaggage)
			}
			if tt.header != nil && got.Get("X-Caller") != tt.header.Get("X-Caller") {
				t.Errorf("server got X-Caller %q, want %q", got.Get("X-Caller"), tt.header.Get("X-Caller"))
			}
			// The caller's request is untouched (RoundTripper contract).
			if len(req.Header) != len(before) || req.Header.Get("Traceparent") != before.Get("Traceparent") || req.Header.Get("Baggage") != "" {
				t.Errorf("caller's header changed: got %v, want %v", req.Header, before)
			}
		})
	}
	if n := len(tel.spans.Ended()) + len(tel.spans.Started()) - 1; n != 0 {
		t.Errorf("the transport started %d spans, want none", n)
	}
}

// garbagePropagator injects a malformed traceparent and a custom field.
type garbagePropagator struct{}

func (garbagePropagator) Inject(_ context.Context, c propagation.TextMapCarrier) {
	c.Set("traceparent", "00-not-a-valid-traceparent")
	c.Set("baggage", "bad value")
	c.Set("x-custom", "1")
}
func (garbagePropagator) Extract(ctx context.Context, _ propagation.TextMapCarrier) context.Context {
	return ctx
}
func (garbagePropagator) Fields() []string { return []string{"traceparent", "baggage", "x-custom"} }

func TestTransportForwardsOnlyWellFormedValues(t *testing.T) {
	t.Parallel()
	rec := &headerRecorder{}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := (&http.Client{Transport: NewTransport(nil, WithPropagators(garbagePropagator{}))}).Do(req)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	resp.Body.Close()
	got := rec.last()
	if tp, b := got.Get("Traceparent"), got.Get("Baggage"); tp != "" || b != "" {
		t.Errorf("forwarded malformed traceparent %q / baggage %q, want neither", tp, b)
	}
	if got.Get("X-Custom") != "1" {
		t.Errorf("got X-Custom %q, want the propagator's other field kept", got.Get("X-Custom"))
	}

	meta := NewPropagation(WithPropagators(garbagePropagator{})).InjectMeta(context.Background(), nil)
	if _, ok := meta["traceparent"]; ok || meta["x-custom"] != "1" {
		t.Errorf("InjectMeta got %v, want only x-custom", meta)
	}
}
