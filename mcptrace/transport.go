package mcptrace

import "net/http"

// Transport is an [http.RoundTripper] that injects the trace context of each
// request's context (traceparent, tracestate and baggage, after the
// [WithBaggage] policy) into the request's headers, and creates no span.
// With [ClientMiddleware] this carries the MCP CLIENT span's context in both
// params._meta and the HTTP headers, without a second, HTTP client span; it
// also lets any Go code join its downstream HTTP calls to the trace.
type Transport struct {
	base http.RoundTripper
	prop *Propagation
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport wraps base, or [http.DefaultTransport] if base is nil. It uses
// [WithPropagators], [WithBaggage] and [WithMeterProvider].
func NewTransport(base http.RoundTripper, opts ...Option) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &Transport{base: base, prop: NewPropagation(opts...)}
}

// RoundTrip clones req, as the RoundTripper contract forbids changing it,
// injects into the clone's headers, and sends the clone with the base
// transport.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	if out.Header == nil {
		out.Header = make(http.Header)
	}
	t.prop.InjectHeader(req.Context(), out.Header)
	return t.base.RoundTrip(out)
}
