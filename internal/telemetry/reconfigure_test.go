package telemetry_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/otlptest"
	"github.com/tracegate/tracegate/internal/telemetry"
)

func hasSpan(spans []otlptest.Span, name string) bool {
	for _, s := range spans {
		if s.Name == name {
			return true
		}
	}
	return false
}

// A running Telemetry takes a new telemetry section: export starts,
// moves to another collector (the replaced one still gets what it had
// queued), and the sampler and propagators change, all through the
// providers handed out at New.
func TestReconfigure(t *testing.T) {
	t.Parallel()
	first, second := otlptest.NewReceiver(t), otlptest.NewReceiver(t)
	// Batches go out only when flushed: what reaches a receiver is what
	// the test flushed, or what a replaced exporter flushed on its way
	// out.
	env := map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "3600000"}
	ctx := context.Background()
	tel, err := telemetry.New(ctx, config.Telemetry{ServiceName: "gw", Exporter: "none"}, telemetry.Options{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	tracer := tel.TracerProvider.Tracer("test")
	end := func(ctx context.Context, name string) trace.SpanContext {
		_, span := tracer.Start(ctx, name)
		span.End()
		return span.SpanContext()
	}
	if sc := end(ctx, "before"); !sc.IsSampled() {
		t.Fatal("a root span is not sampled at ratio 1")
	}

	// Export starts.
	change, err := tel.Prepare(ctx, config.Telemetry{ServiceName: "gw", Exporter: "otlp", OTLP: config.OTLP{Endpoint: first.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	if got := change.Exporters; len(got) != 3 || got[0] != "traces: http/protobuf "+first.URL()+"/v1/traces" {
		t.Errorf("Exporters: %v", got)
	}
	change.Apply(5 * time.Second)
	end(ctx, "exported")
	if err := tel.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if spans := first.Spans(); !hasSpan(spans, "exported") || hasSpan(spans, "before") {
		t.Errorf("after the first change, the collector got %v; want the span ended after it, not the one before", spans)
	}

	// A change that is discarded changes nothing.
	change, err = tel.Prepare(ctx, config.Telemetry{ServiceName: "gw", Exporter: "otlp", OTLP: config.OTLP{Endpoint: second.URL()}, Propagators: []string{"none"}})
	if err != nil {
		t.Fatal(err)
	}
	change.Discard()
	change.Apply(time.Second) // no effect after Discard
	end(ctx, "still first")
	if err := tel.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if !hasSpan(first.Spans(), "still first") || len(second.Spans()) != 0 {
		t.Errorf("after a discarded change: first got %v, second %v", first.Spans(), second.Spans())
	}

	// Another collector, a ratio of 0 and no propagation.
	queued := end(ctx, "queued for first")
	zero := 0.0
	change, err = tel.Prepare(ctx, config.Telemetry{ServiceName: "gw", Exporter: "otlp", OTLP: config.OTLP{Endpoint: second.URL()},
		Sampler: config.Sampler{Ratio: &zero}, Propagators: []string{"none"}})
	if err != nil {
		t.Fatal(err)
	}
	change.Apply(5 * time.Second)
	// The replaced exporter delivers what it held.
	first.WaitForSpans(t, 10*time.Second, func(spans []otlptest.Span) bool { return hasSpan(spans, "queued for first") })
	if sc := end(ctx, "unsampled root"); sc.IsSampled() {
		t.Error("a root span is sampled at ratio 0")
	}
	// Parent-based: a sampled parent is still obeyed.
	parent := trace.ContextWithRemoteSpanContext(ctx, queued)
	child := end(parent, "sampled child")
	if !child.IsSampled() {
		t.Error("the child of a sampled parent is not sampled")
	}
	if err := tel.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if spans := second.Spans(); !hasSpan(spans, "sampled child") || hasSpan(spans, "unsampled root") {
		t.Errorf("the second collector got %v, want the sampled child only", spans)
	}
	if hasSpan(first.Spans(), "sampled child") {
		t.Error("the replaced collector still gets spans")
	}
	carrier := propagation.MapCarrier{}
	tel.Propagator.Inject(trace.ContextWithSpanContext(ctx, child), carrier)
	if len(carrier) != 0 {
		t.Errorf("propagators none still inject %v", carrier)
	}
	if tel.DroppedSpans() != 0 {
		t.Errorf("%d spans dropped", tel.DroppedSpans())
	}
}

// A telemetry section Prepare cannot build is refused, naming what is
// wrong, and changes nothing.
func TestPrepareRefuses(t *testing.T) {
	t.Parallel()
	tel, err := telemetry.New(context.Background(), config.Telemetry{}, telemetry.Options{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	for _, cfg := range []config.Telemetry{
		{Exporter: "zipkin"},
		{Propagators: []string{"b3"}},
		{Exporter: "otlp", OTLP: config.OTLP{Protocol: "thrift"}},
	} {
		if _, err := tel.Prepare(context.Background(), cfg); err == nil {
			t.Errorf("Prepare(%+v): no error", cfg)
		}
	}
	carrier := propagation.MapCarrier{}
	_, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "x")
	tel.Propagator.Inject(trace.ContextWithSpanContext(context.Background(), span.SpanContext()), carrier)
	if carrier["traceparent"] == "" {
		t.Error("the propagators changed after refused changes")
	}
}
