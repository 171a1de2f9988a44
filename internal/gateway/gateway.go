// Package gateway is tracegate's virtual MCP server: it aggregates the
// catalogs of its backends into one endpoint (/mcp), exposes each backend
// alone (/mcp/{backend}), routes calls, and relays what backends send back
// to the right client session.
//
// The protocol on both sides is the official Go SDK's: the SDK's
// Streamable HTTP handler serves every protocol revision (the stateful
// 2025-xx revisions with Mcp-Session-Id, and the stateless 2026-07-28) on
// the same endpoint, and SDK client sessions reach the backends.
package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/auth"
	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/plugin"
)

// Options are the parts of a Gateway that are not configuration: telemetry
// and hooks. The zero value works (no tracing).
type Options struct {
	// Logger for the gateway and its backends. If nil, slog.Default().
	Logger *slog.Logger
	// Version is reported as the server version to clients.
	Version string
	// ServerMiddleware wraps the receiving side of the front servers,
	// outermost first (the tracing middleware goes here).
	ServerMiddleware []mcp.Middleware
	// ServerSendingMiddleware wraps what the front servers send to clients.
	ServerSendingMiddleware []mcp.Middleware
	// BackendMiddleware returns the sending middleware for one backend's
	// client session (its CLIENT spans).
	BackendMiddleware func(config.Backend) []mcp.Middleware
	// BackendTransport returns the base HTTP round tripper for one HTTP or
	// SSE backend (e.g. one injecting trace headers).
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
	// DecodeAllCalls sends every tools/call through the SDK's decoding
	// path instead of forwarding its bytes; set it when middleware reads
	// tool results (content capture), which forwarded calls do not decode.
	DecodeAllCalls bool
	// Plugins is the policy chain run around tools/call, prompts/get and
	// resources/read. Its spans are children of the request's SERVER span,
	// so it must use the same tracer provider as ServerMiddleware. If nil,
	// no plugin runs.
	Plugins *plugin.Chain
}

// Gateway is the running virtual server.
type Gateway struct {
	cfg      *config.Config
	opts     Options
	log      *slog.Logger
	backends []*backend.Backend
	byName   map[string]*backend.Backend
	relay    *relay
	logs     *logLevels

	all    *front
	single map[string]*front

	handler http.Handler
	names   policyNames // for plugin filters on /mcp/{backend}

	syncMu    sync.Mutex
	closeOnce sync.Once

	// seq numbers the ids of forwarded calls on backend sessions.
	seq      atomic.Uint64
	stopReap context.CancelFunc
	// senders is each backend's sending middleware around sendDirect, for
	// forwarded calls.
	senders map[*backend.Backend]mcp.MethodHandler
	// synced holds, per backend, the state its last catalog sync saw.
	synced sync.Map
}

// New builds a gateway for cfg. It does not connect to backends until Start.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Gateway{
		cfg:     cfg,
		opts:    opts,
		log:     opts.Logger,
		byName:  map[string]*backend.Backend{},
		single:  map[string]*front{},
		senders: map[*backend.Backend]mcp.MethodHandler{},
	}
	g.relay = newRelay(g.log)
	g.logs = newLogLevels(g)
	impl := &mcp.Implementation{Name: "tracegate", Title: "tracegate MCP gateway", Version: opts.Version}
	for _, bc := range cfg.Backends {
		if _, dup := g.byName[bc.Name]; dup {
			return nil, errors.New("duplicate backend " + bc.Name)
		}
		bopts := backend.Options{
			Logger:     g.log,
			Relay:      g.relay,
			OnChange:   g.backendChanged,
			ClientInfo: impl,
			KeepAlive:  opts.KeepAlive,
			MinBackoff: opts.MinBackoff,
		}
		if opts.BackendMiddleware != nil {
			bopts.Middleware = opts.BackendMiddleware(bc)
		}
		if opts.BackendTransport != nil {
			bopts.HTTPTransport = opts.BackendTransport(bc)
		}
		if opts.TracerProvider != nil {
			bopts.Tracer = opts.TracerProvider.Tracer("github.com/tracegate/tracegate/internal/backend")
		}
		b := backend.New(bc, bopts)
		g.senders[b] = chain(bopts.Middleware, sendDirect)
		g.backends = append(g.backends, b)
		g.byName[bc.Name] = b
	}
	g.all = g.newFront(impl, g.backends, &namer{format: cfg.Tools.NameFormat})
	for _, b := range g.backends {
		g.single[b.Name()] = g.newFront(impl, []*backend.Backend{b}, nil)
	}
	g.handler = g.buildHandler()
	return g, nil
}

