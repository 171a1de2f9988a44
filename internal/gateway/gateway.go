// Package gateway is tracegate's virtual MCP server: one endpoint (/mcp)
// in front of many backend servers, and each backend alone
// (/mcp/{backend}).
//
// Every request goes through one pipeline, whatever its method, its
// client's protocol revision and its backend's transport:
//
//	check the HTTP request → decode the message → resolve the session →
//	trace (SERVER span) → route → plugins → send (CLIENT span) →
//	relay what comes back → map errors → answer
//
// Each stage exists once. The gateway works on raw JSON-RPC bytes (package
// wire): what it does not rewrite (an id, a namespaced name, the trace
// fields of _meta, a progress token) reaches the backend exactly as the
// client sent it, and the backend's answer reaches the client the same
// way. Transports are layers below: package conn speaks Streamable HTTP,
// SSE and stdio to backends, and http.go speaks both protocol
// generations (stateful sessions, stateless 2026-07-28) to clients.
package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/cluster"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/httplimit"
	"github.com/tracegate/tracegate/internal/plugin"
	"github.com/tracegate/tracegate/mcptrace"
)

// Options are the parts of a Gateway that are not configuration:
// telemetry and the plugin chain. The zero value works (no tracing).
type Options struct {
	// Logger for the gateway and its backends. If nil, slog.Default().
	Logger *slog.Logger
	// Version is reported as the server version to clients.
	Version string
	// Server makes the SERVER span of every message received from
	// clients. If nil, none.
	Server *mcptrace.ServerTracer
	// Backend returns the tracer of the CLIENT spans of one backend. If
	// nil, or if it returns nil, none.
	Backend func(config.Backend) *mcptrace.ClientTracer
	// BackendTransport returns the HTTP round tripper for one HTTP or SSE
	// backend (e.g. one injecting trace context headers). If nil, a
	// pooled transport.
	BackendTransport func(config.Backend) http.RoundTripper
	// WrapHTTP wraps the MCP HTTP handler inside auth and the size limit
	// (the HTTP span goes here).
	WrapHTTP func(http.Handler) http.Handler
	// KeepAlive is the backend ping interval (default 10s).
	KeepAlive time.Duration
	// MinBackoff bounds the first reconnect delay (default 100ms).
	MinBackoff time.Duration
	// SessionIdleTimeout closes a client session after this long with no
	// request and no open stream (default 30 minutes).
	SessionIdleTimeout time.Duration
	// TracerProvider, when set, traces the gateway's own work on each
	// backend (connecting, relisting) as one INTERNAL span apiece.
	TracerProvider trace.TracerProvider
	// Refusals counts requests refused for a limit (body size, body read
	// time, sessions). If nil, they are not counted.
	Refusals *httplimit.Refusals
	// OnBackendState, when set, is told of every backend state change
	// (the viewer's backend history).
	OnBackendState func(backend, state string, at time.Time, detail string)
	// Plugins is the policy chain run around tools/call, prompts/get and
	// resources/read, inside the SERVER span. If nil, no plugin runs.
	Plugins *plugin.Chain
	// Cluster, when set, shares the gateway's client sessions with the
	// other replicas of the cluster (see package cluster). The caller
	// starts and closes it.
	Cluster *cluster.Cluster
}

// Gateway is the running virtual server.
type Gateway struct {
	cfg      *config.Config
	opts     Options
	log      *slog.Logger
	backends []*backend.Backend
	byName   map[string]*backend.Backend

	all    *front
	single map[string]*front

	sessions *sessionTable
	replicas *replicas // nil without Options.Cluster
	flight   *flight
	levels   *logLevels
	subs     *subscriptions

	handler http.Handler
	names   policyNames // for plugin filters on /mcp/{backend}

	syncMu    sync.Mutex
	synced    sync.Map // *backend.Backend -> backend.State its last sync saw
	closeOnce sync.Once
	stopReap  context.CancelFunc
	closed    atomic.Bool // CloseStreams was called: no new GET stream opens
}

