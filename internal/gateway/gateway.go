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
	opts  Options // as New got them; Reload replaces what live and topology hold
	log   *slog.Logger
	spans trace.Tracer // the backends' own work

	// topo and live are what a reload replaces, each whole, so that the
	// request path reads either with one atomic load.
	topo atomic.Pointer[topology]
	live atomic.Pointer[live]
	// all is /mcp. It and the fronts of topology.single outlive reloads:
	// sessions hold them.
	all *front

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
	closed    atomic.Bool // CloseStreams was called: no new GET stream opens

	reloads reloads
}

// topology is the set of backends in force.
type topology struct {
	backends []*backend.Backend // configuration order
	byName   map[string]*backend.Backend
	single   map[string]*front // /mcp/{backend}
}

// live is what the request path reads of the configuration.
type live struct {
	cfg     *config.Config
	handler http.Handler // auth, body limits and the mux
	plugins *plugin.Chain
	server  *mcptrace.ServerTracer
}

// New builds a gateway for cfg. It does not connect to backends until Start.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Gateway{
		opts:     opts,
		log:      opts.Logger,
		sessions: newSessionTable(),
		flight:   newFlight(),
	}
	if opts.Cluster != nil {
		g.replicas = newReplicas(g, opts.Cluster)
		opts.Cluster.OnRecover(g.replicas.recovered)
	}
	g.levels = newLogLevels(g)
	g.subs = newSubscriptions(g)
	if opts.TracerProvider != nil {
		g.spans = opts.TracerProvider.Tracer("github.com/tracegate/tracegate/internal/backend")
	}
	g.reloads.init()
	topo := &topology{byName: map[string]*backend.Backend{}, single: map[string]*front{}}
	for _, bc := range cfg.Backends {
		if _, dup := topo.byName[bc.Name]; dup {
			return nil, errors.New("duplicate backend " + bc.Name)
		}
		b := g.newBackend(bc, opts)
		topo.backends = append(topo.backends, b)
		topo.byName[bc.Name] = b
	}
	g.all = newFront(g, "", topo.backends, newNamer(cfg.Tools.NameFormat))
	for _, b := range topo.backends {
		topo.single[b.Name()] = newFront(g, b.Name(), []*backend.Backend{b}, nil)
	}
	g.topo.Store(topo)
	g.live.Store(&live{cfg: cfg, handler: g.buildHandler(cfg, opts.WrapHTTP), plugins: opts.Plugins, server: opts.Server})
	g.handler = http.HandlerFunc(g.serveHTTP)
	return g, nil
}

// newBackend makes the backend of bc, with the tracer and transport opts
// give it.
func (g *Gateway) newBackend(bc config.Backend, opts Options) *backend.Backend {
	bopts := backend.Options{
		Logger:        g.log,
		SpanTracer:    g.spans,
		OnMessage:     g.fromBackend,
		OnSession:     g.sessionReady,
		OnChange:      g.backendChanged,
		ClientName:    "tracegate",
		ClientVersion: g.opts.Version,
		KeepAlive:     g.opts.KeepAlive,
		MinBackoff:    g.opts.MinBackoff,
	}
	if opts.Backend != nil {
		bopts.Tracer = opts.Backend(bc)
	}
	if opts.BackendTransport != nil {
		bopts.HTTPClient = &http.Client{Transport: opts.BackendTransport(bc)}
	}
	b := backend.New(bc, bopts)
	g.reloads.own(b)
	return b
}

// Start connects to every backend in the background.
func (g *Gateway) Start(ctx context.Context) {
	g.reloads.start(ctx)
	for _, b := range g.Backends() {
		b.Start(g.reloads.life)
	}
	g.startReaper(g.opts.SessionIdleTimeout)
}

// Backends returns the gateway's backends in configuration order.
func (g *Gateway) Backends() []*backend.Backend { return g.topo.Load().backends }

// Handler serves /mcp and /mcp/{backend}.
func (g *Gateway) Handler() http.Handler { return g.handler }

// config is the configuration in force.
func (g *Gateway) config() *config.Config { return g.live.Load().cfg }

// server is the tracer of the SERVER spans in force, nil for none.
func (g *Gateway) server() *mcptrace.ServerTracer { return g.live.Load().server }

// singleFront is the front of /mcp/{name}, nil when no backend has name.
func (g *Gateway) singleFront(name string) *front { return g.topo.Load().single[name] }

// WaitReady blocks until every backend has reached a ready or down state at
// least once and its catalog is published, or ctx is done.
func (g *Gateway) WaitReady(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		settled := true
		for _, b := range g.Backends() {
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

// Close ends every client session and disconnects every backend, those a
// reload is starting or draining included, stopping stdio children.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		g.stopReaper()
		g.CloseStreams()
		var wg sync.WaitGroup
		for _, b := range g.reloads.close() {
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
	// A backend a reload replaced reports nothing more: its name is its
	// replacement's.
	if prev, _ := g.synced.Load(b); prev != state && g.opts.OnBackendState != nil && !g.reloads.replaced[b] {
		st := b.Status()
		g.opts.OnBackendState(b.Name(), string(state), st.Since, st.LastError)
	}
	g.all.sync()
	if f := g.singleFront(b.Name()); f != nil {
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
