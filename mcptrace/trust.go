package mcptrace

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"
)

// Trust is what a caller's incoming trace context (traceparent, tracestate
// and baggage, in HTTP headers or params._meta) may do to a SERVER span.
type Trust int

const (
	// TrustParent makes the caller's context the span's parent: the span
	// joins the caller's trace, and the caller's sampled flag is obeyed.
	// This is the default, for callers inside the operator's own system.
	TrustParent Trust = iota
	// TrustLink starts a new root and links the caller's context, as edge
	// proxies do: the caller cannot choose trace IDs or force sampling
	// (the sampler decides), and the link still leads to its trace. The
	// caller's baggage is kept.
	TrustLink
	// TrustIgnore drops the caller's trace context and baggage: a new root
	// with no link.
	TrustIgnore
)

// String returns trust, link or ignore.
func (t Trust) String() string {
	switch t {
	case TrustLink:
		return "link"
	case TrustIgnore:
		return "ignore"
	}
	return "trust"
}

// AttrTraceContextIncoming records, on a SERVER span whose caller's trace
// context was not trusted, what was done with it: "link" or "ignore".
const AttrTraceContextIncoming = attribute.Key("tracegate.trace_context.incoming")

// WithIncomingContext sets how much a caller's trace context is trusted,
// decided per request: decide gets the handler's context (which may carry
// the caller's identity) and returns a [Trust]. If nil or not given, every
// caller is trusted ([TrustParent]). It applies to [ServerMiddleware].
func WithIncomingContext(decide func(ctx context.Context) Trust) Option {
	return optionFunc(func(c *config) {
		if decide != nil {
			c.incoming = decide
		}
	})
}

// untrusted applies the trust decision to an extraction. For TrustParent it
// returns its inputs as they are. Otherwise the returned context has no
// remote span context (and, for TrustIgnore, no baggage), the extraction's
// source is SourceNone, and links holds the caller's context for
// TrustLink (the _meta context, the header context, each once).
func (c *config) untrusted(ctx, pctx context.Context, ex Extraction) (context.Context, Extraction, Trust, []trace.Link) {
	if c.incoming == nil {
		return pctx, ex, TrustParent, nil
	}
	t := c.incoming(ctx)
	if t == TrustParent {
		return pctx, ex, t, nil
	}
	var links []trace.Link
	if t == TrustLink {
		for _, l := range []struct {
			sc  trace.SpanContext
			src Source
		}{{ex.Meta, SourceMeta}, {ex.Header, SourceHeader}} {
			if l.sc.IsValid() && (l.src == SourceMeta || !ex.Meta.Equal(l.sc)) {
				links = append(links, trace.Link{SpanContext: l.sc, Attributes: []attribute.KeyValue{AttrTraceContextSource.String(string(l.src))}})
			}
		}
	}
	out := trace.ContextWithSpanContext(pctx, trace.SpanContext{})
	if t == TrustIgnore {
		out = baggage.ContextWithoutBaggage(out)
	}
	return out, Extraction{Source: SourceNone}, t, links
}
