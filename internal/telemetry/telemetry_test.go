package telemetry_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/otlptest"
	"github.com/tracegate/tracegate/internal/telemetry"
	"github.com/tracegate/tracegate/internal/testlog"
)

// envOf is a Getenv over a map, so that each test has its own environment.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// newTelemetry builds providers for one test and shuts them down after it.
func newTelemetry(t *testing.T, cfg config.Telemetry, env map[string]string, opts telemetry.Options) *telemetry.Telemetry {
	t.Helper()
	opts.Getenv = envOf(env)
	tel, err := telemetry.New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = tel.Shutdown(ctx)
	})
	return tel
}

func ratio(f float64) *float64 { return &f }

func TestResource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     config.Telemetry
		env     map[string]string
		version string
		want    map[string]string
		extra   []attribute.KeyValue
	}{
		{"default name", config.Telemetry{}, nil, "", map[string]string{"service.name": "tracegate", "telemetry.sdk.language": "go"}, nil},
		{"config name and version", config.Telemetry{ServiceName: "gw-a"}, nil, "1.2.3",
			map[string]string{"service.name": "gw-a", "service.version": "1.2.3"}, nil},
		{"OTEL_RESOURCE_ATTRIBUTES beats config", config.Telemetry{ServiceName: "gw-a"},
			map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs,service.version=9"}, "1.2.3",
			map[string]string{"service.name": "from-attrs", "service.version": "9"}, nil},
		{"OTEL_SERVICE_NAME beats both", config.Telemetry{ServiceName: "gw-a"},
			map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs", "OTEL_SERVICE_NAME": "from-env"}, "",
			map[string]string{"service.name": "from-env"}, nil},
		{"percent-decoding", config.Telemetry{},
			map[string]string{"OTEL_RESOURCE_ATTRIBUTES": " deployment.environment.name = prod ,team=a%2Cb%3Dc,plus=a+b,,"}, "",
			map[string]string{"deployment.environment.name": "prod", "team": "a,b=c", "plus": "a+b"}, nil},
		{"caller's attributes", config.Telemetry{}, nil, "",
			map[string]string{"service.instance.id": "r1", "service.name": "tracegate"}, []attribute.KeyValue{attribute.String("service.instance.id", "r1")}},
		{"OTEL_RESOURCE_ATTRIBUTES beats the caller's", config.Telemetry{}, map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "service.instance.id=env"}, "",
			map[string]string{"service.instance.id": "env"}, []attribute.KeyValue{attribute.String("service.instance.id", "r1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tel := newTelemetry(t, tt.cfg, tt.env, telemetry.Options{Version: tt.version, Resource: tt.extra})
			for k, want := range tt.want {
				got, ok := tel.Resource.Set().Value(attribute.Key(k))
				if !ok || got.Emit() != want {
					t.Errorf("resource %s: got %q (present %v), want %q", k, got.Emit(), ok, want)
				}
			}
		})
	}
}

