package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// otlpSink is the OTLP/HTTP receiver tracing scenarios export to
// (https://opentelemetry.io/docs/specs/otlp/#otlphttp). It parses each
// export and counts the spans and metric exports, so that a tracing
// scenario can show it really exported; it keeps nothing.
type otlpSink struct {
	URL       string // base URL; exporters post to URL + "/v1/traces" and "/v1/metrics"
	spans     atomic.Int64
	callSpans atomic.Int64 // spans named "tools/call ..."
	metrics   atomic.Int64 // metric exports
	bad       atomic.Int64
	srv       *http.Server

	// buf is read into by one trace export at a time, and kept: a pooled
	// buffer would be dropped at each garbage collection, which comes
	// every few calls in the bench's process, and regrown for the next
	// export, work a collector elsewhere would not charge to the path.
	mu  sync.Mutex
	buf bytes.Buffer
}

func startOTLPSink(ctx context.Context) (*otlpSink, error) {
	s := &otlpSink{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", s.serveTraces)
	mux.HandleFunc("POST /v1/metrics", s.serveMetrics)
	srv, url, err := serveHTTP(ctx, mux)
	if err != nil {
		return nil, err
	}
	s.srv, s.URL = srv, url
	return s, nil
}

func (s *otlpSink) serveTraces(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Reset()
	if r.ContentLength > 0 && r.Header.Get("Content-Encoding") == "" {
		s.buf.Grow(int(min(r.ContentLength, maxExport)) + bytes.MinRead)
	}
	if !s.read(w, r, &s.buf) {
		return
	}
	n, calls, err := countSpans(s.buf.Bytes())
	if err != nil {
		s.bad.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.spans.Add(n)
	s.callSpans.Add(calls)
	reply(w, &collectortrace.ExportTraceServiceResponse{})
}

// maxExport bounds the room made ahead for an export's body.
const maxExport = 64 << 20

// Field numbers of the OTLP trace protobuf messages
// (opentelemetry/proto/collector/trace/v1, trace/v1) that countSpans reads.
const (
	fieldResourceSpans = 1 // ExportTraceServiceRequest.resource_spans
	fieldScopeSpans    = 2 // ResourceSpans.scope_spans
	fieldSpans         = 2 // ScopeSpans.spans
	fieldSpanName      = 5 // Span.name
)

// countSpans walks an ExportTraceServiceRequest in the protobuf wire format
// and counts its spans and those named "tools/call ...". It checks the
// structure down to the span's fields but builds no messages: a full
// decode, in this process, would charge a collector's work to the path
// being measured.
func countSpans(b []byte) (spans, calls int64, err error) {
	err = eachField(b, func(num protowire.Number, rs []byte) error {
		if num != fieldResourceSpans {
			return nil
		}
		return eachField(rs, func(num protowire.Number, ss []byte) error {
			if num != fieldScopeSpans {
				return nil
			}
			return eachField(ss, func(num protowire.Number, span []byte) error {
				if num != fieldSpans {
					return nil
				}
				spans++
				return eachField(span, func(num protowire.Number, v []byte) error {
					if num == fieldSpanName && bytes.HasPrefix(v, []byte("tools/call ")) {
						calls++
					}
					return nil
				})
			})
		})
	})
	return spans, calls, err
}

// eachField calls fn with the number and contents of each length-delimited
// field of the message b, and skips the others; it fails on malformed
// input.
func eachField(b []byte, fn func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if err := fn(num, v); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// serveMetrics decodes in full: metrics come once a minute, or at a flush.
func (s *otlpSink) serveMetrics(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if !s.read(w, r, &buf) {
		return
	}
	var req collectormetrics.ExportMetricsServiceRequest
	if err := proto.Unmarshal(buf.Bytes(), &req); err != nil {
		s.bad.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.metrics.Add(1)
	reply(w, &collectormetrics.ExportMetricsServiceResponse{})
}

// read reads an OTLP/HTTP body, gzipped or not, into buf. On failure it
// counts the export as bad and answers 400.
func (s *otlpSink) read(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) bool {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			s.bad.Add(1)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return false
		}
		defer zr.Close()
		body = zr
	}
	if _, err := buf.ReadFrom(body); err != nil {
		s.bad.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func reply(w http.ResponseWriter, m proto.Message) {
	out, _ := proto.Marshal(m)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// Spans returns how many spans were received.
func (s *otlpSink) Spans() int64 { return s.spans.Load() }

// CallSpans returns how many of them were tools/call spans.
func (s *otlpSink) CallSpans() int64 { return s.callSpans.Load() }

// MetricExports returns how many metric exports were received.
func (s *otlpSink) MetricExports() int64 { return s.metrics.Load() }

// Bad returns how many exports could not be decoded.
func (s *otlpSink) Bad() int64 { return s.bad.Load() }

func (s *otlpSink) close() { s.srv.Close() }
