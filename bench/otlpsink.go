package main

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"sync/atomic"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpSink is the OTLP/HTTP receiver tracing scenarios export to
// (https://opentelemetry.io/docs/specs/otlp/#otlphttp). It decodes each
// export, as a collector would, and counts the spans, so that a tracing
// scenario can show it really exported; it keeps nothing.
type otlpSink struct {
	URL   string // base URL; exporters post to URL + "/v1/traces"
	spans atomic.Int64
	bad   atomic.Int64
	srv   *http.Server
}

func startOTLPSink(ctx context.Context) (*otlpSink, error) {
	s := &otlpSink{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", s.serveTraces)
	srv, url, err := serveHTTP(ctx, mux)
	if err != nil {
		return nil, err
	}
	s.srv, s.URL = srv, url
	return s, nil
}

func (s *otlpSink) serveTraces(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			s.bad.Add(1)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = zr
	}
	b, err := io.ReadAll(body)
	var req collectortrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(b, &req)
	}
	if err != nil {
		s.bad.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var n int64
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			n += int64(len(ss.Spans))
		}
	}
	s.spans.Add(n)
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// Spans returns how many spans were received.
func (s *otlpSink) Spans() int64 { return s.spans.Load() }

// Bad returns how many exports could not be decoded.
func (s *otlpSink) Bad() int64 { return s.bad.Load() }

func (s *otlpSink) close() { s.srv.Close() }
