package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tracegate/tracegate/internal/cluster"
	"github.com/tracegate/tracegate/internal/wire"
	"github.com/tracegate/tracegate/mcptrace"
)

// Replicas (Options.Cluster). A stateful session lives in Redis as a
// record; each replica keeps the sessions it has served in its session
// table, as a cache. What a session's record holds is what any replica
// needs to serve it; what it leaves out (the HTTP headers of initialize,
// the caller's credentials) stays on the replica that saw it.
//
// Three things must reach one replica, and are forwarded to it:
//   - a client's answer to a request a backend sent through that replica
//     (the gateway's id for it names the replica);
//   - notifications/cancelled for a call running there (sent to every
//     replica: only one has the call);
//   - a change to a session (log level, subscriptions, its end), so that
//     every replica holding the session, and the one holding its stream,
//     applies it before the client's request is answered.

// sessionRecord is a session as kept in Redis. It holds no credential:
// owner is an identity (a token's name, a certificate's subject, an OAuth
// issuer and subject), never a token.
type sessionRecord struct {
	Front       string            `json:"front"` // "" for /mcp, else the backend of /mcp/{backend}
	Version     string            `json:"version"`
	Sampling    bool              `json:"sampling,omitempty"`
	Elicitation bool              `json:"elicitation,omitempty"`
	Roots       bool              `json:"roots,omitempty"`
	ClientName  string            `json:"client_name,omitempty"`
	ClientVer   string            `json:"client_version,omitempty"`
	Trace       map[string]string `json:"trace,omitempty"`
	Owner       string            `json:"owner,omitempty"`
	Start       int64             `json:"start"` // unix nanoseconds
	Level       int32             `json:"level,omitempty"`
	Subs        []string          `json:"subs,omitempty"` // resource URIs subscribed to
}

// Forward operations.
const (
	opAnswer  = "answer"
	opCancel  = "cancel"
	opSession = "session"
)

// replicas is the gateway's part in a cluster; nil without one.
type replicas struct {
	g  *Gateway
	c  *cluster.Cluster
	id string // this replica's id, in the ids of asks relayed through it

	mu      sync.Mutex
	renewed time.Time // last TTL renewal
	loading map[string]*sync.Mutex
}

func newReplicas(g *Gateway, c *cluster.Cluster) *replicas {
	return &replicas{g: g, c: c, id: c.Self().ID, renewed: time.Now(), loading: map[string]*sync.Mutex{}}
}

// ttl is how long Redis keeps a session no replica uses.
func (g *Gateway) sessionIdle() time.Duration {
	if g.opts.SessionIdleTimeout > 0 {
		return g.opts.SessionIdleTimeout
	}
	return defaultSessionIdle
}

func (rp *replicas) record(s *session) []byte {
	s.mu.Lock()
	subs := make([]string, 0, len(s.subURIs))
	for uri := range s.subURIs {
		subs = append(subs, uri)
	}
	s.mu.Unlock()
	sort.Strings(subs)
	rec := sessionRecord{
		Front: s.front.name, Version: s.version,
		Sampling: s.caps.sampling, Elicitation: s.caps.elicitation, Roots: s.caps.roots,
		ClientName: s.client.name, ClientVer: s.client.version,
		Trace: s.trace.Fields(), Owner: s.owner, Start: s.start.UnixNano(),
		Level: s.level.Load(), Subs: subs,
	}
	out, _ := json.Marshal(rec)
	return out
}

// save writes s's record. A failure (Redis down) leaves s dirty: it is
// written when Redis is back.
func (rp *replicas) save(ctx context.Context, s *session) {
	if err := rp.c.SaveSession(ctx, s.id, rp.record(s), rp.g.sessionIdle()); err != nil {
		s.dirty.Store(true)
		rp.g.log.Debug("cluster: session kept on this replica only until redis is back", "error", err.Error())
		return
	}
	s.dirty.Store(false)
}

// changed saves s and has every other replica that holds it apply the
// change, before the client is answered.
func (rp *replicas) changed(ctx context.Context, s *session) {
	rp.save(ctx, s)
	body, _ := json.Marshal(map[string]string{"session": s.id})
	rp.c.Broadcast(ctx, opSession, body)
}

