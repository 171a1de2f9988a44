// Package backend keeps one MCP client session per configured backend
// server (Streamable HTTP, legacy SSE, or a stdio child process): it
// connects, lists the backend's catalog, watches the session, and reconnects
// with backoff when the backend goes away.
//
// A backend's session is shared by every client of the gateway: the SDK
// multiplexes concurrent calls on it (one JSON-RPC id space per session), so
// no call ever pays for a new session or a new child process. Messages the
// backend sends back (progress, logging, sampling, elicitation, roots) are
// handed to a Relay, which routes them to the client session that owns the
// call in flight.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/config"
)

// State is a backend's connection state.
type State string

const (
	StateConnecting State = "connecting"
	StateReady      State = "ready"
	StateDown       State = "down"
	StateStopped    State = "stopped"
)

// ErrUnavailable is wrapped by errors returned for a backend that is not ready.
var ErrUnavailable = errors.New("backend unavailable")

// Relay receives what a backend sends that is not a response to the
// gateway's own requests. Implementations route it to a client session.
// Methods are called concurrently.
type Relay interface {
	// Notify relays a notification (progress, logging message, ...).
	Notify(ctx context.Context, b *Backend, method string, params mcp.Params)
	// Request relays a server-to-client request (sampling/createMessage,
	// elicitation/create, roots/list) and returns the client's answer.
	Request(ctx context.Context, b *Backend, method string, req mcp.Request) (mcp.Result, error)
}

// Options configures a Backend. The zero value works.
type Options struct {
	// Logger receives one line per state change. If nil, slog.Default().
	Logger *slog.Logger
	// Middleware wraps the sending side of the backend's client session
	// (the gateway's CLIENT spans live here).
	Middleware []mcp.Middleware
	// HTTPTransport is the base round tripper for HTTP and SSE backends,
	// e.g. one that injects trace context headers. If nil,
	// http.DefaultTransport.
	HTTPTransport http.RoundTripper
	// Relay receives notifications and server-to-client requests. If nil,
	// notifications are dropped and requests are refused.
	Relay Relay
	// OnChange is called after the state or the catalog changed.
	OnChange func(*Backend)
	// ClientInfo names the gateway to backends.
	ClientInfo *mcp.Implementation
	// MinBackoff and MaxBackoff bound reconnect delays. Defaults 100ms, 30s.
	MinBackoff, MaxBackoff time.Duration
	// KeepAlive is the interval of pings that detect a dead session.
	// Default 10s; negative disables.
	KeepAlive time.Duration
	// Tracer, when set, puts the gateway's own work on the backend
	// (connecting and listing its catalog, relisting after list_changed)
	// under one INTERNAL span each, so the requests it makes form one
	// trace rather than a root trace apiece.
	Tracer trace.Tracer
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
	SessionID string    `json:"session_id,omitempty"`
}

// Catalog is what a backend offers, as last listed. It is immutable once
// published.
type Catalog struct {
	Tools     []*mcp.Tool
	Prompts   []*mcp.Prompt
	Resources []*mcp.Resource
	Templates []*mcp.ResourceTemplate
	// Completions reports whether the backend supports completion/complete.
	Completions bool
}

