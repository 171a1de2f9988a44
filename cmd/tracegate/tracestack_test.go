package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/otlptest"
	"github.com/tracegate/tracegate/internal/telemetry"
	"github.com/tracegate/tracegate/internal/testlog"
	"github.com/tracegate/tracegate/mcptrace"
)

// witness is a traced go-sdk MCP backend that reports what reached it: its
// seen tool answers with the trace context of its _meta, and every HTTP
// request carrying a tools/call is kept, headers and all, so a test can see
// what travelled in the headers too (the SDK's SSE server does not hand
// headers to handlers).
type witness struct {
	name string
	url  string
	tel  *telemetry.Telemetry

	mu   sync.Mutex
	hdrs []http.Header
}

// witnessTools is how many tools a witness has.
const witnessTools = 4

// witnessSpec is one backend of a stack.
type witnessSpec struct {
	name      string
	transport config.Transport // TransportStreamable (default) or TransportSSE
	baggage   config.BaggagePolicy
}

// seenMeta is what the seen tool answers: the W3C keys of its _meta.
type seenMeta struct {
	Traceparent string `json:"traceparent"`
	Tracestate  string `json:"tracestate"`
	Baggage     string `json:"baggage"`
}

func startWitness(t *testing.T, spec witnessSpec, otlpURL string) *witness {
	t.Helper()
	ctx := context.Background()
	tel, err := demoTracing(ctx, "witness-"+spec.name, otlpURL)
	if err != nil {
		t.Fatal(err)
	}
	w := &witness{name: spec.name, tel: tel}
	s := mcp.NewServer(&mcp.Implementation{Name: "witness", Version: "1"}, nil)
	traced := []mcptrace.Option{mcptrace.WithTracerProvider(tel.TracerProvider), mcptrace.WithMeterProvider(tel.MeterProvider), mcptrace.WithPropagators(tel.Propagator)}
	s.AddReceivingMiddleware(mcptrace.ServerMiddleware(traced...))
	s.AddSendingMiddleware(mcptrace.ServerSendingMiddleware(traced...))
	s.AddTool(&mcp.Tool{Name: "seen", InputSchema: map[string]any{"type": "object"}},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			m := req.Params.Meta
			str := func(k string) string { v, _ := m[k].(string); return v }
			b, _ := json.Marshal(seenMeta{Traceparent: str("traceparent"), Tracestate: str("tracestate"), Baggage: str("baggage")})
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(b)}}}, nil
		})
	// hangup is never reached: record drops the connection of its calls.
	s.AddTool(&mcp.Tool{Name: "hangup", InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return nil, errors.New("hangup reached the server")
		})
	s.AddTool(&mcp.Tool{Name: "fail", InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "failed on purpose"}}}, nil
		})
	// chatty sends the client everything a backend can send during a call:
	// progress, a log message, a sampling and an elicitation request.
	s.AddTool(&mcp.Tool{Name: "chatty", InputSchema: map[string]any{"type": "object"}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if tok := req.Params.GetProgressToken(); tok != nil {
				if err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 1}); err != nil {
					return nil, err
				}
			}
			if err := req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "info", Data: "working"}); err != nil {
				return nil, err
			}
			if _, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{MaxTokens: 8, Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "hi"}}}}); err != nil {
				return nil, err
			}
			if _, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "ok?", RequestedSchema: map[string]any{"type": "object"}}); err != nil {
				return nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil
		})

	var h http.Handler
	if spec.transport == config.TransportSSE {
		h = mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return s }, nil)
	} else {
		h = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	}
	srv := httptest.NewServer(w.record(h))
	t.Cleanup(func() {
		srv.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tel.Shutdown(sctx)
	})
	w.url = srv.URL
	return w
}

// record keeps the headers of every POST that carries a tools/call, and
// hangs up on calls of the hangup tool.
func (w *witness) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(rw, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			if bytes.Contains(body, []byte(`"tools/call"`)) {
				w.mu.Lock()
				w.hdrs = append(w.hdrs, r.Header.Clone())
				w.mu.Unlock()
				if bytes.Contains(body, []byte(`"name":"hangup"`)) {
					// A failure below the protocol: no HTTP answer at all.
					if conn, _, err := http.NewResponseController(rw).Hijack(); err == nil {
						conn.Close()
					}
					return
				}
			}
		}
		next.ServeHTTP(rw, r)
	})
}

// header returns the headers of the tools/call whose traceparent header
// is in traceID.
func (w *witness) header(t *testing.T, traceID string) http.Header {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range w.hdrs {
		if strings.Contains(h.Get("Traceparent"), "-"+traceID+"-") {
			return h
		}
	}
	var got []string
	for _, h := range w.hdrs {
		got = append(got, h.Get("Traceparent"))
	}
	t.Fatalf("witness %s: no tools/call with a traceparent header in trace %s; got %q", w.name, traceID, got)
	return nil
}

// stack is the real gateway runtime (telemetry, admin listener, logger)
// exporting to a real OTLP receiver, in front of witness backends that
// export there too.
type stack struct {
	recv      *otlptest.Receiver
	rt        *runtime
	url       string // the MCP endpoint, /mcp
	admin     string // the admin listener's base URL
	logs      *syncBuffer
	witnesses map[string]*witness
}

