//go:build unix

package telemetry_test

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/otlptest"
	"github.com/tracegate/tracegate/internal/telemetry"
)

// BenchmarkSpanEndPaced ends sampled spans the way a busy gateway does:
// 16 goroutines, each ending a span every 2ms (8000 spans/s), into the
// queue in front of a live collector. Its figure is cpu-ns/span: the
// process's CPU time, export included, over the spans ended. ns/op is the
// pacing, not a cost. Run it with
//
//	go test -run '^$' -bench SpanEndPaced -benchtime 24000x ./internal/telemetry
func BenchmarkSpanEndPaced(b *testing.B) {
	rcv := otlptest.NewReceiver(b)
	env := map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL(), "OTEL_METRICS_EXPORTER": "none"}
	tel, err := telemetry.New(context.Background(), config.Telemetry{}, telemetry.Options{Getenv: envOf(env)})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(ctx)
	}()
	tr := tel.TracerProvider.Tracer("bench")
	const workers = 16
	b.ResetTimer()
	start := cpuTime()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for i := w; i < b.N; i += workers {
				<-tick.C
				_, s := tr.Start(context.Background(), "tools/call echo")
				s.End()
			}
		}()
	}
	wg.Wait()
	cpu := cpuTime() - start
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/span")
	b.ReportMetric(float64(tel.DroppedSpans())/float64(b.N), "dropped/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
