package telemetry

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tracegate/tracegate/internal/config"
)

// A running Telemetry takes a changed telemetry section without new
// providers, so that every tracer, meter and propagator already handed out
// stays valid: the sampler, the propagators and the exporters of both
// signals sit behind switches that Change.Apply turns. Each switch costs
// the request path one atomic load. The resource (service_name) and the
// OTEL_* variables are fixed at New.

// Change is a reconfiguration that Prepare built and that is not in force
// yet: Apply puts it in force, Discard drops it.
type Change struct {
	t       *Telemetry
	sampler sdktrace.Sampler
	prop    propagation.TextMapPropagator
	exports *exportSet
	done    atomic.Bool
	// Exporters describes where spans and metrics go once it applies, as
	// Telemetry.Exporters does.
	Exporters []string
}

// Prepare builds what cfg needs, with the OTEL_* variables over it, and
// fails, naming the value at fault, as New does. Nothing changes until
// Apply. The resource is New's whatever cfg.ServiceName says.
func (t *Telemetry) Prepare(ctx context.Context, cfg config.Telemetry) (*Change, error) {
	prop, err := newPropagator(cfg.Propagators, t.env)
	if err != nil {
		return nil, err
	}
	sampler, err := newSampler(cfg.Sampler, t.env)
	if err != nil {
		return nil, err
	}
	exports, err := t.buildExports(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Change{t: t, sampler: sampler, prop: prop, exports: exports, Exporters: exports.desc}, nil
}

// Discard releases what Prepare built, exporting nothing. It does nothing
// after Apply.
func (c *Change) Discard() {
	if c.done.Swap(true) {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // nothing was queued: shut down at once
	c.exports.shutdown(ctx)
}

// Apply puts the change in force: spans that end from now on go to its
// exporters, and new roots and injections follow its sampler and
// propagators. The exporters it replaces export what they hold in the
// background, within flush, and report spans they could not deliver as
// dropped. Apply does nothing after Discard or a first Apply.
func (c *Change) Apply(flush time.Duration) {
	if c.done.Swap(true) {
		return
	}
	t := c.t
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sampler.set(c.sampler)
	t.prop.set(c.prop)
	old := t.spans.swap(c.exports.queues)
	if len(c.exports.queues) > 0 && !t.spansOn {
		// The first exporter of a process that had none: the name limiter
		// goes first, as New puts it.
		if !t.named {
			t.TracerProvider.RegisterSpanProcessor(nameLimiter{max: t.Limits.NameLength})
			t.named = true
		}
		t.TracerProvider.RegisterSpanProcessor(t.spans)
		t.spansOn = true
	}
	oldMetrics := t.metrics.swap(c.exports.metrics)
	t.retired = append(t.retired, old...)
	t.retiring.Add(1)
	go func() {
		defer t.retiring.Done()
		ctx, cancel := context.WithTimeoutCause(context.Background(), flush, fmt.Errorf("flushing the replaced exporters took longer than %s", flush))
		defer cancel()
		var errs []error
		for _, q := range old {
			errs = append(errs, q.Shutdown(ctx))
		}
		if oldMetrics != nil {
			errs = append(errs, oldMetrics.Shutdown(ctx))
		}
		if err := errors.Join(errs...); err != nil {
			t.logger.Warn("flushing the exporters a reload replaced", "error", err.Error())
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, q := range old {
			t.lostFull += q.droppedFull.Load()
			t.lostFail += q.droppedExport.Load() + q.droppedShutdown.Load()
			for i, r := range t.retired {
				if r == q {
					t.retired = append(t.retired[:i], t.retired[i+1:]...)
					break
				}
			}
		}
	}()
}

// switchSampler is the provider's sampler, which Apply replaces.
type switchSampler struct{ cur atomic.Pointer[samplerBox] }

type samplerBox struct{ sdktrace.Sampler }

var _ sdktrace.Sampler = (*switchSampler)(nil)

func newSwitchSampler(s sdktrace.Sampler) *switchSampler {
	sw := &switchSampler{}
	sw.set(s)
	return sw
}

func (s *switchSampler) set(x sdktrace.Sampler) { s.cur.Store(&samplerBox{x}) }

func (s *switchSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	return s.cur.Load().ShouldSample(p)
}

func (s *switchSampler) Description() string { return s.cur.Load().Description() }

// switchPropagator is Telemetry.Propagator, which Apply replaces.
type switchPropagator struct{ cur atomic.Pointer[propagatorBox] }

type propagatorBox struct{ propagation.TextMapPropagator }

var _ propagation.TextMapPropagator = (*switchPropagator)(nil)

func newSwitchPropagator(p propagation.TextMapPropagator) *switchPropagator {
	sw := &switchPropagator{}
	sw.set(p)
	return sw
}

func (s *switchPropagator) set(p propagation.TextMapPropagator) { s.cur.Store(&propagatorBox{p}) }

func (s *switchPropagator) Inject(ctx context.Context, c propagation.TextMapCarrier) {
	s.cur.Load().Inject(ctx, c)
}

func (s *switchPropagator) Extract(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	return s.cur.Load().Extract(ctx, c)
}

func (s *switchPropagator) Fields() []string { return s.cur.Load().Fields() }

// spanExport hands each ended span to the current export queues.
type spanExport struct {
	queues atomic.Pointer[[]*queueProcessor]
}

var _ sdktrace.SpanProcessor = (*spanExport)(nil)

func newSpanExport(qs []*queueProcessor) *spanExport {
	s := &spanExport{}
	s.swap(qs)
	return s
}

func (s *spanExport) current() []*queueProcessor { return *s.queues.Load() }

func (s *spanExport) swap(qs []*queueProcessor) (old []*queueProcessor) {
	if p := s.queues.Swap(&qs); p != nil {
		old = *p
	}
	return old
}

func (s *spanExport) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

func (s *spanExport) OnEnd(span sdktrace.ReadOnlySpan) {
	for _, q := range *s.queues.Load() {
		q.OnEnd(span)
	}
}

func (s *spanExport) ForceFlush(ctx context.Context) error {
	var errs []error
	for _, q := range s.current() {
		errs = append(errs, q.ForceFlush(ctx))
	}
	return errors.Join(errs...)
}

func (s *spanExport) Shutdown(ctx context.Context) error {
	var errs []error
	for _, q := range s.current() {
		errs = append(errs, q.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// metricExport is the periodic reader's exporter: the OTLP metric
// exporter in force, or none, when metrics are collected for /metrics
// only and Export drops them.
type metricExport struct{ cur atomic.Pointer[metricBox] }

type metricBox struct{ sdkmetric.Exporter } // nil Exporter: none

var _ sdkmetric.Exporter = (*metricExport)(nil)

func newMetricExport(exp sdkmetric.Exporter) *metricExport {
	m := &metricExport{}
	m.swap(exp)
	return m
}

func (m *metricExport) swap(exp sdkmetric.Exporter) (old sdkmetric.Exporter) {
	if p := m.cur.Swap(&metricBox{exp}); p != nil {
		old = p.Exporter
	}
	return old
}

// Temporality and Aggregation are the exporter's, which the reader asks
// once per instrument. Every OTLP exporter of a process reads the same
// OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE, so they agree; with
// none, the SDK's defaults.
func (m *metricExport) Temporality(k sdkmetric.InstrumentKind) metricdata.Temporality {
	if exp := m.cur.Load().Exporter; exp != nil {
		return exp.Temporality(k)
	}
	return sdkmetric.DefaultTemporalitySelector(k)
}

func (m *metricExport) Aggregation(k sdkmetric.InstrumentKind) sdkmetric.Aggregation {
	if exp := m.cur.Load().Exporter; exp != nil {
		return exp.Aggregation(k)
	}
	return sdkmetric.DefaultAggregationSelector(k)
}

func (m *metricExport) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	if exp := m.cur.Load().Exporter; exp != nil {
		return exp.Export(ctx, rm)
	}
	return nil
}

func (m *metricExport) ForceFlush(ctx context.Context) error {
	if exp := m.cur.Load().Exporter; exp != nil {
		return exp.ForceFlush(ctx)
	}
	return nil
}

func (m *metricExport) Shutdown(ctx context.Context) error {
	if exp := m.swap(nil); exp != nil {
		return exp.Shutdown(ctx)
	}
	return nil
}
