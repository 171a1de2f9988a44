package otlptest

import (
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Behavior is how a receiver answers export requests.
type Behavior int32

const (
	// Accept stores the data and answers success.
	Accept Behavior = iota
	// Hang never answers: the request stays open until the client gives up
	// or the test ends. Nothing is stored.
	Hang
	// Unavailable answers HTTP 503 (gRPC UNAVAILABLE), a retryable failure
	// per the OTLP spec. Nothing is stored.
	Unavailable
)

func (b Behavior) String() string {
	switch b {
	case Accept:
		return "accept"
	case Hang:
		return "hang"
	case Unavailable:
		return "unavailable"
	}
	return "unknown"
}

// Option configures a receiver at construction.
type Option func(*Receiver)

// WithBehavior sets how the receiver answers from its first request on.
func WithBehavior(b Behavior) Option {
	return func(r *Receiver) { r.behavior.Store(int32(b)) }
}

// Receiver stores what OTLP exporters send it. It is safe for concurrent use.
type Receiver struct {
	url      string
	behavior atomic.Int32
	requests atomic.Int64
	// stop is closed when the test ends, releasing hanging handlers so the
	// server can close.
	stop chan struct{}

	mu      sync.Mutex
	spans   []Span
	points  []Point
	headers http.Header
}

func newReceiver(opts []Option) *Receiver {
	r := &Receiver{stop: make(chan struct{})}
	for _, o := range opts {
		o(r)
	}
	return r
}

// URL is the receiver's base URL, such as http://127.0.0.1:41234. For
// OTLP/HTTP, exporters append /v1/traces or /v1/metrics; for OTLP/gRPC the
// http scheme means plaintext.
func (r *Receiver) URL() string { return r.url }

// SetBehavior changes how the receiver answers from now on.
func (r *Receiver) SetBehavior(b Behavior) { r.behavior.Store(int32(b)) }

// Requests counts the export requests that reached the receiver, whatever
// its behavior, including ones that were rejected.
func (r *Receiver) Requests() int64 { return r.requests.Load() }

// LastHeaders returns the HTTP headers (or gRPC metadata, with canonical
// keys) of the latest export request, to check exporter headers such as
// authorization.
func (r *Receiver) LastHeaders() http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.headers.Clone()
}

func (r *Receiver) setHeaders(h http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.headers = h
}

// Reset forgets every stored span and metric point.
func (r *Receiver) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans, r.points = nil, nil
}

// Spans returns a copy of every span received, in arrival order.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

// Trace returns the spans of one trace (lowercase hex id), ordered by start
// time.
func (r *Receiver) Trace(traceID string) []Span {
	var out []Span
	for _, s := range r.Spans() {
		if s.TraceID == traceID {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b Span) int { return a.Start.Compare(b.Start) })
	return out
}

// FindSpan returns the first received span that matches.
func (r *Receiver) FindSpan(match func(Span) bool) (Span, bool) {
	for _, s := range r.Spans() {
		if match(s) {
			return s, true
		}
	}
	return Span{}, false
}

// FindSpans returns every received span that matches, in arrival order.
func (r *Receiver) FindSpans(match func(Span) bool) []Span {
	var out []Span
	for _, s := range r.Spans() {
		if match(s) {
			out = append(out, s)
		}
	}
	return out
}

// SpanNamed returns the first received span with this name.
func (r *Receiver) SpanNamed(name string) (Span, bool) {
	return r.FindSpan(func(s Span) bool { return s.Name == name })
}

func (r *Receiver) addSpans(spans []Span) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans = append(r.spans, spans...)
}

func (r *Receiver) addPoints(ps []Point) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.points = append(r.points, ps...)
}

// pollInterval is how often the Wait helpers look again.
const pollInterval = 5 * time.Millisecond
