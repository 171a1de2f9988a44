package mcptrace

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Fixed W3C values used across tests.
const (
	traceIDA     = "0af7651916cd43dd8448eb211c80319c"
	spanIDA      = "b7ad6b7169203331"
	traceparentA = "00-" + traceIDA + "-" + spanIDA + "-01"
	traceIDB     = "4bf92f3577b34da6a3ce929d0e0e4736"
	spanIDB      = "00f067aa0ba902b7"
	traceparentB = "00-" + traceIDB + "-" + spanIDB + "-01"
)

type metricdataPoint = metricdata.HistogramDataPoint[float64]

// telemetry is one test's own tracer and meter providers.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() {
		_ = tel.tp.Shutdown(context.Background())
		_ = tel.mp.Shutdown(context.Background())
	})
	return tel
}

// options returns the options that point a middleware at tel.
func (tel *telemetry) options(extra ...Option) []Option {
	return append([]Option{WithTracerProvider(tel.tp), WithMeterProvider(tel.mp)}, extra...)
}

// span returns the one ended span with the given name and kind.
func (tel *telemetry) span(t *testing.T, name string, kind trace.SpanKind) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.Name() == name && s.SpanKind() == kind {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("got %d ended %s spans named %q, want 1; all: %v", len(found), kind, name, spanNames(tel.spans.Ended()))
	}
	return found[0]
}

func spanNames(spans []sdktrace.ReadOnlySpan) []string {
	var names []string
	for _, s := range spans {
		names = append(names, s.SpanKind().String()+" "+s.Name())
	}
	return names
}

// attr returns the value of key on s, and whether it is set.
func attr(s sdktrace.ReadOnlySpan, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// wantAttrs checks string, bool and int attributes of s.
func wantAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want map[attribute.Key]any) {
	t.Helper()
	for k, w := range want {
		v, ok := attr(s, k)
		if w == nil {
			if ok {
				t.Errorf("%s: got %s=%v, want it unset", s.Name(), k, v.Emit())
			}
			continue
		}
		if !ok {
			t.Errorf("%s: %s is unset, want %v", s.Name(), k, w)
			continue
		}
		if got := v.AsInterface(); got != w {
			t.Errorf("%s: got %s=%v, want %v", s.Name(), k, got, w)
		}
	}
}

// collect reads the current metrics.
func (tel *telemetry) collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collecting metrics: %v", err)
	}
	return rm
}

func findMetric(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// histogramPoints returns the data points of a float64 histogram.
func (tel *telemetry) histogramPoints(t *testing.T, name string) []metricdata.HistogramDataPoint[float64] {
	t.Helper()
	m, ok := findMetric(tel.collect(t), name)
	if !ok {
		return nil
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s: got %T, want a float64 histogram", name, m.Data)
	}
	return h.DataPoints
}

// dropped returns the tracegate.trace_context.dropped counts by carrier and
// reason.
func (tel *telemetry) dropped(t *testing.T) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	m, ok := findMetric(tel.collect(t), MetricDropped)
	if !ok {
		return got
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s: got %T, want an int64 sum", MetricDropped, m.Data)
	}
	for _, dp := range sum.DataPoints {
		c, _ := dp.Attributes.Value(attrCarrier)
		r, _ := dp.Attributes.Value(attrReason)
		got[c.AsString()+"/"+r.AsString()] += dp.Value
	}
	return got
}

// eventually polls cond until it holds or a few seconds have passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// remoteContext returns ctx holding the remote span context of a
// traceparent value.
func remoteContext(ctx context.Context, t *testing.T, traceparent string) context.Context {
	t.Helper()
	sc := mustSpanContext(t, traceparent)
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

func mustSpanContext(t *testing.T, traceparent string) trace.SpanContext {
	t.Helper()
	if !validTraceparent(traceparent) {
		t.Fatalf("test traceparent %q is invalid", traceparent)
	}
	tid, err := trace.TraceIDFromHex(traceparent[3:35])
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex(traceparent[36:52])
	if err != nil {
		t.Fatal(err)
	}
	var flags trace.TraceFlags
	if traceparent[54] == '1' {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true})
}
