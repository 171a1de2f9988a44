package mcptrace

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// An Option configures a [Propagation], a middleware or a [Transport].
// Options are applied once, at construction; nothing is read again on the
// request path.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	propagator     propagation.TextMapPropagator
	baggage        BaggagePolicy

	captureMax int // 0: arguments and results are not recorded
	redact     func(attr string, data []byte) []byte

	attrs        []attribute.KeyValue
	requestAttrs func(ctx context.Context, info RequestInfo) []attribute.KeyValue
	httpSpan     func(ctx context.Context, header http.Header) trace.SpanContext
	incoming     func(ctx context.Context) Trust

	serverAddress   string
	serverPort      int
	transport       string
	protocolName    string
	protocolVersion string
}

// newConfig applies the defaults, then opts. The global providers are read
// here, once, when none was given.
func newConfig(opts []Option) *config {
	c := &config{}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	if c.tracerProvider == nil {
		c.tracerProvider = otel.GetTracerProvider()
	}
	if c.meterProvider == nil {
		c.meterProvider = otel.GetMeterProvider()
	}
	if c.propagator == nil {
		c.propagator = defaultPropagator
	}
	return c
}

// defaultPropagator is W3C Trace Context plus W3C Baggage, never the global
// propagator, so that tracing does not depend on process-wide state.
var defaultPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// WithTracerProvider sets the tracer provider spans are started with. If
// nil or not given, the global provider at construction time is used.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) {
		if tp != nil {
			c.tracerProvider = tp
		}
	})
}

// WithMeterProvider sets the meter provider for the duration histograms and
// the dropped-context counter. If nil or not given, the global provider at
// construction time is used.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) {
		if mp != nil {
			c.meterProvider = mp
		}
	})
}

// WithPropagators sets the propagator used on both carriers (HTTP headers and
// _meta). If nil or not given, W3C Trace Context and W3C Baggage are used.
// Whatever the propagator, the traceparent, tracestate and baggage values are
// validated before it sees them.
func WithPropagators(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) {
		if p != nil {
			c.propagator = p
		}
	})
}

// WithBaggage sets which baggage members are injected into outgoing _meta
// and headers. The default is [BaggageAll]. Extraction is not filtered.
func WithBaggage(p BaggagePolicy) Option {
	return optionFunc(func(c *config) { c.baggage = p })
}

// WithContentCapture opts in to recording tools/call arguments and results as
// gen_ai.tool.call.arguments and gen_ai.tool.call.result, each as JSON cut to
// at most maxBytes bytes. They may hold secrets: it is off by default, and
// maxBytes <= 0 keeps it off.
func WithContentCapture(maxBytes int) Option {
	return optionFunc(func(c *config) {
		if maxBytes > 0 {
			c.captureMax = maxBytes
		}
	})
}

// WithContentRedactor sets a function applied to captured arguments and
// results (attr is the attribute name, data the JSON) before they are cut to
// size and recorded. It only matters with [WithContentCapture]. If nil, the
// JSON is recorded as is.
func WithContentRedactor(redact func(attr string, data []byte) []byte) Option {
	return optionFunc(func(c *config) {
		if redact != nil {
			c.redact = redact
		}
	})
}

// WithAttributes adds fixed attributes to every span and every operation
// duration measurement of this instance, for example
// tracegate.backend.name. Keep them low in cardinality.
func WithAttributes(kv ...attribute.KeyValue) Option {
	return optionFunc(func(c *config) { c.attrs = append(c.attrs, kv...) })
}

// WithRequestAttributes sets a hook called as each recorded span starts;
// the attributes it returns are added to that span only (not to metrics).
// It is not called for spans that are not recorded (unsampled). If nil, no
// hook is called.
func WithRequestAttributes(fn func(ctx context.Context, info RequestInfo) []attribute.KeyValue) Option {
	return optionFunc(func(c *config) {
		if fn != nil {
			c.requestAttrs = fn
		}
	})
}

// WithHTTPSpanContext sets a hook that returns the span context of the HTTP
// server span (for example "POST /mcp") that carries the current request, or
// an invalid span context when there is none. header is the HTTP request's
// header as the SDK passes it (nil off HTTP).
//
// The MCP SERVER span becomes a child of that span when its parent would
// otherwise come from the same HTTP headers or be a new root, and links to
// it when _meta or the session gave the parent: MCP and transport contexts
// are independent, and one HTTP request can carry several MCP messages.
//
// The hook exists because the go-sdk runs handlers under the session's
// context, not under the HTTP request's, so the HTTP span is not in ctx.
func WithHTTPSpanContext(fn func(ctx context.Context, header http.Header) trace.SpanContext) Option {
	return optionFunc(func(c *config) {
		if fn != nil {
			c.httpSpan = fn
		}
	})
}

// WithServerAddress sets server.address and server.port on client spans and
// client metrics (port <= 0 leaves server.port out). Empty addr is ignored.
func WithServerAddress(addr string, port int) Option {
	return optionFunc(func(c *config) {
		if addr != "" {
			c.serverAddress, c.serverPort = addr, port
		}
	})
}

// WithNetworkTransport sets network.transport ("tcp", "pipe", ...) and,
// when not empty, network.protocol.name and network.protocol.version.
//
// Server middleware detects HTTP ("tcp", "http") from the request and
// otherwise reports "pipe" (stdio, in-memory); this option overrides that.
// Client middleware cannot see its transport and reports none unless set.
func WithNetworkTransport(transport, protocolName, protocolVersion string) Option {
	return optionFunc(func(c *config) {
		if transport != "" {
			c.transport, c.protocolName, c.protocolVersion = transport, protocolName, protocolVersion
		}
	})
}

// RequestInfo describes one MCP request or notification to the
// [WithRequestAttributes] hook. It must be treated as read-only.
type RequestInfo struct {
	Kind        trace.SpanKind // SERVER for received, CLIENT for sent messages
	Method      string         // mcp.method.name, e.g. "tools/call"
	ToolName    string         // for tools/call
	PromptName  string         // for prompts/get
	ResourceURI string         // for resources/read, subscribe, unsubscribe, updated
	SessionID   string         // MCP session ID, empty when there is none (yet)
	Header      http.Header    // received HTTP headers; nil off HTTP and on the client
	Meta        map[string]any // the message's params._meta as received or sent by the caller
}
