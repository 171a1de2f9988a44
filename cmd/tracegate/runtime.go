package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/tracegate/tracegate/internal/auth"
	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/cluster"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
	"github.com/tracegate/tracegate/internal/httplimit"
	"github.com/tracegate/tracegate/internal/plugin"
	"github.com/tracegate/tracegate/internal/redact"
	"github.com/tracegate/tracegate/internal/telemetry"
	"github.com/tracegate/tracegate/internal/traceview"
)

// runtime is one running gateway with its telemetry.
type runtime struct {
	cfg     *config.Config // as started; config() is the one in force
	log     *slog.Logger
	tel     *telemetry.Telemetry
	store   *traceview.Store // nil when the viewer is off
	gateway *gateway.Gateway
	// running is gateway once built, for the backend metrics' callback,
	// which a metric reader may run at any time.
	running atomic.Pointer[gateway.Gateway]
	// limits bounds the MCP listener's requests and streams; mcpHandler
	// sets it.
	limits   *httplimit.Concurrency
	refusals *httplimit.Refusals // counts every request refused for a limit
	cluster  *cluster.Cluster    // with a cluster section; see openCluster
	// replicaID, if set, is the id the cluster membership takes (the
	// demo's replicas name themselves before they join).
	replicaID string

	mcpAddr, adminAddr string

	// What a reload (reload.go) changes.
	path      string // the configuration file; "" when there is none to reload
	current   atomic.Pointer[config.Config]
	exporters atomic.Pointer[[]string] // where telemetry goes, for /admin/config
	adminAuth atomic.Pointer[bearerCheck]
	level     *slog.LevelVar // log.level
	identity  *atomic.Bool   // telemetry.capture_identity, for logs
	reloadMu  sync.Mutex     // serializes reloads; guards chain
	chain     *plugin.Chain
}

func newRuntime(ctx context.Context, cfg *config.Config, stderr io.Writer) (*runtime, error) {
	return newRuntimeTo(ctx, cfg, stderr, nil)
}

// newRuntimeTo is newRuntime with the stdout span exporter writing to
// console (os.Stdout when nil): tracegate stdio gives it stderr, since its
// stdout carries the protocol.
func newRuntimeTo(ctx context.Context, cfg *config.Config, stderr, console io.Writer) (*runtime, error) {
	return buildRuntime(ctx, cfg, stderr, runtimeParts{console: console})
}

// runtimeParts are what a runtime may be given rather than build.
type runtimeParts struct {
	// console is where the stdout span exporter writes; os.Stdout if nil.
	console io.Writer
	// store, if set, is a viewer store shared with the other gateways of
	// the process (the demo's replicas), which the runtime's spans go to
	// in place of a store of its own.
	store *traceview.Store
	// replicaID, if set, is the cluster membership's id and the
	// resource's service.instance.id, so that the viewer tells the
	// replicas' spans apart.
	replicaID string
}

func buildRuntime(ctx context.Context, cfg *config.Config, stderr io.Writer, parts runtimeParts) (*runtime, error) {
	console := parts.console
	level, identity := new(slog.LevelVar), new(atomic.Bool)
	log, err := telemetry.NewLoggerLevel(stderr, cfg.Log, level)
	if err != nil {
		return nil, err
	}
	identity.Store(cfg.Telemetry.CaptureIdentity)
	log = slog.New(identityLogHandler{log.Handler(), identity})
	if err := checkBackendTLS(cfg.Backends, log); err != nil {
		return nil, err
	}
	rt := &runtime{cfg: cfg, log: log, level: level, identity: identity, replicaID: parts.replicaID}
	rt.current.Store(cfg)
	rt.adminAuth.Store(newBearerCheck(cfg.AdminTokens()))
	var procs []sdktrace.SpanProcessor
	if v := cfg.Telemetry.Viewer; parts.store != nil {
		rt.store = parts.store
		procs = append(procs, rt.store)
	} else if v.Enabled == nil || *v.Enabled {
		rt.store = traceview.New(traceview.Limits{MaxSpans: v.MaxSpans, MaxBytes: v.MaxBytes})
		procs = append(procs, rt.store)
	}
	var res []attribute.KeyValue
	if parts.replicaID != "" {
		res = append(res, semconv.ServiceInstanceID(parts.replicaID))
	}
	rt.tel, err = telemetry.New(ctx, cfg.Telemetry, telemetry.Options{ExtraSpanProcessors: procs, Version: currentBuild.Version, Logger: log, Stdout: console, Resource: res})
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	rt.exporters.Store(&rt.tel.Exporters)
	// Plugin spans are children of the SERVER span, so they come from the
	// same tracer provider.
	popts, err := rt.pluginOptions(nil)
	if err != nil {
		rt.tel.Shutdown(context.Background())
		return nil, err
	}
	chain, err := plugin.New(cfg.Plugins, popts)
	if err != nil {
		rt.closeCluster()
		rt.tel.Shutdown(context.Background())
		return nil, fmt.Errorf("plugins: %w", err)
	}
	rt.chain = chain
	rt.gateway, err = gateway.New(cfg, rt.gatewayOptions(chain))
	if err != nil {
		rt.closeCluster()
		rt.tel.Shutdown(context.Background())
		return nil, err
	}
	rt.running.Store(rt.gateway)
	return rt, nil
}

