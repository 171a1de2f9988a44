package mcptrace

import (
	"context"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ServerMiddleware returns middleware for [mcp.Server.AddReceivingMiddleware]
// that starts one SERVER span per received request or notification, named
// "{mcp.method.name} {target}" after the MCP semantic conventions, and
// records mcp.server.operation.duration and mcp.server.session.duration.
//
// The span's parent is, in order: valid trace context in params._meta
// (SEP-414); the HTTP headers of the request; for a stateful session, the
// context extracted at its initialize; otherwise none, and the span is a new
// root. tracegate.trace_context.source says which. When _meta and the
// headers disagree, the span links the header context and sets
// tracegate.trace_context.conflict. See [WithHTTPSpanContext] for how an
// HTTP server span fits in.
//
// Handlers find the span with [trace.SpanFromContext], and the extracted
// baggage with [baggage.FromContext].
//
// The same middleware may be given to [mcp.Client.AddReceivingMiddleware],
// for the requests a server sends to a client (sampling, elicitation, roots).
func ServerMiddleware(opts ...Option) mcp.Middleware {
	return newServerTracer(opts).wrap
}

// serverTracer is the state behind ServerMiddleware.
type serverTracer struct {
	*instrumenter
	sessions sessionStore
}

func newServerTracer(opts []Option) *serverTracer {
	return &serverTracer{instrumenter: newInstrumenter(newConfig(opts), false,
		metricServerOperation, "MCP request or notification duration as observed on the receiver from the time it was received until the result or ack is sent.",
		metricServerSession, "The duration of the MCP session as observed on the MCP server.")}
}

func (s *serverTracer) wrap(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		params := req.GetParams()
		meta := metaOf(params)
		var header http.Header
		if extra := req.GetExtra(); extra != nil {
			header = extra.Header
		}
		session := req.GetSession()
		d := describe(method, params)
		stored, haveSession := s.sessions.get(session)
		version := stored.version
		if version == "" && method != methodInitialize {
			version = requestProtocolVersion(req, meta)
		}
		m := Message{Method: method, Tool: d.toolName, Prompt: d.promptName, URI: d.uri, Meta: meta,
			Header: header, SessionID: sessionID(session), ProtocolVersion: version}
		if haveSession && stored.parent.IsValid() {
			m.Session = &SessionContext{parent: stored.parent, baggage: stored.baggage}
		}
		ctx, sp := s.start(ctx, m)
		if d.toolName != "" {
			s.cfg.captureArguments(sp.span, params)
		}
		res, err := next(ctx, method, req)
		var negotiated string
		if method == methodInitialize && err == nil {
			if ir, ok := res.(*mcp.InitializeResult); ok && ir != nil && ir.ProtocolVersion != "" {
				negotiated = ir.ProtocolVersion
			}
			v := negotiated
			if v == "" {
				v = version
			}
			s.initialized(session, sp.source, sp.pctx, sp.start, v, s.network(header))
		}
		if d.toolName != "" {
			s.cfg.captureResult(sp.span, res)
		}
		finishSpan(ctx, sp.in, sp.span, sp.start, sp.op, negotiated, classify(res, err, false))
		return res, err
	}
}

// initialized keeps the context extracted at a session's initialize, and
// watches the session to forget it and record its duration when it ends.
func (s *serverTracer) initialized(session mcp.Session, source Source, pctx context.Context, start time.Time, version string, net network) {
	if !validSession(session) {
		return
	}
	var sc sessionContext
	if source == SourceMeta || source == SourceHeader {
		sc.parent = trace.SpanContextFromContext(pctx)
		sc.baggage = baggage.FromContext(pctx)
	}
	sc.version = version
	s.sessions.put(session, sc)
	watchSession(session, &s.sessions, s.session, start, s.sessionAttrs(version, net, false))
}

// network reports the transport of a received message: HTTP when the SDK
// passed headers (Streamable HTTP, SSE), else a pipe (stdio, in-memory),
// unless configured.
func (s *serverTracer) network(header http.Header) network {
	if n, ok := s.cfg.network(); ok {
		return n
	}
	if header != nil {
		return network{transport: transportTCP, protocolName: protocolHTTP}
	}
	return network{transport: transportPipe}
}

// requestProtocolVersion returns the MCP version a request follows: per
// request in _meta from 2026-07-28 on, else the session's.
func requestProtocolVersion(req mcp.Request, meta map[string]any) string {
	if v, ok := meta[mcp.MetaKeyProtocolVersion].(string); ok {
		return v
	}
	if r, ok := req.(interface{ ProtocolVersion() string }); ok && validSession(req.GetSession()) {
		return r.ProtocolVersion()
	}
	return ""
}

// ServerSendingMiddleware returns middleware for
// [mcp.Server.AddSendingMiddleware] that injects the trace context of ctx
// into a copy of params._meta of every request and notification a server
// sends to its client (sampling, elicitation, roots, progress, logging), so
// that they join the trace of the request being handled. It starts no span.
func ServerSendingMiddleware(opts ...Option) mcp.Middleware {
	p := newPropagation(newConfig(opts))
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			meta := p.InjectMeta(ctx, metaOf(req.GetParams()))
			if meta == nil {
				return next(ctx, method, req)
			}
			req, restore := withMeta(req, meta)
			defer restore()
			return next(ctx, method, req)
		}
	}
}
