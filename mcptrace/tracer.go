package mcptrace

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Message describes one MCP request or notification to a [ServerTracer] or
// [ClientTracer], for code that handles messages without the go-sdk's
// middleware: a gateway or proxy that forwards raw JSON-RPC. The go-sdk
// middleware of this package is built on the same tracers, so both make
// identical spans and metrics.
type Message struct {
	// Method is mcp.method.name.
	Method string
	// RequestID is jsonrpc.request.id, "" for a notification.
	RequestID string
	// Tool and Prompt name the target of tools/call and prompts/get; the
	// span is named "{method} {target}". A caller that routes by name
	// should pass a name it knows, or a fixed placeholder, so that a peer
	// cannot make span names and metric series without bound.
	Tool, Prompt string
	// URI is the resource of resources/read, subscribe and unsubscribe.
	URI string
	// Meta is params._meta as received or to be sent; it is never written.
	Meta map[string]any
	// Header holds the HTTP headers the message came with (server side),
	// nil for other transports.
	Header http.Header
	// SessionID is mcp.session.id; ProtocolVersion is mcp.protocol.version.
	SessionID       string
	ProtocolVersion string
	// Session is the context kept from the session's initialize (see
	// [ServerSpan.SessionContext]); nil when the session has none.
	Session *SessionContext
	// Arguments are a tools/call's raw arguments, recorded only with
	// [WithContentCapture].
	Arguments []byte
}

// SessionContext is the trace context extracted at a stateful session's
// initialize: later requests of the session that carry none of their own
// take it as parent. It is immutable.
type SessionContext struct {
	parent  trace.SpanContext
	baggage baggage.Baggage
}

// Outcome is how an operation ended.
type Outcome struct {
	// Err is a failure without a JSON-RPC error code (a timeout, a lost
	// connection). error.type is derived from it.
	Err error
	// Code and Message are a JSON-RPC error's, when Code is not 0.
	Code    int64
	Message string
	// ToolError is a tools/call result with isError: true.
	ToolError bool
	// ProtocolVersion is the version an initialize negotiated.
	ProtocolVersion string
	// Result is a tools/call's raw result, recorded only with
	// [WithContentCapture].
	Result []byte
}

// ServerTracer makes the SERVER span of each message an MCP server
// receives, with the parent rules and attributes [ServerMiddleware]
// documents. Build it once; it is safe for concurrent use.
type ServerTracer struct{ s *serverTracer }

// NewServerTracer returns a ServerTracer configured by opts.
func NewServerTracer(opts ...Option) *ServerTracer {
	return &ServerTracer{s: newServerTracer(opts)}
}

// ServerSpan is one received message's span and measurement.
type ServerSpan struct {
	in      *instrumenter
	span    trace.Span
	start   time.Time
	op      operation
	source  Source
	pctx    context.Context
	capture bool
}

// Start extracts the caller's context from m (its _meta first, then its
// headers, then the session's) and starts the SERVER span. Call End on the
// result exactly once.
func (t *ServerTracer) Start(ctx context.Context, m Message) (context.Context, *ServerSpan) {
	return t.s.start(ctx, m)
}

// InjectMeta returns a copy of meta with ctx's trace context added, for a
// message the server sends its client (progress, logging, sampling) so
// that it joins the trace of the request being handled; nil when there is
// nothing to inject.
func (t *ServerTracer) InjectMeta(ctx context.Context, meta map[string]any) map[string]any {
	return t.s.prop.InjectMeta(ctx, meta)
}

// SessionDone records mcp.server.session.duration for a session that
// began at start with the given negotiated version.
func (t *ServerTracer) SessionDone(start time.Time, version string, header http.Header) {
	t.s.session.Record(context.Background(), time.Since(start).Seconds(),
		withAttrs(t.s.sessionAttrs(version, t.s.network(header), false)))
}

// SessionContext returns what a session keeps after its initialize: the
// context initialize was extracted from, or nil when it carried none.
func (s *ServerSpan) SessionContext() *SessionContext {
	if s.source != SourceMeta && s.source != SourceHeader {
		return nil
	}
	return &SessionContext{parent: trace.SpanContextFromContext(s.pctx), baggage: baggage.FromContext(s.pctx)}
}