func TestSampler(t *testing.T) {
	t.Parallel()
	remote := func(sampled bool) context.Context {
		flags := trace.TraceFlags(0)
		if sampled {
			flags = trace.FlagsSampled
		}
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: flags, Remote: true,
		})
		return trace.ContextWithRemoteSpanContext(context.Background(), sc)
	}
	tests := []struct {
		name string
		cfg  config.Sampler
		env  map[string]string
		// whether a root, a child of a sampled remote parent, and a child
		// of an unsampled one are sampled
		root, underSampled, underUnsampled bool
	}{
		{"default", config.Sampler{}, nil, true, true, false},
		{"config ratio 0 keeps parent decisions", config.Sampler{Ratio: ratio(0)}, nil, false, true, false},
		{"config ratio 1", config.Sampler{Ratio: ratio(1)}, nil, true, true, false},
		{"arg overrides config ratio", config.Sampler{Ratio: ratio(1)}, map[string]string{"OTEL_TRACES_SAMPLER_ARG": "0"}, false, true, false},
		{"always_off", config.Sampler{}, map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, false, false, false},
		{"always_on", config.Sampler{Ratio: ratio(0)}, map[string]string{"OTEL_TRACES_SAMPLER": "always_on"}, true, true, true},
		{"traceidratio ignores parent", config.Sampler{}, map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, false, false, false},
		{"parentbased_always_on", config.Sampler{Ratio: ratio(0)}, map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_always_on"}, true, true, false},
		{"parentbased_always_off", config.Sampler{}, map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, false, true, false},
		{"parentbased_traceidratio", config.Sampler{}, map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tel := newTelemetry(t, config.Telemetry{Sampler: tt.cfg}, tt.env, telemetry.Options{})
			tr := tel.TracerProvider.Tracer("test")
			for _, c := range []struct {
				what string
				ctx  context.Context
				want bool
			}{
				{"root", context.Background(), tt.root},
				{"under sampled remote parent", remote(true), tt.underSampled},
				{"under unsampled remote parent", remote(false), tt.underUnsampled},
			} {
				_, s := tr.Start(c.ctx, "s")
				if got := s.SpanContext().IsSampled(); got != c.want {
					t.Errorf("%s: got sampled=%v, want %v", c.what, got, c.want)
				}
				s.End()
			}
		})
	}
}

func TestSamplerRatio(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t, config.Telemetry{Sampler: config.Sampler{Ratio: ratio(0.25)}}, nil, telemetry.Options{})
	tr := tel.TracerProvider.Tracer("test")
	const n = 4000
	sampled := 0
	for range n {
		_, s := tr.Start(context.Background(), "root")
		if s.SpanContext().IsSampled() {
			sampled++
		}
		s.End()
	}
	// Binomial(4000, 0.25) has a standard deviation near 27; 0.18 to 0.32
	// is more than ten of them either side.
	if got := float64(sampled) / n; got < 0.18 || got > 0.32 {
		t.Errorf("sampled fraction of roots: got %.3f, want about 0.25", got)
	}
}

