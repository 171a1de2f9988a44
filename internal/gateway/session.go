package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracegate/tracegate/internal/wire"
	"github.com/tracegate/tracegate/mcptrace"
)

// defaultSessionIdle is the default of Options.SessionIdleTimeout:
// abandoned sessions are reclaimed rather than kept forever.
const defaultSessionIdle = 30 * time.Minute

// streamQueue bounds what waits for a session's GET stream. A client that
// does not read its stream loses notifications past it, never the
// gateway's memory.
const streamQueue = 256

// session is a client's session with the gateway: a stateful one (from
// its initialize to DELETE or idleness), or, for a 2026-07-28 request, a
// value made for that one request (stateless).
type session struct {
	id        string // "" when stateless
	front     *front
	version   string
	caps      clientCaps
	client    clientInfo
	trace     *mcptrace.SessionContext
	header    http.Header // of the initialize, for the session's metrics
	start     time.Time
	stateless bool
	// owner names the caller that opened the session (auth.SessionOwner):
	// a session is usable only by the identity that initialized it.
	owner  string
	modern bool // _meta declared 2026-07-28: results carry its shape
	// listenID is the request id of a 2026-07-28 subscriptions/listen
	// stream this session stands for; listens, what it asked to hear.
	listenID []byte
	listens  listenSet

	initialized atomic.Bool
	dirty       atomic.Bool  // changed while the cluster's Redis was down
	level       atomic.Int32 // severity+1 of logging/setLevel; 0: none set
	last        atomic.Int64 // unix nanoseconds of the last request
	streams     atomic.Int32 // open streams (GET, and calls answering over SSE)

	mu      sync.Mutex
	subURIs map[string]bool // resources subscribed to, for the session's record (replicas)
	out     chan []byte     // the GET stream's queue; nil while no GET stream is open
	stop    chan struct{}   // closes the GET stream
	closed  bool
}

// clientCaps are the client capabilities the gateway acts on.
type clientCaps struct {
	sampling, elicitation, roots bool
}

// clientInfo is the client's name and version from initialize (or, for a
// 2026-07-28 client, from each request's _meta).
type clientInfo struct {
	name, version string
}

func newSessionID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *session) touch() { s.last.Store(time.Now().UnixNano()) }

// deliver queues msg for the session's GET stream and reports whether it
// was queued: false when no stream is open or the client is not reading.
func (s *session) deliver(msg []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return false
	}
	select {
	case s.out <- msg:
		return true
	default:
		return false
	}
}

// listenSet is what a subscriptions/listen stream asked to hear.
type listenSet struct{ tools, prompts, resources bool }

// notify delivers a notification to the session's stream. A listen
// stream gets only what it asked for, marked with its subscription id.
func (s *session) notify(method string, msg []byte) bool {
	if s.listenID != nil {
		switch method {
		case "notifications/tools/list_changed":
			if !s.listens.tools {
				return false
			}
		case "notifications/prompts/list_changed":
			if !s.listens.prompts {
				return false
			}
		case "notifications/resources/list_changed":
			if !s.listens.resources {
				return false
			}
		}
		m, err := wire.Parse(msg)
		if err != nil {
			return false
		}
		meta := map[string]any{}
		if raw := wire.Get(m.Params, "_meta"); raw != nil {
			meta, _ = wire.MetaView(raw)
		}
		meta[metaSubscriptionID] = json.RawMessage(s.listenID)
		msg = wire.AppendRequest(nil, nil, m.Method, wire.AppendParams(nil, m.Params, nil, meta))
	}
	return s.deliver(msg)
}

// hasStream reports whether the session's GET stream is open here.
func (s *session) hasStream() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out != nil
}

// openStream makes the session's GET stream; false if one is open.
func (s *session) openStream() (<-chan []byte, <-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out != nil || s.closed {
		return nil, nil, false
	}
	s.out = make(chan []byte, streamQueue)
	s.stop = make(chan struct{})
	return s.out, s.stop, true
}

func (s *session) streamEnded(out <-chan []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == out {
		s.out, s.stop = nil, nil
	}
}

func (s *session) closeStream() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		close(s.stop)
		s.stop = nil
		s.out = nil
	}
}