// Source says which rule gave the span its parent.
func (s *ServerSpan) Source() Source { return s.source }

// End records o on the span, ends it and records the duration.
func (s *ServerSpan) End(ctx context.Context, o Outcome) {
	endSpan(ctx, s.in, s.span, s.start, s.op, s.capture, o, false)
}

func (s *serverTracer) start(ctx context.Context, m Message) (context.Context, *ServerSpan) {
	start := time.Now()
	pctx, ex := s.prop.Extract(ctx, m.Header, m.Meta)
	// The trust boundary: an untrusted caller's context only links.
	pctx, ex, trust, links := s.cfg.untrusted(ctx, pctx, ex)
	source := ex.Source
	if source == SourceNone && trust == TrustParent && m.Session != nil && m.Session.parent.IsValid() {
		pctx = trace.ContextWithRemoteSpanContext(pctx, m.Session.parent)
		if baggage.FromContext(pctx).Len() == 0 && m.Session.baggage.Len() > 0 {
			pctx = baggage.ContextWithBaggage(pctx, m.Session.baggage)
		}
		source = SourceSession
	}
	desc := message{method: m.Method, toolName: m.Tool, promptName: m.Prompt, uri: m.URI}
	net := s.network(m.Header)
	op := newOperation(desc, m.ProtocolVersion, net)

	opts := serverStart
	var httpSpan trace.SpanContext
	if s.cfg.httpSpan != nil {
		httpSpan = s.cfg.httpSpan(ctx, m.Header)
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
		// ctx may hold a span of the transport's own; rule 4 says root.
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

	sctx, span := s.tracer.Start(pctx, s.spanName(desc), opts...)
	ss := &ServerSpan{in: s.instrumenter, span: span, start: start, op: op, source: source, pctx: pctx, capture: m.Tool != ""}
	if span.IsRecording() {
		buf := spanAttrBufs.Get().(*[]attribute.KeyValue)
		attrs := s.appendMetricAttrs(*buf, op)
		attrs = append(attrs, AttrTraceContextSource.String(string(source)))
		if ex.Conflict {
			attrs = append(attrs, AttrTraceContextConflict.Bool(true))
		}
		if trust != TrustParent {
			attrs = append(attrs, AttrTraceContextIncoming.String(trust.String()))
		}
		if m.RequestID != "" {
			attrs = append(attrs, keyRequestID.String(m.RequestID))
		}
		setSpanAttrs(span, buf, s.spanAttrs(sctx, attrs, desc, RequestInfo{
			Kind: trace.SpanKindServer, Method: m.Method, ToolName: m.Tool, PromptName: m.Prompt,
			ResourceURI: m.URI, SessionID: m.SessionID, Header: m.Header, Meta: m.Meta,
		}))
		if ss.capture && len(m.Arguments) > 0 {
			s.cfg.captureRaw(span, keyToolCallArgs, m.Arguments)
		}
	}
	return sctx, ss
}

// ClientTracer makes the CLIENT span of each message an MCP client sends,
// and injects that span's context into a copy of the message's _meta, as
// [ClientMiddleware] documents. Build it once; it is safe for concurrent
// use.
type ClientTracer struct{ c *clientTracer }

// NewClientTracer returns a ClientTracer configured by opts.
func NewClientTracer(opts ...Option) *ClientTracer {
	return &ClientTracer{c: newClientTracer(opts)}
}

// ClientSpan is one sent message's span and measurement.
type ClientSpan struct {
	in      *instrumenter
	span    trace.Span
	start   time.Time
	op      operation
	capture bool
}

// Start starts the CLIENT span for m and returns the context to send it
// in (an [http.RoundTripper] from [NewTransport] injects it in the
// headers), the span, and the _meta to send: a copy of m.Meta with the
// span's context, after the [WithBaggage] policy, or nil when m.Meta is to
// be sent as it is.
func (t *ClientTracer) Start(ctx context.Context, m Message) (context.Context, *ClientSpan, map[string]any) {
	c := t.c
	start := time.Now()
	desc := message{method: m.Method, toolName: m.Tool, promptName: m.Prompt, uri: m.URI}
	net, _ := c.cfg.network()
	op := newOperation(desc, m.ProtocolVersion, net)
	ctx, span := c.tracer.Start(ctx, c.spanName(desc), clientStart...)
	cs := &ClientSpan{in: c.instrumenter, span: span, start: start, op: op, capture: m.Tool != ""}
	if span.IsRecording() {
		buf := spanAttrBufs.Get().(*[]attribute.KeyValue)
		attrs := c.appendMetricAttrs(*buf, op)
		if m.RequestID != "" {
			attrs = append(attrs, keyRequestID.String(m.RequestID))
		}
		setSpanAttrs(span, buf, c.spanAttrs(ctx, attrs, desc, RequestInfo{
			Kind: trace.SpanKindClient, Method: m.Method, ToolName: m.Tool, PromptName: m.Prompt,
			ResourceURI: m.URI, SessionID: m.SessionID, Meta: m.Meta,
		}))
		if cs.capture && len(m.Arguments) > 0 {
			c.cfg.captureRaw(span, keyToolCallArgs, m.Arguments)
		}
	}
	return ctx, cs, c.prop.InjectMeta(ctx, m.Meta)
}

// SetSessionID records the server's session id, known only once an
// initialize has been answered.
func (s *ClientSpan) SetSessionID(id string) {
	if id != "" {
		s.span.SetAttributes(keySessionID.String(id))
	}
}

// End records o on the span, ends it and records the duration.
func (s *ClientSpan) End(ctx context.Context, o Outcome) {
	endSpan(ctx, s.in, s.span, s.start, s.op, s.capture, o, true)
}

// SessionDone records mcp.client.session.duration for a session that
// began at start with the given negotiated version.
func (t *ClientTracer) SessionDone(start time.Time, version string) {
	net, _ := t.c.cfg.network()
	t.c.session.Record(context.Background(), time.Since(start).Seconds(),
		withAttrs(t.c.sessionAttrs(version, net, true)))
}

func endSpan(ctx context.Context, in *instrumenter, span trace.Span, start time.Time, op operation, capture bool, o Outcome, client bool) {
	if capture && len(o.Result) > 0 {
		in.cfg.captureRaw(span, keyToolCallResult, o.Result)
	}
	finishSpan(ctx, in, span, start, op, o.ProtocolVersion, o.outcome())
}

// finishSpan records a negotiated protocol version the span did not know
// at its start, then the outcome.
func finishSpan(ctx context.Context, in *instrumenter, span trace.Span, start time.Time, op operation, version string, o outcome) {
	if version != "" && op.version == "" {
		op.version = version
		span.SetAttributes(keyProtocolVersion.String(version))
	}
	in.finish(ctx, span, start, op, o)
}

func (o Outcome) outcome() outcome {
	switch {
	case o.Code != 0:
		code := formatCode(o.Code)
		return outcome{errorType: code, statusCode: code, message: o.Message}
	case o.Err != nil:
		return outcome{errorType: errorType(o.Err), message: o.Err.Error()}
	case o.ToolError:
		return outcome{errorType: errToolError, message: errToolError}
	}
	return outcome{}
}

func formatCode(code int64) string { return strconv.FormatInt(code, 10) }

func withAttrs(a []attribute.KeyValue) metric.RecordOption { return metric.WithAttributes(a...) }

// sessionCarrier is the propagator a SessionContext is kept with outside
// the process: W3C trace context and baggage, whatever propagator the
// tracer uses, since the fields are read back by this package alone.
var sessionCarrier = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Fields returns the session context as W3C header values (traceparent,
// tracestate, baggage), so that a session can be kept outside the process
// (another replica of a server restores it with [SessionContextFromFields]).
// It returns nil for a nil SessionContext.
func (s *SessionContext) Fields() map[string]string {
	if s == nil {
		return nil
	}
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), s.parent)
	ctx = baggage.ContextWithBaggage(ctx, s.baggage)
	c := propagation.MapCarrier{}
	sessionCarrier.Inject(ctx, c)
	return c
}

// SessionContextFromFields restores what [SessionContext.Fields] returned;
// nil when fields hold no valid trace context.
func SessionContextFromFields(fields map[string]string) *SessionContext {
	if len(fields) == 0 {
		return nil
	}
	ctx := sessionCarrier.Extract(context.Background(), propagation.MapCarrier(fields))
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	return &SessionContext{parent: sc, baggage: baggage.FromContext(ctx)}
}
