package traceview

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Handler serves the JSON API and the web UI; mount it at the admin root.
// See the package documentation for its paths.
//
// Errors are JSON objects {"error": "...", "parameter": "..."}: a bad
// query parameter gets 400 naming it, a trace ID that is not 32 hex
// digits gets 400 naming trace_id, and a well-formed ID that the store
// does not hold gets 404.
func (s *Store) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/traces", s.serveList)
	mux.HandleFunc("GET /api/traces/{trace_id}", s.serveTrace)
	mux.HandleFunc("GET /api/traces/{trace_id}/otlp", s.serveTraceOTLP)
	mux.HandleFunc("GET /api/services", s.serveServices)
	mux.HandleFunc("GET /api/sessions", s.serveSessions)
	mux.HandleFunc("GET /api/tools", s.serveTools)
	mux.HandleFunc("GET /api/backends", s.serveBackends)
	mux.HandleFunc("GET /api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, &paramError{"path", r.URL.Path + " is not an API path"})
	})
	mux.Handle("GET /ui/", uiHandler())
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	return mux
}

// TraceURL is the viewer's link to one trace, given the admin base URL
// (such as http://127.0.0.1:9090).
func TraceURL(base, traceID string) string {
	return strings.TrimSuffix(base, "/") + "/ui/?trace=" + traceID
}

type listResponse struct {
	Traces       []*summary `json:"traces"`
	Matched      int        `json:"matched"`
	Offset       int        `json:"offset"`
	StoredSpans  int        `json:"stored_spans"`
	StoredTraces int        `json:"stored_traces"`
	DroppedSpans uint64     `json:"dropped_spans"`
	MaxSpans     int        `json:"max_spans"`
	StoredBytes  int64      `json:"stored_bytes"` // the store's estimate of its spans' heap
	MaxBytes     int64      `json:"max_bytes"`
}

func (s *Store) serveList(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r.URL.Query(), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	traces, matched := s.list(f)
	if traces == nil {
		traces = []*summary{}
	}
	st := s.Stats()
	writeJSON(w, http.StatusOK, listResponse{
		Traces:       traces,
		Matched:      matched,
		Offset:       f.offset,
		StoredSpans:  st.Spans,
		StoredTraces: st.Traces,
		DroppedSpans: st.Dropped,
		MaxSpans:     s.max,
		StoredBytes:  st.Bytes,
		MaxBytes:     s.maxBytes,
	})
}

func (s *Store) serveSessions(w http.ResponseWriter, r *http.Request) {
	q, err := parseSessionQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, s.sessions(q))
}

func (s *Store) serveTools(w http.ResponseWriter, r *http.Request) {
	q, err := parseToolQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, s.tools(q))
}

func (s *Store) serveBackends(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.backendsView())
}

func (s *Store) serveServices(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string][]string{"services": s.services()})
}

type traceResponse struct {
	TraceID       string     `json:"trace_id"`
	StartTime     string     `json:"start_time"`
	StartUnixNano string     `json:"start_unix_nano"`
	DurationMS    float64    `json:"duration_ms"`
	Services      []string   `json:"services"`
	SpanCount     int        `json:"span_count"`
	Spans         []spanJSON `json:"spans"`
	// Resources are the attributes of each process that sent spans;
	// spans name theirs by index.
	Resources []map[string]any `json:"resources"`
}

type spanJSON struct {
	TraceID       string         `json:"trace_id"`
	SpanID        string         `json:"span_id"`
	ParentSpanID  string         `json:"parent_span_id"` // "" for a root
	Name          string         `json:"name"`
	Kind          string         `json:"kind"` // internal, server, client, producer, consumer
	Service       string         `json:"service"`
	Resource      int            `json:"resource"` // index in the trace's resources
	StartTime     string         `json:"start_time"`
	EndTime       string         `json:"end_time"`
	StartUnixNano string         `json:"start_unix_nano"`
	EndUnixNano   string         `json:"end_unix_nano"`
	OffsetMS      float64        `json:"offset_ms"` // start, from the trace's start
	DurationMS    float64        `json:"duration_ms"`
	Error         bool           `json:"error"`
	Status        statusJSON     `json:"status"`
	Attributes    map[string]any `json:"attributes"`
	Events        []eventJSON    `json:"events"`
	Links         []linkJSON     `json:"links"`
}

type statusJSON struct {
	Code    string `json:"code"` // Unset, Ok, Error
	Message string `json:"message,omitempty"`
}

type eventJSON struct {
	Name       string         `json:"name"`
	Time       string         `json:"time"`
	OffsetMS   float64        `json:"offset_ms"`
	Attributes map[string]any `json:"attributes"`
}

type linkJSON struct {
	TraceID    string         `json:"trace_id"`
	SpanID     string         `json:"span_id"`
	Attributes map[string]any `json:"attributes"`
	Present    bool           `json:"present"` // the linked trace is in the store
}

func (s *Store) serveTrace(w http.ResponseWriter, r *http.Request) {
	if id, spans, ok := s.traceOfPath(w, r); ok {
		writeJSON(w, http.StatusOK, s.detail(id, spans))
	}
}

// traceOfPath returns the spans of the trace the path's {trace_id} names,
// or answers 400 or 404 and returns false.
func (s *Store) traceOfPath(w http.ResponseWriter, r *http.Request) (trace.TraceID, []*span, bool) {
	raw := r.PathValue("trace_id")
	id, err := trace.TraceIDFromHex(strings.ToLower(raw))
	if err != nil {
		writeError(w, http.StatusBadRequest, &paramError{"trace_id", strconv.Quote(raw) + " is not 32 hex digits"})
		return id, nil, false
	}
	spans := s.lookup(id)
	if len(spans) == 0 {
		writeError(w, http.StatusNotFound, &paramError{"trace_id", "trace " + id.String() + " is not in the store"})
		return id, nil, false
	}
	return id, spans, true
}

