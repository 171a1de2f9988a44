package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tracegate/tracegate/internal/redact"
)

// The OTLP/HTTP protobuf span exporter.
//
// The OpenTelemetry exporter converts every span into generated protobuf
// structs and marshals those: about 35 allocations per span, in the export
// goroutine but on the same cores as the requests. This one appends the
// ExportTraceServiceRequest wire format straight from the spans into a
// reused buffer (opentelemetry/proto/collector/trace/v1), and posts it the
// way the OTLP/HTTP exporter spec says: application/x-protobuf, optional
// gzip, retries on 429, 502, 503 and 504 within the export timeout.

// Field numbers of the OTLP messages written here.
const (
	fRequestResourceSpans = 1 // ExportTraceServiceRequest.resource_spans

	fResourceSpansResource  = 1
	fResourceSpansScope     = 2
	fResourceSpansSchemaURL = 3

	fScopeSpansScope     = 1
	fScopeSpansSpans     = 2
	fScopeSpansSchemaURL = 3

	fSpanTraceID           = 1
	fSpanSpanID            = 2
	fSpanTraceState        = 3
	fSpanParentSpanID      = 4
	fSpanName              = 5
	fSpanKind              = 6
	fSpanStart             = 7
	fSpanEnd               = 8
	fSpanAttributes        = 9
	fSpanDroppedAttributes = 10
	fSpanEvents            = 11
	fSpanDroppedEvents     = 12
	fSpanLinks             = 13
	fSpanDroppedLinks      = 14
	fSpanStatus            = 15
	fSpanFlags             = 16

	fEventTime              = 1
	fEventName              = 2
	fEventAttributes        = 3
	fEventDroppedAttributes = 4

	fLinkTraceID           = 1
	fLinkSpanID            = 2
	fLinkTraceState        = 3
	fLinkAttributes        = 4
	fLinkDroppedAttributes = 5
	fLinkFlags             = 6

	fStatusMessage = 2
	fStatusCode    = 3

	fResourceAttributes = 1

	fScopeName       = 1
	fScopeVersion    = 2
	fScopeAttributes = 3

	fKeyValueKey   = 1
	fKeyValueValue = 2

	fAnyString = 1
	fAnyBool   = 2
	fAnyInt    = 3
	fAnyDouble = 4
	fAnyArray  = 5

	fArrayValues = 1
)

// Span flags bits (SpanFlags in trace.proto): the low byte is the W3C trace
// flags; these say whether the parent was remote.
const (
	flagHasIsRemote = 0x100
	flagIsRemote    = 0x200
)

// wireEncoder appends protobuf messages. A nested message is written into
// a scratch buffer of its depth and then copied in after its length, so
// nothing is sized twice and the buffers are reused across exports.
type wireEncoder struct {
	scratch [][]byte
	depth   int
}

// message appends field num holding the message fill writes.
func (e *wireEncoder) message(dst []byte, num protowire.Number, fill func(b []byte) []byte) []byte {
	if e.depth == len(e.scratch) {
		e.scratch = append(e.scratch, make([]byte, 0, 512))
	}
	d := e.depth
	e.depth++
	body := fill(e.scratch[d][:0])
	e.depth--
	e.scratch[d] = body[:0]
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendBytes(dst, body)
}

func appendString(dst []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendString(dst, s)
}

func appendUint(dst []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.VarintType)
	return protowire.AppendVarint(dst, v)
}