// Backend is one connection to a backend MCP server.
type Backend struct {
	cfg    config.Backend
	opts   Options
	log    *slog.Logger
	client *mcp.Client

	mu       sync.Mutex
	state    State
	since    time.Time
	lastErr  string
	session  *mcp.ClientSession
	direct   *Direct
	httpc    *http.Client // HTTP and SSE backends: one client for every connection
	catalog  *Catalog
	restarts int
	stderr   *tailWriter

	kick    chan struct{}
	refresh chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
	startMu sync.Once
	closeMu sync.Once
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
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.KeepAlive == 0 {
		opts.KeepAlive = 10 * time.Second
	}
	if opts.ClientInfo == nil {
		opts.ClientInfo = &mcp.Implementation{Name: "tracegate"}
	}
	b := &Backend{
		cfg:     cfg,
		opts:    opts,
		log:     opts.Logger.With("backend", cfg.Name),
		state:   StateConnecting,
		since:   time.Now(),
		catalog: &Catalog{},
		kick:    make(chan struct{}, 1),
		refresh: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	b.client = b.newClient()
	if cfg.Transport != config.TransportStdio {
		b.httpc = b.httpClient()
	}
	return b
}

// Name is the configured backend name.
func (b *Backend) Name() string { return b.cfg.Name }

// Config is the backend's configuration.
func (b *Backend) Config() config.Backend { return b.cfg }

// Start connects in the background and keeps the backend connected until
// Close. It returns at once.
func (b *Backend) Start(ctx context.Context) {
	b.startMu.Do(func() {
		ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
		go b.run(ctx)
	})
}

// Close disconnects and, for stdio backends, stops the child process. It is
// safe to call more than once.
func (b *Backend) Close() error {
	b.closeMu.Do(func() {
		if b.cancel == nil {
			close(b.done)
			return
		}
		b.cancel()
		<-b.done
	})
	return nil
}

// Session returns the live client session, or an error wrapping
// ErrUnavailable with the reason.
func (b *Backend) Session() (*mcp.ClientSession, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == StateReady && b.session != nil {
		return b.session, nil
	}
	if b.lastErr != "" {
		return nil, fmt.Errorf("%w: %s (%s)", ErrUnavailable, b.state, b.lastErr)
	}
	return nil, fmt.Errorf("%w: %s", ErrUnavailable, b.state)
}

// Catalog returns the last listed catalog; empty while not ready.
func (b *Backend) Catalog() *Catalog {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.catalog
}

// State returns the current state.
func (b *Backend) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Status returns a snapshot for health reporting.
func (b *Backend) Status() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := Status{
		Name:      b.cfg.Name,
		Transport: string(b.cfg.Transport),
		State:     b.state,
		Since:     b.since,
		LastError: b.lastErr,
		Tools:     len(b.catalog.Tools),
		Prompts:   len(b.catalog.Prompts),
		Resources: len(b.catalog.Resources) + len(b.catalog.Templates),
		Restarts:  b.restarts,
	}
	if b.session != nil && b.state == StateReady {
		s.SessionID = b.session.ID()
	}
	return s
}

// Timeout is the per-call timeout.
func (b *Backend) Timeout() time.Duration {
	if d := b.cfg.Timeout.D(); d > 0 {
		return d
	}
	return 30 * time.Second
}

// Check asks the backend loop to verify the session soon, for example after
// a call failed with a transport error. It never blocks.
func (b *Backend) Check() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Refresh asks the backend loop to list the catalog again, as after a
// list_changed notification. It never blocks.
func (b *Backend) Refresh() {
	select {
	case b.refresh <- struct{}{}:
	default:
	}
}

func (b *Backend) setState(s State, err error) {
	b.mu.Lock()
	changed := b.state != s
	b.state = s
	if changed {
		b.since = time.Now()
	}
	if err != nil {
		b.lastErr = withoutURL(err).Error()
	} else if s == StateReady {
		b.lastErr = ""
	}
	if s != StateReady {
		// Forget the session in the same step, so no caller ever sees
		// "ready" without a session to use.
		b.catalog = &Catalog{}
		b.session = nil
		b.direct = nil
	} else {
		b.publishDirect(b.session)
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

// stableSession is how long a session must have been ready for its end to
// count as a fresh failure: the backoff restarts from MinBackoff. A backend
// that dies sooner (a child that crashes right after initialize) keeps
// backing off instead of being respawned in a tight loop.
const stableSession = 10 * time.Second

// run is the connection loop: connect, list, watch, and reconnect with
// exponential backoff until ctx is cancelled.
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
		cs, err := b.connect(sctx)
		if err == nil {
			err = b.list(sctx, cs)
			if err != nil {
				cs.Close()
			}
		}
		end(err)
		if err == nil {
			readyAt := time.Now()
			err = b.watch(ctx, cs)
			if ctx.Err() == nil {
				// Mark the backend down before closing, which can take a
				// while (a DELETE to an HTTP backend, a child's grace
				// period): calls fail fast and clearly meanwhile.
				b.setState(StateDown, err)
			}
			cs.Close()
			if time.Since(readyAt) >= stableSession {
				delay = b.opts.MinBackoff
			}
		} else if ctx.Err() == nil {
			b.setState(StateDown, err)
		}
		if ctx.Err() != nil {
			b.stop()
			return
		}
		select {
		case <-ctx.Done():
			b.stop()
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, b.opts.MaxBackoff)
	}
}