func (s *Store) detail(id trace.TraceID, spans []*span) traceResponse {
	spans = dedupe(spans)
	slices.SortStableFunc(spans, func(a, b *span) int { return cmpInt64(a.start, b.start) })
	start, end := spans[0].start, spans[0].end
	var svcs []svcStart
	for _, sp := range spans {
		end = max(end, sp.end)
		svcs = addService(svcs, sp.service, sp.start)
	}
	names := make([]string, len(svcs))
	for i, sv := range svcs {
		names[i] = sv.name
	}
	present := map[trace.TraceID]bool{id: true}
	resIndex := map[*origin]int{}
	out := traceResponse{
		TraceID:       id.String(),
		StartTime:     rfc3339(start),
		StartUnixNano: strconv.FormatInt(start, 10),
		DurationMS:    millis(end - start),
		Services:      names,
		SpanCount:     len(spans),
		Spans:         make([]spanJSON, len(spans)),
		Resources:     []map[string]any{},
	}
	for i, sp := range spans {
		j := spanJSON{
			TraceID:       sp.traceID.String(),
			SpanID:        sp.spanID.String(),
			Name:          sp.name,
			Kind:          sp.kind.String(),
			Service:       sp.service,
			StartTime:     rfc3339(sp.start),
			EndTime:       rfc3339(sp.end),
			StartUnixNano: strconv.FormatInt(sp.start, 10),
			EndUnixNano:   strconv.FormatInt(sp.end, 10),
			OffsetMS:      millis(sp.start - start),
			DurationMS:    millis(sp.end - sp.start),
			Error:         sp.failed,
			Status:        statusJSON{Code: sp.status.String(), Message: sp.statusMsg},
			Attributes:    attrsJSON(sp.attrs),
			Events:        make([]eventJSON, len(sp.events)),
			Links:         make([]linkJSON, len(sp.links)),
		}
		if sp.parentID.IsValid() {
			j.ParentSpanID = sp.parentID.String()
		}
		ri, ok := resIndex[sp.res]
		if !ok {
			ri = len(out.Resources)
			resIndex[sp.res] = ri
			attrs := map[string]any{"service.name": sp.service}
			if sp.res != nil {
				attrs = attrsJSON(sp.res.attrs)
			}
			out.Resources = append(out.Resources, attrs)
		}
		j.Resource = ri
		for k, ev := range sp.events {
			j.Events[k] = eventJSON{Name: ev.name, Time: rfc3339(ev.time), OffsetMS: millis(ev.time - start), Attributes: attrsJSON(ev.attrs)}
		}
		for k, l := range sp.links {
			p, ok := present[l.traceID]
			if !ok {
				p = s.has(l.traceID)
				present[l.traceID] = p
			}
			j.Links[k] = linkJSON{TraceID: l.traceID.String(), SpanID: l.spanID.String(), Attributes: attrsJSON(l.attrs), Present: p}
		}
		out.Spans[i] = j
	}
	return out
}

// dedupe drops repeated span IDs, which appear when one span reaches the
// store both in process and over OTLP. It returns a new slice either way,
// since the caller sorts it.
func dedupe(spans []*span) []*span {
	seen := make(map[trace.SpanID]struct{}, len(spans))
	out := make([]*span, 0, len(spans))
	for _, sp := range spans {
		if _, ok := seen[sp.spanID]; ok {
			continue
		}
		seen[sp.spanID] = struct{}{}
		out = append(out, sp)
	}
	return out
}

func attrsJSON(kvs []attribute.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = jsonValue(kv.Value)
	}
	return m
}

// maxSafeInt is the largest integer a JavaScript number holds exactly;
// larger ones are sent as strings so the UI shows them unaltered.
const maxSafeInt = 1<<53 - 1

// jsonValue turns an attribute value into something encoding/json can
// always encode: NaN and infinities become strings, bytes become base64.
func jsonValue(v attribute.Value) any {
	switch v.Type() {
	case attribute.BOOL:
		return v.AsBool()
	case attribute.INT64:
		return jsonInt(v.AsInt64())
	case attribute.FLOAT64:
		return jsonFloat(v.AsFloat64())
	case attribute.STRING:
		return v.AsString()
	case attribute.BOOLSLICE:
		return v.AsBoolSlice()
	case attribute.INT64SLICE:
		in := v.AsInt64Slice()
		out := make([]any, len(in))
		for i, n := range in {
			out[i] = jsonInt(n)
		}
		return out
	case attribute.FLOAT64SLICE:
		in := v.AsFloat64Slice()
		out := make([]any, len(in))
		for i, f := range in {
			out[i] = jsonFloat(f)
		}
		return out
	case attribute.STRINGSLICE:
		return v.AsStringSlice()
	case attribute.BYTESLICE:
		return base64.StdEncoding.EncodeToString(v.AsByteSlice())
	case attribute.SLICE:
		in := v.AsSlice()
		out := make([]any, len(in))
		for i, e := range in {
			out[i] = jsonValue(e)
		}
		return out
	case attribute.MAP:
		return attrsJSON(v.AsMap())
	}
	return nil
}

func jsonInt(n int64) any {
	if n > maxSafeInt || n < -maxSafeInt {
		return strconv.FormatInt(n, 10)
	}
	return n
}

func jsonFloat(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return f
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, err error) {
	body := struct {
		Error     string `json:"error"`
		Parameter string `json:"parameter,omitempty"`
	}{Error: err.Error()}
	var pe *paramError
	if errors.As(err, &pe) {
		body.Parameter = pe.param
	}
	writeJSON(w, code, body)
}
