package otlptest_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tracegate/tracegate/internal/otlptest"
)

// A trace in the OTLP JSON encoding, as the spec's example writes it: hex
// ids, lowerCamelCase keys, integer enums, int64 as strings.
const jsonTrace = `{
  "resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
    "scopeSpans": [{
      "scope": {"name": "json-scope"},
      "spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "parentSpanId": "eee19b7ec3c1b173",
        "name": "tools/call weather",
        "kind": 3,
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "attributes": [
          {"key": "n", "value": {"intValue": "7"}},
          {"key": "unknown.future.field.ok", "value": {"stringValue": "x"}}
        ],
        "links": [{"traceId": "00000000000000000000000000000001", "spanId": "0000000000000002"}],
        "status": {"code": 2, "message": "boom"},
        "someFutureField": true
      }]
    }]
  }]
}`

func post(t *testing.T, url, ctype, encoding string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestHTTPJSONEncoding(t *testing.T) {
	t.Parallel()
	for _, encoding := range []string{"", "gzip"} {
		t.Run("encoding="+encoding, func(t *testing.T) {
			t.Parallel()
			rcv := otlptest.NewReceiver(t)
			body := []byte(jsonTrace)
			if encoding == "gzip" {
				body = gzipped(body)
			}
			resp := post(t, rcv.URL()+"/v1/traces", "application/json", encoding, body)
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status: got %d (%s), want 200", resp.StatusCode, b)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("response content type: got %q, want application/json", got)
			}
			spans := rcv.Spans()
			if len(spans) != 1 {
				t.Fatalf("got %d spans, want 1", len(spans))
			}
			s := spans[0]
			checks := []struct {
				what      string
				got, want any
			}{
				{"trace id", s.TraceID, "5b8efff798038103d269b633813fc60c"},
				{"span id", s.SpanID, "eee19b7ec3c1b174"},
				{"parent", s.ParentSpanID, "eee19b7ec3c1b173"},
				{"kind", s.Kind, "client"},
				{"service", s.Service, "json-svc"},
				{"scope", s.Scope, "json-scope"},
				{"int attr", s.Attrs["n"], int64(7)},
				{"start", s.Start.UnixNano(), int64(1544712660000000000)},
				{"duration", s.Duration().String(), "1s"},
				{"status", s.StatusCode, "error"},
				{"status message", s.StatusMessage, "boom"},
				{"link trace", s.Links[0].TraceID, "00000000000000000000000000000001"},
				{"link span", s.Links[0].SpanID, "0000000000000002"},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
				}
			}
		})
	}
}

func TestHTTPRejects(t *testing.T) {
	t.Parallel()
	rcv := otlptest.NewReceiver(t)
	tests := []struct {
		name     string
		method   string
		path     string
		ctype    string
		encoding string
		body     []byte
		want     int
	}{
		{"get", http.MethodGet, "/v1/traces", "application/x-protobuf", "", nil, http.StatusMethodNotAllowed},
		{"unknown path", http.MethodPost, "/v1/logs", "application/x-protobuf", "", nil, http.StatusNotFound},
		{"content type", http.MethodPost, "/v1/traces", "text/plain", "", []byte("x"), http.StatusUnsupportedMediaType},
		{"broken protobuf", http.MethodPost, "/v1/traces", "application/x-protobuf", "", []byte{0xff, 0xff, 0xff}, http.StatusBadRequest},
		{"broken json", http.MethodPost, "/v1/traces", "application/json", "", []byte("{"), http.StatusBadRequest},
		{"base64 id in json", http.MethodPost, "/v1/traces", "application/json", "",
			[]byte(strings.Replace(jsonTrace, "5b8efff798038103d269b633813fc60c", "W47/95gDgQPSabYzgT/GDA==", 1)), http.StatusBadRequest},
		{"broken gzip", http.MethodPost, "/v1/traces", "application/x-protobuf", "gzip", []byte("not gzip"), http.StatusBadRequest},
		{"unknown encoding", http.MethodPost, "/v1/traces", "application/x-protobuf", "br", []byte("x"), http.StatusBadRequest},
		{"empty protobuf is valid", http.MethodPost, "/v1/traces", "application/x-protobuf", "", nil, http.StatusOK},
		{"protobuf with charset", http.MethodPost, "/v1/metrics", "application/x-protobuf; charset=utf-8", "", nil, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, rcv.URL()+tt.path, bytes.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.ctype)
			if tt.encoding != "" {
				req.Header.Set("Content-Encoding", tt.encoding)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				b, _ := io.ReadAll(resp.Body)
				t.Errorf("status: got %d (%s), want %d", resp.StatusCode, b, tt.want)
			}
		})
	}
	if got := len(rcv.Spans()); got != 0 {
		t.Errorf("stored spans: got %d, want 0", got)
	}
}

func TestHTTPUnavailableAnswersStatus(t *testing.T) {
	t.Parallel()
	rcv := otlptest.NewReceiver(t, otlptest.WithBehavior(otlptest.Unavailable))
	body, _ := proto.Marshal(&collectortrace.ExportTraceServiceRequest{})
	resp := post(t, rcv.URL()+"/v1/traces", "application/x-protobuf", "", body)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status: got %d, want 503", resp.StatusCode)
	}
	if got := resp.Header.Get("Retry-After"); got == "" {
		t.Errorf("Retry-After: got none, want a value")
	}
	b, _ := io.ReadAll(resp.Body)
	var st status.Status
	if err := proto.Unmarshal(b, &st); err != nil || st.GetMessage() == "" {
		t.Errorf("body: got %q (%v), want a google.rpc.Status with a message", b, err)
	}
}
