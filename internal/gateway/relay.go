package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/wire"
)

// What backends send back toward clients. Every message a backend sends
// that is not a response goes through relay: on a call's own stream
// (Streamable HTTP) it belongs to that call; otherwise (stdio, SSE, the
// GET stream) the gateway finds its client as exactly as the protocol
// allows: a per-client session's owner, the call a progress token names,
// or the only caller in flight on a shared session.

// flight knows the calls in flight and the backends' requests waiting for
// a client's answer.
type flight struct {
	mu        sync.Mutex
	byClient  map[clientKey]*call
	bySession map[*backend.Session]map[*call]struct{}
	progress  map[string]*call
	asks      map[string]*ask
	bridges   map[string]*bridge // held calls of 2026-07-28 clients, by requestState
	seq       atomic.Uint64
}

type clientKey struct {
	session string
	id      string // raw JSON of the client's id
}

// ask is a request a backend sent, relayed to a client under an id of the
// gateway's.
type ask struct {
	s         *session
	bs        *backend.Session
	backendID []byte
	at        time.Time
	// call is the span context of the call the request came during, if
	// any: whatever handles the client's answer links to it.
	call trace.SpanContext
}

// maxAsks bounds the backends' requests waiting for an answer.
const maxAsks = 4096

func newFlight() *flight {
	return &flight{
		byClient:  map[clientKey]*call{},
		bySession: map[*backend.Session]map[*call]struct{}{},
		progress:  map[string]*call{},
		asks:      map[string]*ask{},
		bridges:   map[string]*bridge{},
	}
}

func (fl *flight) begin(rq *request, bs *backend.Session) *call {
	// One context per call: it ends at the backend's timeout, when the
	// client cancels the call, or when the call ends.
	ctx, stop := context.WithTimeout(rq.ctx, bs.Backend().Timeout())
	c := &call{rq: rq, bs: bs, backendID: bs.NextID(), ctx: ctx, stop: stop, started: time.Now()}
	_, progress := rq.meta["progressToken"]
	if progress {
		// Clients' tokens may collide on a shared backend session: the
		// backend gets one of the gateway's.
		c.progressKey = "tgp-" + strconv.FormatUint(fl.seq.Add(1), 10)
	}
	fl.mu.Lock()
	if rq.s != nil && !rq.s.stateless {
		c.key = clientKey{rq.s.id, string(rq.m.ID)}
		fl.byClient[c.key] = c
	}
	set := fl.bySession[bs]
	if set == nil {
		set = map[*call]struct{}{}
		fl.bySession[bs] = set
	}
	set[c] = struct{}{}
	if progress {
		fl.progress[c.progressKey] = c
	}
	fl.mu.Unlock()
	return c
}

func (fl *flight) end(c *call) {
	c.cancel(nil)
	fl.mu.Lock()
	if c.key.session != "" && fl.byClient[c.key] == c {
		delete(fl.byClient, c.key)
	}
	if set := fl.bySession[c.bs]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(fl.bySession, c.bs)
		}
	}
	if c.progressKey != "" {
		delete(fl.progress, c.progressKey)
	}
	fl.mu.Unlock()
}

// cancel cancels the call a client's notifications/cancelled names,
// keeping its reason for the backend. It reports whether the call is in
// flight here.
func (fl *flight) cancel(s *session, id []byte, reason string) bool {
	fl.mu.Lock()
	c := fl.byClient[clientKey{s.id, string(id)}]
	fl.mu.Unlock()
	if c == nil {
		return false
	}
	if len(reason) > maxNameLen {
		reason = reason[:maxNameLen]
	}
	c.cancel(cancelReason(reason))
	return true
}