// ended removes a session the client deleted, everywhere.
func (rp *replicas) ended(ctx context.Context, id string) {
	if err := rp.c.DeleteSession(ctx, id); err != nil {
		rp.g.log.Warn("cluster: a deleted session's record stays in redis until it expires", "error", err.Error())
	}
	body, _ := json.Marshal(map[string]string{"session": id})
	rp.c.Broadcast(ctx, opSession, body)
}

// errSessionStore is answered when a session is not held here and Redis
// can't say whether it exists.
var errSessionStore = errors.New("the session store is unreachable")

// restore loads a session this replica does not hold from Redis. It
// returns nil, nil when there is no such session.
func (rp *replicas) restore(ctx context.Context, id string) (*session, error) {
	if len(id) != 32 {
		return nil, nil // not an id of the gateway's: no round trip for it
	}
	// One load per id at a time: concurrent requests of a session new to
	// this replica wait for the first one's.
	rp.mu.Lock()
	l := rp.loading[id]
	if l == nil {
		l = &sync.Mutex{}
		rp.loading[id] = l
	}
	rp.mu.Unlock()
	l.Lock()
	defer func() {
		l.Unlock()
		rp.mu.Lock()
		if rp.loading[id] == l {
			delete(rp.loading, id)
		}
		rp.mu.Unlock()
	}()
	if s := rp.g.sessions.get(id); s != nil {
		return s, nil
	}
	raw, err := rp.c.LoadSession(ctx, id)
	if errors.Is(err, cluster.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, errSessionStore
	}
	var rec sessionRecord
	if json.Unmarshal(raw, &rec) != nil {
		return nil, nil
	}
	f := rp.g.all
	if rec.Front != "" {
		if f = rp.g.singleFront(rec.Front); f == nil {
			return nil, nil
		}
	}
	s := &session{id: id, front: f, version: rec.Version, start: time.Unix(0, rec.Start), owner: rec.Owner,
		caps:   clientCaps{sampling: rec.Sampling, elicitation: rec.Elicitation, roots: rec.Roots},
		client: clientInfo{name: rec.ClientName, version: rec.ClientVer},
		trace:  mcptrace.SessionContextFromFields(rec.Trace)}
	// A session used here was initialized where it began.
	s.initialized.Store(true)
	rp.apply(s, &rec)
	s.touch()
	rp.g.sessions.add(s)
	return s, nil
}

// apply takes the mutable part of a record: the log level, and the
// subscriptions (registered here when this replica holds the session's
// stream, where resources/updated must be delivered).
func (rp *replicas) apply(s *session, rec *sessionRecord) {
	if s.level.Swap(rec.Level) != rec.Level {
		rp.g.levels.recompute()
	}
	want := map[string]bool{}
	for _, uri := range rec.Subs {
		want[uri] = true
	}
	s.mu.Lock()
	old := s.subURIs
	s.subURIs = want
	s.mu.Unlock()
	if s.hasStream() {
		rp.subscribe(s, old, want)
	}
}

// subscribe registers here the subscriptions in want that are not in had,
// and drops those of had no longer wanted.
func (rp *replicas) subscribe(s *session, had, want map[string]bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for uri := range want {
		if b := s.front.view().resource(uri); b != nil && !rp.g.subs.has(s, b, uri) {
			rp.g.subs.set(ctx, s, b, uri, true)
		}
	}
	for uri := range had {
		if !want[uri] {
			if b := s.front.view().resource(uri); b != nil {
				rp.g.subs.set(ctx, s, b, uri, false)
			}
		}
	}
}

// streamOpened registers, on the replica that now holds s's stream, the
// subscriptions made on any replica.
func (rp *replicas) streamOpened(s *session) {
	s.mu.Lock()
	want := s.subURIs
	s.mu.Unlock()
	rp.subscribe(s, nil, want)
}

// askID is the gateway's id for a backend's request relayed to a client:
// it names this replica, so that the client's answer, wherever it lands,
// is forwarded here.
func (rp *replicas) askID(n string) string { return "tgs-" + rp.id + "-" + n }

// askReplica returns the replica an ask id names, "" if none.
func askReplica(id string) string {
	rest, ok := strings.CutPrefix(id, "tgs-")
	if !ok {
		return ""
	}
	replica, _, ok := strings.Cut(rest, "-")
	if !ok {
		return ""
	}
	return replica
}

