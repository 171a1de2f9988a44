package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/redact"
)

const instrumentationScope = "github.com/tracegate/tracegate/internal/telemetry"

var (
	reasonQueueFull    = attribute.String("reason", "queue_full")
	reasonExportFailed = attribute.String("reason", "export_failed")
)

// Options are the inputs of New that do not come from the config file.
type Options struct {
	// Getenv reads the OTEL_* variables. If nil, os.Getenv. Tests pass
	// their own so that they can run in parallel.
	Getenv func(string) string
	// ExtraSpanProcessors run beside any exporter, for example the embedded
	// viewer's store. Their OnEnd runs on the request path: it must be
	// cheap. They are shut down with the tracer provider.
	ExtraSpanProcessors []sdktrace.SpanProcessor
	// Version is the resource's service.version.
	Version string
	// Resource adds to the built-in facts about the process, such as the
	// service.instance.id of one of several gateways in a process (tracegate
	// demo -replicas); the configuration and OTEL_RESOURCE_ATTRIBUTES
	// still override them.
	Resource []attribute.KeyValue
	// Logger receives export failures and recoveries. If nil, they are
	// discarded.
	Logger *slog.Logger
	// Stdout is where the stdout (console) span exporter writes. If nil,
	// os.Stdout.
	Stdout io.Writer
}

// Telemetry holds the providers built from config. Pass them on; nothing
// is installed globally.
type Telemetry struct {
	TracerProvider *sdktrace.TracerProvider
	MeterProvider  *sdkmetric.MeterProvider
	Propagator     propagation.TextMapPropagator
	Resource       *resource.Resource
	// Limits bound every span recorded and exported (OTEL_*_LIMIT).
	Limits Limits
	// Exporters describes where spans and metrics go, for a startup log
	// line: e.g. ["traces: grpc http://127.0.0.1:4317", "metrics: /metrics"].
	Exporters []string

	registry *prometheus.Registry

	// What Prepare needs to build exporters again.
	env     env
	stdout  io.Writer
	logger  *slog.Logger
	qcfg    queueConfig
	sampler *switchSampler
	prop    *switchPropagator
	spans   *spanExport
	metrics *metricExport
	// spansOn: spans is registered with the tracer provider, behind the
	// name limiter; it is, once any exporter has been configured.
	spansOn bool
	// named: the name limiter is registered.
	named bool

	mu       sync.Mutex // serializes Apply; guards retired and the two below
	retired  []*queueProcessor
	lostFull int64 // drop counts of retired queues, once shut down
	lostFail int64
	retiring sync.WaitGroup

	shutdownOnce   sync.Once
	shutdownResult ShutdownResult
}

// ShutdownResult says what a shutdown could not deliver.
type ShutdownResult struct {
	// LostSpans counts the sampled spans that the shutdown did not
	// deliver: still queued when its context ended, or in an export that
	// failed during it.
	LostSpans int64
	// Traces and Metrics are the errors of flushing and stopping each
	// signal's providers and exporters.
	Traces, Metrics error
}

// Err joins Traces and Metrics.
func (r ShutdownResult) Err() error { return errors.Join(r.Traces, r.Metrics) }

// New builds the providers. It fails, naming the value at fault, on a bad
// sampler, propagator, exporter or endpoint; it does not contact the
// collector, which may come up later.
func New(ctx context.Context, cfg config.Telemetry, opts Options) (_ *Telemetry, err error) {
	e := env(opts.Getenv)
	if e == nil {
		e = os.Getenv
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	stdout := opts.Stdout
	if stdout == nil {
		stdout = os.Stdout
	}

	t := &Telemetry{env: e, stdout: stdout, logger: logger}
	if t.Resource, err = newResource(cfg, opts.Version, opts.Resource, e); err != nil {
		return nil, err
	}
	prop, err := newPropagator(cfg.Propagators, e)
	if err != nil {
		return nil, err
	}
	t.prop = newSwitchPropagator(prop)
	t.Propagator = t.prop
	sampler, err := newSampler(cfg.Sampler, e)
	if err != nil {
		return nil, err
	}
	t.sampler = newSwitchSampler(sampler)
	if t.qcfg, err = queueConfigFromEnv(e); err != nil {
		return nil, err
	}
	if t.Limits, err = limitsFromEnv(e); err != nil {
		return nil, err
	}
	t.qcfg.Limits = &t.Limits
	readerOpts, err := periodicReaderOptions(e)
	if err != nil {
		return nil, err
	}
	exports, err := t.buildExports(ctx, cfg)
	if err != nil {
		return nil, err
	}

	// From here on, undo what was built if a later step fails.
	cleanup := []func(context.Context) error{exports.shutdown}
	defer func() {
		if err != nil {
			for _, c := range cleanup {
				_ = c(ctx)
			}
		}
	}()

	tpOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(t.Resource),
		sdktrace.WithSampler(t.sampler),
		sdktrace.WithRawSpanLimits(t.Limits.SpanLimits),
	}
	if len(exports.queues)+len(opts.ExtraSpanProcessors) > 0 {
		// First, so that every other processor sees the bounded name.
		// Only with a processor after it: with none, the SDK skips the
		// copy of each ended span, and no name goes anywhere.
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(nameLimiter{max: t.Limits.NameLength}))
		t.named = true
	}
	t.spans = newSpanExport(exports.queues)
	if len(exports.queues) > 0 {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(t.spans))
		t.spansOn = true
	}
	for _, sp := range opts.ExtraSpanProcessors {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(boundedProcessor{sp, t.Limits}))
	}

	prom, reg, err := newPrometheusReader()
	if err != nil {
		return nil, err
	}
	t.registry = reg
	// The periodic reader is there even when metrics are not pushed, so
	// that a reload can start pushing them; with no exporter it collects
	// nothing.
	t.metrics = newMetricExport(exports.metrics)
	mpOpts := []sdkmetric.Option{
		sdkmetric.WithResource(t.Resource),
		sdkmetric.WithReader(prom),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(t.metrics, readerOpts...)),
	}
	for _, v := range mcpViews() {
		mpOpts = append(mpOpts, sdkmetric.WithView(v))
	}
	t.Exporters = exports.desc

	t.TracerProvider = sdktrace.NewTracerProvider(tpOpts...)
	t.MeterProvider = sdkmetric.NewMeterProvider(mpOpts...)
	cleanup = append(cleanup[:0], t.Shutdown)
	if err = registerDroppedSpans(t.MeterProvider, t.dropped); err != nil {
		return nil, err
	}
	logger.Debug("telemetry configured", "exporters", strings.Join(t.Exporters, "; "))
	return t, nil
}

