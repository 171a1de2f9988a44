package telemetry_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/otlptest"
	"github.com/tracegate/tracegate/internal/telemetry"
)

func TestOTLPExport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		grpc bool
		// cfg and env are completed with the receiver's URL by setup.
		setup func(url string) (config.Telemetry, map[string]string)
	}{
		{"http/protobuf from config", false, func(url string) (config.Telemetry, map[string]string) {
			return config.Telemetry{ServiceName: "gw", Exporter: "otlp",
				OTLP: config.OTLP{Endpoint: url, Headers: map[string]string{"Authorization": "Bearer cfg"}}}, nil
		}},
		{"grpc from config", true, func(url string) (config.Telemetry, map[string]string) {
			return config.Telemetry{ServiceName: "gw", Exporter: "otlp",
				OTLP: config.OTLP{Endpoint: url, Protocol: "grpc", Headers: map[string]string{"Authorization": "Bearer cfg"}}}, nil
		}},
		{"http/protobuf from env over config", false, func(url string) (config.Telemetry, map[string]string) {
			return config.Telemetry{ServiceName: "not-me", Exporter: "none", OTLP: config.OTLP{Endpoint: "http://127.0.0.1:1", Protocol: "grpc"}},
				map[string]string{
					"OTEL_TRACES_EXPORTER":        "otlp",
					"OTEL_EXPORTER_OTLP_ENDPOINT": url,
					"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
					"OTEL_SERVICE_NAME":           "gw",
					"OTEL_EXPORTER_OTLP_HEADERS":  "Authorization=Bearer%20env",
				}
		}},
		{"grpc from env with gzip", true, func(url string) (config.Telemetry, map[string]string) {
			return config.Telemetry{}, map[string]string{
				"OTEL_TRACES_EXPORTER":           "otlp",
				"OTEL_EXPORTER_OTLP_ENDPOINT":    url,
				"OTEL_EXPORTER_OTLP_PROTOCOL":    "grpc",
				"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
				"OTEL_SERVICE_NAME":              "gw",
			}
		}},
		{"http/json with signal endpoints", false, func(url string) (config.Telemetry, map[string]string) {
			return config.Telemetry{ServiceName: "gw", Exporter: "otlp", OTLP: config.OTLP{Endpoint: "http://127.0.0.1:1"}},
				map[string]string{
					"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json",
					"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": url + "/v1/traces",
					// used as is: no /v1/metrics appended
					"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": url + "/v1/metrics",
				}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rcv *otlptest.Receiver
			if tt.grpc {
				rcv = otlptest.NewGRPCReceiver(t)
			} else {
				rcv = otlptest.NewReceiver(t)
			}
			cfg, env := tt.setup(rcv.URL())
			if env == nil {
				env = map[string]string{}
			}
			env["OTEL_RESOURCE_ATTRIBUTES"] = "deployment.environment.name=e2e"
			tel := newTelemetry(t, cfg, env, telemetry.Options{Version: "0.1.0"})
			ctx := context.Background()

			tr := tel.TracerProvider.Tracer("tracegate-test")
			pctx, parent := tr.Start(ctx, "tools/call echo", trace.WithSpanKind(trace.SpanKindServer))
			_, child := tr.Start(pctx, "tools/call backend_echo", trace.WithSpanKind(trace.SpanKindClient),
				trace.WithAttributes(attribute.String("tracegate.backend.name", "backend")))
			child.End()
			parent.End()
			hist, _ := tel.MeterProvider.Meter("tracegate-test").Float64Histogram("mcp.client.operation.duration", metric.WithUnit("s"))
			hist.Record(ctx, 0.3, metric.WithAttributes(attribute.String("mcp.method.name", "tools/call")))

			if err := tel.ForceFlush(ctx); err != nil {
				t.Fatalf("ForceFlush: %v", err)
			}
			spans := rcv.WaitForSpans(t, 5*time.Second, otlptest.HasSpanNamed("tools/call echo", "tools/call backend_echo"))
			traceID := parent.SpanContext().TraceID().String()
			got := rcv.Trace(traceID)
			if len(got) != 2 || len(spans) != 2 {
				t.Fatalf("got %d spans (%d in the trace), want 2 in trace %s:\n%s", len(spans), len(got), traceID, rcv.Dump())
			}
			for _, s := range got {
				if s.Service != "gw" || s.Resource["service.version"] != "0.1.0" || s.Resource["deployment.environment.name"] != "e2e" {
					t.Errorf("span %q resource: got service %q, attrs %v; want gw, 0.1.0, e2e", s.Name, s.Service, s.Resource)
				}
			}
			if c := got[1]; c.ParentSpanID != parent.SpanContext().SpanID().String() || c.Kind != "client" || c.Attrs["tracegate.backend.name"] != "backend" {
				t.Errorf("child: got %+v, want a client span under the parent with tracegate.backend.name", c)
			}
			if cfg.OTLP.Headers != nil || env["OTEL_EXPORTER_OTLP_HEADERS"] != "" {
				want := "Bearer cfg"
				if env["OTEL_EXPORTER_OTLP_HEADERS"] != "" {
					want = "Bearer env"
				}
				if got := rcv.LastHeaders().Get("Authorization"); got != want {
					t.Errorf("Authorization header at the collector: got %q, want %q", got, want)
				}
			}

			// Metrics go over OTLP too, with the semconv buckets.
			if err := tel.MeterProvider.ForceFlush(ctx); err != nil {
				t.Fatalf("metrics ForceFlush: %v", err)
			}
			pts := rcv.WaitForMetric(t, 5*time.Second, "mcp.client.operation.duration", nil)
			if p := pts[0]; p.Count != 1 || p.Service != "gw" || !slices.Equal(p.Bounds, telemetry.MCPDurationBuckets) {
				t.Errorf("histogram over OTLP: got count %d service %q bounds %v, want 1, gw, the MCP buckets", p.Count, p.Service, p.Bounds)
			}
		})
	}
}

