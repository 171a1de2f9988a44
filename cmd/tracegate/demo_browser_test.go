//go:build linux

package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/browsertest"
)

// TestDemoInBrowser is the viewer end to end: the built `tracegate demo`
// (gateway, weather backend over HTTP, forecast API, stdio child), a real
// go-sdk client making a traced tool call, and headless Chromium reading
// the trace from the gateway's admin listener.
//
// With TRACEGATE_SCREENSHOT=docs/viewer.png it also saves the README's
// screenshot: the probe's four-tier trace with the gateway span selected.
func TestDemoInBrowser(t *testing.T) {
	t.Parallel()
	browser := browsertest.New(t) // skips, or fails under CI, without Chromium
	t.Run("tool call", func(t *testing.T) { checkDemoToolCall(t, browsertest.NewTab(t, browser)) })
	t.Run("span link", func(t *testing.T) { checkDemoSpanLink(t, browsertest.NewTab(t, browser)) })
}

// agentCall makes one traced tools/call through the demo as an agent
// would: a go-sdk client whose call carries its trace context in _meta, so
// that the gateway's SERVER span continues the agent's trace. It returns
// the agent's span context.
func agentCall(t *testing.T, d *demoProcess) trace.SpanContext {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "agent"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: d.mcpURL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	agent, tp := agentContext(true)
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{
		Name: "weather_get_weather", Arguments: map[string]any{"city": "Lisbon"}, Meta: mcp.Meta{"traceparent": tp},
	})
	if err != nil || res.IsError {
		t.Fatalf("tools/call: %v %+v", err, res)
	}
	return agent
}

// checkDemoToolCall opens an agent's tool call in the viewer of the plain
// demo and checks the rows of the gateway's SERVER and CLIENT spans and the
// backend's SERVER span, their nesting, and the gateway span's detail; then
// the same for the four-tier trace of the probe the banner prints.
func checkDemoToolCall(t *testing.T, ctx context.Context) {
	d := startDemo(t)
	agent := agentCall(t, d)
	id := agent.TraceID().String()
	spans := waitTrace(t, d.adminURL, id, []viewHop{gwServer, gwClient, wxServer, forecast}, nil)
	server, client, bserver := findSpan(spans, gwServer), findSpan(spans, gwClient), findSpan(spans, wxServer)

	if err := browsertest.OpenTrace(ctx, d.adminURL, id); err != nil {
		t.Fatal(err)
	}
	rows, err := browsertest.SpanRows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(spans) {
		t.Errorf("got %d rows, want one per span, %d", len(rows), len(spans))
	}
	pos := map[string]int{}
	for i, r := range rows {
		pos[r.SpanID] = i
	}
	row := func(s *apiSpan) browsertest.Row {
		i, ok := pos[s.SpanID]
		if !ok {
			t.Fatalf("no row for %s %s (%s), span %s; rows: %+v", s.Name, s.Kind, s.Service, s.SpanID, rows)
		}
		return rows[i]
	}
	// The gateway's SERVER span is the root on screen (its parent, the
	// agent's span, is not in the store); each viewHop below is drawn under its
	// parent, one level deeper.
	nested := []struct {
		what   string
		span   *apiSpan
		parent string
		depth  int
	}{
		{"gateway SERVER", server, agent.SpanID().String(), 0},
		{"gateway CLIENT", client, server.SpanID, 1},
		{"backend SERVER", bserver, client.SpanID, 2},
	}
	for _, n := range nested {
		r := row(n.span)
		if r.ParentSpanID != n.parent || r.Depth != n.depth || r.Service != n.span.Service || r.Name != n.span.Name || r.Hidden {
			t.Errorf("%s row: got %+v, want %s of %s, parent %s, depth %d, visible", n.what, r, n.span.Name, n.span.Service, n.parent, n.depth)
		}
	}
	if !(pos[server.SpanID] < pos[client.SpanID] && pos[client.SpanID] < pos[bserver.SpanID]) {
		t.Errorf("row order: got server %d, client %d, backend %d; want each below its parent", pos[server.SpanID], pos[client.SpanID], pos[bserver.SpanID])
	}
	if r := row(findSpan(spans, forecast)); r.Depth != 4 {
		t.Errorf("forecast-api row: got depth %d, want 4 (under the weather backend's GET /forecast)", r.Depth)
	}

	// Clicking the gateway span shows its attributes.
	if err := browsertest.ClickSpan(ctx, server.SpanID); err != nil {
		t.Fatal(err)
	}
	attrs, err := browsertest.DetailAttributes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if attrs["gen_ai.tool.name"] != "weather_get_weather" || attrs["mcp.method.name"] != "tools/call" {
		t.Errorf("gateway span detail: got %v, want gen_ai.tool.name=weather_get_weather and mcp.method.name=tools/call", attrs)
	}
	text, err := browsertest.DetailText(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "gen_ai.tool.name") {
		t.Errorf("detail panel text lacks gen_ai.tool.name:\n%s", text)
	}

	// The probe the banner prints, run as pasted, leaves the four-tier
	// trace; the link it prints opens it.
	out, err := exec.Command("sh", "-c", d.probe).CombinedOutput()
	if err != nil {
		t.Fatalf("probe command: %v\n%s", err, out)
	}
	pid, viewerURL := probeTrace(t, out)
	spans = waitTrace(t, d.adminURL, pid, fourTiers, nil)
	if err := chromedp.Do(ctx, chromedp.Navigate(viewerURL)); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.WaitTrace(ctx, pid); err != nil {
		t.Fatal(err)
	}
	rows, err = browsertest.SpanRows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]browsertest.Row{}
	for _, r := range rows {
		byID[r.SpanID] = r
	}
	for i, h := range fourTiers {
		r, ok := byID[findSpan(spans, h).SpanID]
		if !ok {
			t.Errorf("probe trace: no row for %s", h)
			continue
		}
		if i > 0 {
			p := byID[findSpan(spans, fourTiers[i-1]).SpanID]
			if r.ParentSpanID != p.SpanID || r.Depth != p.Depth+1 {
				t.Errorf("probe trace: %s row has parent %s depth %d, want %s depth %d", h, r.ParentSpanID, r.Depth, p.SpanID, p.Depth+1)
			}
		}
	}
	if err := browsertest.ClickSpan(ctx, findSpan(spans, gwServer).SpanID); err != nil {
		t.Fatal(err)
	}
	if path := screenshotPath(t); path != "" {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(screenshotWidth, screenshotHeight)); err != nil {
			t.Fatal(err)
		}
		if err := browsertest.Screenshot(ctx, path); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	if errs := browsertest.ConsoleErrors(ctx); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

