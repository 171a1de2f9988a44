package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/backend"
)

// relay routes what backends send back to the client session that owns the
// call in flight. Backend sessions are shared, so the owner is found from
// the call itself:
//   - progress: by progressToken, which the call carried in _meta. Tokens are
//     forwarded unchanged unless two client sessions use the same token on
//     the same backend at once; the later one is then rewritten to a token
//     unique to the gateway and mapped back on the way out.
//   - sampling, elicitation, roots: by the trace ID in the request's
//     _meta.traceparent (a backend instrumented with mcptrace sends it),
//     else by the only client session with calls in flight on that backend.
//     When neither decides, the request is refused rather than guessed.
//   - logging messages: to every client session with calls in flight on
//     that backend.
type relay struct {
	log *slog.Logger
	seq atomic.Uint64

	mu       sync.Mutex
	inflight map[*backend.Backend]map[*call]struct{}
	tokens   map[tokenKey]*call
	// recent holds calls that ended within logLinger, by when they ended:
	// the SDK hands a call its response before it runs the handler of a
	// log message read just ahead of it, and that message still belongs to
	// the call's session.
	recent map[*backend.Backend]map[*call]time.Time
}

// logLinger is how long a log message can still find the session of a call
// that has just ended.
const logLinger = 200 * time.Millisecond

type call struct {
	ctx         context.Context // the client request's context: the SDK routes server-to-client messages by it
	session     *mcp.ServerSession
	traceID     trace.TraceID
	token       tokenKey
	clientToken any
	progressed  atomic.Bool // some progress was relayed
	ended       atomic.Bool // the call has returned (it may linger for logs)
	complete    atomic.Bool // progress reached its total
}

// drain lets a progress notification the backend sent just before its
// response reach the client before the response does: the SDK hands a
// response to the caller before it runs the handler of a notification read
// just ahead of it. Only calls that reported progress, and not yet their
// last step, wait, and for 10ms at most.
func (c *call) drain() {
	if !c.progressed.Load() {
		return
	}
	for i := 0; i < 10 && !c.complete.Load(); i++ {
		time.Sleep(time.Millisecond)
	}
}

type tokenKey struct {
	backend *backend.Backend
	token   string
}

func newRelay(log *slog.Logger) *relay {
	return &relay{
		log:      log,
		inflight: map[*backend.Backend]map[*call]struct{}{},
		tokens:   map[tokenKey]*call{},
		recent:   map[*backend.Backend]map[*call]time.Time{},
	}
}

// begin records a call about to be sent to b and sets params' _meta from
// the client's. The returned func must be called when the call is over.
func (r *relay) begin(ctx context.Context, ss *mcp.ServerSession, b *backend.Backend, meta map[string]any, params mcp.Params) (context.Context, func()) {
	c := &call{ctx: ctx, session: ss, traceID: trace.SpanContextFromContext(ctx).TraceID()}
	meta = stripHopMeta(meta)
	tok, hasToken := meta["progressToken"]
	r.mu.Lock()
	if hasToken {
		key := tokenKey{b, normToken(tok)}
		if other, taken := r.tokens[key]; taken && other.session != ss {
			// Two clients chose the same token: give this call its own.
			fresh := "tracegate-" + strconv.FormatUint(r.seq.Add(1), 10)
			meta = maps.Clone(meta)
			meta["progressToken"] = fresh
			key = tokenKey{b, normToken(fresh)}
		}
		c.token, c.clientToken = key, tok
		r.tokens[key] = c
	}
	r.addLocked(b, c)
	r.mu.Unlock()
	if meta != nil {
		// The client's map as is: injection works on a copy.
		params.SetMeta(meta)
	}
	return ctx, func() {
		c.drain()
		r.mu.Lock()
		delete(r.inflight[b], c)
		c.ended.Store(true)
		r.linger(b, c)
		if c.token.backend != nil && r.tokens[c.token] == c {
			delete(r.tokens, c.token)
		}
		r.mu.Unlock()
	}
}

// hopMeta are the SEP-2575 per-request keys of the 2026-07-28 revision. They
// describe the client-to-gateway hop (its protocol version, client info and
// capabilities), so like HTTP's hop-by-hop headers they are not forwarded:
// the backend session sets its own. Forwarding them would make a backend on
// an older revision reject the call.
var hopMeta = []string{
	"io.modelcontextprotocol/protocolVersion",
	"io.modelcontextprotocol/clientInfo",
	"io.modelcontextprotocol/clientCapabilities",
	"io.modelcontextprotocol/logLevel",
}

func stripHopMeta(meta map[string]any) map[string]any {
	for _, k := range hopMeta {
		if _, ok := meta[k]; ok {
			meta = maps.Clone(meta)
			for _, k := range hopMeta {
				delete(meta, k)
			}
			if len(meta) == 0 {
				return nil
			}
			return meta
		}
	}
	return meta
}

func normToken(t any) string {
	switch v := t.(type) {
	case string:
		return "s" + v
	case float64:
		return "n" + strconv.FormatFloat(v, 'g', -1, 64)
	case int:
		return "n" + strconv.Itoa(v)
	case int64:
		return "n" + strconv.FormatInt(v, 10)
	default:
		return fmt.Sprintf("x%v", v)
	}
}

