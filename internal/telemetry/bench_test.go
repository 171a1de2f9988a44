package telemetry_test

import (
	"context"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/otlptest"
	"github.com/tracegate/tracegate/internal/telemetry"
)

// BenchmarkSpanEnd measures starting and ending one sampled span, which is
// what a request pays, with no exporter and with the queue in front of a
// collector that is gone or hangs. Run it with
//
//	go test -run '^$' -bench SpanEnd -benchmem ./internal/telemetry
func BenchmarkSpanEnd(b *testing.B) {
	for _, bc := range []struct {
		name string
		env  func(b *testing.B) map[string]string
	}{
		{"no_exporter", func(*testing.B) map[string]string { return map[string]string{} }},
		{"dead_endpoint", func(b *testing.B) map[string]string {
			return map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": deadEndpoint(b)}
		}},
		{"hanging_endpoint", func(b *testing.B) map[string]string {
			rcv := otlptest.NewReceiver(b, otlptest.WithBehavior(otlptest.Hang))
			return map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL()}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			env := bc.env(b)
			env["OTEL_METRICS_EXPORTER"] = "none"
			tel, err := telemetry.New(context.Background(), config.Telemetry{}, telemetry.Options{Getenv: envOf(env)})
			if err != nil {
				b.Fatal(err)
			}
			tr := tel.TracerProvider.Tracer("bench")
			ctx := context.Background()
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				_, s := tr.Start(ctx, "tools/call echo")
				s.End()
				n++
			}
			b.ReportMetric(float64(tel.DroppedSpans())/float64(n), "dropped/op")
			sctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			_ = tel.Shutdown(sctx)
		})
	}
}
