package telemetry

import (
	"fmt"
	"strconv"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tracegate/tracegate/internal/config"
)

// newSampler is parent-based with a ratio for roots (DESIGN.md section 3),
// so an upstream sampled flag is obeyed both ways. OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG override it; the argument alone overrides the
// configured ratio.
func newSampler(cfg config.Sampler, e env) (sdktrace.Sampler, error) {
	ratio := 1.0
	if cfg.Ratio != nil {
		ratio = *cfg.Ratio
		if ratio < 0 || ratio > 1 {
			return nil, fmt.Errorf("sampler ratio %v: want a value from 0 to 1", ratio)
		}
	}
	if arg := e.get("OTEL_TRACES_SAMPLER_ARG"); arg != "" {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio from 0 to 1", arg)
		}
		ratio = r
	}
	name := e.get("OTEL_TRACES_SAMPLER")
	switch name {
	case "", "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio", name)
}