// track records a forwarded call to b, so that messages the backend sends
// outside the call's stream (logging, requests on its standalone stream)
// still find the client session. The returned func ends it.
func (r *relay) track(ctx context.Context, ss *mcp.ServerSession, b *backend.Backend) func() {
	c := &call{ctx: ctx, session: ss, traceID: trace.SpanContextFromContext(ctx).TraceID()}
	r.mu.Lock()
	r.addLocked(b, c)
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.inflight[b], c)
		r.mu.Unlock()
	}
}

// addLocked records c as in flight on b. Called with r.mu held.
func (r *relay) addLocked(b *backend.Backend, c *call) {
	set := r.inflight[b]
	if set == nil {
		set = map[*call]struct{}{}
		r.inflight[b] = set
	}
	set[c] = struct{}{}
}

// Notify implements backend.Relay.
func (r *relay) Notify(ctx context.Context, b *backend.Backend, method string, params mcp.Params) {
	switch p := params.(type) {
	case *mcp.ProgressNotificationParams:
		r.mu.Lock()
		c := r.tokens[tokenKey{b, normToken(p.ProgressToken)}]
		r.mu.Unlock()
		if c == nil {
			r.log.DebugContext(ctx, "progress for no call in flight dropped", "backend", b.Name())
			return
		}
		c.progressed.Store(true)
		out := *p
		out.ProgressToken = c.clientToken
		if err := c.session.NotifyProgress(c.ctx, &out); err != nil {
			r.log.DebugContext(c.ctx, "relaying progress failed", "backend", b.Name(), "error", err)
		}
		if p.Total > 0 && p.Progress >= p.Total {
			c.complete.Store(true)
		}
	case *mcp.LoggingMessageParams:
		for _, c := range r.owners(b) {
			ctx := c.ctx
			if ctx.Err() != nil || c.ended.Load() {
				// The call's stream is gone: the session's own stream
				// takes the message, in the call's trace.
				ctx = trace.ContextWithSpanContext(context.Background(), trace.SpanContextFromContext(c.ctx))
			}
			if err := c.session.Log(ctx, p); err != nil {
				r.log.DebugContext(c.ctx, "relaying log message failed", "backend", b.Name(), "error", err)
			}
		}
	default:
		r.log.DebugContext(ctx, "backend notification not relayed", "backend", b.Name(), "method", method)
	}
}

// owners returns one in-flight call per client session with calls on b.
func (r *relay) owners(b *backend.Backend) []*call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*call
	seen := map[*mcp.ServerSession]bool{}
	for c := range r.inflight[b] {
		if !seen[c.session] {
			seen[c.session] = true
			out = append(out, c)
		}
	}
	now := time.Now()
	for c, ended := range r.recent[b] {
		if now.Sub(ended) > logLinger {
			delete(r.recent[b], c)
		} else if !seen[c.session] {
			seen[c.session] = true
			out = append(out, c)
		}
	}
	return out
}

// linger keeps an ended call findable by log messages for logLinger.
// Called with r.mu held.
func (r *relay) linger(b *backend.Backend, c *call) {
	set := r.recent[b]
	if set == nil {
		set = map[*call]time.Time{}
		r.recent[b] = set
	}
	now := time.Now()
	for old, ended := range set {
		if now.Sub(ended) > logLinger {
			delete(set, old)
		}
	}
	set[c] = now
}

// owner picks the call a server-to-client request belongs to.
func (r *relay) owner(b *backend.Backend, meta map[string]any) (*call, error) {
	var tid trace.TraceID
	if tp, ok := meta["traceparent"].(string); ok {
		tid = traceIDOf(tp)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var only *call
	sessions := 0
	seen := map[*mcp.ServerSession]bool{}
	for c := range r.inflight[b] {
		if tid.IsValid() && c.traceID == tid {
			return c, nil
		}
		if !seen[c.session] {
			seen[c.session] = true
			sessions++
			only = c
		}
	}
	switch sessions {
	case 0:
		return nil, fmt.Errorf("backend %q sent a request outside any call", b.Name())
	case 1:
		return only, nil
	default:
		return nil, fmt.Errorf("backend %q sent a request while %d client sessions have calls in flight, and it carries no trace context to tell them apart", b.Name(), sessions)
	}
}

// Request implements backend.Relay.
func (r *relay) Request(ctx context.Context, b *backend.Backend, method string, req mcp.Request) (mcp.Result, error) {
	var meta map[string]any
	if p := req.GetParams(); p != nil {
		meta = p.GetMeta()
	}
	c, err := r.owner(b, meta)
	if err != nil {
		r.log.WarnContext(ctx, "server-to-client request refused", "backend", b.Name(), "method", method, "error", err)
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "tracegate: " + err.Error()}
	}
	// The client call's context carries the gateway's span (so the relayed
	// request joins the trace) and the request id the SDK uses to send it on
	// the stream of that call.
	cctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	switch method {
	case "sampling/createMessage":
		return c.session.CreateMessage(cctx, req.(*mcp.CreateMessageRequest).Params)
	case "elicitation/create":
		return c.session.Elicit(cctx, req.(*mcp.ElicitRequest).Params)
	case "roots/list":
		return c.session.ListRoots(cctx, req.(*mcp.ListRootsRequest).Params)
	}
	return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: "tracegate: cannot relay " + method}
}

// traceIDOf reads the trace-id field of a W3C traceparent without
// validating the rest; a wrong guess only fails to match.
func traceIDOf(tp string) trace.TraceID {
	if len(tp) < 35 || tp[2] != '-' {
		return trace.TraceID{}
	}
	id, err := trace.TraceIDFromHex(tp[3:35])
	if err != nil {
		return trace.TraceID{}
	}
	return id
}
