package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
	"github.com/tracegate/tracegate/internal/plugin"
	"github.com/tracegate/tracegate/internal/telemetry"
	"github.com/tracegate/tracegate/internal/traceview"
	"github.com/tracegate/tracegate/mcptrace"
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

// gatewayOptions wires tracing into the gateway: mcptrace middleware makes
// the SERVER spans (front) and the CLIENT spans (one per backend call), and
// its round tripper puts the CLIENT span's context in HTTP headers too.
// The plugin chain runs inside the SERVER span.
func (rt *runtime) gatewayOptions(chain *plugin.Chain) gateway.Options {
	cfg := rt.cfg
	common := []mcptrace.Option{
		mcptrace.WithTracerProvider(rt.tel.TracerProvider),
		mcptrace.WithMeterProvider(rt.tel.MeterProvider),
		mcptrace.WithPropagators(rt.tel.Propagator),
	}
	if cfg.Telemetry.CaptureArguments {
		// Captured content passes through the redact plugins' patterns:
		// the SERVER span sees the arguments before the chain scrubs them.
		common = append(common, mcptrace.WithContentCapture(4096), mcptrace.WithContentRedactor(chain.ContentRedactor()))
	}
	server := append(common[:len(common):len(common)],
		mcptrace.WithNetworkTransport("tcp", "http", "1.1"),
		mcptrace.WithHTTPSpanContext(gateway.HTTPSpanContext),
		mcptrace.WithRequestAttributes(gateway.RequestAttributes),
	)
	opts := gateway.Options{
		Logger:  rt.log,
		Version: version,
		Plugins: chain,
		// Content capture reads tool results, which forwarded calls do
		// not decode.
		DecodeAllCalls:          cfg.Telemetry.CaptureArguments,
		ServerMiddleware:        []mcp.Middleware{mcptrace.ServerMiddleware(server...)},
		ServerSendingMiddleware: []mcp.Middleware{mcptrace.ServerSendingMiddleware(common...)},
		BackendMiddleware: func(b config.Backend) []mcp.Middleware {
			return []mcp.Middleware{gateway.UntracedKeepalive(mcptrace.ClientMiddleware(backendTraceOptions(common, b)...))}
		},
		BackendTransport: func(b config.Backend) http.RoundTripper {
			return mcptrace.NewTransport(backend.NewHTTPTransport(), backendTraceOptions(common, b)...)
		},
	}
	if cfg.Telemetry.HTTPSpans != nil && *cfg.Telemetry.HTTPSpans {
		opts.WrapHTTP = gateway.HTTPSpans(rt.tel.TracerProvider, rt.tel.Propagator)
	}
	return opts
}

func backendTraceOptions(common []mcptrace.Option, b config.Backend) []mcptrace.Option {
	opts := append(common[:len(common):len(common)],
		mcptrace.WithAttributes(attribute.String("tracegate.backend.name", b.Name)),
		mcptrace.WithBaggage(baggagePolicy(b.Baggage)),
	)
	if b.URL != "" {
		if u, err := url.Parse(b.URL); err == nil {
			host, portStr, err := net.SplitHostPort(u.Host)
			if err != nil {
				host, portStr = u.Host, map[string]string{"https": "443"}[u.Scheme]
				if portStr == "" {
					portStr = "80"
				}
			}
			port, _ := strconv.Atoi(portStr)
			opts = append(opts, mcptrace.WithServerAddress(host, port), mcptrace.WithNetworkTransport("tcp", "http", "1.1"))
		}
	} else {
		opts = append(opts, mcptrace.WithNetworkTransport("pipe", "", ""))
	}
	return opts
}

func baggagePolicy(p config.BaggagePolicy) mcptrace.BaggagePolicy {
	switch p.Mode {
	case config.BaggageAll:
		return mcptrace.BaggageAll()
	case config.BaggageKeys:
		return mcptrace.BaggageKeys(p.Keys...)
	default:
		return mcptrace.BaggageNone()
	}
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