// The README's screenshot size, in CSS pixels.
const screenshotWidth, screenshotHeight = 1400, 800

// checkDemoSpanLink runs the demo with HTTP spans, where the gateway's
// SERVER span links to the span of the HTTP request that carried it (in its
// own trace, since the agent's context came in _meta), and follows the link.
func checkDemoSpanLink(t *testing.T, ctx context.Context) {
	d := startDemo(t, "-http-spans")
	id := agentCall(t, d).TraceID().String()
	// The POST /mcp span ends after the response is written: wait until
	// the API reports the linked trace present.
	spans := waitTrace(t, d.adminURL, id, []viewHop{gwServer}, func(spans []apiSpan) bool {
		s := findSpan(spans, gwServer)
		return len(s.Links) == 1 && s.Links[0].Present
	})
	server := findSpan(spans, gwServer)
	link := server.Links[0]
	if link.TraceID == id {
		t.Fatalf("link: got trace %s, the call's own; want the HTTP request's trace", link.TraceID)
	}

	if err := browsertest.OpenTrace(ctx, d.adminURL, id); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.ClickSpan(ctx, server.SpanID); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.FollowLink(ctx, link.TraceID); err != nil {
		t.Fatal(err)
	}
	if sel, _ := browsertest.SelectedSpan(ctx); sel != link.SpanID {
		t.Errorf("linked trace: got span %q selected, want %s", sel, link.SpanID)
	}
	rows, _ := browsertest.SpanRows(ctx)
	if len(rows) != 1 || rows[0].Name != "POST /mcp" || rows[0].Service != "tracegate" || rows[0].SpanID != link.SpanID {
		t.Errorf("linked trace rows: got %+v, want one POST /mcp of tracegate, span %s", rows, link.SpanID)
	}
	// Back returns to the call's trace.
	if err := browsertest.Back(ctx); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.WaitTrace(ctx, id); err != nil {
		t.Fatal(err)
	}
	if errs := browsertest.ConsoleErrors(ctx); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}