// span starts the INTERNAL span of some work of the gateway's own on the
// backend, named "connect weather" or "relist weather". The returned func
// ends it, with err as its status.
func (b *Backend) span(ctx context.Context, what string) (context.Context, func(error)) {
	if b.opts.Tracer == nil {
		return ctx, func(error) {}
	}
	ctx, span := b.opts.Tracer.Start(ctx, what+" "+b.cfg.Name,
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithNewRoot(),
		trace.WithAttributes(
			attribute.String("tracegate.backend.name", b.cfg.Name),
			attribute.String("tracegate.backend.transport", string(b.transportName())),
		))
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, withoutURL(err).Error())
		}
		span.End()
	}
}

func (b *Backend) transportName() config.Transport {
	if b.cfg.Transport == "" {
		return config.TransportStreamable
	}
	return b.cfg.Transport
}

func (b *Backend) stop() {
	b.setState(StateStopped, nil)
}

// watch returns when the session ends, a health check fails, or ctx is done.
func (b *Backend) watch(ctx context.Context, cs *mcp.ClientSession) error {
	ended := make(chan error, 1)
	go func() { ended <- cs.Wait() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-ended:
			if err == nil {
				err = errors.New("session closed by backend")
			}
			return fmt.Errorf("session ended: %w", b.withStderr(err))
		case <-b.kick:
			pctx, cancel := context.WithTimeout(ctx, min(b.Timeout(), 5*time.Second))
			err := cs.Ping(pctx, nil)
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("health check: %w", err)
			}
		case <-b.refresh:
			sctx, end := b.span(ctx, "relist")
			err := b.list(sctx, cs)
			end(err)
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("listing catalog: %w", err)
			}
		}
	}
}

// connect opens a session and publishes it; the state stays connecting
// until the catalog is listed.
func (b *Backend) connect(ctx context.Context) (*mcp.ClientSession, error) {
	t, err := b.transport()
	if err != nil {
		return nil, err
	}
	if b.cfg.Transport == config.TransportSSE {
		t = lastingTransport{Transport: t, life: ctx}
	}
	cctx, cancel := context.WithTimeout(ctx, b.Timeout())
	defer cancel()
	cs, err := b.client.Connect(cctx, t, nil)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", b.withStderr(err))
	}
	b.mu.Lock()
	b.session = cs
	b.mu.Unlock()
	return cs, nil
}

// list fetches the backend's catalog, following pagination, and marks the
// backend ready.
func (b *Backend) list(ctx context.Context, cs *mcp.ClientSession) error {
	lctx, cancel := context.WithTimeout(ctx, b.Timeout())
	defer cancel()
	cat := &Catalog{}
	caps := cs.InitializeResult().Capabilities
	if caps == nil {
		caps = &mcp.ServerCapabilities{}
	}
	if caps.Tools != nil {
		for t, err := range cs.Tools(lctx, nil) {
			if err != nil {
				return fmt.Errorf("tools/list: %w", err)
			}
			cat.Tools = append(cat.Tools, t)
		}
	}
	if caps.Prompts != nil {
		for p, err := range cs.Prompts(lctx, nil) {
			if err != nil {
				return fmt.Errorf("prompts/list: %w", err)
			}
			cat.Prompts = append(cat.Prompts, p)
		}
	}
	if caps.Resources != nil {
		for r, err := range cs.Resources(lctx, nil) {
			if err != nil {
				return fmt.Errorf("resources/list: %w", err)
			}
			cat.Resources = append(cat.Resources, r)
		}
		for r, err := range cs.ResourceTemplates(lctx, nil) {
			if err != nil {
				return fmt.Errorf("resources/templates/list: %w", err)
			}
			cat.Templates = append(cat.Templates, r)
		}
	}
	cat.Completions = caps.Completions != nil
	b.mu.Lock()
	b.catalog = cat
	b.mu.Unlock()
	b.setState(StateReady, nil)
	return nil
}

func (b *Backend) withStderr(err error) error {
	if b.stderr == nil {
		return err
	}
	if line := b.stderr.Last(); line != "" {
		return fmt.Errorf("%w (stderr: %s)", err, line)
	}
	return err
}
