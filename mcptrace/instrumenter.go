package mcptrace

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// instrumenter holds what a middleware captured at construction: config,
// propagation, tracer and its two duration histograms.
type instrumenter struct {
	cfg       *config
	client    bool // CLIENT spans and client metrics, else SERVER
	prop      *Propagation
	tracer    trace.Tracer
	operation metric.Float64Histogram
	session   metric.Float64Histogram

	names   boundedCache[message, string]
	records boundedCache[operation, []metric.RecordOption]
}

// Span start options, shared by every call so that starting a span does
// not allocate them.
var (
	serverStart = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	clientStart = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
)

func newInstrumenter(cfg *config, client bool, operationName, operationDesc, sessionName, sessionDesc string) *instrumenter {
	meter := cfg.meterProvider.Meter(instrumentationName)
	return &instrumenter{
		cfg:       cfg,
		client:    client,
		prop:      newPropagation(cfg),
		tracer:    cfg.tracerProvider.Tracer(instrumentationName),
		operation: histogram(meter, operationName, operationDesc),
		session:   histogram(meter, sessionName, sessionDesc),
	}
}

// histogram makes a duration histogram with the semantic conventions'
// buckets. A failure gives a no-op instrument: telemetry must not fail the
// caller.
func histogram(meter metric.Meter, name, desc string) metric.Float64Histogram {
	h, err := meter.Float64Histogram(name,
		metric.WithUnit("s"),
		metric.WithDescription(desc),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	if err != nil || h == nil {
		return noop.Float64Histogram{}
	}
	return h
}

// network describes the transport a message travelled on.
type network struct {
	transport, protocolName, protocolVersion string
}

// configured returns the network set with WithNetworkTransport, if any.
func (c *config) network() (network, bool) {
	return network{c.transport, c.protocolName, c.protocolVersion}, c.transport != ""
}

// metricAttrs returns the attributes shared by a span and its operation
// duration measurement: the semantic conventions' metric attributes of op
// (error ones included) plus the instance's fixed ones. The slice has room
// for extra more.
//
// Spans get their attributes right after they start, and only when they
// are recorded: an unsampled call then builds no attributes at all (its
// measurement's set is cached). Samplers see the span's name and kind,
// which carry the method and the target.
func (in *instrumenter) metricAttrs(op operation, extra int) []attribute.KeyValue {
	return in.appendMetricAttrs(make([]attribute.KeyValue, 0, 13+extra+len(in.cfg.attrs)), op)
}

// appendMetricAttrs appends metricAttrs(op) to a.
func (in *instrumenter) appendMetricAttrs(a []attribute.KeyValue, op operation) []attribute.KeyValue {
	a = append(a, keyMethodName.String(op.method))
	if op.tool != "" {
		a = append(a, keyToolName.String(op.tool), keyOperationName.String(opExecuteTool))
	}
	if op.prompt != "" {
		a = append(a, keyPromptName.String(op.prompt))
	}
	if op.version != "" {
		a = append(a, keyProtocolVersion.String(op.version))
	}
	a = op.net.append(a)
	if in.client {
		a = in.cfg.appendServerAddress(a)
	}
	if op.errorType != "" {
		a = append(a, keyErrorType.String(op.errorType))
		if op.statusCode != "" {
			a = append(a, keyStatusCode.String(op.statusCode))
		}
	}
	return append(a, in.cfg.attrs...)
}

func (n network) append(a []attribute.KeyValue) []attribute.KeyValue {
	if n.transport != "" {
		a = append(a, keyNetTransport.String(n.transport))
	}
	if n.protocolName != "" {
		a = append(a, keyNetProtoName.String(n.protocolName))
	}
	if n.protocolVersion != "" {
		a = append(a, keyNetProtoVersion.String(n.protocolVersion))
	}
	return a
}

func (c *config) appendServerAddress(a []attribute.KeyValue) []attribute.KeyValue {
	if c.serverAddress != "" {
		a = append(a, keyServerAddress.String(c.serverAddress))
		if c.serverPort > 0 {
			a = append(a, keyServerPort.Int(c.serverPort))
		}
	}
	return a
}

// spanAttrBufs hold the attributes a span gets at its start while they
// are gathered: SetAttributes copies them (the SDK's into the span's own
// slice, as do the other implementations of the API), so a buffer is free
// again at once and a recorded call allocates none.
var spanAttrBufs = sync.Pool{New: func() any {
	b := make([]attribute.KeyValue, 0, 32)
	return &b
}}

// setSpanAttrs sets the attributes gathered in a buffer from spanAttrBufs
// on span and returns the buffer, emptied, to the pool.
func setSpanAttrs(span trace.Span, buf *[]attribute.KeyValue, attrs []attribute.KeyValue) {
	span.SetAttributes(attrs...)
	if cap(attrs) > 256 {
		return // an outsized one is left to the collector
	}
	clear(attrs) // keep no names or ids alive in the pool
	*buf = attrs[:0]
	spanAttrBufs.Put(buf)
}

// spanAttrs appends the span-only attributes: those too high in
// cardinality for metrics, and the request hook's.
func (in *instrumenter) spanAttrs(ctx context.Context, a []attribute.KeyValue, m message, info RequestInfo) []attribute.KeyValue {
	if m.uri != "" {
		a = append(a, keyResourceURI.String(m.uri))
	}
	if info.SessionID != "" {
		a = append(a, keySessionID.String(info.SessionID))
	}
	if in.cfg.requestAttrs != nil {
		a = append(a, in.cfg.requestAttrs(ctx, info)...)
	}
	return a
}

// finish records the outcome on the span, ends it, and records the
// operation's duration.
func (in *instrumenter) finish(ctx context.Context, span trace.Span, start time.Time, op operation, o outcome) {
	if o.errorType != "" {
		op.errorType, op.statusCode = o.errorType, o.statusCode
		if span.IsRecording() {
			if o.statusCode != "" {
				span.SetAttributes(keyErrorType.String(o.errorType), keyStatusCode.String(o.statusCode))
			} else {
				span.SetAttributes(keyErrorType.String(o.errorType))
			}
		}
		span.SetStatus(codes.Error, o.message)
	}
	span.End()
	in.operation.Record(ctx, time.Since(start).Seconds(), in.recordOptions(op)...)
}

// sessionAttrs are the session duration histogram's attributes.
func (in *instrumenter) sessionAttrs(version string, n network, client bool) []attribute.KeyValue {
	var a []attribute.KeyValue
	if version != "" {
		a = append(a, keyProtocolVersion.String(version))
	}
	a = n.append(a)
	if client {
		a = in.cfg.appendServerAddress(a)
	}
	return append(a, in.cfg.attrs...)
}