// exportSet is where one telemetry section sends spans and metrics.
type exportSet struct {
	queues  []*queueProcessor
	metrics sdkmetric.Exporter // nil: metrics are not pushed
	desc    []string           // for Exporters
}

// buildExports builds the span queues and the OTLP metric exporter of cfg,
// with the OTEL_* variables over it. It contacts no collector.
func (t *Telemetry) buildExports(ctx context.Context, cfg config.Telemetry) (_ *exportSet, err error) {
	e := t.env
	qcfg := t.qcfg
	qcfg.Redactor = otlpRedactor(cfg.OTLP, e)
	traceExporters, err := traceExporterNames(cfg, e)
	if err != nil {
		return nil, err
	}
	pushMetrics, err := metricsOverOTLP(traceExporters, e)
	if err != nil {
		return nil, err
	}
	x := &exportSet{}
	defer func() {
		if err != nil {
			x.shutdown(ctx)
		}
	}()
	for _, name := range traceExporters {
		exp, desc, err := newTraceExporter(ctx, name, cfg.OTLP, e, t.stdout)
		if err != nil {
			return nil, err
		}
		x.queues = append(x.queues, newQueueProcessor(exp, qcfg, t.logger.With("signal", "traces", "exporter", desc)))
		x.desc = append(x.desc, "traces: "+desc)
	}
	x.desc = append(x.desc, "metrics: /metrics")
	if pushMetrics {
		exp, desc, err := newMetricExporter(ctx, cfg.OTLP, e)
		if err != nil {
			return nil, err
		}
		logged := &loggedMetricExporter{Exporter: exp, logger: t.logger.With("signal", "metrics", "exporter", desc)}
		logged.health.redactor = qcfg.Redactor
		x.metrics = logged
		x.desc = append(x.desc, "metrics: "+desc)
	}
	return x, nil
}

// shutdown stops what x holds, exporting what its queues hold within ctx.
func (x *exportSet) shutdown(ctx context.Context) error {
	var errs []error
	for _, q := range x.queues {
		errs = append(errs, q.Shutdown(ctx))
	}
	if x.metrics != nil {
		errs = append(errs, x.metrics.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// DroppedSpans is the number of sampled spans that were lost before export,
// because the queue was full or the exporter failed.
func (t *Telemetry) DroppedSpans() int64 {
	full, failed := t.dropped()
	return full + failed
}

// dropped counts the spans lost so far by every queue, current, retired
// by Apply, or shut down: those that found the queue full, and those whose
// export failed or was cut short.
func (t *Telemetry) dropped() (full, failed int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	full, failed = t.lostFull, t.lostFail
	for _, qs := range [][]*queueProcessor{t.spans.current(), t.retired} {
		for _, q := range qs {
			full += q.droppedFull.Load()
			failed += q.droppedExport.Load() + q.droppedShutdown.Load()
		}
	}
	return full, failed
}

// MetricsHandler serves the meter provider's metrics, with Go runtime and
// process metrics, in the Prometheus text format.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

// ForceFlush exports the spans queued so far. Metrics are not pushed.
func (t *Telemetry) ForceFlush(ctx context.Context) error {
	if err := t.TracerProvider.ForceFlush(ctx); err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}

// Shutdown flushes and stops traces, then metrics, within ctx. Later calls
// return the first call's result.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	return t.ShutdownWithResult(ctx).Err()
}

// ShutdownWithResult is Shutdown, reporting the spans it lost. Later calls
// return the first call's result.
func (t *Telemetry) ShutdownWithResult(ctx context.Context) ShutdownResult {
	t.shutdownOnce.Do(func() {
		r := &t.shutdownResult
		// Exporters that a reload replaced finish their own flush first.
		retired := make(chan struct{})
		go func() { t.retiring.Wait(); close(retired) }()
		select {
		case <-retired:
		case <-ctx.Done():
		}
		before := t.DroppedSpans()
		if err := t.TracerProvider.Shutdown(ctx); err != nil {
			r.Traces = fmt.Errorf("shut down tracer provider: %w", err)
		}
		r.LostSpans = t.DroppedSpans() - before
		if err := t.MeterProvider.Shutdown(ctx); err != nil {
			r.Metrics = fmt.Errorf("shut down meter provider: %w", err)
		}
	})
	return t.shutdownResult
}

// otlpRedactor knows the OTLP header values of both signals, so that an
// exporter error quoting one never reaches the log.
func otlpRedactor(cfg config.OTLP, e env) *redact.Redactor {
	var secrets []string
	for _, signal := range []string{"traces", "metrics"} {
		if t, err := resolveOTLP(signal, cfg, e); err == nil {
			secrets = append(secrets, redact.HeaderSecrets(t.Headers)...)
		}
	}
	return redact.New(secrets...)
}
