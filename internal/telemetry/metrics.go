package telemetry

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/otlptranslator"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// MCPDurationBuckets are the explicit bucket boundaries, in seconds, that
// the MCP semantic conventions specify for mcp.{client,server}.operation.duration
// and mcp.{client,server}.session.duration. The instruments do not advise
// them, so views apply them.
var MCPDurationBuckets = []float64{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300}

var mcpDurationHistograms = []string{
	"mcp.server.operation.duration",
	"mcp.client.operation.duration",
	"mcp.server.session.duration",
	"mcp.client.session.duration",
}

func mcpViews() []sdkmetric.View {
	views := make([]sdkmetric.View, 0, len(mcpDurationHistograms))
	for _, name := range mcpDurationHistograms {
		views = append(views, sdkmetric.NewView(
			sdkmetric.Instrument{Name: name, Kind: sdkmetric.InstrumentKindHistogram},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: MCPDurationBuckets}},
		))
	}
	return views
}

// newPrometheusReader serves the meter provider's metrics in the Prometheus
// text format from a registry of its own, never the global one. The Go
// runtime and process collectors come along: a gateway's memory and file
// descriptors matter.
func newPrometheusReader() (*otelprom.Exporter, *prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(
		otelprom.WithRegisterer(reg),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("prometheus metric reader: %w", err)
	}
	return exp, reg, nil
}

// periodicReaderOptions reads OTEL_METRIC_EXPORT_INTERVAL (default 60s)
// and OTEL_METRIC_EXPORT_TIMEOUT (default 30s).
func periodicReaderOptions(e env) ([]sdkmetric.PeriodicReaderOption, error) {
	opts := []sdkmetric.PeriodicReaderOption{
		sdkmetric.WithInterval(60 * time.Second),
		sdkmetric.WithTimeout(30 * time.Second),
	}
	if d, ok, err := e.millis("OTEL_METRIC_EXPORT_INTERVAL"); err != nil {
		return nil, err
	} else if ok && d > 0 {
		opts = append(opts, sdkmetric.WithInterval(d))
	}
	if d, ok, err := e.millis("OTEL_METRIC_EXPORT_TIMEOUT"); err != nil {
		return nil, err
	} else if ok && d > 0 {
		opts = append(opts, sdkmetric.WithTimeout(d))
	}
	return opts, nil
}

// registerDroppedSpans exposes the span queues' drop count as the counter
// tracegate.spans.dropped, read at collection time so that OnEnd pays
// nothing for it. reason is queue_full or export_failed.
func registerDroppedSpans(mp metric.MeterProvider, dropped func() (full, failed int64)) error {
	m := mp.Meter(instrumentationScope)
	c, err := m.Int64ObservableCounter("tracegate.spans.dropped",
		metric.WithUnit("{span}"),
		metric.WithDescription("Spans lost before export: the export queue was full, or the exporter failed."))
	if err != nil {
		return fmt.Errorf("tracegate.spans.dropped counter: %w", err)
	}
	full := metric.WithAttributes(reasonQueueFull)
	failed := metric.WithAttributes(reasonExportFailed)
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		nFull, nFailed := dropped()
		o.ObserveInt64(c, nFull, full)
		o.ObserveInt64(c, nFailed, failed)
		return nil
	}, c)
	if err != nil {
		return fmt.Errorf("tracegate.spans.dropped callback: %w", err)
	}
	return nil
}
