package mcptrace

import "go.opentelemetry.io/otel/propagation"

// Keys of params._meta reserved for W3C trace context by SEP-414. Their
// values are formatted exactly as the HTTP headers of the same names.
const (
	KeyTraceparent = "traceparent"
	KeyTracestate  = "tracestate"
	KeyBaggage     = "baggage"
)

// MetaCarrier adapts an MCP params._meta object to
// [propagation.TextMapCarrier], so that any OpenTelemetry propagator can read
// and write trace context there (SEP-414).
//
// Set writes into the map itself. To inject without touching a caller's map,
// use [Propagation.InjectMeta], which writes into a copy.
type MetaCarrier map[string]any

var _ propagation.TextMapCarrier = MetaCarrier(nil)

// Get returns the value of key if it is a string, and "" when it is missing
// or of another JSON type.
func (m MetaCarrier) Get(key string) string {
	v, _ := m[key].(string)
	return v
}

// Set stores value under key. On a nil carrier it does nothing.
func (m MetaCarrier) Set(key, value string) {
	if m != nil {
		m[key] = value
	}
}

// Keys lists the keys whose values are strings, in no particular order.
func (m MetaCarrier) Keys() []string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if _, ok := v.(string); ok {
			keys = append(keys, k)
		}
	}
	return keys
}
