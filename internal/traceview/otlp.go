package traceview

import (
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"unique"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// MaxOTLPBodyBytes bounds an OTLP/HTTP request body after decompression.
const MaxOTLPBodyBytes = 16 << 20

const (
	ctProtobuf = "application/x-protobuf"
	ctJSON     = "application/json"
)

// OTLPHandler returns the OTLP/HTTP trace receiver. Mount it at
// POST /v1/traces; it does not look at the path.
//
// It follows the OTLP specification, "OTLP/HTTP": binary protobuf
// (application/x-protobuf) or JSON (application/json) bodies, optionally
// gzip-encoded; success is 200 with an ExportTraceServiceResponse in the
// request's encoding, carrying partial_success when spans were rejected;
// a body that does not decode is 400 with a google.rpc.Status. Bodies over
// MaxOTLPBodyBytes (after gunzip) get 413.
func (s *Store) OTLPHandler() http.Handler {
	return http.HandlerFunc(s.serveOTLP)
}

func (s *Store) serveOTLP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "OTLP/HTTP accepts POST only", http.StatusMethodNotAllowed)
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case err != nil:
		http.Error(w, "Content-Type: want application/x-protobuf or application/json", http.StatusUnsupportedMediaType)
		return
	case mt == "application/protobuf":
		mt = ctProtobuf
	case mt != ctProtobuf && mt != ctJSON:
		http.Error(w, fmt.Sprintf("Content-Type %q: want application/x-protobuf or application/json", mt), http.StatusUnsupportedMediaType)
		return
	}

	body, status, err := readOTLPBody(w, r, s.otlpLimit)
	if err != nil {
		writeOTLPStatus(w, mt, status, err.Error())
		return
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	if mt == ctJSON {
		// OTLP/JSON: unknown fields must be ignored.
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(body, req)
		if err == nil {
			err = fixJSONIDs(req)
		}
	} else {
		err = proto.Unmarshal(body, req)
	}
	if err != nil {
		writeOTLPStatus(w, mt, http.StatusBadRequest, fmt.Sprintf("decode ExportTraceServiceRequest: %v", err))
		return
	}

	rejected := s.ingest(req)
	resp := &coltracepb.ExportTraceServiceResponse{}
	if rejected > 0 {
		resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{
			RejectedSpans: rejected,
			ErrorMessage:  "spans with an invalid trace_id or span_id were rejected",
		}
	}
	writeOTLP(w, mt, http.StatusOK, resp)
}

// readOTLPBody reads the body, gunzipping it if so encoded, within limit
// bytes both before and after decompression. It returns the HTTP status to
// send on error.
func readOTLPBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, int, error) {
	var rd io.Reader = http.MaxBytesReader(w, r.Body, limit)
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("read gzip body: %w", err)
		}
		defer zr.Close()
		rd = zr
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Encoding %q: want gzip or none", enc)
	}
	// Read one byte past the limit to tell "exactly at" from "over" when
	// the limit applies to the decompressed stream.
	body, err := io.ReadAll(io.LimitReader(rd, limit+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), err == nil && int64(len(body)) > limit:
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body over %d bytes", limit)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("read body: %w", err)
	}
	return body, 0, nil
}

func writeOTLPStatus(w http.ResponseWriter, mt string, code int, msg string) {
	writeOTLP(w, mt, code, &statuspb.Status{Code: grpcCode(code), Message: msg})
}

// grpcCode maps the HTTP status to the google.rpc.Code carried in the
// Status body.
func grpcCode(httpCode int) int32 {
	switch httpCode {
	case http.StatusBadRequest:
		return 3 // INVALID_ARGUMENT
	case http.StatusRequestEntityTooLarge:
		return 8 // RESOURCE_EXHAUSTED
	case http.StatusUnsupportedMediaType:
		return 3
	}
	return 2 // UNKNOWN
}

func writeOTLP(w http.ResponseWriter, mt string, code int, m proto.Message) {
	var b []byte
	var err error
	if mt == ctJSON {
		b, err = protojson.Marshal(m)
	} else {
		b, err = proto.Marshal(m)
	}
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", mt)
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// fixJSONIDs undoes a protojson quirk. OTLP/JSON encodes trace and span
// IDs as hex strings, not base64 as protojson expects for bytes fields
// (OTLP specification, "JSON Protobuf Encoding"). Hex digits are valid
// base64, so protojson decodes a 32-digit trace ID into 24 bytes (and a
// 16-digit span ID into 12); those bytes re-encode to the original hex
// text, which is then decoded as hex.
func fixJSONIDs(req *coltracepb.ExportTraceServiceRequest) error {
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				for _, p := range []*[]byte{&sp.TraceId, &sp.SpanId, &sp.ParentSpanId} {
					if err := hexID(p); err != nil {
						return err
					}
				}
				for _, l := range sp.GetLinks() {
					for _, p := range []*[]byte{&l.TraceId, &l.SpanId} {
						if err := hexID(p); err != nil {
							return err
						}
					}
				}
			}
		}
	}
	return nil
}

func hexID(p *[]byte) error {
	if len(*p) != 24 && len(*p) != 12 {
		return nil // empty, or a producer that sent base64 after all
	}
	txt := base64.StdEncoding.EncodeToString(*p)
	b, err := hex.DecodeString(txt)
	if err != nil {
		return fmt.Errorf("decode hex id %q: %w", txt, err)
	}
	*p = b
	return nil
}

