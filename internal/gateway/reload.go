package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracegate/tracegate/internal/auth"
	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/mcptrace"
)

// Reloading: a running gateway takes a changed configuration without
// dropping a client session or failing a call.
//
// What the request path reads of the configuration (the HTTP handler with
// auth and body limits, the plugin chain, the SERVER span tracer, limits)
// is one immutable value, live, and the backends are another, topology:
// a reload builds both anew and stores each with one atomic write, so a
// request sees the old configuration or the new one, never a mix within
// a load. The fronts stay: sessions point to them, and a reload gives
// them new members, whose catalogs they publish with list_changed.
//
// Added backends connect before they are published. A removed backend
// drains: no request routes to it once the new topology is in force, and
// it is closed when every request that could have routed to it has
// ended and no call is in flight on it, or after its timeout.
//
// "Could have routed to it" is tracked with epochs: each request other
// than a GET stream counts itself in the epoch in force when it starts,
// and a reload starts a new epoch after publishing the new views. A
// request that saw an old view was counted in an old epoch first, so once
// every old epoch is empty, no request holds a view with the removed
// backend. This costs a request three atomic operations and no lock.

// Reloaded reports what a reload changed.
type Reloaded struct {
	// Added, Removed and Changed name backends. A changed backend (same
	// name, other settings) is replaced: the new one connects, then the
	// old one drains.
	Added, Removed, Changed []string
	// Drained is closed once every backend removed or replaced has
	// drained and closed, and the sessions of removed backends'
	// endpoints have ended.
	Drained <-chan struct{}
}

// ErrClosed is returned by Reload after Close.
var ErrClosed = errors.New("the gateway is closed")

// Reload applies cfg, which must be valid (config.Validate), to the
// running gateway. opts supplies what is built from cfg: Server, Plugins,
// WrapHTTP, Backend and BackendTransport (for new backends; Backend
// also gives the running ones their tracer), and SessionIdleTimeout. The
// other fields keep New's values.
//
// Added and replaced backends are started, and Reload waits, within ctx
// and each one's timeout, for each to connect or fail before it publishes
// them. An error (an auth section auth cannot build, ctx done first)
// changes nothing.
func (g *Gateway) Reload(ctx context.Context, cfg *config.Config, opts Options) (*Reloaded, error) {
	r := &g.reloads
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.isClosed() {
		return nil, ErrClosed
	}
	authn, err := g.authenticatorFor(cfg.Auth)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	old := g.topo.Load()
	next := &topology{byName: map[string]*backend.Backend{}, single: map[string]*front{}}
	rep := &Reloaded{}
	var started, retired []*backend.Backend
	for _, bc := range cfg.Backends {
		if _, dup := next.byName[bc.Name]; dup {
			r.discard(started)
			return nil, errors.New("duplicate backend " + bc.Name)
		}
		b := old.byName[bc.Name]
		switch {
		case b != nil && reflect.DeepEqual(b.Config(), bc):
		case b != nil:
			rep.Changed = append(rep.Changed, bc.Name)
			retired = append(retired, b)
			b = g.newBackend(bc, opts)
			started = append(started, b)
		default:
			rep.Added = append(rep.Added, bc.Name)
			b = g.newBackend(bc, opts)
			started = append(started, b)
		}
		next.backends = append(next.backends, b)
		next.byName[bc.Name] = b
	}
	var gone []*front
	for _, b := range old.backends {
		if _, ok := next.byName[b.Name()]; !ok {
			rep.Removed = append(rep.Removed, b.Name())
			retired = append(retired, b)
			gone = append(gone, old.single[b.Name()])
		}
	}
	for _, b := range started {
		b.Start(r.life)
	}
	if err := g.settle(ctx, started); err != nil {
		r.discard(started)
		return nil, fmt.Errorf("waiting for new backends: %w", err)
	}
	if r.isClosed() {
		r.discard(started)
		return nil, ErrClosed
	}

	// From here on nothing fails: the new configuration goes in force.
	r.keepAuth(cfg.Auth, authn)
	g.live.Store(&live{cfg: cfg, handler: g.buildHandlerWith(cfg, opts.WrapHTTP, authn), plugins: opts.Plugins, server: opts.Server})
	for _, b := range next.backends {
		if !slices.Contains(started, b) {
			var t *mcptrace.ClientTracer
			if opts.Backend != nil {
				t = opts.Backend(b.Config())
			}
			b.SetTracer(t)
		}
	}
	g.syncMu.Lock()
	g.all.namer.set(cfg.Tools.NameFormat)
	for _, b := range next.backends {
		if f := old.single[b.Name()]; f != nil {
			next.single[b.Name()] = f
		} else {
			next.single[b.Name()] = newFront(g, b.Name(), []*backend.Backend{b}, nil)
		}
	}
	g.topo.Store(next)
	for _, b := range retired {
		if nb := next.byName[b.Name()]; nb != nil {
			r.replaced[b] = true
			g.subs.moveBackend(b, nb)
			g.all.inherit(b, nb)
			next.single[b.Name()].inherit(b, nb)
		}
	}
	g.all.setBackends(next.backends)
	for _, name := range rep.Changed {
		next.single[name].setBackends([]*backend.Backend{next.byName[name]})
	}
	g.syncMu.Unlock()
	if opts.SessionIdleTimeout != g.reaperIdle() {
		g.startReaper(opts.SessionIdleTimeout)
	}

	epochs := r.advance()
	drained := make(chan struct{})
	rep.Drained = drained
	go g.drain(retired, gone, epochs, drained)
	return rep, nil
}

