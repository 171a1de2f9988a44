package telemetry_test

import (
	"context"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/otlptest"
	"github.com/tracegate/tracegate/internal/telemetry"
)

// TestShutdownCountsLostSpans ends spans that a hanging collector never
// takes: the shutdown gives up at its deadline, promptly, and counts every
// one of them as lost. With a collector that answers, nothing is lost.
func TestShutdownCountsLostSpans(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		behavior otlptest.Behavior
		lost     int64
	}{
		{"hanging collector", otlptest.Hang, 10},
		{"collector that answers", otlptest.Accept, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rcv := otlptest.NewReceiver(t, otlptest.WithBehavior(tt.behavior))
			tel := newTelemetry(t, config.Telemetry{}, queueEnv(rcv.URL(), map[string]string{
				"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4",
				"OTEL_BSP_SCHEDULE_DELAY":        "3600000",
				"OTEL_EXPORTER_OTLP_TIMEOUT":     "60000",
			}), telemetry.Options{})
			endSpans(tel, 10)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			res := tel.ShutdownWithResult(ctx)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("shutdown took %v with a 300ms deadline", d)
			}
			if res.LostSpans != tt.lost {
				t.Errorf("LostSpans: got %d, want %d", res.LostSpans, tt.lost)
			}
			if (res.Traces != nil) != (tt.lost > 0) {
				t.Errorf("Traces error: got %v, want an error only when spans were lost", res.Traces)
			}
			if tt.lost == 0 && len(rcv.Spans()) != 10 {
				t.Errorf("collector got %d spans, want 10", len(rcv.Spans()))
			}
			if again := tel.ShutdownWithResult(context.Background()); again.LostSpans != res.LostSpans {
				t.Errorf("second shutdown: got %+v, want the first result %+v", again, res)
			}
		})
	}
}
