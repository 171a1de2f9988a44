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

// RoundTrip sends a copy of req with the trace context in its headers: the
// RoundTripper contract forbids changing req. Only the header map is
// copied; the rest (URL, body) is shared, as nothing else is changed.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	out := new(http.Request)
	*out = *req
	out.Header = make(http.Header, len(req.Header)+3)
	for k, v := range req.Header {
		out.Header[k] = v
	}
	t.prop.InjectHeader(req.Context(), out.Header)
	return t.base.RoundTrip(out)
}
