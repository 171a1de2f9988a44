package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/redact"
)

// Exporter names, as in config and OTEL_{TRACES,METRICS}_EXPORTER.
const (
	exporterOTLP    = "otlp"
	exporterConsole = "console" // OTEL_* name; "stdout" in tracegate.yaml
	exporterNone    = "none"
)

// traceExporterNames resolves OTEL_TRACES_EXPORTER over config.Exporter
// (default none). OTEL_SDK_DISABLED=true turns export off.
func traceExporterNames(cfg config.Telemetry, e env) ([]string, error) {
	if e.get("OTEL_SDK_DISABLED") == "true" {
		return nil, nil
	}
	names, source := e.list("OTEL_TRACES_EXPORTER"), "OTEL_TRACES_EXPORTER"
	if names == nil {
		names, source = splitList(cfg.Exporter), "telemetry.exporter"
	}
	var out []string
	for _, n := range names {
		switch n {
		case exporterOTLP:
		case exporterConsole, "stdout":
			n = exporterConsole
		case exporterNone:
			continue
		default:
			return nil, fmt.Errorf("%s: exporter %q: want otlp, stdout (or console) or none", source, n)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// metricsOverOTLP says whether metrics are also pushed over OTLP. They are
// always served at /metrics. Without OTEL_METRICS_EXPORTER, metrics follow
// the trace exporter: pushed when traces go over OTLP.
func metricsOverOTLP(traceExporters []string, e env) (bool, error) {
	if e.get("OTEL_SDK_DISABLED") == "true" {
		return false, nil
	}
	names := e.list("OTEL_METRICS_EXPORTER")
	if names == nil {
		return slices.Contains(traceExporters, exporterOTLP), nil
	}
	otlp := false
	for _, n := range names {
		switch n {
		case exporterOTLP:
			otlp = true
		case "prometheus", exporterNone: // /metrics is always served
		default:
			return false, fmt.Errorf("OTEL_METRICS_EXPORTER: exporter %q: want otlp, prometheus or none", n)
		}
	}
	return otlp, nil
}

func newTraceExporter(ctx context.Context, name string, cfg config.OTLP, e env, stdout io.Writer) (sdktrace.SpanExporter, string, error) {
	if name == exporterConsole {
		exp, err := stdouttrace.New(stdouttrace.WithWriter(stdout))
		if err != nil {
			return nil, "", fmt.Errorf("console span exporter: %w", err)
		}
		return exp, "console", nil
	}
	t, err := resolveOTLP("traces", cfg, e)
	if err != nil {
		return nil, "", err
	}
	desc := t.Protocol + " " + redact.URL(t.URL)
	// Every setting is passed explicitly so that the exporter's own reading
	// of os.Getenv cannot override ours.
	if t.Protocol == protoGRPC {
		opts := []otlptracegrpc.Option{
			otlptracegrpc.WithEndpointURL(t.URL),
			otlptracegrpc.WithHeaders(t.Headers),
			otlptracegrpc.WithTimeout(t.Timeout),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig(retryWithin(t.Timeout))),
		}
		if t.Compress {
			opts = append(opts, otlptracegrpc.WithCompressor("gzip"))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, "", fmt.Errorf("otlp grpc span exporter for %s: %w", redact.URL(t.URL), err)
		}
		return exp, desc, nil
	}
	if t.Protocol != protoHTTPJSON {
		// http/protobuf, the default: tracegate's own encoder.
		return newWireExporter(t), desc, nil
	}
	opts := []otlptracehttp.Option{
		otlptracehttp.WithEndpointURL(t.URL),
		otlptracehttp.WithHeaders(t.Headers),
		otlptracehttp.WithTimeout(t.Timeout),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig(retryWithin(t.Timeout))),
		otlptracehttp.WithCompression(otlptracehttp.NoCompression),
		otlptracehttp.WithEncoding(otlptracehttp.EncodingProtobuf),
	}
	if t.Compress {
		opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	}
	if t.Protocol == protoHTTPJSON {
		opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("otlp http span exporter for %s: %w", redact.URL(t.URL), err)
	}
	return exp, desc, nil
}

// newMetricExporter builds the OTLP metric exporter. The metric exporters
// have no JSON encoding, so http/json sends metrics as http/protobuf.
func newMetricExporter(ctx context.Context, cfg config.OTLP, e env) (sdkmetric.Exporter, string, error) {
	t, err := resolveOTLP("metrics", cfg, e)
	if err != nil {
		return nil, "", err
	}
	desc := t.Protocol + " " + redact.URL(t.URL)
	if t.Protocol == protoGRPC {
		opts := []otlpmetricgrpc.Option{
			otlpmetricgrpc.WithEndpointURL(t.URL),
			otlpmetricgrpc.WithHeaders(t.Headers),
			otlpmetricgrpc.WithTimeout(t.Timeout),
			otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig(retryWithin(t.Timeout))),
		}
		if t.Compress {
			opts = append(opts, otlpmetricgrpc.WithCompressor("gzip"))
		}
		exp, err := otlpmetricgrpc.New(ctx, opts...)
		if err != nil {
			return nil, "", fmt.Errorf("otlp grpc metric exporter for %s: %w", redact.URL(t.URL), err)
		}
		return exp, desc, nil
	}
	opts := []otlpmetrichttp.Option{
		otlpmetrichttp.WithEndpointURL(t.URL),
		otlpmetrichttp.WithHeaders(t.Headers),
		otlpmetrichttp.WithTimeout(t.Timeout),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig(retryWithin(t.Timeout))),
		otlpmetrichttp.WithCompression(otlpmetrichttp.NoCompression),
	}
	if t.Compress {
		opts = append(opts, otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
	}
	exp, err := otlpmetrichttp.New(ctx, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("otlp http metric exporter for %s: %w", redact.URL(t.URL), err)
	}
	return exp, desc, nil
}

// retryConfig mirrors the exporters' identical RetryConfig types.
type retryConfig struct {
	Enabled         bool
	InitialInterval time.Duration
	MaxInterval     time.Duration
	MaxElapsedTime  time.Duration
}

// retryWithin retries transient failures (503, UNAVAILABLE) but gives up
// within one export timeout, so a batch is never held longer than that.
func retryWithin(timeout time.Duration) retryConfig {
	return retryConfig{
		Enabled:         true,
		InitialInterval: min(time.Second, timeout/4),
		MaxInterval:     min(5*time.Second, timeout/2),
		MaxElapsedTime:  timeout,
	}
}

// loggedMetricExporter logs export errors to tracegate's logger and hides
// them from the periodic reader, which would hand them to the global
// OpenTelemetry error handler.
type loggedMetricExporter struct {
	sdkmetric.Exporter
	logger *slog.Logger
	health exportHealth
}

func (l *loggedMetricExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	err := l.Exporter.Export(ctx, rm)
	l.health.report(l.logger, "metric", err)
	return nil
}
