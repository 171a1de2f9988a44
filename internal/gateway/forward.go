package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/wire"
)

// The routed methods: each finds its backend, runs its plugins, and
// forwards through send, the one place a client's request reaches a
// backend.

func (rq *request) callTool() ([]byte, error) {
	name, ok := rq.paramName()
	if !ok {
		return nil, &wire.Error{Code: codeInvalidParams, Message: "missing tool name"}
	}
	v := rq.f.view()
	rt := v.tools[name]
	if rt == nil {
		if b := v.gone["tool:"+name]; b != nil {
			return nil, unavailable(b)
		}
		return nil, &wire.Error{Code: codeInvalidParams, Message: fmt.Sprintf("unknown tool %q", truncated(name))}
	}
	args := wire.Get(rq.m.Params, "arguments")
	hooks := rq.g.hooks(rq.ctx, rq.s, rt.backend, rt.visible, rt.original, rt.schema)
	var sets []wire.Set
	if name != rt.original {
		sets = append(sets, wire.Set{Key: "name", Value: wire.AppendString(nil, rt.original)})
	}
	args, sets, err := hooks.preArgs(ToolPre, args, sets)
	if err != nil {
		return nil, err
	}
	result, err := rq.send(rt.backend, backend.Request{Method: "tools/call", Tool: rt.original, Sets: sets, Arguments: args})
	if err != nil {
		return nil, err
	}
	rq.outcome.ToolError = backend.IsToolError(result)
	rq.outcome.Result = result
	return hooks.postResult(ToolPost, args, result)
}

func (rq *request) getPrompt() ([]byte, error) {
	name, ok := rq.paramName()
	if !ok {
		return nil, &wire.Error{Code: codeInvalidParams, Message: "missing prompt name"}
	}
	v := rq.f.view()
	rt := v.prompts[name]
	if rt == nil {
		if b := v.gone["prompt:"+name]; b != nil {
			return nil, unavailable(b)
		}
		return nil, &wire.Error{Code: codeInvalidParams, Message: fmt.Sprintf("unknown prompt %q", truncated(name))}
	}
	args := wire.Get(rq.m.Params, "arguments")
	hooks := rq.g.hooks(rq.ctx, rq.s, rt.backend, rt.visible, rt.original, nil)
	var sets []wire.Set
	if name != rt.original {
		sets = append(sets, wire.Set{Key: "name", Value: wire.AppendString(nil, rt.original)})
	}
	args, sets, err := hooks.preArgs(PromptPre, args, sets)
	if err != nil {
		return nil, err
	}
	result, err := rq.send(rt.backend, backend.Request{Method: "prompts/get", Prompt: rt.original, Sets: sets})
	if err != nil {
		return nil, err
	}
	return hooks.postResult(PromptPost, args, result)
}

func (rq *request) readResource() ([]byte, error) {
	uri, ok := wire.GetString(rq.m.Params, "uri")
	if !ok {
		return nil, &wire.Error{Code: codeInvalidParams, Message: "missing uri"}
	}
	v := rq.f.view()
	b := v.resource(uri)
	if b == nil {
		if gb := v.gone["resource:"+uri]; gb != nil {
			return nil, unavailable(gb)
		}
		return nil, resourceNotFound(uri)
	}
	hooks := rq.g.hooks(rq.ctx, rq.s, b, uri, uri, nil)
	if hooks.active(ResourcePre) {
		if _, err := hooks.pre(ResourcePre, nil); err != nil {
			return nil, err
		}
	}
	result, err := rq.send(b, backend.Request{Method: "resources/read", URI: uri})
	if err != nil {
		return nil, err
	}
	return hooks.postResult(ResourcePost, nil, result)
}

