// Package backend keeps the gateway's MCP sessions with one configured
// server (Streamable HTTP, legacy SSE, or a stdio child process): it
// connects and initializes, lists the server's catalog, watches the
// session with keepalive pings, and reconnects with backoff when the
// server goes away.
//
// A backend has one control session, which lists the catalog and, with
// `sessions: shared`, carries every client's calls. With `sessions:
// per_client`, each client session of the gateway gets a session of its
// own (for stdio, its own child), opened on first use, bounded in number,
// and closed with the client's session, so that a server's requests to
// its client (sampling, elicitation, roots) always reach their caller.
//
// Sessions move raw JSON-RPC messages (package conn); this package speaks
// just enough MCP to initialize and list, and leaves routing to the
// gateway.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/conn"
	"github.com/tracegate/tracegate/internal/h1"
	"github.com/tracegate/tracegate/internal/redact"
	"github.com/tracegate/tracegate/mcptrace"
)

// State is a backend's connection state.
type State string

const (
	StateConnecting State = "connecting"
	StateReady      State = "ready"
	StateDown       State = "down"
	StateStopped    State = "stopped"
)

// Options configures a Backend. The zero value works.
type Options struct {
	// Logger receives one line per state change. If nil, slog.Default().
	Logger *slog.Logger
	// HTTPClient sends the HTTP requests of Streamable HTTP and SSE
	// backends; its transport injects trace headers. If nil, one with
	// NewHTTPTransport.
	HTTPClient *http.Client
	// Tracer makes the CLIENT span of every request sent on a session
	// (the keepalive ping excepted). If nil, none.
	Tracer *mcptrace.ClientTracer
	// SpanTracer, when set, puts the gateway's own work on the backend
	// (connecting and listing, relisting after list_changed) under one
	// INTERNAL root span each, so the requests it makes form one trace.
	SpanTracer trace.Tracer
	// OnMessage receives every message a session gets that is not the
	// response to one of its requests nor on a request's own stream: the
	// server's requests and notifications. It is called from the
	// session's reading goroutine and must not block for long.
	OnMessage func(s *Session, msg []byte)
	// OnSession is called when a session is ready for calls (after its
	// handshake; for the control session, after its catalog is listed), so
	// the gateway can restore what it had set on the server (log level,
	// subscriptions).
	OnSession func(s *Session)
	// OnChange is called after the state or the catalog changed.
	OnChange func(*Backend)
	// ClientName and ClientVersion name the gateway in initialize.
	ClientName, ClientVersion string
	// MinBackoff and MaxBackoff bound reconnect delays. Defaults 100ms,
	// and 2s for network backends (a recovered server is found within
	// seconds, however long it was down) or 30s for stdio children (one
	// that crash-loops must not be restarted in a tight loop).
	MinBackoff, MaxBackoff time.Duration
	// KeepAlive is the interval of pings on the control session. Default
	// 10s; negative disables.
	KeepAlive time.Duration
	// MaxClientSessions bounds per-client sessions (sessions: per_client).
	// Default 64.
	MaxClientSessions int
}