// settle waits until each of bs has connected or failed once, so that a
// reload publishes backends with their catalogs rather than without, and
// the views of a replaced backend's tools never go empty in between. A
// backend that takes longer than its timeout is published connecting.
func (g *Gateway) settle(ctx context.Context, bs []*backend.Backend) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	for {
		waiting := false
		for _, b := range bs {
			if b.State() == backend.StateConnecting && time.Since(start) < b.Timeout() {
				waiting = true
			}
		}
		if !waiting {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}

// drain closes each of bs once no request can route to it and no call is
// in flight on it, or after its timeout, then ends the sessions of the
// fronts gone (the endpoints of removed backends), and closes done.
func (g *Gateway) drain(bs []*backend.Backend, gone []*front, epochs []*epoch, done chan<- struct{}) {
	defer close(done)
	var wg sync.WaitGroup
	for _, b := range bs {
		wg.Go(func() {
			deadline := time.NewTimer(b.Timeout())
			defer deadline.Stop()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			cut := false
		wait:
			for !idle(epochs) || g.flight.busy(b) {
				select {
				case <-tick.C:
				case <-deadline.C:
					cut = true
					break wait
				case <-g.reloads.stop:
					break wait
				}
			}
			if cut {
				g.log.Warn("backend removed by a reload: calls still in flight after its timeout are cut", "backend", b.Name(), "timeout", b.Timeout().String())
			}
			b.Close()
			g.reloads.disown(b)
			g.forget(b)
			g.log.Info("backend removed by a reload is closed", "backend", b.Name())
		})
	}
	wg.Wait()
	for _, f := range gone {
		var ids []string
		g.sessions.each(func(s *session) {
			if s.front == f {
				ids = append(ids, s.id)
			}
		})
		for _, id := range ids {
			g.endSession(id, true)
		}
	}
}

// forget drops what the gateway kept about a closed backend.
func (g *Gateway) forget(b *backend.Backend) {
	g.syncMu.Lock()
	g.synced.Delete(b)
	delete(g.reloads.replaced, b)
	g.syncMu.Unlock()
	g.subs.mu.Lock()
	delete(g.subs.byBackend, b)
	g.subs.mu.Unlock()
}

// moveBackend gives the subscriptions held on from to its replacement to,
// and subscribes to's sessions that are already open.
func (sb *subscriptions) moveBackend(from, to *backend.Backend) {
	sb.mu.Lock()
	if uris := sb.byBackend[from]; len(uris) > 0 {
		delete(sb.byBackend, from)
		sb.byBackend[to] = uris
	}
	sb.mu.Unlock()
	for _, s := range to.Sessions() {
		sb.restore(s)
	}
}

// busy reports whether a call is in flight on one of b's sessions.
func (fl *flight) busy(b *backend.Backend) bool {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for bs := range fl.bySession {
		if bs.Backend() == b {
			return true
		}
	}
	return false
}

// serveHTTP is the gateway's handler: every request but a GET stream is
// counted in the epoch in force, then served by the handler in force.
func (g *Gateway) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		e := g.reloads.enter()
		defer e.leave()
	}
	g.live.Load().handler.ServeHTTP(w, r)
}

// buildHandler is buildHandlerWith and cfg's authentication, or, when
// that cannot be built, a handler that refuses every request.
func (g *Gateway) buildHandler(cfg *config.Config, wrap func(http.Handler) http.Handler) http.Handler {
	authn, err := g.authenticatorFor(cfg.Auth)
	if err != nil {
		g.log.Error("authentication misconfigured; refusing every request", "error", err)
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "authentication misconfigured", http.StatusInternalServerError)
		})
	}
	g.reloads.keepAuth(cfg.Auth, authn)
	return g.buildHandlerWith(cfg, wrap, authn)
}

// authenticatorFor builds the authenticator of cfg, or returns the one in
// force when cfg is unchanged, keeping what it fetched (the issuer's
// keys).
func (g *Gateway) authenticatorFor(cfg config.Auth) (*auth.Authenticator, error) {
	r := &g.reloads
	r.authMu.Lock()
	a, same := r.authn, r.authSet && reflect.DeepEqual(r.authCfg, cfg)
	r.authMu.Unlock()
	if same {
		return a, nil
	}
	return auth.New(cfg, auth.Options{Logger: g.log})
}

