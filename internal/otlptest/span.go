package otlptest

import (
	"encoding/hex"
	"maps"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Span is one received span, flattened for assertions.
type Span struct {
	TraceID      string // lowercase hex
	SpanID       string // lowercase hex
	ParentSpanID string // lowercase hex, "" for a root
	TraceState   string
	Name         string
	// Kind is server, client, internal, producer, consumer or unspecified.
	Kind string
	// Service is the resource's service.name.
	Service string
	// Resource holds every resource attribute.
	Resource map[string]any
	// Scope is the instrumentation scope name.
	Scope string
	Start time.Time
	End   time.Time
	// Attrs values are string, int64, float64, bool, []byte, []any or
	// map[string]any.
	Attrs  map[string]any
	Events []Event
	Links  []Link
	// StatusCode is unset, ok or error.
	StatusCode    string
	StatusMessage string
}

// Event is a span event.
type Event struct {
	Name  string
	Time  time.Time
	Attrs map[string]any
}

// Link is a span link.
type Link struct {
	TraceID string
	SpanID  string
	Attrs   map[string]any
}

// Duration is End minus Start.
func (s Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// flattenTraces turns an export request into Spans.
func flattenTraces(req *collectortrace.ExportTraceServiceRequest) []Span {
	var out []Span
	for _, rs := range req.GetResourceSpans() {
		res := resourceAttrs(rs.GetResource())
		service, _ := res["service.name"].(string)
		for _, ss := range rs.GetScopeSpans() {
			scope := ss.GetScope().GetName()
			for _, sp := range ss.GetSpans() {
				out = append(out, flattenSpan(sp, service, scope, res))
			}
		}
	}
	return out
}

func flattenSpan(sp *tracepb.Span, service, scope string, res map[string]any) Span {
	s := Span{
		TraceID:       hexID(sp.GetTraceId()),
		SpanID:        hexID(sp.GetSpanId()),
		ParentSpanID:  hexID(sp.GetParentSpanId()),
		TraceState:    sp.GetTraceState(),
		Name:          sp.GetName(),
		Kind:          kindName(sp.GetKind()),
		Service:       service,
		Resource:      maps.Clone(res), // each span its own, so a test may edit it
		Scope:         scope,
		Start:         unixNano(sp.GetStartTimeUnixNano()),
		End:           unixNano(sp.GetEndTimeUnixNano()),
		Attrs:         attrMap(sp.GetAttributes()),
		StatusCode:    statusName(sp.GetStatus().GetCode()),
		StatusMessage: sp.GetStatus().GetMessage(),
	}
	for _, e := range sp.GetEvents() {
		s.Events = append(s.Events, Event{
			Name:  e.GetName(),
			Time:  unixNano(e.GetTimeUnixNano()),
			Attrs: attrMap(e.GetAttributes()),
		})
	}
	for _, l := range sp.GetLinks() {
		s.Links = append(s.Links, Link{
			TraceID: hexID(l.GetTraceId()),
			SpanID:  hexID(l.GetSpanId()),
			Attrs:   attrMap(l.GetAttributes()),
		})
	}
	return s
}

func kindName(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_SERVER:
		return "server"
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "client"
	case tracepb.Span_SPAN_KIND_INTERNAL:
		return "internal"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "consumer"
	}
	return "unspecified"
}

func statusName(c tracepb.Status_StatusCode) string {
	switch c {
	case tracepb.Status_STATUS_CODE_OK:
		return "ok"
	case tracepb.Status_STATUS_CODE_ERROR:
		return "error"
	}
	return "unset"
}

// hexID renders an id as lowercase hex; an absent or all-zero id is "".
func hexID(b []byte) string {
	for _, c := range b {
		if c != 0 {
			return hex.EncodeToString(b)
		}
	}
	return ""
}

func unixNano(n uint64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(n))
}

func resourceAttrs(r *resourcepb.Resource) map[string]any {
	return attrMap(r.GetAttributes())
}

func attrMap(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = anyValue(kv.GetValue())
	}
	return m
}

func anyValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_BytesValue:
		return x.BytesValue
	case *commonpb.AnyValue_ArrayValue:
		vals := x.ArrayValue.GetValues()
		out := make([]any, len(vals))
		for i, e := range vals {
			out[i] = anyValue(e)
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		return attrMap(x.KvlistValue.GetValues())
	}
	return nil
}