// Status is a snapshot for /readyz.
type Status struct {
	Name      string    `json:"name"`
	Transport string    `json:"transport"`
	State     State     `json:"state"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
	Tools     int       `json:"tools"`
	Prompts   int       `json:"prompts"`
	Resources int       `json:"resources"`
	Restarts  int       `json:"restarts"`
	Sessions  int       `json:"client_sessions,omitempty"`
}

// Backend is one configured server.
type Backend struct {
	cfg  config.Backend
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	state    State
	since    time.Time
	lastErr  string
	control  *Session
	catalog  *Catalog
	restarts int
	clients  map[string]*clientSlot // per_client sessions by client key
	stderr   *tailWriter
	redactor *redact.Redactor
	// tracer is opts.Tracer, which SetTracer replaces on a running backend.
	tracer atomic.Pointer[mcptrace.ClientTracer]

	kick    chan struct{}
	refresh chan struct{}
	cancel  context.CancelFunc
	life    context.Context
	done    chan struct{}
	startMu sync.Once
	closeMu sync.Once
}

// clientSlot is one client's session, or the dial in progress for it.
type clientSlot struct {
	ready chan struct{} // closed when s or err is set
	s     *Session
	err   error
}

// New returns a Backend for cfg. Call Start to connect.
func New(cfg config.Backend, opts Options) *Backend {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 2 * time.Second
		if cfg.Transport == config.TransportStdio {
			opts.MaxBackoff = 30 * time.Second
		}
	}
	if opts.KeepAlive == 0 {
		opts.KeepAlive = 10 * time.Second
	}
	if opts.MaxClientSessions <= 0 && cfg.MaxSessions > 0 {
		opts.MaxClientSessions = cfg.MaxSessions
	}
	if opts.MaxClientSessions <= 0 {
		opts.MaxClientSessions = 64
	}
	if opts.ClientName == "" {
		opts.ClientName = "tracegate"
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Transport: h1.New(NewHTTPTransport())}
	}
	b := &Backend{
		cfg:     cfg,
		opts:    opts,
		log:     opts.Logger.With("backend", cfg.Name),
		state:   StateConnecting,
		since:   time.Now(),
		catalog: &Catalog{},
		clients: map[string]*clientSlot{},
		kick:    make(chan struct{}, 1),
		refresh: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	if cfg.Transport == config.TransportStdio {
		b.stderr = newTailWriter(b.log)
	}
	b.redactor = redact.New(redact.HeaderSecrets(cfg.Headers)...)
	b.tracer.Store(opts.Tracer)
	return b
}

// SetTracer replaces the tracer of the CLIENT spans (nil for none): a
// configuration reload changes what is recorded without reconnecting.
// Requests already sent keep the span they started with.
func (b *Backend) SetTracer(t *mcptrace.ClientTracer) { b.tracer.Store(t) }

// NewHTTPTransport returns the base HTTP transport for backends: pooled
// keep-alive connections sized for many concurrent calls to one host. The
// backends' round tripper is an h1.Transport over it, which makes
// plain-HTTP exchanges itself and hands it the rest.
func NewHTTPTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	t.MaxIdleConns = 1024
	return t
}

// Name is the configured name.
func (b *Backend) Name() string { return b.cfg.Name }

// Config is the backend's configuration.
func (b *Backend) Config() config.Backend { return b.cfg }

// PerClient reports `sessions: per_client`.
func (b *Backend) PerClient() bool { return b.cfg.Sessions == config.SessionsPerClient }

// Start connects in the background and keeps the backend connected until
// Close.
func (b *Backend) Start(ctx context.Context) {
	b.startMu.Do(func() {
		b.life, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
		go b.run(b.life)
	})
}

// Close disconnects every session and stops stdio children. It is
// idempotent.
func (b *Backend) Close() error {
	b.closeMu.Do(func() {
		if b.cancel == nil {
			close(b.done)
			return
		}
		b.cancel()
		<-b.done
		b.mu.Lock()
		slots := b.clients
		b.clients = map[string]*clientSlot{}
		b.mu.Unlock()
		var wg sync.WaitGroup
		for _, c := range slots {
			wg.Go(func() {
				<-c.ready
				if c.s != nil {
					c.s.Close()
				}
			})
		}
		wg.Wait()
	})
	return nil
}

// Catalog returns what the backend offers, as last listed.
func (b *Backend) Catalog() *Catalog {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.catalog
}

// State returns the connection state.
func (b *Backend) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Status is a snapshot for /readyz.
func (b *Backend) Status() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Status{
		Name:      b.cfg.Name,
		Transport: string(b.transportName()),
		State:     b.state,
		Since:     b.since,
		LastError: b.lastErr,
		Tools:     len(b.catalog.Tools),
		Prompts:   len(b.catalog.Prompts),
		Resources: len(b.catalog.Resources) + len(b.catalog.Templates),
		Restarts:  b.restarts,
		Sessions:  len(b.clients),
	}
}

// Timeout bounds each call.
func (b *Backend) Timeout() time.Duration {
	if d := b.cfg.Timeout.D(); d > 0 {
		return d
	}
	return 30 * time.Second
}

// Check asks for a health check now, e.g. after a call failed below the
// protocol.
func (b *Backend) Check() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Refresh asks for the catalog to be listed again (list_changed).
func (b *Backend) Refresh() {
	select {
	case b.refresh <- struct{}{}:
	default:
	}
}

// ErrUnavailable is wrapped by the errors of a backend that is not ready.
var ErrUnavailable = errors.New("backend unavailable")

// Unavailable is the error for a call to a backend that is not ready.
func (b *Backend) Unavailable() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lastErr != "" {
		return fmt.Errorf("%w: %s (%s)", ErrUnavailable, b.state, b.lastErr)
	}
	return fmt.Errorf("%w: %s", ErrUnavailable, b.state)
}

// SessionFor returns the session that carries client's calls: the control
// session, or with per_client the client's own, opened on first use.
func (b *Backend) SessionFor(ctx context.Context, client string) (*Session, error) {
	b.mu.Lock()
	if b.state != StateReady || b.control == nil {
		b.mu.Unlock()
		return nil, b.Unavailable()
	}
	if !b.PerClient() || client == "" {
		s := b.control
		b.mu.Unlock()
		return s, nil
	}
	slot := b.clients[client]
	if slot == nil {
		if len(b.clients) >= b.opts.MaxClientSessions {
			b.mu.Unlock()
			return nil, fmt.Errorf("%w: %d client sessions are open, the limit", ErrUnavailable, b.opts.MaxClientSessions)
		}
		slot = &clientSlot{ready: make(chan struct{})}
		b.clients[client] = slot
		b.mu.Unlock()
		go b.dialClient(client, slot)
	} else {
		b.mu.Unlock()
	}
	select {
	case <-slot.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if slot.err != nil {
		return nil, slot.err
	}
	return slot.s, nil
}

func (b *Backend) dialClient(client string, slot *clientSlot) {
	ctx, cancel := context.WithTimeout(b.life, b.Timeout())
	defer cancel()
	s, err := b.open(ctx, client)
	if err == nil && b.opts.OnSession != nil {
		b.opts.OnSession(s)
	}
	slot.s, slot.err = s, err
	if err != nil {
		b.mu.Lock()
		if b.clients[client] == slot {
			delete(b.clients, client)
		}
		b.mu.Unlock()
	} else {
		go func() {
			// A client session that dies is forgotten, so the next call
			// opens a new one.
			<-s.conn.Done()
			b.mu.Lock()
			if b.clients[client] == slot {
				delete(b.clients, client)
			}
			b.mu.Unlock()
		}()
	}
	close(slot.ready)
}

// ReleaseClient closes the session opened for client, if any: the client's
// session with the gateway ended.
func (b *Backend) ReleaseClient(client string) {
	b.mu.Lock()
	slot := b.clients[client]
	delete(b.clients, client)
	b.mu.Unlock()
	if slot != nil {
		go func() {
			<-slot.ready
			if slot.s != nil {
				slot.s.Close()
			}
		}()
	}
}

// Sessions returns every open session: the control session first.
func (b *Backend) Sessions() []*Session {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*Session
	if b.control != nil {
		out = append(out, b.control)
	}
	for _, c := range b.clients {
		select {
		case <-c.ready:
			if c.s != nil {
				out = append(out, c.s)
			}
		default:
		}
	}
	return out
}

func (b *Backend) setState(s State, err error) {
	b.mu.Lock()
	changed := b.state != s
	b.state = s
	if changed {
		b.since = time.Now()
	}
	if err != nil {
		b.lastErr = b.redact(err)
	} else if s == StateReady {
		b.lastErr = ""
	}
	if s != StateReady {
		b.catalog = &Catalog{}
		b.control = nil
	}
	lastErr := b.lastErr
	b.mu.Unlock()
	if changed {
		attrs := []any{"state", string(s)}
		if lastErr != "" && s != StateReady {
			attrs = append(attrs, "error", lastErr)
		}
		level := slog.LevelInfo
		if s == StateDown {
			level = slog.LevelWarn
		}
		b.log.Log(context.Background(), level, "backend state changed", attrs...)
	}
	if b.opts.OnChange != nil {
		b.opts.OnChange(b)
	}
}

// stableSession is how long a session must last for the backoff to start
// over from its minimum.
const stableSession = 10 * time.Second

func (b *Backend) run(ctx context.Context) {
	defer close(b.done)
	delay := b.opts.MinBackoff
	first := true
	for {
		if !first {
			b.mu.Lock()
			b.restarts++
			b.mu.Unlock()
		}
		first = false
		b.setState(StateConnecting, nil)
		sctx, end := b.span(ctx, "connect")
		s, err := b.open(sctx, "")
		if err == nil {
			err = b.list(sctx, s)
			if err != nil {
				s.Close()
			}
		}
		end(err)
		if err == nil {
			readyAt := time.Now()
			err = b.watch(ctx, s)
			if ctx.Err() == nil {
				b.setState(StateDown, err)
			}
			s.Close()
			if time.Since(readyAt) >= stableSession {
				delay = b.opts.MinBackoff
			}
		} else if ctx.Err() == nil {
			b.setState(StateDown, err)
		}
		if ctx.Err() != nil {
			b.setState(StateStopped, nil)
			return
		}
		select {
		case <-ctx.Done():
			b.setState(StateStopped, nil)
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, b.opts.MaxBackoff)
	}
}

// span starts the INTERNAL root span of the gateway's own work on the
// backend.
func (b *Backend) span(ctx context.Context, what string) (context.Context, func(error)) {
	if b.opts.SpanTracer == nil {
		return ctx, func(error) {}
	}
	ctx, span := b.opts.SpanTracer.Start(ctx, what+" "+b.cfg.Name,
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithNewRoot(),
		trace.WithAttributes(
			attribute.String("tracegate.backend.name", b.cfg.Name),
			attribute.String("tracegate.backend.transport", string(b.transportName())),
		))
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, b.redact(err))
		}
		span.End()
	}
}

func (b *Backend) transportName() config.Transport {
	if b.cfg.Transport == "" {
		if len(b.cfg.Command) > 0 {
			return config.TransportStdio
		}
		return config.TransportStreamable
	}
	return b.cfg.Transport
}

// watch returns when the control session ends, a health check fails, or
// ctx is done. Keepalive pings make no span: one root trace per backend
// every few seconds would bury real traffic.
func (b *Backend) watch(ctx context.Context, s *Session) error {
	var tick <-chan time.Time
	if b.opts.KeepAlive > 0 {
		t := time.NewTicker(b.opts.KeepAlive)
		defer t.Stop()
		tick = t.C
	}
	failures := 0
	ping := func() error {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(b.Timeout(), 5*time.Second))
		defer cancel()
		_, err := s.Call(pctx, "ping", nil, true)
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.conn.Done():
			return fmt.Errorf("session ended: %w", b.withStderr(s.conn.Err()))
		case <-tick:
			// The session is shared by every client: one slow ping must
			// not tear it down with every call in flight. The spec allows
			// a reset after "multiple failed pings" (basic/utilities/ping).
			if err := ping(); err != nil && ctx.Err() == nil {
				if failures++; failures >= 2 {
					return fmt.Errorf("health check: %w", err)
				}
			} else {
				failures = 0
			}
		case <-b.kick:
			if err := ping(); err != nil && ctx.Err() == nil {
				return fmt.Errorf("health check: %w", err)
			}
		case <-b.refresh:
			sctx, end := b.span(ctx, "relist")
			err := b.list(sctx, s)
			end(err)
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("listing catalog: %w", err)
			}
		}
	}
}

// open dials a session and runs its handshake. client is the client key
// of a per-client session, "" for the control session.
func (b *Backend) open(ctx context.Context, client string) (*Session, error) {
	cctx, cancel := context.WithTimeout(ctx, b.Timeout())
	defer cancel()
	s := &Session{b: b, client: client, start: time.Now()}
	opts := conn.Options{
		HTTPClient:  b.opts.HTTPClient,
		Header:      b.header(),
		Unsolicited: s.unsolicited,
		Logger:      b.log,
		Env:         b.cfg.Env,
		Dir:         b.cfg.Dir,
	}
	if b.stderr != nil {
		opts.Stderr = b.stderr
	}
	// The connection outlives ctx: it belongs to the backend's life.
	c, err := conn.Dial(b.life, conn.Endpoint{Transport: string(b.transportName()), URL: b.cfg.URL, Command: b.cfg.Command}, opts)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", b.withStderr(err))
	}
	s.conn = c
	if err := s.handshake(cctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("initialize: %w", b.withStderr(err))
	}
	return s, nil
}

func (b *Backend) header() http.Header {
	if len(b.cfg.Headers) == 0 {
		return nil
	}
	h := make(http.Header, len(b.cfg.Headers))
	for k, v := range b.cfg.Headers {
		h.Set(k, v)
	}
	return h
}

// list fetches the catalog on the control session and marks the backend
// ready.
func (b *Backend) list(ctx context.Context, s *Session) error {
	lctx, cancel := context.WithTimeout(ctx, b.Timeout())
	defer cancel()
	cat, err := s.listCatalog(lctx)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.catalog = cat
	first := b.control != s
	b.control = s
	b.mu.Unlock()
	if first && b.opts.OnSession != nil {
		b.opts.OnSession(s)
	}
	b.setState(StateReady, nil)
	return nil
}

func (b *Backend) withStderr(err error) error {
	if b.stderr == nil || err == nil {
		return err
	}
	if line := b.stderr.Last(); line != "" {
		return fmt.Errorf("%w (stderr: %s)", err, line)
	}
	return err
}