func (rq *request) complete() ([]byte, error) {
	ref := wire.Get(rq.m.Params, "ref")
	if ref == nil {
		return nil, &wire.Error{Code: codeInvalidParams, Message: "completion/complete: missing ref"}
	}
	typ, _ := wire.GetString(ref, "type")
	v := rq.f.view()
	var b *backend.Backend
	var sets []wire.Set
	switch typ {
	case "ref/prompt":
		name, _ := wire.GetString(ref, "name")
		rt := v.prompts[name]
		if rt == nil {
			if gb := v.gone["prompt:"+name]; gb != nil {
				return nil, unavailable(gb)
			}
			return nil, &wire.Error{Code: codeInvalidParams, Message: fmt.Sprintf("unknown prompt %q", truncated(name))}
		}
		b = rt.backend
		if name != rt.original {
			sets = append(sets, wire.Set{Key: "ref", Value: wire.AppendParams(nil, ref, []wire.Set{{Key: "name", Value: wire.AppendString(nil, rt.original)}}, nil)})
		}
	case "ref/resource":
		uri, _ := wire.GetString(ref, "uri")
		for _, t := range v.templates {
			if t.raw == uri {
				b = t.backend
				break
			}
		}
		if b == nil {
			b = v.resource(uri)
		}
		if b == nil {
			return nil, &wire.Error{Code: codeInvalidParams, Message: fmt.Sprintf("unknown resource %q", truncated(uri))}
		}
	default:
		return nil, &wire.Error{Code: codeInvalidParams, Message: fmt.Sprintf("completion/complete: unknown ref type %q", truncated(typ))}
	}
	if !b.Catalog().Init.Caps.Completions {
		// Completion is optional: a backend without it completes nothing.
		return []byte(`{"completion":{"values":[]}}`), nil
	}
	return rq.send(b, backend.Request{Method: "completion/complete", Sets: sets})
}

// send forwards the client's request to b with out's rewrites, relays
// what the backend sends for the client on the way, and returns the
// result. The client's params reach the backend as sent, but for out.Sets,
// a progress token of the gateway's, and _meta's trace fields.
func (rq *request) send(b *backend.Backend, out backend.Request) ([]byte, error) {
	g := rq.g
	client := ""
	if b.PerClient() && rq.s != nil && !rq.s.stateless {
		client = rq.s.id
	}
	bs, err := b.SessionFor(rq.ctx, client)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, unavailableErr(b, err)
	}
	out.Params = rq.m.Params
	if rq.s != nil && rq.s.modern {
		return rq.sendBridged(b, bs, out)
	}
	c := g.flight.begin(rq, bs)
	defer g.flight.end(c)
	out.ID = c.backendID
	out.Meta = c.backendMeta()
	out.Related = func(msg []byte) { g.relay(bs, msg, c) }

	resp, err := bs.Send(c.ctx, out)
	if err != nil {
		return nil, g.failed(rq, c, c.ctx, err)
	}
	if resp.Error != nil {
		return nil, wire.DecodeError(resp.Error)
	}
	return resp.Result, nil
}

// backendMeta is the _meta the backend gets for the call: the client's,
// with the gateway's progress token in place of the client's and without
// the keys of the client's own hop.
func (c *call) backendMeta() map[string]any {
	in := c.rq.meta
	if in == nil || !rewritesMeta(in) {
		return in
	}
	meta := make(map[string]any, len(in))
	for k, v := range in {
		meta[k] = v
	}
	for _, k := range hopMeta {
		delete(meta, k)
	}
	if tok, ok := meta["progressToken"]; ok {
		c.progress = tok
		meta["progressToken"] = c.progressKey
	}
	return meta
}

// rewritesMeta reports whether a client's _meta needs the gateway's
// changes before it goes to a backend: a progress token to map, or the
// keys of the client's own hop.
func rewritesMeta(meta map[string]any) bool {
	if _, ok := meta["progressToken"]; ok {
		return true
	}
	for _, k := range hopMeta {
		if _, ok := meta[k]; ok {
			return true
		}
	}
	return false
}

