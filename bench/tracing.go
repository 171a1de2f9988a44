package main

import (
	"context"
	"fmt"
	"time"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
	"github.com/tracegate/tracegate/internal/telemetry"
)

// exported is what a traced scenario sent to its OTLP sink over the run.
type exported struct {
	Scenario      string `json:"scenario"`
	Spans         int64  `json:"spans"`
	CallSpans     int64  `json:"tools_call_spans"`
	MetricExports int64  `json:"metric_exports"`
	// Dropped is spans the gateway's export queue dropped rather than make
	// a call wait (queue full, or a failed export).
	Dropped int64 `json:"dropped_spans"`
	// Bad is exports the sink could not decode.
	Bad int64 `json:"bad_exports"`
	// Calls is the calls measured in the scenario (warm-up excluded).
	Calls int64 `json:"measured_calls"`
	// Problem says why the export check failed; empty when it passed.
	Problem string `json:"problem,omitempty"`
}

// check says what is wrong with an export, if anything. Each sampled call
// makes two tools/call spans in the gateway (SERVER, and CLIENT to the
// backend), so at least twice the measured calls must have been exported
// or dropped; an unsampled call must make none.
func (e *exported) check(flags byte) {
	switch {
	case e.Bad > 0:
		e.Problem = fmt.Sprintf("%d exports could not be decoded", e.Bad)
	case e.MetricExports == 0:
		e.Problem = "no metrics exported"
	case flags == sampled && e.CallSpans+e.Dropped < 2*e.Calls:
		e.Problem = fmt.Sprintf("%d tools/call spans exported and %d spans dropped for %d sampled calls, want at least 2 per call", e.CallSpans, e.Dropped, e.Calls)
	case flags == unsampled && e.CallSpans > 0:
		e.Problem = fmt.Sprintf("%d tools/call spans exported for unsampled calls, want none", e.CallSpans)
	}
}

// tracedGateway is the gateway as `tracegate serve` builds it with
// `telemetry.exporter: otlp` and the default sampler (parent-based, ratio
// 1.0), exporting spans and metrics over OTLP/HTTP to the run's sink at
// up.OTLPURL. Whether calls are recorded is up to the trace flags they
// carry. The viewer is off: it is measured on its own (internal/traceview).
func tracedGateway(ctx context.Context, up upstream) (*path, error) {
	if up.OTLPURL == "" {
		return nil, fmt.Errorf("no OTLP sink to export to")
	}
	cfg := config.Default()
	cfg.Telemetry.Exporter = "otlp"
	cfg.Telemetry.OTLP.Endpoint = up.OTLPURL
	cfg.Telemetry.Viewer.Enabled = new(false)
	// The process environment must not change what is measured.
	noEnv := func(string) string { return "" }
	tel, err := telemetry.New(ctx, cfg.Telemetry, telemetry.Options{Getenv: noEnv, Version: "bench", Logger: discardLogger})
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	shutdown := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tel.Shutdown(sctx)
	}
	p, err := viaGateway(func(context.Context) (gateway.Options, func(), error) {
		return gateway.TracingOptions(cfg, tel, nil), shutdown, nil
	})(ctx, up)
	if err != nil {
		return nil, err
	}
	p.flush = func(ctx context.Context) (int64, error) {
		if err := tel.ForceFlush(ctx); err != nil {
			return 0, err
		}
		if err := tel.MeterProvider.ForceFlush(ctx); err != nil {
			return 0, fmt.Errorf("flush metrics: %w", err)
		}
		return tel.DroppedSpans(), nil
	}
	return p, nil
}
