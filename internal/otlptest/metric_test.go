package otlptest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/tracegate/tracegate/internal/otlptest"
)

func TestReceiverMetrics(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{"http/protobuf", "grpc"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var (
				rcv *otlptest.Receiver
				exp sdkmetric.Exporter
				err error
			)
			if proto == "grpc" {
				rcv = otlptest.NewGRPCReceiver(t)
				exp, err = otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpointURL(rcv.URL()))
			} else {
				rcv = otlptest.NewReceiver(t)
				exp, err = otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(rcv.URL()+"/v1/metrics"))
			}
			if err != nil {
				t.Fatalf("new exporter: %v", err)
			}
			reader := sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))
			mp := sdkmetric.NewMeterProvider(
				sdkmetric.WithReader(reader),
				sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "metrics-svc"))),
			)
			t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			m := mp.Meter("scope")
			h, _ := m.Float64Histogram("mcp.server.operation.duration", metric.WithUnit("s"),
				metric.WithExplicitBucketBoundaries(0.1, 1))
			c, _ := m.Int64Counter("tracegate.spans.dropped")
			tools := metric.WithAttributes(attribute.String("mcp.method.name", "tools/call"))
			h.Record(ctx, 0.05, tools)
			h.Record(ctx, 0.5, tools)
			h.Record(ctx, 5, tools)
			h.Record(ctx, 0.05, metric.WithAttributes(attribute.String("mcp.method.name", "tools/list")))
			c.Add(ctx, 3)
			if err := mp.ForceFlush(ctx); err != nil {
				t.Fatalf("flush: %v", err)
			}
			c.Add(ctx, 4)
			if err := mp.ForceFlush(ctx); err != nil {
				t.Fatalf("second flush: %v", err)
			}

			if got, want := rcv.MetricNames(), []string{"mcp.server.operation.duration", "tracegate.spans.dropped"}; !slices.Equal(got, want) {
				t.Errorf("MetricNames: got %v, want %v", got, want)
			}
			hist := rcv.WaitForMetric(t, time.Second, "mcp.server.operation.duration", nil)
			if len(hist) != 2 {
				t.Fatalf("histogram series: got %d, want 2 (one per method)", len(hist))
			}
			var call otlptest.Point
			for _, p := range hist {
				if p.Attrs["mcp.method.name"] == "tools/call" {
					call = p
				}
			}
			if call.Type != "histogram" || call.Count != 3 || call.Sum != 5.55 || call.Service != "metrics-svc" || call.Unit != "s" || !call.Cumulative {
				t.Errorf("tools/call point: got %+v, want a cumulative histogram of 3 values summing to 5.55 from metrics-svc in s", call)
			}
			if !slices.Equal(call.Bounds, []float64{0.1, 1}) || !slices.Equal(call.BucketCounts, []uint64{1, 1, 1}) {
				t.Errorf("buckets: got bounds %v counts %v, want [0.1 1] and [1 1 1]", call.Bounds, call.BucketCounts)
			}
			if got := len(rcv.Points("tracegate.spans.dropped")); got != 2 {
				t.Errorf("counter points over two exports: got %d, want 2", got)
			}
			last := rcv.LastPoints("tracegate.spans.dropped")
			if len(last) != 1 || last[0].Value != 7 || last[0].Type != "sum" || !last[0].Monotonic {
				t.Errorf("counter LastPoints: got %+v, want one monotonic sum of 7", last)
			}
		})
	}
}