func appendFixed64(dst []byte, num protowire.Number, v uint64) []byte {
	dst = protowire.AppendTag(dst, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(dst, v)
}

func (e *wireEncoder) attributes(dst []byte, num protowire.Number, kvs []attribute.KeyValue) []byte {
	for _, kv := range kvs {
		dst = e.message(dst, num, func(b []byte) []byte {
			b = appendString(b, fKeyValueKey, string(kv.Key))
			return e.message(b, fKeyValueValue, func(b []byte) []byte { return e.value(b, kv.Value) })
		})
	}
	return dst
}

// value writes the fields of an AnyValue.
func (e *wireEncoder) value(b []byte, v attribute.Value) []byte {
	switch v.Type() {
	case attribute.BOOL:
		b = protowire.AppendTag(b, fAnyBool, protowire.VarintType)
		return protowire.AppendVarint(b, protowire.EncodeBool(v.AsBool()))
	case attribute.INT64:
		b = protowire.AppendTag(b, fAnyInt, protowire.VarintType)
		return protowire.AppendVarint(b, uint64(v.AsInt64()))
	case attribute.FLOAT64:
		b = protowire.AppendTag(b, fAnyDouble, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, math.Float64bits(v.AsFloat64()))
	case attribute.STRING:
		b = protowire.AppendTag(b, fAnyString, protowire.BytesType)
		return protowire.AppendString(b, v.AsString())
	case attribute.BOOLSLICE:
		return e.array(b, func(b []byte) []byte {
			for _, x := range v.AsBoolSlice() {
				b = e.message(b, fArrayValues, func(b []byte) []byte { return e.value(b, attribute.BoolValue(x)) })
			}
			return b
		})
	case attribute.INT64SLICE:
		return e.array(b, func(b []byte) []byte {
			for _, x := range v.AsInt64Slice() {
				b = e.message(b, fArrayValues, func(b []byte) []byte { return e.value(b, attribute.Int64Value(x)) })
			}
			return b
		})
	case attribute.FLOAT64SLICE:
		return e.array(b, func(b []byte) []byte {
			for _, x := range v.AsFloat64Slice() {
				b = e.message(b, fArrayValues, func(b []byte) []byte { return e.value(b, attribute.Float64Value(x)) })
			}
			return b
		})
	case attribute.STRINGSLICE:
		return e.array(b, func(b []byte) []byte {
			for _, x := range v.AsStringSlice() {
				b = e.message(b, fArrayValues, func(b []byte) []byte { return e.value(b, attribute.StringValue(x)) })
			}
			return b
		})
	}
	return b // INVALID: an empty AnyValue
}

func (e *wireEncoder) array(b []byte, fill func([]byte) []byte) []byte {
	return e.message(b, fAnyArray, fill)
}

// scopeKey groups spans by instrumentation scope.
type scopeKey struct {
	name, version, schemaURL string
	attrs                    attribute.Distinct
}

// encodeSpans appends an ExportTraceServiceRequest holding spans, grouped
// by resource and then by scope, in the order they first appear.
func (e *wireEncoder) encodeSpans(dst []byte, spans []sdktrace.ReadOnlySpan) []byte {
	type group struct {
		res    *resource.Resource
		scopes []scopeKey
		spans  map[scopeKey][]sdktrace.ReadOnlySpan
		info   map[scopeKey]instrumentation.Scope
	}
	var groups []*group
	for _, s := range spans {
		res := s.Resource()
		var g *group
		for _, c := range groups {
			if c.res == res || (c.res != nil && res != nil && c.res.Equivalent() == res.Equivalent()) {
				g = c
				break
			}
		}
		if g == nil {
			g = &group{res: res, spans: map[scopeKey][]sdktrace.ReadOnlySpan{}, info: map[scopeKey]instrumentation.Scope{}}
			groups = append(groups, g)
		}
		sc := s.InstrumentationScope()
		k := scopeKey{sc.Name, sc.Version, sc.SchemaURL, sc.Attributes.Equivalent()}
		if _, ok := g.spans[k]; !ok {
			g.scopes = append(g.scopes, k)
			g.info[k] = sc
		}
		g.spans[k] = append(g.spans[k], s)
	}
	for _, g := range groups {
		dst = e.message(dst, fRequestResourceSpans, func(b []byte) []byte {
			if g.res != nil {
				b = e.message(b, fResourceSpansResource, func(b []byte) []byte {
					return e.attributes(b, fResourceAttributes, g.res.Attributes())
				})
			}
			for _, k := range g.scopes {
				b = e.message(b, fResourceSpansScope, func(b []byte) []byte {
					sc := g.info[k]
					b = e.message(b, fScopeSpansScope, func(b []byte) []byte {
						b = appendString(b, fScopeName, sc.Name)
						b = appendString(b, fScopeVersion, sc.Version)
						return e.attributes(b, fScopeAttributes, sc.Attributes.ToSlice())
					})
					for _, s := range g.spans[k] {
						b = e.message(b, fScopeSpansSpans, func(b []byte) []byte { return e.span(b, s) })
					}
					return appendString(b, fScopeSpansSchemaURL, sc.SchemaURL)
				})
			}
			if g.res != nil {
				b = appendString(b, fResourceSpansSchemaURL, g.res.SchemaURL())
			}
			return b
		})
	}
	return dst
}

func (e *wireEncoder) span(b []byte, s sdktrace.ReadOnlySpan) []byte {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	b = protowire.AppendTag(b, fSpanTraceID, protowire.BytesType)
	b = protowire.AppendBytes(b, tid[:])
	b = protowire.AppendTag(b, fSpanSpanID, protowire.BytesType)
	b = protowire.AppendBytes(b, sid[:])
	b = appendString(b, fSpanTraceState, sc.TraceState().String())
	parent := s.Parent()
	if parent.SpanID().IsValid() {
		psid := parent.SpanID()
		b = protowire.AppendTag(b, fSpanParentSpanID, protowire.BytesType)
		b = protowire.AppendBytes(b, psid[:])
	}
	b = appendString(b, fSpanName, s.Name())
	b = appendUint(b, fSpanKind, uint64(s.SpanKind()))
	b = appendFixed64(b, fSpanStart, uint64(s.StartTime().UnixNano()))
	b = appendFixed64(b, fSpanEnd, uint64(s.EndTime().UnixNano()))
	b = e.attributes(b, fSpanAttributes, s.Attributes())
	b = appendUint(b, fSpanDroppedAttributes, uint64(s.DroppedAttributes()))
	for _, ev := range s.Events() {
		b = e.message(b, fSpanEvents, func(b []byte) []byte {
			b = appendFixed64(b, fEventTime, uint64(ev.Time.UnixNano()))
			b = appendString(b, fEventName, ev.Name)
			b = e.attributes(b, fEventAttributes, ev.Attributes)
			return appendUint(b, fEventDroppedAttributes, uint64(ev.DroppedAttributeCount))
		})
	}
	b = appendUint(b, fSpanDroppedEvents, uint64(s.DroppedEvents()))
	for _, l := range s.Links() {
		b = e.message(b, fSpanLinks, func(b []byte) []byte {
			ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
			b = protowire.AppendTag(b, fLinkTraceID, protowire.BytesType)
			b = protowire.AppendBytes(b, ltid[:])
			b = protowire.AppendTag(b, fLinkSpanID, protowire.BytesType)
			b = protowire.AppendBytes(b, lsid[:])
			b = appendString(b, fLinkTraceState, l.SpanContext.TraceState().String())
			b = e.attributes(b, fLinkAttributes, l.Attributes)
			b = appendUint(b, fLinkDroppedAttributes, uint64(l.DroppedAttributeCount))
			b = protowire.AppendTag(b, fLinkFlags, protowire.Fixed32Type)
			return protowire.AppendFixed32(b, spanFlags(l.SpanContext.TraceFlags(), l.SpanContext.IsRemote()))
		})
	}
	b = appendUint(b, fSpanDroppedLinks, uint64(s.DroppedLinks()))
	if st := s.Status(); st.Code != codes.Unset || st.Description != "" {
		b = e.message(b, fSpanStatus, func(b []byte) []byte {
			b = appendString(b, fStatusMessage, st.Description)
			return appendUint(b, fStatusCode, statusCode(st.Code))
		})
	}
	b = protowire.AppendTag(b, fSpanFlags, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, spanFlags(sc.TraceFlags(), parent.IsRemote()))
}

func spanFlags(f trace.TraceFlags, remote bool) uint32 {
	v := uint32(f) | flagHasIsRemote
	if remote {
		v |= flagIsRemote
	}
	return v
}

// statusCode maps the API's codes to trace.proto's (UNSET 0, OK 1, ERROR 2).
func statusCode(c codes.Code) uint64 {
	switch c {
	case codes.Ok:
		return 1
	case codes.Error:
		return 2
	}
	return 0
}

// wireExporter is an sdktrace.SpanExporter for OTLP/HTTP with protobuf.
type wireExporter struct {
	url      string
	safeURL  string // url for messages, without credentials
	headers  map[string]string
	timeout  time.Duration
	compress bool
	client   *http.Client

	mu       sync.Mutex // one export at a time owns the buffers
	enc      wireEncoder
	buf      []byte
	gz       *gzip.Writer
	zbuf     bytes.Buffer
	shutdown bool
}

func newWireExporter(t otlpTarget) *wireExporter {
	return &wireExporter{
		url:      t.URL,
		safeURL:  redact.URL(t.URL),
		headers:  t.Headers,
		timeout:  t.Timeout,
		compress: t.Compress,
		client:   &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
	}
}

var errExporterShutdown = errors.New("otlp exporter is shut down")

// ExportSpans implements sdktrace.SpanExporter.
func (x *wireExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.shutdown {
		return errExporterShutdown
	}
	x.buf = x.enc.encodeSpans(x.buf[:0], spans)
	body := x.buf
	if x.compress {
		x.zbuf.Reset()
		if x.gz == nil {
			x.gz = gzip.NewWriter(&x.zbuf)
		} else {
			x.gz.Reset(&x.zbuf)
		}
		x.gz.Write(body)
		if err := x.gz.Close(); err != nil {
			return fmt.Errorf("otlp: compressing: %w", err)
		}
		body = x.zbuf.Bytes()
	}
	if x.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, x.timeout)
		defer cancel()
	}
	retry := retryWithin(x.timeout)
	wait := retry.InitialInterval
	for {
		err, retryAfter := x.post(ctx, body)
		if err == nil || retryAfter < 0 {
			return err
		}
		d := max(wait, retryAfter)
		wait = min(2*wait, retry.MaxInterval)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last attempt: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// post sends one request. retryAfter is negative when the failure is not
// worth retrying, else the server's Retry-After (0 when absent).
func (x *wireExporter) post(ctx context.Context, body []byte) (err error, retryAfter time.Duration) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.url, bytes.NewReader(body))
	if err != nil {
		return err, -1
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if x.compress {
		req.Header.Set("Content-Encoding", "gzip")
	}
	for k, v := range x.headers {
		req.Header.Set(k, v)
	}
	resp, err := x.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return err, -1
		}
		return err, 0 // connection refused, reset: the collector may be restarting
	}
	defer resp.Body.Close()
	// The body is an ExportTraceServiceResponse (partial success) or a
	// Status; the spans are sent either way, so only the code matters.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil, -1
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusBadGateway,
		resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusGatewayTimeout:
		after := time.Duration(0)
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			after = time.Duration(s) * time.Second
		}
		return fmt.Errorf("otlp: %s answered %s", x.safeURL, resp.Status), after
	}
	return fmt.Errorf("otlp: %s answered %s", x.safeURL, resp.Status), -1
}

// Shutdown implements sdktrace.SpanExporter.
func (x *wireExporter) Shutdown(ctx context.Context) error {
	x.mu.Lock()
	x.shutdown = true
	x.mu.Unlock()
	x.client.CloseIdleConnections()
	return nil
}
