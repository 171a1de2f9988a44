package mcptrace

import (
	"context"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ClientMiddleware returns middleware for [mcp.Client.AddSendingMiddleware]
// that starts one CLIENT span per request or notification sent (initialize
// included), named "{mcp.method.name} {target}" after the MCP semantic
// conventions, and injects that span's context into a copy of
// params._meta, after the [WithBaggage] policy. Every other _meta key
// (progressToken and the rest) is kept, and the caller's map is never
// written: the params' Meta field points at the copy while the message is
// sent and is restored afterwards, so one params value must not be used by
// concurrent calls (the SDK writes to params too). A message sent without
// params gets params holding only _meta.
//
// It records mcp.client.operation.duration and mcp.client.session.duration.
// The client cannot see its transport: use [WithServerAddress] and
// [WithNetworkTransport] to describe it, and [Transport] to carry the same
// context in HTTP headers.
func ClientMiddleware(opts ...Option) mcp.Middleware {
	return newClientTracer(opts).wrap
}

type clientTracer struct {
	*instrumenter
}

func newClientTracer(opts []Option) *clientTracer {
	return &clientTracer{instrumenter: newInstrumenter(newConfig(opts), true,
		metricClientOperation, "The duration of the MCP request or notification as observed on the sender from the time it was sent until the response or ack is received.",
		metricClientSession, "The duration of the MCP session as observed on the MCP client.")}
}

func (c *clientTracer) wrap(next mcp.MethodHandler) mcp.MethodHandler {
	t := &ClientTracer{c: c}
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		params := req.GetParams()
		meta := metaOf(params)
		session := req.GetSession()
		d := describe(method, params)
		version := clientProtocolVersion(session, meta)
		ctx, cs, injected := t.Start(ctx, Message{Method: method, Tool: d.toolName, Prompt: d.promptName, URI: d.uri,
			Meta: meta, SessionID: sessionID(session), ProtocolVersion: version})
		if d.toolName != "" {
			c.cfg.captureArguments(cs.span, params)
		}
		out := req
		if injected != nil {
			var restore func()
			out, restore = withMeta(req, injected)
			defer restore()
		}
		res, err := next(ctx, method, out)

		var negotiated string
		if method == methodInitialize && err == nil {
			// The session ID and the negotiated version are known only now.
			cs.SetSessionID(sessionID(session))
			if ir, ok := res.(*mcp.InitializeResult); ok && ir != nil && ir.ProtocolVersion != "" {
				negotiated = ir.ProtocolVersion
			}
			v := negotiated
			if v == "" {
				v = version
			}
			net, _ := c.cfg.network()
			watchSession(session, nil, c.session, cs.start, c.sessionAttrs(v, net, true))
		}
		if d.toolName != "" {
			c.cfg.captureResult(cs.span, res)
		}
		finishSpan(ctx, cs.in, cs.span, cs.start, cs.op, negotiated, classify(res, err, true))
		return res, err
	}
}

// clientProtocolVersion returns the MCP version of a sent message: per
// request in _meta from 2026-07-28 on, else the one the session negotiated.
func clientProtocolVersion(session mcp.Session, meta map[string]any) string {
	if v, ok := meta[mcp.MetaKeyProtocolVersion].(string); ok {
		return v
	}
	if cs, ok := session.(*mcp.ClientSession); ok && cs != nil {
		if ir := cs.InitializeResult(); ir != nil {
			return ir.ProtocolVersion
		}
	}
	return ""
}