// ingest stores the request's spans and returns how many were rejected.
func (s *Store) ingest(req *coltracepb.ExportTraceServiceRequest) int64 {
	var rejected int64
	for _, rs := range req.GetResourceSpans() {
		res, extra := newResource(fromProtoAttrs(rs.GetResource().GetAttributes(), maxResourceAttrs, newBudget()))
		res.service = unique.Make(res.service).Value()
		for _, ss := range rs.GetScopeSpans() {
			for _, ps := range ss.GetSpans() {
				sp, ok := fromProto(ps, res)
				if !ok {
					rejected++
					s.dropped.Add(1)
					continue
				}
				// The resource's cost goes with the first span that holds it.
				s.add(sp, extra)
				extra = 0
			}
		}
	}
	return rejected
}

func fromProto(ps *tracepb.Span, res *origin) (*span, bool) {
	tid, ok := traceID(ps.GetTraceId())
	if !ok {
		return nil, false
	}
	sid, ok := spanID(ps.GetSpanId())
	if !ok {
		return nil, false
	}
	pid, _ := spanID(ps.GetParentSpanId()) // absent or invalid means root
	b := newBudget()
	sp := &span{
		traceID:  tid,
		spanID:   sid,
		parentID: pid,
		kind:     trace.SpanKind(ps.GetKind()),
		start:    int64(ps.GetStartTimeUnixNano()),
		end:      int64(ps.GetEndTimeUnixNano()),
		name:     b.str(ps.GetName(), maxNameLen),
		service:  res.service,
		res:      res,
		attrs:    fromProtoAttrs(ps.GetAttributes(), maxAttrsPerSpan, b),
	}
	if sp.kind < trace.SpanKindInternal || sp.kind > trace.SpanKindConsumer {
		sp.kind = trace.SpanKindInternal // OTLP: unspecified is treated as internal
	}
	if sp.end < sp.start {
		sp.end = sp.start
	}
	switch ps.GetStatus().GetCode() {
	case tracepb.Status_STATUS_CODE_ERROR:
		sp.status = codes.Error
	case tracepb.Status_STATUS_CODE_OK:
		sp.status = codes.Ok
	}
	sp.statusMsg = b.str(ps.GetStatus().GetMessage(), maxValueLen)
	if evs := ps.GetEvents(); len(evs) > 0 {
		evs = evs[:min(len(evs), maxEventsPerSpan)]
		sp.events = make([]event, len(evs))
		for i, ev := range evs {
			sp.events[i] = event{name: b.str(ev.GetName(), maxNameLen), time: int64(ev.GetTimeUnixNano()), attrs: fromProtoAttrs(ev.GetAttributes(), maxAttrsPerSpan, b)}
		}
	}
	if lks := ps.GetLinks(); len(lks) > 0 {
		sp.links = make([]link, 0, min(len(lks), maxLinksPerSpan))
		for _, l := range lks[:min(len(lks), maxLinksPerSpan)] {
			lt, ok1 := traceID(l.GetTraceId())
			ls, ok2 := spanID(l.GetSpanId())
			if ok1 && ok2 {
				sp.links = append(sp.links, link{traceID: lt, spanID: ls, attrs: fromProtoAttrs(l.GetAttributes(), maxAttrsPerSpan, b)})
			}
		}
	}
	return sp, true
}

func traceID(b []byte) (trace.TraceID, bool) {
	var id trace.TraceID
	if len(b) != len(id) {
		return id, false
	}
	copy(id[:], b)
	return id, id.IsValid()
}

func spanID(b []byte) (trace.SpanID, bool) {
	var id trace.SpanID
	if len(b) != len(id) {
		return id, false
	}
	copy(id[:], b)
	return id, id.IsValid()
}

func fromProtoAttrs(kvs []*commonpb.KeyValue, limit int, b *budget) []attribute.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	kvs = kvs[:min(len(kvs), limit)]
	out := make([]attribute.KeyValue, 0, len(kvs))
	for _, kv := range kvs {
		// Keys repeat across spans; interning keeps one copy of each.
		out = append(out, attribute.KeyValue{
			Key:   attribute.Key(unique.Make(b.str(kv.GetKey(), maxKeyLen)).Value()),
			Value: fromProtoValue(kv.GetValue(), 0, b),
		})
	}
	return out
}

// fromProtoValue converts an OTLP AnyValue. Nesting beyond a few levels is
// cut, since only a viewer reads it.
func fromProtoValue(v *commonpb.AnyValue, depth int, b *budget) attribute.Value {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return attribute.StringValue(b.str(x.StringValue, maxValueLen))
	case *commonpb.AnyValue_BoolValue:
		return attribute.BoolValue(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return attribute.Int64Value(x.IntValue)
	case *commonpb.AnyValue_DoubleValue:
		return attribute.Float64Value(x.DoubleValue)
	case *commonpb.AnyValue_BytesValue:
		n := max(min(len(x.BytesValue), maxValueLen, b.left), 0)
		b.left -= n
		return attribute.ByteSliceValue(x.BytesValue[:n])
	case *commonpb.AnyValue_ArrayValue:
		if depth >= 4 {
			return attribute.StringValue("[…]")
		}
		vals := x.ArrayValue.GetValues()
		vals = vals[:min(len(vals), maxAttrsPerSpan)]
		out := make([]attribute.Value, len(vals))
		for i, e := range vals {
			out[i] = fromProtoValue(e, depth+1, b)
		}
		return attribute.SliceValue(out...)
	case *commonpb.AnyValue_KvlistValue:
		if depth >= 4 {
			return attribute.StringValue("{…}")
		}
		kvs := x.KvlistValue.GetValues()
		kvs = kvs[:min(len(kvs), maxAttrsPerSpan)]
		out := make([]attribute.KeyValue, len(kvs))
		for i, kv := range kvs {
			out[i] = attribute.KeyValue{Key: attribute.Key(b.str(kv.GetKey(), maxKeyLen)), Value: fromProtoValue(kv.GetValue(), depth+1, b)}
		}
		return attribute.MapValue(out...)
	}
	return attribute.Value{} // empty
}
