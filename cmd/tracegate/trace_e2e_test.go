package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/otlptest"
)

// selfBin is this command built once, so the stdio backend is a real child
// process (`tracegate demo-backend files`) that exports its own spans.
var selfBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tracegate-cmd-test")
	if err != nil {
		panic(err)
	}
	selfBin = filepath.Join(dir, "tracegate")
	if out, err := exec.Command("go", "build", "-o", selfBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building tracegate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tracedStack is a real gateway exporting to a real OTLP receiver, in
// front of a traced HTTP backend that calls a traced downstream API, and a
// traced stdio child: every process exports to the same receiver.
type tracedStack struct {
	recv *otlptest.Receiver
	rt   *runtime
	url  string
}

func startTracedStack(t *testing.T) *tracedStack {
	t.Helper()
	recv := otlptest.NewReceiver(t)
	weatherURL := startDemoHTTPBackends(t, recv.URL())
	cfg := config.Default()
	cfg.Telemetry.Exporter = "otlp"
	cfg.Telemetry.OTLP.Endpoint = recv.URL()
	cfg.Telemetry.Viewer.Enabled = new(false)
	cfg.Backends = []config.Backend{
		{Name: "weather", URL: weatherURL, Transport: config.TransportStreamable, Timeout: config.Duration(10 * time.Second)},
		{Name: "files", Command: []string{selfBin, demoBackendCmd, "files"}, Transport: config.TransportStdio, Timeout: config.Duration(10 * time.Second),
			Env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": recv.URL(), "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}},
	}
	rt, mcpURL, _ := runRuntime(t, cfg, io.Discard)
	return &tracedStack{recv: recv, rt: rt, url: mcpURL}
}

// startDemoHTTPBackends starts the demo forecast API and the weather server
// that calls it, both exporting to otlpURL, and returns the weather
// server's MCP URL.
func startDemoHTTPBackends(t *testing.T, otlpURL string) string {
	t.Helper()
	ctx := context.Background()
	forecastURL, closeForecast, err := startForecast(ctx, otlpURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeForecast)
	weatherURL, closeWeather, err := startWeather(ctx, otlpURL, forecastURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeWeather)
	return weatherURL
}

// runRuntime validates cfg and runs the gateway as serve does, with the MCP
// and admin handlers on test servers, until the test ends. It returns once
// every backend has settled, with the MCP endpoint and the admin base URL.
func runRuntime(t *testing.T, cfg *config.Config, logs io.Writer) (rt *runtime, mcpURL, adminURL string) {
	t.Helper()
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt, err := newRuntime(ctx, cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rt.close(sctx)
	})
	rt.gateway.Start(ctx)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := rt.gateway.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	mcpSrv := httptest.NewServer(rt.gateway.Handler())
	t.Cleanup(mcpSrv.Close)
	adminSrv := httptest.NewServer(rt.adminHandler(nil))
	t.Cleanup(adminSrv.Close)
	return rt, mcpSrv.URL + "/mcp", adminSrv.URL
}

func (s *tracedStack) client(t *testing.T) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "agent"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: s.url}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// agentContext is the agent's own span context, as a traceparent.
func agentContext(sampled bool) (trace.SpanContext, string) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, byte(time.Now().UnixNano()), byte(time.Now().UnixNano() >> 8)},
		SpanID:  trace.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
	})
	flags := "00"
	if sampled {
		sc = sc.WithTraceFlags(trace.FlagsSampled)
		flags = "01"
	}
	return sc, "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + flags
}

func find(spans []otlptest.Span, name, kind, service string) *otlptest.Span {
	for i := range spans {
		s := &spans[i]
		if s.Name == name && s.Kind == kind && s.Service == service {
			return s
		}
	}
	return nil
}

// chain asserts each span exists and is the child of the one before it.
func chain(t *testing.T, recv *otlptest.Receiver, traceID, rootParent string, hops [][3]string) {
	t.Helper()
	spans := recv.WaitForSpans(t, 20*time.Second, func(all []otlptest.Span) bool {
		var in []otlptest.Span
		for _, s := range all {
			if s.TraceID == traceID {
				in = append(in, s)
			}
		}
		for _, h := range hops {
			if find(in, h[0], h[1], h[2]) == nil {
				return false
			}
		}
		return true
	})
	var in []otlptest.Span
	for _, s := range spans {
		if s.TraceID == traceID {
			in = append(in, s)
		}
	}
	parent := rootParent
	for _, h := range hops {
		s := find(in, h[0], h[1], h[2])
		if s.ParentSpanID != parent {
			t.Fatalf("%s %s (%s): parent %s, want %s\n%s", h[0], h[1], h[2], s.ParentSpanID, parent, recv.Tree(traceID))
		}
		parent = s.SpanID
	}
}