// checkBackendTLS reads the backends' TLS files, so that a missing CA or
// key stops the start (or a reload) rather than every call; this also
// logs the warning for insecure_skip_verify once.
func checkBackendTLS(backends []config.Backend, log *slog.Logger) error {
	for _, b := range backends {
		if b.URL == "" {
			continue
		}
		if _, err := auth.BackendTransport(backend.NewHTTPTransport(), b, log); err != nil {
			return fmt.Errorf("backend %q: %w", b.Name, err)
		}
	}
	return nil
}

// gatewayOptions wires tracing and the plugin chain into the gateway (see
// gateway.TracingOptions).
func (rt *runtime) gatewayOptions(chain *plugin.Chain) gateway.Options {
	opts := rt.configOptions(rt.cfg, chain)
	opts.Logger = rt.log
	opts.Version = currentBuild.Version
	opts.Cluster = rt.cluster
	// A failed counter counts nothing; it never fails the gateway.
	rt.refusals, _ = httplimit.NewRefusals(rt.tel.MeterProvider)
	opts.Refusals = rt.refusals
	var onState []func(string, string, time.Time, string)
	if rt.store != nil {
		onState = append(onState, rt.store.RecordBackendState)
	}
	// Failed instruments measure nothing; they never fail the gateway.
	if bm, err := newBackendMetrics(rt.tel.MeterProvider, rt.backends); err != nil {
		rt.log.Warn("backend metrics", "error", err)
	} else {
		onState = append(onState, bm.stateChanged)
	}
	opts.OnBackendState = chainBackendState(onState...)
	return opts
}

// configOptions are the gateway options built from cfg, which a reload
// builds again.
func (rt *runtime) configOptions(cfg *config.Config, chain *plugin.Chain) gateway.Options {
	opts := gateway.TracingOptions(cfg, rt.tel, chain)
	opts.SessionIdleTimeout = cfg.SessionIdleTimeout.D()
	return opts
}

// pluginOptions are what every plugin chain is built with, at start and
// at each reload (previous, the chain replaced).
func (rt *runtime) pluginOptions(previous *plugin.Chain) (plugin.Options, error) {
	opts := plugin.Options{TracerProvider: rt.tel.TracerProvider, MeterProvider: rt.tel.MeterProvider, Logger: rt.log, Previous: previous}
	err := rt.shareRateLimits(&opts)
	return opts, err
}

// config is the configuration in force.
func (rt *runtime) config() *config.Config { return rt.current.Load() }

// backends returns the gateway's backends, none before it is built.
func (rt *runtime) backends() []*backend.Backend {
	if g := rt.running.Load(); g != nil {
		return g.Backends()
	}
	return nil
}

// mcpHandler is the MCP listener's handler: the gateway behind the
// listener's limits. Each write is bounded (outermost, so that refusals
// are too); concurrency comes next, so that a refused request costs
// nothing; the gateway's own handler then checks the caller's token and
// reads the body, within its deadline and size.
func (rt *runtime) mcpHandler() (http.Handler, error) {
	l := rt.cfg.Limits
	rt.limits = &httplimit.Concurrency{MaxRequests: l.MaxConcurrentRequests, MaxStreams: l.MaxStreams, Refusals: rt.refusals}
	wt := &httplimit.WriteTimeout{Timeout: writeTimeout}
	// The gateway's handler reads bodies within their size and deadline.
	return wt.Wrap(rt.limits.Wrap(rt.gateway.Handler())), nil
}

func (rt *runtime) flushTimeout() time.Duration { return flushTimeout(rt.config()) }

func flushTimeout(cfg *config.Config) time.Duration {
	if d := cfg.Telemetry.FlushTimeout.D(); d > 0 {
		return d
	}
	return config.DefaultFlushTimeout
}

// flushTelemetry shuts telemetry down within telemetry.flush_timeout. It
// returns an error, and logs how many spans were lost, when the flush
// failed.
func (rt *runtime) flushTelemetry() error {
	d := rt.flushTimeout()
	ctx, cancel := context.WithTimeoutCause(context.Background(), d, fmt.Errorf("telemetry.flush_timeout (%s) elapsed", d))
	defer cancel()
	res := rt.tel.ShutdownWithResult(ctx)
	if res.Traces == nil && res.LostSpans == 0 {
		if res.Metrics != nil {
			// The last metric push is lost; /metrics had the values, and
			// no span is missing.
			rt.log.Warn("flushing metrics failed", "error", redact.Error(res.Metrics))
		}
		return nil
	}
	rt.log.Error("flushing telemetry failed: spans lost", "lost_spans", res.LostSpans, "dropped_spans_total", rt.tel.DroppedSpans(), "error", redact.Error(res.Err()))
	return fmt.Errorf("telemetry flush lost %d spans", res.LostSpans)
}

func (rt *runtime) close(ctx context.Context) {
	rt.gateway.Close()
	rt.closeCluster()
	if err := rt.tel.Shutdown(ctx); err != nil {
		rt.log.Warn("flushing telemetry", "error", err)
	}
}
