package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
	"github.com/tracegate/tracegate/internal/plugin"
	"github.com/tracegate/tracegate/internal/telemetry"
	"github.com/tracegate/tracegate/internal/traceview"
)

// runtime is one running gateway with its telemetry.
type runtime struct {
	cfg     *config.Config
	log     *slog.Logger
	tel     *telemetry.Telemetry
	store   *traceview.Store // nil when the viewer is off
	gateway *gateway.Gateway

	mcpAddr, adminAddr string
}

func newRuntime(ctx context.Context, cfg *config.Config, stderr io.Writer) (*runtime, error) {
	log, err := telemetry.NewLogger(stderr, cfg.Log)
	if err != nil {
		return nil, err
	}
	rt := &runtime{cfg: cfg, log: log}
	var procs []sdktrace.SpanProcessor
	if v := cfg.Telemetry.Viewer; v.Enabled == nil || *v.Enabled {
		rt.store = traceview.New(traceview.Limits{MaxSpans: v.MaxSpans, MaxBytes: v.MaxBytes})
		procs = append(procs, rt.store)
	}
	rt.tel, err = telemetry.New(ctx, cfg.Telemetry, telemetry.Options{ExtraSpanProcessors: procs, Version: currentBuild.Version, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	// Plugin spans are children of the SERVER span, so they come from the
	// same tracer provider.
	chain, err := plugin.New(cfg.Plugins, plugin.Options{TracerProvider: rt.tel.TracerProvider, Logger: log})
	if err != nil {
		rt.tel.Shutdown(context.Background())
		return nil, fmt.Errorf("plugins: %w", err)
	}
	rt.gateway, err = gateway.New(cfg, rt.gatewayOptions(chain))
	if err != nil {
		rt.tel.Shutdown(context.Background())
		return nil, err
	}
	return rt, nil
}

// gatewayOptions wires tracing and the plugin chain into the gateway (see
// gateway.TracingOptions).
func (rt *runtime) gatewayOptions(chain *plugin.Chain) gateway.Options {
	opts := gateway.TracingOptions(rt.cfg, rt.tel, chain)
	opts.Logger = rt.log
	opts.Version = currentBuild.Version
	opts.SessionIdleTimeout = rt.cfg.SessionIdleTimeout.D()
	if rt.store != nil {
		opts.OnBackendState = rt.store.RecordBackendState
	}
	return opts
}

func (rt *runtime) close(ctx context.Context) {
	rt.gateway.Close()
	if err := rt.tel.Shutdown(ctx); err != nil {
		rt.log.Warn("flushing telemetry", "error", err)
	}
}
