package traceview

import (
	"encoding/base64"
	"math"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// A trace downloads as an OTLP/JSON ExportTraceServiceRequest (OTLP
// specification, "JSON Protobuf Encoding": lowerCamelCase field names, hex
// trace and span IDs, 64-bit integers as strings, enums as numbers), so
// that it can be attached to a bug report, posted back to any OTLP/HTTP
// receiver, this viewer's /v1/traces included, and opened again.

type otlpExport struct {
	ResourceSpans []otlpResourceSpans `json:"resourceSpans"`
}

type otlpResourceSpans struct {
	Resource   otlpResource     `json:"resource"`
	ScopeSpans []otlpScopeSpans `json:"scopeSpans"`
}

type otlpResource struct {
	Attributes []otlpKV `json:"attributes"`
}

type otlpScopeSpans struct {
	Scope otlpScope  `json:"scope"`
	Spans []otlpSpan `json:"spans"`
}

type otlpScope struct {
	Name string `json:"name"`
}

type otlpSpan struct {
	TraceID      string      `json:"traceId"`
	SpanID       string      `json:"spanId"`
	ParentSpanID string      `json:"parentSpanId,omitempty"`
	Name         string      `json:"name"`
	Kind         int         `json:"kind"`
	Start        string      `json:"startTimeUnixNano"`
	End          string      `json:"endTimeUnixNano"`
	Attributes   []otlpKV    `json:"attributes,omitempty"`
	Events       []otlpEvent `json:"events,omitempty"`
	Links        []otlpLink  `json:"links,omitempty"`
	Status       otlpStatus  `json:"status"`
}

type otlpEvent struct {
	Time       string   `json:"timeUnixNano"`
	Name       string   `json:"name"`
	Attributes []otlpKV `json:"attributes,omitempty"`
}

type otlpLink struct {
	TraceID    string   `json:"traceId"`
	SpanID     string   `json:"spanId"`
	Attributes []otlpKV `json:"attributes,omitempty"`
}

type otlpStatus struct {
	Code    int    `json:"code,omitempty"` // 1 Ok, 2 Error
	Message string `json:"message,omitempty"`
}

type otlpKV struct {
	Key   string   `json:"key"`
	Value otlpJSON `json:"value"`
}

// otlpJSON is an AnyValue: exactly one field is set.
type otlpJSON struct {
	StringValue *string     `json:"stringValue,omitempty"`
	BoolValue   *bool       `json:"boolValue,omitempty"`
	IntValue    *string     `json:"intValue,omitempty"`
	DoubleValue *float64    `json:"doubleValue,omitempty"`
	BytesValue  *string     `json:"bytesValue,omitempty"`
	ArrayValue  *otlpArray  `json:"arrayValue,omitempty"`
	KvlistValue *otlpKvlist `json:"kvlistValue,omitempty"`
}

type otlpArray struct {
	Values []otlpJSON `json:"values"`
}

type otlpKvlist struct {
	Values []otlpKV `json:"values"`
}

// exportOTLP builds the OTLP/JSON request for one trace's spans, one
// resourceSpans per process.
func exportOTLP(spans []*span) otlpExport {
	var out otlpExport
	byRes := map[*origin]int{}
	for _, sp := range dedupe(spans) {
		i, ok := byRes[sp.res]
		if !ok {
			i = len(out.ResourceSpans)
			byRes[sp.res] = i
			attrs := []attribute.KeyValue{attribute.String("service.name", sp.service)}
			if sp.res != nil {
				attrs = sp.res.attrs
			}
			out.ResourceSpans = append(out.ResourceSpans, otlpResourceSpans{
				Resource:   otlpResource{Attributes: otlpAttrs(attrs)},
				ScopeSpans: []otlpScopeSpans{{Scope: otlpScope{Name: "tracegate.viewer"}}},
			})
		}
		ss := &out.ResourceSpans[i].ScopeSpans[0]
		o := otlpSpan{
			TraceID:    sp.traceID.String(),
			SpanID:     sp.spanID.String(),
			Name:       sp.name,
			Kind:       otlpKind(sp.kind),
			Start:      strconv.FormatInt(sp.start, 10),
			End:        strconv.FormatInt(sp.end, 10),
			Attributes: otlpAttrs(sp.attrs),
			Status:     otlpStatus{Message: sp.statusMsg},
		}
		if sp.parentID.IsValid() {
			o.ParentSpanID = sp.parentID.String()
		}
		switch sp.status {
		case codes.Ok:
			o.Status.Code = 1
		case codes.Error:
			o.Status.Code = 2
		}
		for _, ev := range sp.events {
			o.Events = append(o.Events, otlpEvent{Time: strconv.FormatInt(ev.time, 10), Name: ev.name, Attributes: otlpAttrs(ev.attrs)})
		}
		for _, l := range sp.links {
			o.Links = append(o.Links, otlpLink{TraceID: l.traceID.String(), SpanID: l.spanID.String(), Attributes: otlpAttrs(l.attrs)})
		}
		ss.Spans = append(ss.Spans, o)
	}
	return out
}

// otlpKind maps to the OTLP SpanKind enum, which counts from 1 for
// internal as the API's does.
func otlpKind(k trace.SpanKind) int {
	if k < trace.SpanKindInternal || k > trace.SpanKindConsumer {
		return 1
	}
	return int(k)
}

func otlpAttrs(kvs []attribute.KeyValue) []otlpKV {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]otlpKV, len(kvs))
	for i, kv := range kvs {
		out[i] = otlpKV{Key: string(kv.Key), Value: otlpValue(kv.Value)}
	}
	return out
}

