package gateway_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
	"github.com/tracegate/tracegate/internal/wire"
	"github.com/tracegate/tracegate/mcptrace"
)

// cannedBackend answers MCP at the byte level with fixed results, so a
// benchmark through it measures the gateway, not a server. With stream
// set, it answers tools/call with an event stream holding the response,
// as the go-sdk's server does; otherwise with a JSON body.
func cannedBackend(tb testing.TB, stream bool) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		body, _ := io.ReadAll(r.Body)
		m, err := wire.Parse(body)
		if err != nil || m.ID == nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		var result string
		switch m.Method {
		case "initialize":
			w.Header().Set("Mcp-Session-Id", "canned")
			result = `{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"canned","version":"1"}}`
		case "tools/list":
			result = `{"tools":[{"name":"echo","inputSchema":{"type":"object"}}]}`
		default:
			result = `{"content":[{"type":"text","text":"{\"text\":\"hello\"}"}]}`
			if stream {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Write(append(append([]byte("event: message\ndata: "), wire.AppendResponse(nil, m.ID, []byte(result))...), "\n\n"...))
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(wire.AppendResponse(nil, m.ID, []byte(result)))
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// BenchmarkPipeline is one tools/call through the gateway, end to end
// over loopback HTTP, to a backend that costs nearly nothing: what the
// gateway adds per call, with tracing off and on (every span recorded),
// and with the backend answering in a JSON body or, as go-sdk servers do,
// in an event stream (-sse).
//
//	go test -run '^$' -bench Pipeline -benchmem ./internal/gateway
func BenchmarkPipeline(b *testing.B) {
	for _, bc := range []struct {
		traced, stream bool
	}{{false, false}, {true, false}, {false, true}, {true, true}} {
		traced := bc.traced
		name := "untraced"
		if traced {
			name = "traced"
		}
		if bc.stream {
			name += "-sse"
		}
		b.Run(name, func(b *testing.B) {
			be := cannedBackend(b, bc.stream)
			var opts gateway.Options
			if traced {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
				b.Cleanup(func() { tp.Shutdown(context.Background()) })
				common := []mcptrace.Option{mcptrace.WithTracerProvider(tp), mcptrace.WithPropagators(propagation.TraceContext{})}
				opts.Server = mcptrace.NewServerTracer(append(common, mcptrace.WithRequestAttributes(gateway.RequestAttributes))...)
				opts.Backend = func(config.Backend) *mcptrace.ClientTracer { return mcptrace.NewClientTracer(common...) }
				opts.BackendTransport = func(config.Backend) http.RoundTripper {
					return mcptrace.NewTransport(http.DefaultTransport, common...)
				}
			}
			cfg := baseConfig(config.Backend{Name: "b", URL: be.URL, Transport: config.TransportStreamable, Timeout: config.Duration(5 * time.Second)})
			gw := startGateway(b, cfg, opts)
			c := rawInitialize(b, gw.url+"/mcp", nil)
			body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"b_echo","arguments":{"text":"hello"},"_meta":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}}`
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, c.endpoint, strings.NewReader(body))
				req.Header = http.Header{
					"Content-Type":   {"application/json"},
					"Accept":         {"application/json, text/event-stream"},
					"Mcp-Session-Id": {c.session},
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("HTTP %d", resp.StatusCode)
				}
			}
		})
	}
}
