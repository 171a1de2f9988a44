package mcptrace

import (
	"context"
	"net/http"
	"net/textproto"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// A Source names the carrier that gave a span its parent context.
type Source string

// Sources, in order of precedence for a SERVER span's parent.
const (
	SourceMeta    Source = "meta"    // params._meta (SEP-414)
	SourceHeader  Source = "header"  // HTTP headers
	SourceSession Source = "session" // the context extracted at the session's initialize
	SourceNone    Source = "none"    // none: the span is a new root
)

// An Extraction reports what [Propagation.Extract] found.
type Extraction struct {
	// Source is SourceMeta, SourceHeader or SourceNone.
	Source Source
	// Conflict is true when _meta and the headers both held valid trace
	// context that differ in trace or span ID; _meta then wins, and the
	// caller should link Header.
	Conflict bool
	// Header and Meta are the span contexts found in each carrier; they are
	// invalid when the carrier held none.
	Header, Meta trace.SpanContext
}

// Propagation extracts and injects trace context in both MCP carriers, HTTP
// headers and params._meta. Build it once with [NewPropagation]; its methods
// do no option processing and are safe for concurrent use.
type Propagation struct {
	prop          propagation.TextMapPropagator
	fields        []string // prop.Fields(), as given
	headerFields  []string // the same, in canonical header form
	baggagePolicy BaggagePolicy
	dropped       metric.Int64Counter
	droppedOpts   [2][numReasons][]metric.AddOption
}

// carrier and reason index the dropped-context counter's attribute sets.
type carrier int

const (
	carrierHeader carrier = iota
	carrierMeta
)

type reason int

const (
	reasonTraceparent reason = iota
	reasonTracestate
	reasonBaggageTooLarge
	reasonBaggageInvalid
	numReasons
)

var (
	carrierNames = [2]string{"header", "meta"}
	reasonNames  = [numReasons]string{"invalid_traceparent", "invalid_tracestate", "baggage_too_large", "invalid_baggage"}
)

// Canonical header names of the W3C fields, so that no lookup canonicalizes.
const (
	headerTraceparent = "Traceparent"
	headerTracestate  = "Tracestate"
	headerBaggage     = "Baggage"
)

// NewPropagation returns a Propagation configured by opts. It uses
// [WithPropagators], [WithMeterProvider] and [WithBaggage]; other options
// are ignored.
func NewPropagation(opts ...Option) *Propagation {
	return newPropagation(newConfig(opts))
}

func newPropagation(c *config) *Propagation {
	p := &Propagation{prop: c.propagator, baggagePolicy: c.baggage}
	p.fields = p.prop.Fields()
	p.headerFields = make([]string, len(p.fields))
	for i, f := range p.fields {
		p.headerFields[i] = textproto.CanonicalMIMEHeaderKey(f)
	}
	meter := c.meterProvider.Meter(instrumentationName)
	// A failed instrument is a no-op one; telemetry must not fail the caller.
	p.dropped, _ = meter.Int64Counter(MetricDropped,
		metric.WithUnit("{value}"),
		metric.WithDescription("Trace context values ignored on extraction because they were invalid or too large."))
	for c := range carrierNames {
		for r := range reasonNames {
			set := attribute.NewSet(attrCarrier.String(carrierNames[c]), attrReason.String(reasonNames[r]))
			p.droppedOpts[c][r] = []metric.AddOption{metric.WithAttributeSet(set)}
		}
	}
	return p
}

// Extract returns ctx with the remote span context and baggage found in the
// request's headers and params._meta (either may be nil), and reports which
// carrier won. _meta takes precedence over headers (SEP-414 and the MCP
// semantic conventions: the MCP message, not its transport, carries the
// caller's context). Baggage comes from _meta when _meta holds some, else
// from the headers.
//
// A traceparent, tracestate or baggage value that is not well-formed W3C,
// and baggage over [MaxBaggageBytes], is ignored and counted; Extract never
// fails. When neither carrier holds a valid span context, ctx's own span
// context is left as it is.
func (p *Propagation) Extract(ctx context.Context, header http.Header, meta map[string]any) (context.Context, Extraction) {
	ex := Extraction{Source: SourceNone}
	// Extract onto a context without a span, so that a span already in ctx
	// is not mistaken for one found in a carrier.
	base := ctx
	if trace.SpanContextFromContext(ctx).IsValid() {
		base = trace.ContextWithSpanContext(ctx, trace.SpanContext{})
	}
	var metaCtx, headerCtx context.Context
	var metaBaggage, headerBaggage bool
	if p.metaHasFields(meta) {
		c := checkedCarrier{meta: meta}
		p.checkMeta(ctx, &c)
		metaCtx = p.prop.Extract(base, &c)
		ex.Meta = trace.SpanContextFromContext(metaCtx)
		metaBaggage = c.baggage != ""
	}
	if p.headerHasFields(header) {
		c := checkedCarrier{header: header}
		p.checkHeader(ctx, &c)
		headerCtx = p.prop.Extract(base, &c)
		ex.Header = trace.SpanContextFromContext(headerCtx)
		headerBaggage = c.baggage != ""
	}

	out := ctx
	switch {
	case ex.Meta.IsValid():
		ex.Source = SourceMeta
		ex.Conflict = ex.Header.IsValid() && (ex.Header.TraceID() != ex.Meta.TraceID() || ex.Header.SpanID() != ex.Meta.SpanID())
		out = metaCtx
		if !metaBaggage && headerBaggage {
			out = baggage.ContextWithBaggage(out, baggage.FromContext(headerCtx))
		}
	case ex.Header.IsValid():
		ex.Source = SourceHeader
		out = headerCtx
		if metaBaggage {
			out = baggage.ContextWithBaggage(out, baggage.FromContext(metaCtx))
		}
	case metaBaggage:
		out = baggage.ContextWithBaggage(ctx, baggage.FromContext(metaCtx))
	case headerBaggage:
		out = baggage.ContextWithBaggage(ctx, baggage.FromContext(headerCtx))
	}
	return out, ex
}

// metaHasFields and headerHasFields report whether a carrier holds any of
// the propagator's fields, so that requests without trace context skip the
// propagator.
func (p *Propagation) metaHasFields(meta map[string]any) bool {
	for _, f := range p.fields {
		if _, ok := meta[f]; ok {
			return true
		}
	}
	return false
}

func (p *Propagation) headerHasFields(header http.Header) bool {
	for _, f := range p.headerFields {
		if len(header[f]) > 0 {
			return true
		}
	}
	return false
}

// checkMeta fills c with the validated W3C values of c.meta. A reserved key
// holding a non-string JSON value counts as invalid.
func (p *Propagation) checkMeta(ctx context.Context, c *checkedCarrier) {
	tp, tpOK := metaString(c.meta, KeyTraceparent)
	ts, tsOK := metaString(c.meta, KeyTracestate)
	bg, bgOK := metaString(c.meta, KeyBaggage)
	p.check(ctx, carrierMeta, c, tp, tpOK, ts, tsOK, bg, bgOK)
}

// metaString returns meta[key] if it is a string; ok is false when the key
// holds another JSON type.
func metaString(meta map[string]any, key string) (s string, ok bool) {
	v, present := meta[key]
	if !present || v == nil {
		return "", true
	}
	s, ok = v.(string)
	return s, ok
}

// checkHeader fills c with the validated W3C values of c.header. Repeated
// traceparent fields are invalid (W3C Trace Context, section 3.2); repeated
// tracestate and baggage fields are joined, as HTTP allows for lists.
func (p *Propagation) checkHeader(ctx context.Context, c *checkedCarrier) {
	tpv := c.header[headerTraceparent]
	tp, tpOK := "", len(tpv) <= 1
	if len(tpv) == 1 {
		tp = tpv[0]
	}
	ts := joinValues(c.header[headerTracestate])
	bg := joinValues(c.header[headerBaggage])
	p.check(ctx, carrierHeader, c, tp, tpOK, ts, true, bg, true)
}

func joinValues(v []string) string {
	switch len(v) {
	case 0:
		return ""
	case 1:
		return v[0]
	}
	return strings.Join(v, ",")
}

// check validates the raw W3C values of one carrier, stores the valid ones
// in c and counts the rest. The tracestate is only looked at with a valid
// traceparent, since it means nothing without one.
func (p *Propagation) check(ctx context.Context, from carrier, c *checkedCarrier, tp string, tpOK bool, ts string, tsOK bool, bg string, bgOK bool) {
	switch {
	case !tpOK || tp != "" && !validTraceparent(tp):
		p.count(ctx, from, reasonTraceparent)
	case tp != "":
		c.traceparent = tp
		if !tsOK || ts != "" && !validTracestate(ts) {
			p.count(ctx, from, reasonTracestate)
		} else {
			c.tracestate = ts
		}
	}
	switch {
	case len(bg) > MaxBaggageBytes:
		p.count(ctx, from, reasonBaggageTooLarge)
	case !bgOK || bg != "" && !validBaggage(bg):
		p.count(ctx, from, reasonBaggageInvalid)
	default:
		c.baggage = bg
	}
}

func (p *Propagation) count(ctx context.Context, from carrier, r reason) {
	p.dropped.Add(ctx, 1, p.droppedOpts[from][r]...)
}

// checkedCarrier shows a propagator the validated W3C values of a carrier
// and every other key unchanged.
type checkedCarrier struct {
	traceparent, tracestate, baggage string

	header http.Header    // one of header and meta is set
	meta   map[string]any //
}

func (c *checkedCarrier) Get(key string) string {
	switch key {
	case KeyTraceparent:
		return c.traceparent
	case KeyTracestate:
		return c.tracestate
	case KeyBaggage:
		return c.baggage
	}
	if c.meta != nil {
		return MetaCarrier(c.meta).Get(key)
	}
	return propagation.HeaderCarrier(c.header).Get(key)
}

func (c *checkedCarrier) Set(string, string) {}

func (c *checkedCarrier) Keys() []string {
	if c.meta != nil {
		return MetaCarrier(c.meta).Keys()
	}
	return propagation.HeaderCarrier(c.header).Keys()
}

// InjectMeta returns a copy of meta (which may be nil) holding the trace
// context of ctx, after the baggage policy. Every other key is kept, and
// trace context keys already in meta are replaced or removed, so that what
// is sent is exactly ctx's context. meta itself is never modified (the
// caller may still hold it, e.g. a proxy forwarding a client's _meta).
// The result is nil only when meta is nil and there is nothing to inject.
func (p *Propagation) InjectMeta(ctx context.Context, meta map[string]any) map[string]any {
	var c collectCarrier
	p.prop.Inject(p.baggagePolicy.filter(ctx), &c)
	if meta == nil && len(c.kv) == 0 {
		return nil
	}
	out := make(map[string]any, len(meta)+len(c.kv))
	for k, v := range meta {
		if !p.isField(k) {
			out[k] = v
		}
	}
	for _, kv := range c.kv {
		if validOutgoing(kv[0], kv[1]) {
			out[kv[0]] = kv[1]
		}
	}
	return out
}

// InjectHeader sets the trace context of ctx, after the baggage policy, in
// header, replacing or removing any trace context fields already there. As
// with [propagation.HeaderCarrier], header is written in place: pass a
// request's cloned header, never one still shared with a caller.
func (p *Propagation) InjectHeader(ctx context.Context, header http.Header) {
	if header == nil {
		return
	}
	var c collectCarrier
	p.prop.Inject(p.baggagePolicy.filter(ctx), &c)
	for _, f := range p.headerFields {
		delete(header, f)
	}
	for _, kv := range c.kv {
		if !validOutgoing(kv[0], kv[1]) {
			continue
		}
		if i := p.fieldIndex(kv[0]); i >= 0 {
			header[p.headerFields[i]] = []string{kv[1]}
		} else {
			header.Set(kv[0], kv[1])
		}
	}
}

func (p *Propagation) isField(key string) bool { return p.fieldIndex(key) >= 0 }

func (p *Propagation) fieldIndex(key string) int {
	for i, f := range p.fields {
		if f == key {
			return i
		}
	}
	return -1
}

// validOutgoing reports whether an injected value may be sent: tracegate
// forwards only well-formed W3C values.
func validOutgoing(key, value string) bool {
	switch key {
	case KeyTraceparent:
		return validTraceparent(value)
	case KeyTracestate:
		return value == "" || validTracestate(value)
	case KeyBaggage:
		return len(value) <= MaxBaggageBytes && (value == "" || validBaggage(value))
	}
	return true
}

// collectCarrier records what a propagator injects. Three fields fit
// without growing.
type collectCarrier struct {
	kv    [][2]string
	array [3][2]string
}

func (c *collectCarrier) Get(key string) string {
	for _, kv := range c.kv {
		if kv[0] == key {
			return kv[1]
		}
	}
	return ""
}

func (c *collectCarrier) Set(key, value string) {
	if c.kv == nil {
		c.kv = c.array[:0]
	}
	for i := range c.kv {
		if c.kv[i][0] == key {
			c.kv[i][1] = value
			return
		}
	}
	c.kv = append(c.kv, [2]string{key, value})
}

func (c *collectCarrier) Keys() []string {
	keys := make([]string, len(c.kv))
	for i, kv := range c.kv {
		keys[i] = kv[0]
	}
	return keys
}

// defaultPropagation backs the package-level functions. It is built on first
// use, from the global meter provider at that time.
var defaultPropagation = sync.OnceValue(func() *Propagation { return NewPropagation() })

// Extract calls [Propagation.Extract] on a default Propagation (W3C Trace
// Context and Baggage, the global meter provider at first use).
func Extract(ctx context.Context, header http.Header, meta map[string]any) (context.Context, Extraction) {
	return defaultPropagation().Extract(ctx, header, meta)
}

// InjectMeta calls [Propagation.InjectMeta] on the default Propagation.
func InjectMeta(ctx context.Context, meta map[string]any) map[string]any {
	return defaultPropagation().InjectMeta(ctx, meta)
}

// InjectHeader calls [Propagation.InjectHeader] on the default Propagation.
func InjectHeader(ctx context.Context, header http.Header) {
	defaultPropagation().InjectHeader(ctx, header)
}
