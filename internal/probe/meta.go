package probe

import (
	"sort"

	"go.opentelemetry.io/otel/propagation"
)

// metaCarrier lets a propagator write into params._meta, whose unprefixed
// traceparent, tracestate and baggage keys carry W3C context (SEP-414).
//
// TODO(mcptrace): use the mcptrace _meta carrier once that package lands, so
// that the probe and the gateway share one injection path.
type metaCarrier map[string]any

var _ propagation.TextMapCarrier = metaCarrier(nil)

func (c metaCarrier) Get(key string) string {
	s, _ := c[key].(string)
	return s
}

func (c metaCarrier) Set(key, value string) { c[key] = value }

func (c metaCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k, v := range c {
		if _, ok := v.(string); ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}