type forwarded struct {
	Session string          `json:"session"`
	Message json.RawMessage `json:"message,omitempty"`
	ID      json.RawMessage `json:"id,omitempty"`
	Reason  string          `json:"reason,omitempty"`
}

// forwardAnswer passes a client's answer to the replica whose backend
// asked. It reports false when the id names no other replica.
func (rp *replicas) forwardAnswer(ctx context.Context, s *session, m *wire.Message) (bool, error) {
	id := wire.IDString(m.ID)
	to := askReplica(id)
	if to == "" || to == rp.id {
		return false, nil
	}
	member, ok := rp.c.Member(to)
	if !ok {
		return true, errors.New("the replica that relayed the request is gone")
	}
	body, _ := json.Marshal(forwarded{Session: s.id, Message: m.Raw})
	_, err := rp.c.Forward(ctx, member, opAnswer, body)
	return true, err
}

// forwardCancel passes a cancellation to every other replica; the one
// running the call cancels it.
func (rp *replicas) forwardCancel(ctx context.Context, s *session, id []byte, reason string) {
	body, _ := json.Marshal(forwarded{Session: s.id, ID: id, Reason: reason})
	rp.c.Broadcast(ctx, opCancel, body)
}

// serveForward handles what another replica forwarded here.
func (rp *replicas) serveForward(ctx context.Context, op string, body []byte) ([]byte, error) {
	var f forwarded
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, errors.New("malformed forward: " + err.Error())
	}
	s := rp.g.sessions.get(f.Session)
	switch op {
	case opAnswer:
		m, err := wire.Parse(f.Message)
		if err != nil || !m.IsResponse() || s == nil {
			return nil, errors.New("no such request is waiting")
		}
		if err := rp.g.relayAnswer(ctx, s, &m); err != nil {
			return nil, err
		}
		return []byte("{}"), nil
	case opCancel:
		if s != nil && len(f.ID) > 0 {
			rp.g.flight.cancel(s, f.ID, f.Reason)
		}
		return []byte("{}"), nil
	case opSession:
		if s == nil {
			return []byte("{}"), nil
		}
		raw, err := rp.c.LoadSession(ctx, f.Session)
		switch {
		case errors.Is(err, cluster.ErrNotFound):
			rp.g.endSession(f.Session, false)
		case err == nil:
			var rec sessionRecord
			if json.Unmarshal(raw, &rec) == nil {
				rp.apply(s, &rec)
			}
		default:
			return nil, err
		}
		return []byte("{}"), nil
	}
	return nil, errors.New("unknown forward operation " + op)
}

// held splits the stateful sessions held here into those changed while
// Redis was down (dirty) and the others.
func (rp *replicas) held() (dirty, clean []*session) {
	rp.g.sessions.each(func(s *session) {
		switch {
		case s.stateless:
		case s.dirty.Load():
			dirty = append(dirty, s)
		default:
			clean = append(clean, s)
		}
	})
	return dirty, clean
}

// renew extends in Redis the TTL of the sessions used here since the last
// renewal, in one round trip, and retries saving those Redis missed; it
// runs with the idle reaper.
func (rp *replicas) renew(ctx context.Context) {
	rp.mu.Lock()
	since := rp.renewed
	rp.renewed = time.Now()
	rp.mu.Unlock()
	dirty, clean := rp.held()
	var ids []string
	for _, s := range clean {
		if time.Unix(0, s.last.Load()).After(since) || s.streams.Load() > 0 {
			ids = append(ids, s.id)
		}
	}
	rp.c.RenewSessions(ctx, ids, rp.g.sessionIdle())
	for _, s := range dirty {
		rp.save(ctx, s)
	}
}

// recovered writes back, when Redis is reachable again, every session
// held here: those opened or changed while it was down, and all others
// in case Redis lost them (a record another replica wrote since is kept).
func (rp *replicas) recovered() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dirty, clean := rp.held()
	for _, s := range dirty {
		rp.save(ctx, s)
	}
	all := make(map[string][]byte, len(clean))
	for _, s := range clean {
		all[s.id] = rp.record(s)
	}
	if err := rp.c.RestoreSessions(ctx, all, rp.g.sessionIdle()); err == nil && len(all)+len(dirty) > 0 {
		rp.g.log.Info("cluster: sessions held here written back to redis", "count", len(all)+len(dirty))
	}
}