// keepAuth records a as the authenticator in force, for cfg.
func (r *reloads) keepAuth(cfg config.Auth, a *auth.Authenticator) {
	r.authMu.Lock()
	defer r.authMu.Unlock()
	r.authn, r.authCfg, r.authSet = a, cfg, true
}

// startReaper (re)starts the reaper of idle sessions with idle (0:
// the default).
func (g *Gateway) startReaper(idle time.Duration) {
	r := &g.reloads
	r.reapMu.Lock()
	defer r.reapMu.Unlock()
	if r.stopReap != nil {
		r.stopReap()
	}
	r.reapIdle = idle
	if idle <= 0 {
		idle = defaultSessionIdle
	}
	ctx, cancel := context.WithCancel(r.life)
	r.stopReap = cancel
	go g.reap(ctx, idle)
}

func (g *Gateway) reaperIdle() time.Duration {
	r := &g.reloads
	r.reapMu.Lock()
	defer r.reapMu.Unlock()
	return r.reapIdle
}

func (g *Gateway) stopReaper() {
	r := &g.reloads
	r.reapMu.Lock()
	defer r.reapMu.Unlock()
	if r.stopReap != nil {
		r.stopReap()
		r.stopReap = nil
	}
}

// reloads is the gateway's state across reloads.
type reloads struct {
	mu   sync.Mutex // serializes Reload
	cur  atomic.Pointer[epoch]
	past []*epoch // epochs before cur with requests in progress; under mu

	life context.Context // backends and the reaper run within it
	stop chan struct{}   // closed by Close

	ownMu  sync.Mutex
	owned  map[*backend.Backend]struct{} // every backend not closed yet
	closed bool

	// replaced are the backends a reload replaced that have not closed
	// yet; under Gateway.syncMu.
	replaced map[*backend.Backend]bool

	authMu  sync.Mutex
	authn   *auth.Authenticator
	authCfg config.Auth
	authSet bool

	reapMu   sync.Mutex
	stopReap context.CancelFunc
	reapIdle time.Duration
}

func (r *reloads) init() {
	r.cur.Store(&epoch{})
	r.life = context.Background()
	r.stop = make(chan struct{})
	r.owned = map[*backend.Backend]struct{}{}
	r.replaced = map[*backend.Backend]bool{}
}

// start sets the context backends and the reaper run within.
func (r *reloads) start(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.life = context.WithoutCancel(ctx)
}

// epoch counts the requests in progress that started while it was in
// force.
type epoch struct{ n atomic.Int64 }

// enter counts a request in the epoch in force. The check after the
// increment makes sure that an epoch a reload has retired, once seen
// empty, stays empty.
func (r *reloads) enter() *epoch {
	for {
		e := r.cur.Load()
		e.n.Add(1)
		if r.cur.Load() == e {
			return e
		}
		e.n.Add(-1)
	}
}

func (e *epoch) leave() { e.n.Add(-1) }

// advance starts a new epoch and returns every earlier one that may still
// have requests in progress. Caller holds r.mu.
func (r *reloads) advance() []*epoch {
	r.past = append(r.past, r.cur.Swap(&epoch{}))
	r.past = slices.DeleteFunc(r.past, func(e *epoch) bool { return e.n.Load() == 0 })
	return slices.Clone(r.past)
}

// idle reports whether no request is in progress in any of epochs.
func idle(epochs []*epoch) bool {
	for _, e := range epochs {
		if e.n.Load() != 0 {
			return false
		}
	}
	return true
}

// own records b as the gateway's, for Close.
func (r *reloads) own(b *backend.Backend) {
	r.ownMu.Lock()
	defer r.ownMu.Unlock()
	r.owned[b] = struct{}{}
}

func (r *reloads) disown(b *backend.Backend) {
	r.ownMu.Lock()
	defer r.ownMu.Unlock()
	delete(r.owned, b)
}

// discard closes backends a failed reload started.
func (r *reloads) discard(bs []*backend.Backend) {
	for _, b := range bs {
		b.Close()
		r.disown(b)
	}
}

func (r *reloads) isClosed() bool {
	r.ownMu.Lock()
	defer r.ownMu.Unlock()
	return r.closed
}

// close marks the gateway closed, stops drains, and returns every backend
// to close.
func (r *reloads) close() []*backend.Backend {
	r.ownMu.Lock()
	defer r.ownMu.Unlock()
	if !r.closed {
		r.closed = true
		close(r.stop)
	}
	out := make([]*backend.Backend, 0, len(r.owned))
	for b := range r.owned {
		out = append(out, b)
	}
	return out
}