// callers returns the calls in flight on bs.
func (fl *flight) callers(bs *backend.Session) []*call {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	set := fl.bySession[bs]
	out := make([]*call, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	return out
}

// fromBackend takes what a backend session sends outside any call's own
// stream.
func (g *Gateway) fromBackend(bs *backend.Session, msg []byte) { g.relay(bs, msg, nil) }

// relay routes one message from a backend session. c is the call on whose
// stream it came, nil when it came outside any.
func (g *Gateway) relay(bs *backend.Session, msg []byte, c *call) {
	m, err := wire.Parse(msg)
	if err != nil {
		g.log.Debug("backend sent a malformed message", "backend", bs.Backend().Name(), "error", err)
		return
	}
	b := bs.Backend()
	switch m.Method {
	case "notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed":
		if bs.Client() == "" {
			b.Refresh()
		}
		return
	case "notifications/resources/updated":
		uri, _ := wire.GetString(m.Params, "uri")
		g.subs.updated(bs, uri, msg)
		return
	case "notifications/progress":
		key, _ := wire.GetString(m.Params, "progressToken")
		g.flight.mu.Lock()
		pc := g.flight.progress[key]
		g.flight.mu.Unlock()
		if pc == nil {
			return
		}
		tok, _ := json.Marshal(pc.progress)
		out := wire.AppendRequest(nil, nil, m.Method, wire.AppendParams(nil, m.Params, []wire.Set{{Key: "progressToken", Value: tok}}, nil))
		pc.deliver(out)
		return
	case "notifications/message":
		level, _ := wire.GetString(m.Params, "level")
		for _, t := range g.targetsOf(bs, c, &m) {
			if t.s != nil && t.s.wantsLog(level) {
				t.deliver(msg)
			}
		}
		return
	case "notifications/cancelled":
		// The backend withdrew one of its requests to a client.
		id := wire.Get(m.Params, "requestId")
		g.flight.mu.Lock()
		var found string
		var a *ask
		for k, x := range g.flight.asks {
			if x.bs == bs && string(x.backendID) == string(id) {
				found, a = k, x
				break
			}
		}
		delete(g.flight.asks, found)
		g.flight.mu.Unlock()
		if a != nil {
			params := wire.AppendParams(nil, m.Params, []wire.Set{{Key: "requestId", Value: wire.AppendString(nil, found)}}, nil)
			a.s.notify(m.Method, wire.AppendRequest(nil, nil, m.Method, params))
		}
		return
	}
	if m.IsRequest() {
		g.ask(bs, &m, c)
		return
	}
	if m.IsNotification() {
		for _, t := range g.targetsOf(bs, c, &m) {
			t.deliver(msg)
		}
	}
}

// traceOf reads the trace id of a message's params._meta.traceparent.
func traceOf(m *wire.Message) (trace.TraceID, bool) {
	tp, ok := wire.GetString(wire.Get(m.Params, "_meta"), "traceparent")
	if !ok || len(tp) != 55 {
		return trace.TraceID{}, false
	}
	tid, err := trace.TraceIDFromHex(tp[3:35])
	return tid, err == nil
}

// target is where a message for a client goes: a call's own stream (and,
// if that has ended, its session's), or a session's stream.
type target struct {
	c *call
	s *session
}

func (t target) deliver(msg []byte) bool {
	if t.c != nil {
		return t.c.deliver(msg)
	}
	return t.s.deliver(msg)
}

// deliver sends msg to the call's client on the call's stream, with the
// SERVER span's context in its _meta, or on the session's stream once the
// call has been answered.
func (c *call) deliver(msg []byte) bool {
	msg = c.rq.g.traced(c.rq.ctx, msg)
	if c.rq.rp.send(msg) {
		return true
	}
	return c.rq.s != nil && c.rq.s.deliver(msg)
}

// targets finds the clients of a message that names none.
func (g *Gateway) targets(bs *backend.Session, c *call) []target {
	return g.targetsOf(bs, c, nil)
}

// targetsOf is targets for msg, whose trace context, when the backend is
// instrumented (mcptrace puts it in the _meta of what a server sends
// during a call), names the call it belongs to among several in flight.
func (g *Gateway) targetsOf(bs *backend.Session, c *call, m *wire.Message) []target {
	if c != nil {
		return []target{{c: c, s: c.rq.s}}
	}
	calls := g.flight.callers(bs)
	if len(calls) > 1 && m != nil {
		if tid, ok := traceOf(m); ok {
			var match *call
			for _, x := range calls {
				if trace.SpanContextFromContext(x.rq.ctx).TraceID() == tid {
					if match != nil {
						match = nil
						break
					}
					match = x
				}
			}
			if match != nil {
				return []target{{c: match, s: match.rq.s}}
			}
		}
	}
	if owner := bs.Client(); owner != "" {
		// A per-client session has one client: its call in flight, or
		// its stream.
		for _, x := range calls {
			return []target{{c: x, s: x.rq.s}}
		}
		if s := g.sessions.get(owner); s != nil {
			return []target{{s: s}}
		}
		return nil
	}
	if len(calls) > 0 {
		seen := map[*session]bool{}
		var out []target
		for _, x := range calls {
			if x.rq.s == nil || !seen[x.rq.s] {
				seen[x.rq.s] = true
				out = append(out, target{c: x, s: x.rq.s})
			}
		}
		return out
	}
	// Nothing in flight: every session whose front includes the backend.
	var out []target
	g.sessions.each(func(s *session) {
		if s.listenID == nil && s.initialized.Load() && s.front.has(bs.Backend()) {
			out = append(out, target{s: s})
		}
	})
	return out
}

func (f *front) has(b *backend.Backend) bool {
	for _, x := range f.view().backends {
		if x == b {
			return true
		}
	}
	return false
}

// ask relays a backend's request (sampling, elicitation, roots) to the
// one client it can belong to, under an id of the gateway's, or answers
// the backend with an error when there is no such client.
func (g *Gateway) ask(bs *backend.Session, m *wire.Message, c *call) {
	if m.Method == "ping" {
		g.answerBackend(bs, wire.AppendResponse(nil, m.ID, []byte("{}")))
		return
	}
	ts := g.targetsOf(bs, c, m)
	if len(ts) != 1 || ts[0].s == nil {
		msg := "tracegate: no client session to relay " + m.Method + " to"
		if len(ts) > 1 {
			msg = "tracegate: calls from several clients are in flight on this backend session, so " + m.Method +
				" cannot be routed to its caller; configure the backend with sessions: per_client"
		}
		g.refuse(bs, m, codeInternalError, msg)
		return
	}
	t := ts[0]
	s := t.s
	if s.stateless {
		if t.c != nil && t.c.bridge != nil {
			select {
			case t.c.bridge.asks <- append([]byte(nil), m.Raw...):
				return
			default:
			}
		}
		g.refuse(bs, m, codeMethodNotFound, "tracegate: "+m.Method+" cannot be relayed to a "+s.version+" client, which takes no server-to-client requests")
		return
	}
	if need := capabilityFor(m.Method); need != nil && !need(s.caps) {
		g.refuse(bs, m, codeMethodNotFound, "tracegate: the client does not support "+m.Method)
		return
	}
	n := strconv.FormatUint(g.flight.seq.Add(1), 10)
	id := "tgs-" + n
	if g.replicas != nil {
		id = g.replicas.askID(n)
	}
	g.flight.mu.Lock()
	if len(g.flight.asks) >= maxAsks {
		g.flight.mu.Unlock()
		g.refuse(bs, m, codeInternalError, "tracegate: too many requests are waiting for clients")
		return
	}
	a := &ask{s: s, bs: bs, backendID: append([]byte(nil), m.ID...), at: time.Now()}
	if t.c != nil {
		a.call = trace.SpanContextFromContext(t.c.rq.ctx)
	}
	g.flight.asks[id] = a
	g.flight.mu.Unlock()
	if !t.deliver(m.WithID(wire.AppendString(nil, id))) {
		g.flight.mu.Lock()
		delete(g.flight.asks, id)
		g.flight.mu.Unlock()
		g.refuse(bs, m, codeInternalError, "tracegate: the client has no open stream to receive "+m.Method)
	}
}

func capabilityFor(method string) func(clientCaps) bool {
	switch method {
	case "sampling/createMessage":
		return func(c clientCaps) bool { return c.sampling }
	case "elicitation/create":
		return func(c clientCaps) bool { return c.elicitation }
	case "roots/list":
		return func(c clientCaps) bool { return c.roots }
	}
	return nil
}

func (g *Gateway) refuse(bs *backend.Session, m *wire.Message, code int64, msg string) {
	g.answerBackend(bs, wire.AppendError(nil, m.ID, code, msg, nil))
}

// answerBackend sends a response to a backend's request. It runs apart
// from the session's reading goroutine, which must not wait on a write.
func (g *Gateway) answerBackend(bs *backend.Session, msg []byte) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), bs.Backend().Timeout())
		defer cancel()
		bs.Forward(ctx, msg)
	}()
}

