package mcptrace

import (
	"context"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
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
		start := time.Now()
		params := req.GetParams()
		meta := metaOf(params)
		var header http.Header
		if extra := req.GetExtra(); extra != nil {
			header = extra.Header
		}
		session := req.GetSession()
		m := describe(method, params)

		pctx, ex := s.prop.Extract(ctx, header, meta)
		// The trust boundary: an untrusted caller's context only links.
		pctx, ex, trust, links := s.cfg.untrusted(ctx, pctx, ex)
		source := ex.Source
		stored, haveSession := s.sessions.get(session)
		if source == SourceNone && trust == TrustParent && haveSession && stored.parent.IsValid() {
			pctx = trace.ContextWithRemoteSpanContext(pctx, stored.parent)
			if baggage.FromContext(pctx).Len() == 0 && stored.baggage.Len() > 0 {
				pctx = baggage.ContextWithBaggage(pctx, stored.baggage)
			}
			source = SourceSession
		}

		net := s.network(header)
		version := stored.version
		if version == "" && method != methodInitialize {
			version = requestProtocolVersion(req, meta)
		}
		op := newOperation(m, version, net)

		opts := serverStart
		var httpSpan trace.SpanContext
		if s.cfg.httpSpan != nil {
			httpSpan = s.cfg.httpSpan(ctx, header)
		}
		if trust != TrustParent && httpSpan.IsValid() {
			// Started from the same untrusted headers: linked, not a parent.
			links = append(links, trace.Link{SpanContext: httpSpan})
			httpSpan = trace.SpanContext{}
		}
		if len(links) > 0 {
			opts = append(opts[:len(opts):len(opts)], trace.WithLinks(links...))
		}
		switch {
		case (source == SourceHeader || source == SourceNone) && httpSpan.IsValid():
			// The HTTP span was itself started from these headers (or is a
			// root), so it is the closer parent.
			pctx = trace.ContextWithSpanContext(pctx, httpSpan)
		case source == SourceNone:
			// ctx may hold a span of the session's own (the go-sdk keeps the
			// context of the HTTP request that opened it); rule 4 says root.
			opts = append(opts[:len(opts):len(opts)], trace.WithNewRoot())
		case httpSpan.IsValid():
			opts = append(opts[:len(opts):len(opts)], trace.WithLinks(trace.Link{SpanContext: httpSpan}))
		}
		if ex.Conflict {
			opts = append(opts[:len(opts):len(opts)], trace.WithLinks(trace.Link{
				SpanContext: ex.Header,
				Attributes:  []attribute.KeyValue{AttrTraceContextSource.String(string(SourceHeader))},
			}))
		}

		ctx, span := s.tracer.Start(pctx, s.spanName(m), opts...)
		if span.IsRecording() {
			attrs := s.metricAttrs(op, 4)
			attrs = append(attrs, AttrTraceContextSource.String(string(source)))
			if ex.Conflict {
				attrs = append(attrs, AttrTraceContextConflict.Bool(true))
			}
			if trust != TrustParent {
				attrs = append(attrs, AttrTraceContextIncoming.String(trust.String()))
			}
			span.SetAttributes(s.spanAttrs(ctx, attrs, m, RequestInfo{
				Kind: trace.SpanKindServer, Method: method, ToolName: m.toolName, PromptName: m.promptName,
				ResourceURI: m.uri, SessionID: sessionID(session), Header: header, Meta: meta,
			})...)
			if m.toolName != "" {
				s.cfg.captureArguments(span, params)
			}
		}
		res, err := next(ctx, method, req)
		if method == methodInitialize && err == nil {
			if ir, ok := res.(*mcp.InitializeResult); ok && ir != nil && ir.ProtocolVersion != "" {
				version = ir.ProtocolVersion
				span.SetAttributes(keyProtocolVersion.String(version))
				op.version = version
			}
			s.initialized(session, source, pctx, start, version, net)
		}
		if m.toolName != "" {
			s.cfg.captureResult(span, res)
		}
		s.finish(ctx, span, start, op, classify(res, err, false))
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
