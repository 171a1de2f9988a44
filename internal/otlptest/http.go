package otlptest

import (
	"compress/gzip"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"testing"

	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const (
	contentProtobuf = "application/x-protobuf"
	contentJSON     = "application/json"
	maxBodyBytes    = 64 << 20
)

// NewReceiver starts an OTLP/HTTP receiver on 127.0.0.1 serving
// POST /v1/traces and POST /v1/metrics. It is closed when the test ends.
func NewReceiver(tb testing.TB, opts ...Option) *Receiver {
	tb.Helper()
	r := newReceiver(opts)
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/traces", func(w http.ResponseWriter, req *http.Request) {
		r.serveHTTP(w, req, &collectortrace.ExportTraceServiceRequest{}, &collectortrace.ExportTraceServiceResponse{})
	})
	mux.HandleFunc("/v1/metrics", func(w http.ResponseWriter, req *http.Request) {
		r.serveHTTP(w, req, &collectormetrics.ExportMetricsServiceRequest{}, &collectormetrics.ExportMetricsServiceResponse{})
	})
	srv := httptest.NewServer(mux)
	r.url = srv.URL
	tb.Cleanup(func() {
		close(r.stop) // release hanging handlers first: Close waits for them
		srv.Close()
	})
	return r
}

// serveHTTP implements one OTLP/HTTP export
// (https://opentelemetry.io/docs/specs/otlp/#otlphttp).
func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request, in, out proto.Message) {
	r.requests.Add(1)
	r.setHeaders(req.Header.Clone())
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "OTLP/HTTP takes POST", http.StatusMethodNotAllowed)
		return
	}
	ctype, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if ctype != contentProtobuf && ctype != contentJSON {
		http.Error(w, fmt.Sprintf("content type %q: want %s or %s", ctype, contentProtobuf, contentJSON), http.StatusUnsupportedMediaType)
		return
	}

	switch Behavior(r.behavior.Load()) {
	case Hang:
		select {
		case <-req.Context().Done():
		case <-r.stop:
		}
		return
	case Unavailable:
		// 503 is retryable; the Status body is the spec's error payload.
		w.Header().Set("Retry-After", "1")
		writeMessage(w, ctype, http.StatusServiceUnavailable,
			&status.Status{Code: int32(codes.Unavailable), Message: "otlptest: unavailable"})
		return
	}

	body, err := readBody(req)
	if err == nil {
		if ctype == contentJSON {
			err = unmarshalOTLPJSON(body, in)
		} else {
			err = proto.Unmarshal(body, in)
		}
	}
	if err != nil {
		// Malformed data is not retryable: 400 with a Status body.
		writeMessage(w, ctype, http.StatusBadRequest,
			&status.Status{Code: int32(codes.InvalidArgument), Message: err.Error()})
		return
	}
	r.store(in)
	writeMessage(w, ctype, http.StatusOK, out)
}

func (r *Receiver) store(in proto.Message) {
	switch m := in.(type) {
	case *collectortrace.ExportTraceServiceRequest:
		r.addSpans(flattenTraces(m))
	case *collectormetrics.ExportMetricsServiceRequest:
		r.addPoints(flattenMetrics(m))
	}
}

func readBody(req *http.Request) ([]byte, error) {
	var rd io.Reader = http.MaxBytesReader(nil, req.Body, maxBodyBytes)
	switch enc := req.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		rd = io.LimitReader(zr, maxBodyBytes)
	default:
		return nil, fmt.Errorf("content encoding %q: want gzip or none", enc)
	}
	body, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return body, nil
}

// writeMessage answers in the request's encoding, as the spec requires.
func writeMessage(w http.ResponseWriter, ctype string, code int, m proto.Message) {
	var b []byte
	if ctype == contentJSON {
		b, _ = protojson.Marshal(m)
	} else {
		b, _ = proto.Marshal(m)
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