// answer passes a client's answer to a backend's request back to that
// backend, under the backend's id; with replicas, to the replica whose
// backend asked.
func (g *Gateway) answer(w http.ResponseWriter, r *http.Request, s *session, m *wire.Message) {
	err := g.relayAnswer(r.Context(), s, m)
	if err == errNoAsk && g.replicas != nil && s != nil {
		var forwarded bool
		if forwarded, err = g.replicas.forwardAnswer(r.Context(), s, m); !forwarded {
			err = errNoAsk
		}
	}
	switch {
	case err == errNoAsk:
		// An answer to nothing pending (late, or not ours): accepted and
		// dropped, as a server does with a response it no longer awaits.
		w.WriteHeader(http.StatusAccepted)
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadGateway)
	default:
		w.WriteHeader(http.StatusAccepted)
	}
}

// errNoAsk: no backend request of s waits here under the answer's id.
var errNoAsk = errors.New("no such request is waiting")

// relayAnswer passes s's answer m to the backend request waiting under
// m's id here.
func (g *Gateway) relayAnswer(ctx context.Context, s *session, m *wire.Message) error {
	id := wire.IDString(m.ID)
	g.flight.mu.Lock()
	a := g.flight.asks[id]
	if a != nil && s != nil && a.s == s {
		delete(g.flight.asks, id)
	} else {
		a = nil
	}
	g.flight.mu.Unlock()
	if a == nil {
		return errNoAsk
	}
	if a.call.IsValid() {
		// The answer carries no trace context of its own: the span
		// handling it (a forward from another replica, or the HTTP
		// span) points at the call it answers.
		trace.SpanFromContext(ctx).AddLink(trace.Link{SpanContext: a.call})
	}
	ctx, cancel := context.WithTimeout(ctx, a.bs.Backend().Timeout())
	defer cancel()
	if err := a.bs.Forward(ctx, m.WithID(a.backendID)); err != nil {
		return errors.New("relaying the answer to backend " + a.bs.Backend().Name() + " failed")
	}
	return nil
}

// traced gives a message relayed to a client on behalf of a request the
// trace context of the request's SERVER span in params._meta, so the
// client sees it in the trace of its own call. Every other byte is kept.
func (g *Gateway) traced(ctx context.Context, msg []byte) []byte {
	t := g.server()
	if t == nil {
		return msg
	}
	m, err := wire.Parse(msg)
	if err != nil || m.Method == "" {
		return msg
	}
	var meta map[string]any
	if raw := wire.Get(m.Params, "_meta"); raw != nil {
		if meta, err = wire.MetaView(raw); err != nil {
			return msg
		}
	}
	injected := t.InjectMeta(ctx, meta)
	if injected == nil {
		return msg
	}
	return wire.AppendRequest(make([]byte, 0, len(msg)+128), m.ID, m.Method, wire.AppendParams(nil, m.Params, nil, injected))
}

// sweepAsks forgets backends' requests that no client answered in time.
func (fl *flight) sweepAsks(older time.Duration) {
	cut := time.Now().Add(-older)
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for k, a := range fl.asks {
		if a.at.Before(cut) {
			delete(fl.asks, k)
		}
	}
}
