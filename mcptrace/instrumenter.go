package mcptrace

import (
	"context"
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
	prop      *Propagation
	tracer    trace.Tracer
	operation metric.Float64Histogram
	session   metric.Float64Histogram

	names   boundedCache[message, string]
	records boundedCache[operation, []metric.RecordOption]
}

func newInstrumenter(cfg *config, operationName, operationDesc, sessionName, sessionDesc string) *instrumenter {
	meter := cfg.meterProvider.Meter(instrumentationName)
	return &instrumenter{
		cfg:       cfg,
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
// duration measurement: the semantic conventions' metric attributes plus
// the instance's fixed ones. The slice has room for the span's extras.
func (in *instrumenter) metricAttrs(m message, version string, n network, client bool) []attribute.KeyValue {
	a := make([]attribute.KeyValue, 0, 16+len(in.cfg.attrs))
	a = append(a, keyMethodName.String(m.method))
	if m.toolName != "" {
		a = append(a, keyToolName.String(m.toolName), keyOperationName.String(opExecuteTool))
	}
	if m.promptName != "" {
		a = append(a, keyPromptName.String(m.promptName))
	}
	if version != "" {
		a = append(a, keyProtocolVersion.String(version))
	}
	a = n.append(a)
	if client {
		a = in.cfg.appendServerAddress(a)
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
// operation's duration with the metric attributes (attrs, those of op) and
// the error ones.
func (in *instrumenter) finish(ctx context.Context, span trace.Span, start time.Time, attrs []attribute.KeyValue, op operation, o outcome) {
	if o.errorType != "" {
		errAttrs := []attribute.KeyValue{keyErrorType.String(o.errorType)}
		if o.statusCode != "" {
			errAttrs = append(errAttrs, keyStatusCode.String(o.statusCode))
		}
		span.SetAttributes(errAttrs...)
		span.SetStatus(codes.Error, o.message)
		attrs = append(attrs[:len(attrs):len(attrs)], errAttrs...)
		op.errorType, op.statusCode = o.errorType, o.statusCode
	}
	span.End()
	in.operation.Record(ctx, time.Since(start).Seconds(), in.recordOptions(op, attrs)...)
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
