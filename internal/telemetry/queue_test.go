package telemetry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/otlptest"
	"github.com/tracegate/tracegate/internal/telemetry"
)

func queueEnv(url string, extra map[string]string) map[string]string {
	env := map[string]string{
		"OTEL_TRACES_EXPORTER":        "otlp",
		"OTEL_EXPORTER_OTLP_ENDPOINT": url,
		"OTEL_METRICS_EXPORTER":       "none",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

func endSpans(tel *telemetry.Telemetry, n int, opts ...trace.SpanStartOption) {
	tr := tel.TracerProvider.Tracer("test")
	for range n {
		_, s := tr.Start(context.Background(), "s", opts...)
		s.End()
	}
}

func TestQueueBatchesBySize(t *testing.T) {
	t.Parallel()
	rcv := otlptest.NewReceiver(t)
	tel := newTelemetry(t, config.Telemetry{}, queueEnv(rcv.URL(), map[string]string{
		"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4",
		"OTEL_BSP_SCHEDULE_DELAY":        "3600000",
	}), telemetry.Options{})
	endSpans(tel, 12)
	// Three full batches go out without a flush or a tick.
	rcv.WaitForSpans(t, 5*time.Second, otlptest.AtLeast(12))
	if got := rcv.Requests(); got != 3 {
		t.Errorf("export requests for 12 spans in batches of 4: got %d, want 3", got)
	}
	endSpans(tel, 2)
	if err := tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := len(rcv.Spans()), 14; got != want {
		t.Errorf("spans after ForceFlush: got %d, want %d", got, want)
	}
	if got := tel.DroppedSpans(); got != 0 {
		t.Errorf("DroppedSpans: got %d, want 0", got)
	}
}

func TestQueueExportsOnInterval(t *testing.T) {
	t.Parallel()
	rcv := otlptest.NewReceiver(t)
	tel := newTelemetry(t, config.Telemetry{}, queueEnv(rcv.URL(), map[string]string{
		"OTEL_BSP_SCHEDULE_DELAY": "10",
	}), telemetry.Options{})
	endSpans(tel, 1)
	// No flush: the 10ms tick sends the partial batch.
	rcv.WaitForSpans(t, 5*time.Second, otlptest.AtLeast(1))
}

func TestQueueSkipsUnsampledSpans(t *testing.T) {
	t.Parallel()
	rcv := otlptest.NewReceiver(t)
	tel := newTelemetry(t, config.Telemetry{}, queueEnv(rcv.URL(), map[string]string{
		"OTEL_BSP_MAX_QUEUE_SIZE": "1",
		"OTEL_TRACES_SAMPLER":     "always_off",
	}), telemetry.Options{})
	endSpans(tel, 10)
	if err := tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := tel.DroppedSpans(); got != 0 {
		t.Errorf("DroppedSpans for unsampled spans: got %d, want 0 (they are never queued)", got)
	}
	if got := rcv.Requests(); got != 0 {
		t.Errorf("export requests: got %d, want 0", got)
	}
}

func TestQueueForceFlushHonoursContext(t *testing.T) {
	t.Parallel()
	rcv := otlptest.NewReceiver(t, otlptest.WithBehavior(otlptest.Hang))
	tel := newTelemetry(t, config.Telemetry{}, queueEnv(rcv.URL(), map[string]string{
		"OTEL_EXPORTER_OTLP_TIMEOUT": "60000",
	}), telemetry.Options{})
	endSpans(tel, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tel.ForceFlush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ForceFlush with a hanging collector: got %v, want a deadline error", err)
	}
	// The second flush finds the worker still stuck in the first export.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if err := tel.ForceFlush(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second ForceFlush: got %v, want a deadline error", err)
	}
	ctx3, cancel3 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel3()
	if err := tel.Shutdown(ctx3); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: got %v, want a deadline error", err)
	}
}
