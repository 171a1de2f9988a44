package httplimit_test

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tracegate/tracegate/internal/httplimit"
)

// refusalCounter is a Refusals on a meter provider of the test's own, and
// a way to read it.
func refusalCounter(t *testing.T) (*httplimit.Refusals, func(limit string) int64) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	r, err := httplimit.NewRefusals(mp)
	if err != nil {
		t.Fatal(err)
	}
	return r, func(limit string) int64 {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != "tracegate.limit.refusals" {
					continue
				}
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					if v, ok := dp.Attributes.Value("limit"); ok && v.AsString() == limit {
						return dp.Value
					}
				}
			}
		}
		return 0
	}
}

func TestRefusalsNilAndUnknown(t *testing.T) {
	t.Parallel()
	var nilR *httplimit.Refusals
	nilR.Add(context.Background(), httplimit.LimitStreams) // no panic
	r, count := refusalCounter(t)
	r.Add(context.Background(), "made up by a caller")
	if got := count("other"); got != 1 {
		t.Errorf("unknown limit counted as other: got %d, want 1", got)
	}
}