func TestTraceCrossesEveryHop(t *testing.T) {
	s := startTracedStack(t)
	cs := s.client(t)

	t.Run("http backend and downstream API, context in _meta", func(t *testing.T) {
		agent, tp := agentContext(true)
		_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "weather_get_weather", Arguments: map[string]any{"city": "Lisbon"}, Meta: mcp.Meta{"traceparent": tp, "tenant": "acme"}})
		if err != nil {
			t.Fatal(err)
		}
		chain(t, s.recv, agent.TraceID().String(), agent.SpanID().String(), [][3]string{
			{"tools/call weather_get_weather", "server", "tracegate"},
			{"tools/call get_weather", "client", "tracegate"},
			{"tools/call get_weather", "server", "weather-demo"},
			{"GET /forecast", "client", "weather-demo"},
			{"GET /forecast", "server", "forecast-api"},
		})
		gw := find(s.recv.Spans(), "tools/call weather_get_weather", "server", "tracegate")
		for k, want := range map[string]any{"mcp.method.name": "tools/call", "gen_ai.tool.name": "weather_get_weather", "tracegate.trace_context.source": "meta"} {
			if gw.Attrs[k] != want {
				t.Errorf("gateway SERVER span %s = %v, want %v", k, gw.Attrs[k], want)
			}
		}
		cl := find(s.recv.Spans(), "tools/call get_weather", "client", "tracegate")
		if cl.Attrs["tracegate.backend.name"] != "weather" || cl.Attrs["server.address"] != "127.0.0.1" {
			t.Errorf("gateway CLIENT span attributes: %v", cl.Attrs)
		}
	})

	t.Run("stdio backend, context crosses the pipe in _meta", func(t *testing.T) {
		agent, tp := agentContext(true)
		_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "files_read_file", Arguments: map[string]any{"path": "notes/todo.md"}, Meta: mcp.Meta{"traceparent": tp}})
		if err != nil {
			t.Fatal(err)
		}
		chain(t, s.recv, agent.TraceID().String(), agent.SpanID().String(), [][3]string{
			{"tools/call files_read_file", "server", "tracegate"},
			{"tools/call read_file", "client", "tracegate"},
			{"tools/call read_file", "server", "files-demo"},
		})
	})

	t.Run("unsampled: nothing recorded, context still propagated", func(t *testing.T) {
		agent, tp := agentContext(false)
		_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "weather_get_weather", Arguments: map[string]any{"city": "Oslo"}, Meta: mcp.Meta{"traceparent": tp}})
		if err != nil {
			t.Fatal(err)
		}
		// A sampled call afterwards flushes through the same pipelines.
		after, tp2 := agentContext(true)
		if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "weather_get_weather", Arguments: map[string]any{"city": "Kyoto"}, Meta: mcp.Meta{"traceparent": tp2}}); err != nil {
			t.Fatal(err)
		}
		s.recv.WaitForSpans(t, 20*time.Second, func(all []otlptest.Span) bool {
			for _, sp := range all {
				if sp.TraceID == after.TraceID().String() && sp.Service == "forecast-api" {
					return true
				}
			}
			return false
		})
		for _, sp := range s.recv.Spans() {
			if sp.TraceID == agent.TraceID().String() {
				t.Fatalf("unsampled trace recorded a span: %s %s (%s)", sp.Name, sp.Kind, sp.Service)
			}
		}
	})
}

func TestProbeTraceJoinsTheGatewayTrace(t *testing.T) {
	s := startTracedStack(t)
	var out, errOut bytes.Buffer
	code := run([]string{"probe", "-tool", "weather_get_weather", "-args", `{"city":"Lisbon"}`, "-expect", "Lisbon", "-otlp", s.recv.URL(), s.url}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("probe exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	m := regexp.MustCompile(`trace_id=([0-9a-f]{32})`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no trace_id in probe output:\n%s", out.String())
	}
	traceID := m[1]
	steps := []string{"initialize", "tools/list", "tools/call weather_get_weather"}
	spans := s.recv.WaitForSpans(t, 20*time.Second, func(all []otlptest.Span) bool {
		in := inTrace(all, traceID)
		for _, name := range steps {
			if find(in, name, "server", "tracegate") == nil || find(in, name, "client", "tracegate-probe") == nil {
				return false
			}
		}
		return find(in, "probe", "internal", "tracegate-probe") != nil
	})
	in := inTrace(spans, traceID)
	root := find(in, "probe", "internal", "tracegate-probe")
	if root.ParentSpanID != "" {
		t.Errorf("probe span has parent %s, want a root", root.ParentSpanID)
	}
	// Every step: the probe's CLIENT span under its root, and the gateway's
	// SERVER span under that CLIENT span.
	for _, name := range steps {
		probeStep := find(in, name, "client", "tracegate-probe")
		gw := find(in, name, "server", "tracegate")
		if probeStep.ParentSpanID != root.SpanID {
			t.Errorf("probe %s span parent %s, want the probe root %s", name, probeStep.ParentSpanID, root.SpanID)
		}
		if gw.ParentSpanID != probeStep.SpanID {
			t.Errorf("gateway %s SERVER span parent %s, want the probe's CLIENT span %s\n%s", name, gw.ParentSpanID, probeStep.SpanID, s.recv.Tree(traceID))
		}
	}
	// The trace goes on through the backend to the downstream API.
	chain(t, s.recv, traceID, find(in, "tools/call weather_get_weather", "client", "tracegate-probe").SpanID, [][3]string{
		{"tools/call weather_get_weather", "server", "tracegate"},
		{"tools/call get_weather", "client", "tracegate"},
		{"tools/call get_weather", "server", "weather-demo"},
		{"GET /forecast", "client", "weather-demo"},
	})
}

func inTrace(all []otlptest.Span, traceID string) []otlptest.Span {
	var in []otlptest.Span
	for _, s := range all {
		if s.TraceID == traceID {
			in = append(in, s)
		}
	}
	return in
}
