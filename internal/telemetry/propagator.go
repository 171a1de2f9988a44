package telemetry

import (
	"fmt"
	"slices"

	"go.opentelemetry.io/otel/propagation"
)

var defaultPropagators = []string{"tracecontext", "baggage"}

// newPropagator builds the propagator once, from OTEL_PROPAGATORS or the
// config (default tracecontext,baggage). "none" propagates nothing.
func newPropagator(configured []string, e env) (propagation.TextMapPropagator, error) {
	names, source := e.list("OTEL_PROPAGATORS"), "OTEL_PROPAGATORS"
	if names == nil {
		names, source = nil, "telemetry.propagators"
		for _, n := range configured {
			names = append(names, splitList(n)...)
		}
	}
	if len(names) == 0 {
		names = defaultPropagators
	}
	var props []propagation.TextMapPropagator
	var seen []string
	for _, n := range names {
		if slices.Contains(seen, n) {
			continue
		}
		seen = append(seen, n)
		switch n {
		case "tracecontext":
			props = append(props, propagation.TraceContext{})
		case "baggage":
			props = append(props, propagation.Baggage{})
		case "none":
		default:
			return nil, fmt.Errorf("%s: propagator %q: want tracecontext, baggage or none", source, n)
		}
	}
	return propagation.NewCompositeTextMapPropagator(props...), nil
}
