package probe

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// serviceName names the probe's own telemetry.
const serviceName = "tracegate-probe"

// maxBufferedSpans bounds the spans held between flushes; a run makes a
// handful, so only a runaway caller reaches it.
const maxBufferedSpans = 4096

// spanBuffer is a SpanProcessor that holds a run's spans until ForceFlush
// exports them. Unlike the batch processor it hands export errors back to
// the caller, so that the probe can tell the operator, and it never retries
// in the background after the command has moved on.
type spanBuffer struct {
	exp sdktrace.SpanExporter

	mu      sync.Mutex
	spans   []sdktrace.ReadOnlySpan
	dropped int
}

var _ sdktrace.SpanProcessor = (*spanBuffer)(nil)

func (b *spanBuffer) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

func (b *spanBuffer) OnEnd(s sdktrace.ReadOnlySpan) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.spans) >= maxBufferedSpans {
		b.dropped++
		return
	}
	b.spans = append(b.spans, s)
}

// ForceFlush exports the buffered spans and reports why it could not.
func (b *spanBuffer) ForceFlush(ctx context.Context) error {
	b.mu.Lock()
	spans, dropped := b.spans, b.dropped
	b.spans, b.dropped = nil, 0
	b.mu.Unlock()
	if len(spans) == 0 {
		return nil
	}
	if err := b.exp.ExportSpans(ctx, spans); err != nil {
		return fmt.Errorf("exporting %d spans: %w", len(spans), err)
	}
	if dropped > 0 {
		return fmt.Errorf("dropped %d spans over the buffer limit", dropped)
	}
	return nil
}

func (b *spanBuffer) Shutdown(ctx context.Context) error {
	err := b.ForceFlush(ctx)
	if serr := b.exp.Shutdown(ctx); err == nil {
		err = serr
	}
	return err
}

// newTracerProvider returns the probe's provider: every span sampled, and,
// when otlpURL is set, exported there over OTLP/HTTP on ForceFlush.
func newTracerProvider(ctx context.Context, otlpURL string, insecure bool) (*sdktrace.TracerProvider, error) {
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(serviceName))),
	}
	if otlpURL != "" {
		client := NewHTTPClient(insecure)
		client.Timeout = 10 * time.Second
		exp, err := otlptracehttp.New(ctx,
			otlptracehttp.WithEndpointURL(tracesURL(otlpURL)),
			otlptracehttp.WithHTTPClient(client),
			// A probe reports now or not at all; retrying for a minute would
			// delay the next run and the exit.
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
		)
		if err != nil {
			return nil, fmt.Errorf("OTLP exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithSpanProcessor(&spanBuffer{exp: exp}))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

// tracesURL turns an OTLP/HTTP base URL (http://host:4318, or the gateway's
// admin address) into the traces endpoint, per the OTLP exporter spec.
func tracesURL(base string) string {
	if strings.HasSuffix(base, "/v1/traces") {
		return base
	}
	return strings.TrimSuffix(base, "/") + "/v1/traces"
}