func otlpValue(v attribute.Value) otlpJSON {
	str := func(s string) otlpJSON { return otlpJSON{StringValue: &s} }
	i64 := func(n int64) otlpJSON { s := strconv.FormatInt(n, 10); return otlpJSON{IntValue: &s} }
	f64 := func(f float64) otlpJSON {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return str(strconv.FormatFloat(f, 'g', -1, 64)) // JSON has no NaN
		}
		return otlpJSON{DoubleValue: &f}
	}
	arr := func(vals []otlpJSON) otlpJSON { return otlpJSON{ArrayValue: &otlpArray{Values: vals}} }
	switch v.Type() {
	case attribute.BOOL:
		b := v.AsBool()
		return otlpJSON{BoolValue: &b}
	case attribute.INT64:
		return i64(v.AsInt64())
	case attribute.FLOAT64:
		return f64(v.AsFloat64())
	case attribute.STRING:
		return str(v.AsString())
	case attribute.BYTESLICE:
		s := base64.StdEncoding.EncodeToString(v.AsByteSlice())
		return otlpJSON{BytesValue: &s}
	case attribute.BOOLSLICE:
		var vals []otlpJSON
		for _, b := range v.AsBoolSlice() {
			vals = append(vals, otlpJSON{BoolValue: &b})
		}
		return arr(vals)
	case attribute.INT64SLICE:
		var vals []otlpJSON
		for _, n := range v.AsInt64Slice() {
			vals = append(vals, i64(n))
		}
		return arr(vals)
	case attribute.FLOAT64SLICE:
		var vals []otlpJSON
		for _, f := range v.AsFloat64Slice() {
			vals = append(vals, f64(f))
		}
		return arr(vals)
	case attribute.STRINGSLICE:
		var vals []otlpJSON
		for _, s := range v.AsStringSlice() {
			vals = append(vals, str(s))
		}
		return arr(vals)
	case attribute.SLICE:
		var vals []otlpJSON
		for _, e := range v.AsSlice() {
			vals = append(vals, otlpValue(e))
		}
		return arr(vals)
	case attribute.MAP:
		return otlpJSON{KvlistValue: &otlpKvlist{Values: otlpAttrs(v.AsMap())}}
	}
	return str("")
}

func (s *Store) serveTraceOTLP(w http.ResponseWriter, r *http.Request) {
	id, spans, ok := s.traceOfPath(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="trace-`+id.String()+`.otlp.json"`)
	writeJSON(w, http.StatusOK, exportOTLP(spans))
}