// failed maps a call that got no answer to the client's error, and tells
// the backend to stop working on a call the gateway gave up on.
func (g *Gateway) failed(rq *request, c *call, ctx context.Context, err error) error {
	b := c.bs.Backend()
	switch {
	case rq.ctx.Err() != nil || c.ctx.Err() == context.Canceled:
		// The client cancelled (notifications/cancelled, or it went away).
		c.abandon(rq.ctx, c.reason())
		return context.Canceled
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		timeout := b.Timeout()
		c.abandon(rq.ctx, fmt.Sprintf("timed out at the gateway after %s", timeout))
		g.log.WarnContext(rq.ctx, "backend call timed out", "backend", b.Name(), "timeout", timeout.String())
		return &wire.Error{Code: CodeTimeout, Message: fmt.Sprintf("backend %q did not answer within %s", b.Name(), timeout)}
	}
	msg := b.Redact(err)
	g.log.WarnContext(rq.ctx, "backend call failed", "backend", b.Name(), "error", msg)
	b.Check()
	return &wire.Error{Code: CodeUnavailable, Message: fmt.Sprintf("backend %q failed: %s", b.Name(), failureKind(err))}
}

// JSON-RPC error codes tracegate answers with for its own failures, in the
// range JSON-RPC 2.0 (section 5.1) reserves for implementation-defined
// server errors.
const (
	// CodeUnavailable: the backend is down, not yet connected, or the call
	// failed below the protocol (connection refused, child died).
	CodeUnavailable = -32010
	// CodeTimeout: the backend did not answer within its timeout.
	CodeTimeout = -32011
)

// failureKind says what went wrong in words a client may see: never an
// address, a URL or a session id (those go to logs and spans).
func failureKind(err error) string {
	var e interface{ Timeout() bool }
	switch {
	case errors.As(err, &e) && e.Timeout():
		return "the connection timed out"
	case errors.Is(err, errSessionLost):
		return "the backend session was lost"
	}
	return "the backend could not be reached"
}

var errSessionLost = errors.New("session lost")

func unavailable(b *backend.Backend) error { return unavailableErr(b, b.Unavailable()) }

func unavailableErr(b *backend.Backend, err error) error {
	state := string(b.State())
	if errors.Is(err, backend.ErrUnavailable) && b.State() == backend.StateReady {
		state = "at its session limit"
	}
	return &wire.Error{Code: CodeUnavailable, Message: fmt.Sprintf("backend %q is unavailable: %s", b.Name(), state)}
}

func truncated(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// call is one request in flight on a backend session.
type call struct {
	rq        *request
	bs        *backend.Session
	backendID []byte
	// key files a stateful client's call by its id, for cancellation.
	key clientKey
	// ctx ends at the backend's timeout (DeadlineExceeded), or with stop
	// (Canceled): when the client cancels the call, or when it ends.
	ctx  context.Context
	stop context.CancelFunc
	// why is the reason the client gave when it cancelled the call.
	why         atomic.Pointer[cancelReason]
	progress    any    // the client's progress token, nil when none
	progressKey string // the token the backend got instead
	started     time.Time
	// bridge holds the call across a 2026-07-28 client's requests.
	bridge *bridge
}

type cancelReason string

func (r cancelReason) Error() string { return string(r) }

// cancel ends the call's context. A cancelReason, kept unless the
// context has already ended, is the reason the backend is given.
func (c *call) cancel(cause error) {
	if r, ok := cause.(cancelReason); ok && c.ctx.Err() == nil {
		c.why.CompareAndSwap(nil, &r)
	}
	c.stop()
}

// reason is the client's cancel reason, or a default.
func (c *call) reason() string {
	if r := c.why.Load(); r != nil && *r != "" {
		return string(*r)
	}
	return "cancelled by the client"
}

// abandon tells the backend to stop working on the call.
func (c *call) abandon(ctx context.Context, reason string) {
	params, _ := json.Marshal(map[string]any{"requestId": json.RawMessage(c.backendID), "reason": reason})
	bs := c.bs
	ctx = context.WithoutCancel(ctx)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		bs.Notify(ctx, "notifications/cancelled", params)
	}()
}