// wantsLog reports whether the session takes a log message of level.
func (s *session) wantsLog(level string) bool {
	set := s.level.Load()
	if set == 0 {
		// No setLevel: the spec leaves it to the server; the gateway
		// passes everything, as a direct connection to the backend
		// would.
		return true
	}
	sev, ok := severity[level]
	return !ok || int32(sev)+1 >= set
}

// severity orders the syslog levels MCP uses (RFC 5424): lower is more
// verbose.
var severity = map[string]int{
	"debug": 0, "info": 1, "notice": 2, "warning": 3, "error": 4, "critical": 5, "alert": 6, "emergency": 7,
}

// sessionTable holds the stateful client sessions of every front.
type sessionTable struct {
	mu sync.RWMutex
	m  map[string]*session
}

func newSessionTable() *sessionTable { return &sessionTable{m: map[string]*session{}} }

func (t *sessionTable) get(id string) *session {
	t.mu.RLock()
	s := t.m[id]
	t.mu.RUnlock()
	return s
}

func (t *sessionTable) add(s *session) {
	t.mu.Lock()
	t.m[s.id] = s
	t.mu.Unlock()
}

func (t *sessionTable) remove(id string) *session {
	t.mu.Lock()
	s := t.m[id]
	delete(t.m, id)
	t.mu.Unlock()
	return s
}

func (t *sessionTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

func (t *sessionTable) each(fn func(*session)) {
	t.mu.RLock()
	all := make([]*session, 0, len(t.m))
	for _, s := range t.m {
		all = append(all, s)
	}
	t.mu.RUnlock()
	for _, s := range all {
		fn(s)
	}
}

// endSession forgets a session: its stream closes, its per-client backend
// sessions close, its subscriptions and log level are dropped. done says
// the session itself ended (rather than this replica of a cluster letting
// go of it), for the session duration metric.
func (g *Gateway) endSession(id string, done bool) bool {
	s := g.sessions.remove(id)
	if s == nil {
		return false
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.closeStream()
	for _, b := range s.front.view().backends {
		if b.PerClient() {
			b.ReleaseClient(id)
		}
	}
	g.subs.dropSession(s)
	if s.level.Load() != 0 {
		g.levels.recompute()
	}
	if t := g.server(); done && t != nil {
		t.SessionDone(s.start, s.version, s.header)
	}
	return true
}

// reap closes sessions with no request and no open stream for idle.
func (g *Gateway) reap(ctx context.Context, idle time.Duration) {
	t := time.NewTicker(min(idle/4, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			var stale []string
			g.sessions.each(func(s *session) {
				if s.streams.Load() == 0 && now.Sub(time.Unix(0, s.last.Load())) > idle {
					stale = append(stale, s.id)
				}
			})
			for _, id := range stale {
				// With replicas, a session idle here may be in use on
				// another: Redis forgets it on its own when it is idle
				// everywhere.
				g.endSession(id, g.replicas == nil)
			}
			if g.replicas != nil {
				g.replicas.renew(ctx)
			}
			g.flight.sweepAsks(10 * time.Minute)
			if len(stale) > 0 {
				g.log.Info("closed idle client sessions", "count", len(stale), "idle", idle.String())
			}
		}
	}
}

// broadcast sends a notification to every session of f (all fronts when
// f is nil) that has a stream open, skipping those for which skip says so.
func (g *Gateway) broadcast(f *front, method string, msg []byte, skip func(*session) bool) {
	g.sessions.each(func(s *session) {
		if (f == nil || s.front == f) && (skip == nil || !skip(s)) && s.initialized.Load() {
			s.notify(method, msg)
		}
	})
}

// parseClient reads the client's capabilities and identity from an
// initialize's params (or a 2026-07-28 request's _meta values).
func parseClient(caps, info []byte) (clientCaps, clientInfo) {
	var c clientCaps
	c.sampling = wire.Get(caps, "sampling") != nil
	c.elicitation = wire.Get(caps, "elicitation") != nil
	c.roots = wire.Get(caps, "roots") != nil
	var ci clientInfo
	ci.name, _ = wire.GetString(info, "name")
	ci.version, _ = wire.GetString(info, "version")
	if len(ci.name) > maxNameLen {
		ci.name = ci.name[:maxNameLen]
	}
	if len(ci.version) > maxNameLen {
		ci.version = ci.version[:maxNameLen]
	}
	return c, ci
}
