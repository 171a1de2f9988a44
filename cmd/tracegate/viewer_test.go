package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/otlptest"
)

// TestViewerBesideOTLPExport runs the gateway with both the OTLP exporter
// and the embedded viewer on: one tool call must reach both, and the
// backends' spans, sent only to the OTLP receiver, must not be needed for
// the viewer to show the gateway's part.
func TestViewerBesideOTLPExport(t *testing.T) {
	t.Parallel()
	recv := otlptest.NewReceiver(t)
	ctx := context.Background()
	weatherURL := startDemoHTTPBackends(t, recv.URL())
	cfg := config.Default()
	cfg.Telemetry.Exporter = "otlp"
	cfg.Telemetry.OTLP.Endpoint = recv.URL()
	cfg.Backends = []config.Backend{{Name: "weather", URL: weatherURL, Transport: config.TransportStreamable, Timeout: config.Duration(10 * time.Second)}}
	if v := cfg.Telemetry.Viewer.Enabled; v != nil && !*v {
		t.Fatal("the viewer is off by default; want on")
	}
	rt, mcpURL, adminURL := runRuntime(t, cfg, io.Discard)

	cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent"}, nil).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: mcpURL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	agent, tp := agentContext(true)
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "weather_get_weather", Arguments: map[string]any{"city": "Oslo"}, Meta: mcp.Meta{"traceparent": tp}}); err != nil {
		t.Fatal(err)
	}
	id := agent.TraceID().String()

	// The viewer has the gateway's spans as they end, in process.
	spans := waitTrace(t, adminURL, id, []viewHop{gwServer, gwClient}, nil)
	checkChain(t, spans, []viewHop{gwServer, gwClient})
	// The OTLP receiver has the same spans, and the backends' too. Flush
	// rather than wait out the gateway's batch interval.
	if err := rt.tel.TracerProvider.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	got := recv.WaitForSpans(t, 20*time.Second, func(all []otlptest.Span) bool {
		return find(inTrace(all, id), gwServer.name, gwServer.kind, gwServer.service) != nil &&
			find(inTrace(all, id), wxServer.name, wxServer.kind, wxServer.service) != nil
	})
	exported := find(inTrace(got, id), gwServer.name, gwServer.kind, gwServer.service)
	if viewed := findSpan(spans, gwServer); exported.SpanID != viewed.SpanID {
		t.Errorf("gateway SERVER span: exported %s, viewer has %s; want the same span", exported.SpanID, viewed.SpanID)
	}
}