func TestPropagator(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cfg       []string
		env       map[string]string
		wantField []string
	}{
		{"default", nil, nil, []string{"traceparent", "baggage"}},
		{"config", []string{"tracecontext"}, nil, []string{"traceparent"}},
		{"env beats config", []string{"tracecontext"}, map[string]string{"OTEL_PROPAGATORS": "baggage"}, []string{"baggage"}},
		{"none", nil, map[string]string{"OTEL_PROPAGATORS": "none"}, nil},
		{"duplicates and case", []string{"TraceContext, tracecontext", "baggage"}, nil, []string{"traceparent", "baggage"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tel := newTelemetry(t, config.Telemetry{Propagators: tt.cfg}, tt.env, telemetry.Options{})
			ctx, s := tel.TracerProvider.Tracer("test").Start(context.Background(), "s")
			defer s.End()
			ctx = propagation.Baggage{}.Extract(ctx, propagation.MapCarrier{"baggage": "k=v"})
			carrier := propagation.MapCarrier{}
			tel.Propagator.Inject(ctx, carrier)
			for _, f := range []string{"traceparent", "baggage"} {
				want := strings.Contains(strings.Join(tt.wantField, ","), f)
				if got := carrier.Get(f) != ""; got != want {
					t.Errorf("injected %s: got %v, want %v (carrier %v)", f, got, want, carrier)
				}
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     config.Telemetry
		env     map[string]string
		wantErr string
	}{
		{"propagator", config.Telemetry{}, map[string]string{"OTEL_PROPAGATORS": "tracecontext,b3"}, `"b3"`},
		{"config propagator", config.Telemetry{Propagators: []string{"jaeger"}}, nil, `telemetry.propagators: propagator "jaeger"`},
		{"sampler", config.Telemetry{}, map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"}, `OTEL_TRACES_SAMPLER="jaeger_remote"`},
		{"sampler arg", config.Telemetry{}, map[string]string{"OTEL_TRACES_SAMPLER_ARG": "half"}, `OTEL_TRACES_SAMPLER_ARG="half"`},
		{"config ratio", config.Telemetry{Sampler: config.Sampler{Ratio: ratio(1.5)}}, nil, "sampler ratio 1.5"},
		{"exporter", config.Telemetry{Exporter: "zipkin"}, nil, `telemetry.exporter: exporter "zipkin"`},
		{"env exporter", config.Telemetry{}, map[string]string{"OTEL_TRACES_EXPORTER": "otlp,zipkin"}, `OTEL_TRACES_EXPORTER: exporter "zipkin"`},
		{"metrics exporter", config.Telemetry{}, map[string]string{"OTEL_METRICS_EXPORTER": "console"}, `exporter "console"`},
		{"protocol", config.Telemetry{Exporter: "otlp", OTLP: config.OTLP{Protocol: "thrift"}}, nil, `otlp protocol "thrift"`},
		{"endpoint without scheme", config.Telemetry{Exporter: "otlp"}, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4317"}, `OTEL_EXPORTER_OTLP_ENDPOINT "localhost:4317"`},
		{"config endpoint", config.Telemetry{Exporter: "otlp", OTLP: config.OTLP{Endpoint: "ftp://x"}}, nil, `telemetry.otlp.endpoint "ftp://x"`},
		{"headers", config.Telemetry{Exporter: "otlp"}, map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, `OTEL_EXPORTER_OTLP_HEADERS: member "novalue"`},
		{"timeout", config.Telemetry{Exporter: "otlp"}, map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"}, `OTEL_EXPORTER_OTLP_TIMEOUT="10s"`},
		{"compression", config.Telemetry{Exporter: "otlp"}, map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, `"zstd"`},
		{"queue size", config.Telemetry{}, map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "-1"}, `OTEL_BSP_MAX_QUEUE_SIZE="-1"`},
		{"resource attributes", config.Telemetry{}, map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "a=%zz"}, `OTEL_RESOURCE_ATTRIBUTES: member "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tel, err := telemetry.New(context.Background(), tt.cfg, telemetry.Options{Getenv: envOf(tt.env)})
			if err == nil {
				_ = tel.Shutdown(context.Background())
				t.Fatalf("got no error, want one containing %s", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %q, want it to contain %s", err, tt.wantErr)
			}
		})
	}
}

func TestExtraSpanProcessorsRunWithoutExporter(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tel := newTelemetry(t, config.Telemetry{Exporter: "none"}, nil, telemetry.Options{ExtraSpanProcessors: []sdktrace.SpanProcessor{rec}})
	_, s := tel.TracerProvider.Tracer("test").Start(context.Background(), "viewer sees me")
	s.End()
	if got := rec.Ended(); len(got) != 1 || got[0].Name() != "viewer sees me" {
		t.Fatalf("extra processor: got %d ended spans, want the one", len(got))
	}
	if got := tel.Exporters; len(got) != 1 || got[0] != "metrics: /metrics" {
		t.Errorf("Exporters: got %v, want only metrics: /metrics", got)
	}
}

func TestConsoleExporter(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		cfg  config.Telemetry
		env  map[string]string
	}{
		{"config stdout", config.Telemetry{Exporter: "stdout"}, nil},
		{"env console", config.Telemetry{Exporter: "none"}, map[string]string{"OTEL_TRACES_EXPORTER": "console"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out testlog.Buffer
			tel := newTelemetry(t, tt.cfg, tt.env, telemetry.Options{Stdout: &out})
			_, s := tel.TracerProvider.Tracer("test").Start(context.Background(), "printed span")
			s.End()
			if err := tel.ForceFlush(context.Background()); err != nil {
				t.Fatalf("ForceFlush: %v", err)
			}
			if !strings.Contains(out.String(), `"Name":"printed span"`) {
				t.Errorf("stdout: got %q, want the span as JSON", out.String())
			}
		})
	}
}

func TestMetricsHandler(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t, config.Telemetry{ServiceName: "prom-test"}, nil, telemetry.Options{})
	h, err := tel.MeterProvider.Meter("test").Float64Histogram("mcp.server.operation.duration", metric.WithUnit("s"))
	if err != nil {
		t.Fatal(err)
	}
	h.Record(context.Background(), 0.03, metric.WithAttributes(attribute.String("mcp.method.name", "tools/call")))

	srv := httptest.NewServer(tel.MetricsHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("content type: got %q, want text/plain", ct)
	}
	for _, want := range []string{
		"# TYPE mcp_server_operation_duration_seconds histogram",
		// The semconv buckets: 0.03 falls in le=0.05, not le=0.02.
		`mcp_server_operation_duration_seconds_bucket{mcp_method_name="tools/call",otel_scope_name="test",otel_scope_schema_url="",otel_scope_version="",le="0.02"} 0`,
		`mcp_server_operation_duration_seconds_bucket{mcp_method_name="tools/call",otel_scope_name="test",otel_scope_schema_url="",otel_scope_version="",le="0.05"} 1`,
		`le="300"} 1`,
		"mcp_server_operation_duration_seconds_count",
		"tracegate_spans_dropped_total",
		`target_info{`,
		`service_name="prom-test"`,
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

func TestShutdownTwice(t *testing.T) {
	t.Parallel()
	rcv := otlptest.NewReceiver(t)
	tel, err := telemetry.New(context.Background(), config.Telemetry{Exporter: "otlp", OTLP: config.OTLP{Endpoint: rcv.URL()}},
		telemetry.Options{Getenv: envOf(nil)})
	if err != nil {
		t.Fatal(err)
	}
	_, s := tel.TracerProvider.Tracer("test").Start(context.Background(), "flushed at shutdown")
	s.End()
	ctx := context.Background()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatalf("first Shutdown: %v", err)
	}
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	// Shutdown flushed the queued span.
	if _, ok := rcv.SpanNamed("flushed at shutdown"); !ok {
		t.Errorf("span ended before Shutdown was not exported:\n%s", rcv.Dump())
	}
	// Spans after shutdown go nowhere, without panicking.
	_, s = tel.TracerProvider.Tracer("test").Start(context.Background(), "after")
	s.End()
	if err := tel.ForceFlush(ctx); err != nil {
		t.Errorf("ForceFlush after Shutdown: %v", err)
	}
}

func TestLoggerFromNewReceivesExportFailures(t *testing.T) {
	t.Parallel()
	var logs testlog.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	rcv := otlptest.NewReceiver(t, otlptest.WithBehavior(otlptest.Unavailable))
	tel := newTelemetry(t, config.Telemetry{Exporter: "otlp"}, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL(),
		"OTEL_EXPORTER_OTLP_TIMEOUT":  "50",
	}, telemetry.Options{Logger: logger})
	for range 3 {
		_, s := tel.TracerProvider.Tracer("test").Start(context.Background(), "lost")
		s.End()
	}
	if err := tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := tel.DroppedSpans(); got != 3 {
		t.Errorf("DroppedSpans after a failed export: got %d, want 3", got)
	}
	if !strings.Contains(logs.String(), `"msg":"span export failed"`) || !strings.Contains(logs.String(), `"dropped_spans_total":3`) {
		t.Errorf("log: got %s, want a span export failure with dropped_spans_total 3", logs.String())
	}

	rcv.SetBehavior(otlptest.Accept)
	_, s := tel.TracerProvider.Tracer("test").Start(context.Background(), "delivered")
	s.End()
	if err := tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"msg":"span export recovered"`) {
		t.Errorf("log: got %s, want a recovery line", logs.String())
	}
	if _, ok := rcv.SpanNamed("delivered"); !ok {
		t.Errorf("span after recovery not received")
	}
}
