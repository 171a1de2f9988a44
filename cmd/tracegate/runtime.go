package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tracegate/tracegate/internal/auth"
	"github.com/tracegate/tracegate/internal/backend"
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
	if cfg.Telemetry.CaptureIdentity {
		log = slog.New(auth.LogHandler(log.Handler()))
	}
	// Backend TLS files are read here, so that a missing CA or key stops
	// the start rather than every call; this also logs the warning for
	// insecure_skip_verify once.
	for _, b := range cfg.Backends {
		if b.URL == "" {
			continue
		}
		if _, err := auth.BackendTransport(backend.NewHTTPTransport(), b, log); err != nil {
			return nil, fmt.Errorf("backend %q: %w", b.Name, err)
		}
	}
	rt := &runtime{cfg: cfg, log: log}
	var procs []sdktrace.SpanProcessor
	if v := cfg.Telemetry.Viewer; v.Enabled == nil || *v.Enabled {
		rt.store = traceview.NewStore(v.MaxSpans)
		procs = append(procs, rt.store)
	}
	rt.tel, err = telemetry.New(ctx, cfg.Telemetry, telemetry.Options{ExtraSpanProcessors: procs, Version: version, Logger: log})
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
	opts.Version = version
	opts.SessionIdleTimeout = rt.cfg.SessionIdleTimeout.D()
	return opts
}

// adminMux serves /healthz, /readyz, /metrics and, with the viewer on, the
// trace API, the UI and OTLP/HTTP ingest at /v1/traces.
func (rt *runtime) adminMux() *http.ServeMux {
	mux := http.NewServeMux()
	rt.gateway.RegisterAdmin(mux)
	mux.Handle("GET /metrics", rt.tel.MetricsHandler())
	if rt.store != nil {
		mux.Handle("POST /v1/traces", rt.store.OTLPHandler())
		mux.Handle("/api/", rt.store.Handler())
		mux.Handle("/ui/", rt.store.Handler())
		mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	}
	return mux
}

func (rt *runtime) close(ctx context.Context) {
	rt.gateway.Close()
	if err := rt.tel.Shutdown(ctx); err != nil {
		rt.log.Warn("flushing telemetry", "error", err)
	}
}