func TestMetricsExporterNone(t *testing.T) {
	t.Parallel()
	rcv := otlptest.NewReceiver(t)
	tel := newTelemetry(t, config.Telemetry{Exporter: "otlp", OTLP: config.OTLP{Endpoint: rcv.URL()}},
		map[string]string{"OTEL_METRICS_EXPORTER": "none"}, telemetry.Options{})
	c, _ := tel.MeterProvider.Meter("test").Int64Counter("requests")
	c.Add(context.Background(), 1)
	_, s := tel.TracerProvider.Tracer("test").Start(context.Background(), "s")
	s.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rcv.MetricNames(); len(got) != 0 {
		t.Errorf("metrics pushed with OTEL_METRICS_EXPORTER=none: got %v, want none", got)
	}
	if len(rcv.Spans()) != 1 {
		t.Errorf("spans: got %d, want 1", len(rcv.Spans()))
	}
}

// deadEndpoint is a URL on which nothing listens.
func deadEndpoint(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	return url
}

// TestExportNeverBlocks ends many spans while the collector hangs or is
// gone. OnEnd must not wait: the spans beyond the queue are dropped and
// counted. With queue 16 and batch 4, at most 16 queued + 4 in the stuck
// export are accepted out of 1000.
func TestExportNeverBlocks(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		protocol string
		endpoint func(t *testing.T) string
		// stuck: an export never returns, so Shutdown must give up
		stuck bool
	}{
		{"hanging http", "http/protobuf", func(t *testing.T) string {
			return otlptest.NewReceiver(t, otlptest.WithBehavior(otlptest.Hang)).URL()
		}, true},
		{"hanging grpc", "grpc", func(t *testing.T) string {
			return otlptest.NewGRPCReceiver(t, otlptest.WithBehavior(otlptest.Hang)).URL()
		}, true},
		// A refused connection fails each export at once over HTTP (the
		// batch is counted as export_failed); gRPC retries it.
		{"dead http", "http/protobuf", func(t *testing.T) string { return deadEndpoint(t) }, false},
		{"dead grpc", "grpc", func(t *testing.T) string { return deadEndpoint(t) }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tel := newTelemetry(t, config.Telemetry{Exporter: "otlp"}, map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT":    tt.endpoint(t),
				"OTEL_EXPORTER_OTLP_PROTOCOL":    tt.protocol,
				"OTEL_EXPORTER_OTLP_TIMEOUT":     "60000", // hang or retry for the whole test
				"OTEL_BSP_MAX_QUEUE_SIZE":        "16",
				"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4",
				"OTEL_BSP_SCHEDULE_DELAY":        "3600000",
				"OTEL_METRICS_EXPORTER":          "none",
			}, telemetry.Options{})
			tr := tel.TracerProvider.Tracer("test")
			const n = 1000
			for range n {
				_, s := tr.Start(context.Background(), "request")
				s.End()
			}
			const maxAccepted = 16 + 4
			if got := tel.DroppedSpans(); got < n-maxAccepted {
				t.Errorf("DroppedSpans: got %d, want at least %d", got, n-maxAccepted)
			}
			full, failed := droppedMetric(t, tel, "queue_full"), droppedMetric(t, tel, "export_failed")
			if full+failed < n-maxAccepted {
				t.Errorf("tracegate_spans_dropped_total: got %d queue_full + %d export_failed, want at least %d", full, failed, n-maxAccepted)
			}

			// Shutdown honours its context even with an export stuck.
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			err := tel.Shutdown(ctx)
			if tt.stuck && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Shutdown with a stuck export: got %v, want a deadline error", err)
			}
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Shutdown: got %v, want nil or a deadline error", err)
			}
		})
	}
}

var droppedLine = regexp.MustCompile(`(?m)^tracegate_spans_dropped_total\{[^}]*reason="(\w+)"[^}]*\} (\d+)`)

// droppedMetric reads tracegate.spans.dropped for a reason from /metrics.
func droppedMetric(t *testing.T, tel *telemetry.Telemetry, reason string) int64 {
	t.Helper()
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, m := range droppedLine.FindAllStringSubmatch(string(body), -1) {
		if m[1] == reason {
			n, _ := strconv.ParseInt(m[2], 10, 64)
			return n
		}
	}
	t.Fatalf("/metrics has no tracegate_spans_dropped_total for reason %s:\n%s", reason, body)
	return 0
}