func (g *Gateway) newFront(impl *mcp.Implementation, backends []*backend.Backend, n *namer) *front {
	s := mcp.NewServer(impl, &mcp.ServerOptions{
		Logger: slog.New(quietHandler{g.log.Handler(), slog.LevelWarn}),
		Capabilities: &mcp.ServerCapabilities{
			Tools:       &mcp.ToolCapabilities{ListChanged: true},
			Prompts:     &mcp.PromptCapabilities{ListChanged: true},
			Resources:   &mcp.ResourceCapabilities{ListChanged: true},
			Logging:     &mcp.LoggingCapabilities{},
			Completions: &mcp.CompletionCapabilities{},
		},
	})
	f := newFront(s, backends, n, g.log)
	// Receiving middleware runs outermost-first in the order given; the
	// dispatcher is innermost so that spans cover the whole call.
	// auth first: the SDK runs handlers under the session's context, and
	// the caller's identity must be in every handler's (plugins, spans).
	mws := []mcp.Middleware{auth.ServerMiddleware(), f.sessions.track, g.logs.track}
	mws = append(mws, g.opts.ServerMiddleware...)
	mws = append(mws, g.dispatch(f))
	// The SDK applies middleware so that the last added is outermost.
	for i := len(mws) - 1; i >= 0; i-- {
		s.AddReceivingMiddleware(mws[i])
	}
	for i := len(g.opts.ServerSendingMiddleware) - 1; i >= 0; i-- {
		s.AddSendingMiddleware(g.opts.ServerSendingMiddleware[i])
	}
	return f
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
		idle = sessionIdleTimeout
	}
	go g.all.sessions.reap(ctx, idle)
	for _, f := range g.single {
		go f.sessions.reap(ctx, idle)
	}
}

// Backends returns the gateway's backends in configuration order.
func (g *Gateway) Backends() []*backend.Backend { return g.backends }

// Handler serves /mcp and /mcp/{backend}.
func (g *Gateway) Handler() http.Handler { return g.handler }

// WaitReady blocks until every backend has reached a ready or down state at
// least once, or ctx is done.
func (g *Gateway) WaitReady(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		settled := true
		for _, b := range g.backends {
			s := b.State()
			// Settled means the catalog of that state is published too:
			// the sync runs just after the state changes.
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

// Close disconnects every backend and stops stdio children.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		if g.stopReap != nil {
			g.stopReap()
		}
		var wg sync.WaitGroup
		for _, b := range g.backends {
			wg.Go(func() { b.Close() })
		}
		wg.Wait()
	})
	return nil
}

func (g *Gateway) backendChanged(b *backend.Backend) {
	// Serialize rebuilds: backends change concurrently.
	g.syncMu.Lock()
	defer g.syncMu.Unlock()
	state := b.State()
	g.all.sync()
	if f := g.single[b.Name()]; f != nil {
		f.sync()
	}
	g.synced.Store(b, state)
	if state == backend.StateReady {
		g.logs.backendReady(b)
	}
}

// UntracedKeepalive wraps a tracing middleware so that the keepalive pings
// the gateway sends on its own (outside any request) make no spans: one
// root trace per backend every few seconds would bury real traffic.
func UntracedKeepalive(traced mcp.Middleware) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		t := traced(next)
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method == "ping" && !trace.SpanContextFromContext(ctx).IsValid() {
				return next(ctx, method, req)
			}
			return t(ctx, method, req)
		}
	}
}

// quietHandler drops SDK records below a level: the SDK logs every session
// opening and closing at info, which for stateless clients is every request.
type quietHandler struct {
	slog.Handler
	min slog.Level
}

func (h quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h quietHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(a), h.min}
}

func (h quietHandler) WithGroup(n string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(n), h.min}
}