// New builds a gateway for cfg. It does not connect to backends until Start.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Gateway{
		cfg:      cfg,
		opts:     opts,
		log:      opts.Logger,
		byName:   map[string]*backend.Backend{},
		single:   map[string]*front{},
		sessions: newSessionTable(),
		flight:   newFlight(),
	}
	if opts.Cluster != nil {
		g.replicas = newReplicas(g, opts.Cluster)
		opts.Cluster.OnRecover(g.replicas.recovered)
	}
	g.levels = newLogLevels(g)
	g.subs = newSubscriptions(g)
	var spans trace.Tracer
	if opts.TracerProvider != nil {
		spans = opts.TracerProvider.Tracer("github.com/tracegate/tracegate/internal/backend")
	}
	for _, bc := range cfg.Backends {
		if _, dup := g.byName[bc.Name]; dup {
			return nil, errors.New("duplicate backend " + bc.Name)
		}
		bopts := backend.Options{
			Logger:        g.log,
			SpanTracer:    spans,
			OnMessage:     g.fromBackend,
			OnSession:     g.sessionReady,
			OnChange:      g.backendChanged,
			ClientName:    "tracegate",
			ClientVersion: opts.Version,
			KeepAlive:     opts.KeepAlive,
			MinBackoff:    opts.MinBackoff,
		}
		if opts.Backend != nil {
			bopts.Tracer = opts.Backend(bc)
		}
		if opts.BackendTransport != nil {
			bopts.HTTPClient = &http.Client{Transport: opts.BackendTransport(bc)}
		}
		b := backend.New(bc, bopts)
		g.backends = append(g.backends, b)
		g.byName[bc.Name] = b
	}
	g.all = newFront(g, "", g.backends, &namer{format: cfg.Tools.NameFormat})
	for _, b := range g.backends {
		g.single[b.Name()] = newFront(g, b.Name(), []*backend.Backend{b}, nil)
	}
	g.handler = g.buildHandler()
	return g, nil
}

// Start connects to every backend in the background.
func (g *Gateway) Start(ctx context.Context) {
	for _, b := range g.backends {
		b.Start(ctx)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g.stopReap = cancel
	idle := g.opts.SessionIdleTimeout
	if idle <= 0 {
		idle = defaultSessionIdle
	}
	go g.reap(ctx, idle)
}

// Backends returns the gateway's backends in configuration order.
func (g *Gateway) Backends() []*backend.Backend { return g.backends }

// Handler serves /mcp and /mcp/{backend}.
func (g *Gateway) Handler() http.Handler { return g.handler }

// WaitReady blocks until every backend has reached a ready or down state at
// least once and its catalog is published, or ctx is done.
func (g *Gateway) WaitReady(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		settled := true
		for _, b := range g.backends {
			s := b.State()
			if synced, _ := g.synced.Load(b); s == backend.StateConnecting || synced != s {
				settled = false
			}
		}
		if settled {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// CloseStreams ends every client's open SSE stream (GET streams and the
// streams of calls in flight keep their calls), so that a shutdown's grace
// period is spent on calls, not on listeners that never end.
func (g *Gateway) CloseStreams() {
	g.closed.Store(true)
	g.sessions.each(func(s *session) { s.closeStream() })
}

// Close ends every client session and disconnects every backend, stopping
// stdio children.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		if g.stopReap != nil {
			g.stopReap()
		}
		g.CloseStreams()
		var wg sync.WaitGroup
		for _, b := range g.backends {
			wg.Go(func() { b.Close() })
		}
		wg.Wait()
	})
	return nil
}

// backendChanged rebuilds the fronts' views after a backend's state or
// catalog changed, and tells clients which lists changed.
func (g *Gateway) backendChanged(b *backend.Backend) {
	// Serialize rebuilds: backends change concurrently.
	g.syncMu.Lock()
	defer g.syncMu.Unlock()
	state := b.State()
	if prev, _ := g.synced.Load(b); prev != state && g.opts.OnBackendState != nil {
		st := b.Status()
		g.opts.OnBackendState(b.Name(), string(state), st.Since, st.LastError)
	}
	g.all.sync()
	if f := g.single[b.Name()]; f != nil {
		f.sync()
	}
	g.synced.Store(b, state)
}

// sessionReady restores on a new backend session what clients had set:
// the log level and resource subscriptions.
func (g *Gateway) sessionReady(s *backend.Session) {
	g.levels.applyTo(s)
	g.subs.restore(s)
}
