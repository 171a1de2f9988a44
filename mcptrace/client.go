package mcptrace

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"

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
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		start := time.Now()
		params := req.GetParams()
		meta := metaOf(params)
		session := req.GetSession()
		m := describe(method, params)
		net, _ := c.cfg.network()

		version := clientProtocolVersion(session, meta)
		op := newOperation(m, version, net)
		ctx, span := c.tracer.Start(ctx, c.spanName(m), clientStart...)
		if span.IsRecording() {
			span.SetAttributes(c.spanAttrs(ctx, c.metricAttrs(op, 2), m, RequestInfo{
				Kind: trace.SpanKindClient, Method: method, ToolName: m.toolName, PromptName: m.promptName,
				ResourceURI: m.uri, SessionID: sessionID(session), Meta: meta,
			})...)
			if m.toolName != "" {
				c.cfg.captureArguments(span, params)
			}
		}

		out := req
		if injected := c.prop.InjectMeta(ctx, meta); injected != nil {
			var restore func()
			out, restore = withMeta(req, injected)
			defer restore()
		}
		res, err := next(ctx, method, out)

		if method == methodInitialize && err == nil {
			// The session ID and the negotiated version are known only now.
			if id := sessionID(session); id != "" {
				span.SetAttributes(keySessionID.String(id))
			}
			if ir, ok := res.(*mcp.InitializeResult); ok && ir != nil && ir.ProtocolVersion != "" {
				version = ir.ProtocolVersion
				span.SetAttributes(keyProtocolVersion.String(version))
				op.version = version
			}
			watchSession(session, nil, c.session, start, c.sessionAttrs(version, net, true))
		}
		if m.toolName != "" {
			c.cfg.captureResult(span, res)
		}
		c.finish(ctx, span, start, op, classify(res, err, true))
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