func newStack(t *testing.T, specs ...witnessSpec) *stack {
	t.Helper()
	s := &stack{recv: otlptest.NewReceiver(t), logs: &syncBuffer{}, witnesses: map[string]*witness{}}
	cfg := config.Default()
	cfg.Telemetry.Exporter = "otlp"
	cfg.Telemetry.OTLP.Endpoint = s.recv.URL()
	cfg.Telemetry.Viewer.Enabled = new(false)
	for _, spec := range specs {
		w := startWitness(t, spec, s.recv.URL())
		s.witnesses[spec.name] = w
		tr := spec.transport
		if tr == "" {
			tr = config.TransportStreamable
		}
		u := w.url
		if tr == config.TransportStreamable {
			u += "/mcp"
		}
		cfg.Backends = append(cfg.Backends, config.Backend{Name: spec.name, URL: u, Transport: tr, Baggage: spec.baggage, Timeout: config.Duration(10 * time.Second)})
	}
	s.rt, s.url, s.admin = runRuntime(t, cfg, s.logs)
	ctx := context.Background()
	// The catalog is published just after the backends turn ready.
	cs := s.connect(t, ctx, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Tools) == witnessTools*len(specs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d tools, want %d", len(res.Tools), witnessTools*len(specs))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cs.Close()
	return s
}

// connect opens a client session at the gateway over Streamable HTTP
// (2025-11-25). Its HTTP client puts the trace context of each call's ctx
// in the request headers, as an instrumented agent's does, so that ctx
// decides the header context (ctx given here: the initialize's).
func (s *stack) connect(t *testing.T, ctx context.Context, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	hc := &http.Client{Transport: mcptrace.NewTransport(nil, mcptrace.WithMeterProvider(noop.NewMeterProvider()))}
	c := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, opts)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: s.url, HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// flush exports every span ended so far, the gateway's and the witnesses'.
func (s *stack) flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.rt.tel.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, w := range s.witnesses {
		if err := w.tel.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// spans flushes and waits until trace holds a span for each of want
// (name, kind, service), then returns the trace's spans.
func (s *stack) spans(t *testing.T, traceID string, want ...[3]string) []otlptest.Span {
	t.Helper()
	s.flush(t)
	all := s.recv.WaitForSpans(t, 10*time.Second, func(all []otlptest.Span) bool {
		in := inTrace(all, traceID)
		for _, w := range want {
			if find(in, w[0], w[1], w[2]) == nil {
				return false
			}
		}
		return true
	})
	return inTrace(all, traceID)
}

// one returns the single span of in with that name, kind and service.
func one(t *testing.T, in []otlptest.Span, name, kind, service string) otlptest.Span {
	t.Helper()
	var found []otlptest.Span
	for _, s := range in {
		if s.Name == name && s.Kind == kind && s.Service == service {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("got %d %s spans %q from %s, want 1", len(found), kind, name, service)
	}
	return found[0]
}

// call calls tool with meta and returns the text of its result.
func call(t *testing.T, ctx context.Context, cs *mcp.ClientSession, tool string, meta mcp.Meta) string {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: map[string]any{}, Meta: meta})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// seen calls a witness's seen tool and decodes what it saw in _meta.
func seen(t *testing.T, ctx context.Context, cs *mcp.ClientSession, backend string, meta mcp.Meta) seenMeta {
	t.Helper()
	var m seenMeta
	if err := json.Unmarshal([]byte(call(t, ctx, cs, backend+"_seen", meta)), &m); err != nil {
		t.Fatalf("%s_seen: %v", backend, err)
	}
	return m
}

// newAgentSpan is a fresh random span context of an agent's span.
func newAgentSpan(sampled bool) trace.SpanContext {
	var tid trace.TraceID
	var sid trace.SpanID
	rand.Read(tid[:])
	rand.Read(sid[:])
	cfg := trace.SpanContextConfig{TraceID: tid, SpanID: sid, Remote: true}
	if sampled {
		cfg.TraceFlags = trace.FlagsSampled
	}
	return trace.NewSpanContext(cfg)
}

func traceparentOf(sc trace.SpanContext) string {
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

// wantAttrs checks attributes of a received span; a nil want means unset.
func wantAttrs(t *testing.T, s otlptest.Span, want map[string]any) {
	t.Helper()
	for k, w := range want {
		got, ok := s.Attrs[k]
		switch {
		case w == nil && ok:
			t.Errorf("%s [%s] %s: got %s=%v, want it unset", s.Name, s.Kind, s.Service, k, got)
		case w != nil && got != w:
			t.Errorf("%s [%s] %s: got %s=%v (%T), want %v (%T)", s.Name, s.Kind, s.Service, k, got, got, w, w)
		}
	}
}

// scrape returns the admin listener's /metrics text.
func (s *stack) scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(s.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: HTTP %d, %v", resp.StatusCode, err)
	}
	return string(b)
}

// syncBuffer is a log destination that tests read while the gateway writes.
type syncBuffer struct{ testlog.Buffer }

// lines decodes the JSON log lines written so far.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// rpcCode returns the JSON-RPC error code of err, or 0.
func rpcCode(err error) int64 {
	var e *jsonrpc.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}
