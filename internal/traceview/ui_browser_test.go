package traceview

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/browsertest"
)

// gatewayTrace is the shape of one tool call through the gateway, spread
// over three processes, plus the HTTP span the MCP span links to.
type gatewayTrace struct {
	id, linked                      trace.TraceID
	server, hook, client            trace.SpanID
	backend, cache, fetch, forecast trace.SpanID
	httpSpan                        trace.SpanID
	services                        map[trace.SpanID]string
	parents                         map[trace.SpanID]trace.SpanID
	spanCount                       int
}

// makeGatewayTrace records, at real times ending now:
//
//	tracegate     POST /mcp                              (own trace; the MCP span links to it)
//	tracegate     tools/call get_weather        SERVER
//	tracegate       plugin.hook.invoke          INTERNAL
//	tracegate       tools/call get_weather      CLIENT   tracegate.backend.name=weather
//	weather           tools/call get_weather    SERVER   (OTLP)
//	weather             cache.get               INTERNAL status Error (OTLP)
//	weather             GET /forecast           CLIENT   (OTLP)
//	forecast-api          GET /forecast         SERVER   (OTLP)
func makeGatewayTrace(t *testing.T, s *Store, adminURL string) gatewayTrace {
	t.Helper()
	gw := newProvider(t, s, "tracegate")
	weather := newRemoteProvider(t, adminURL, "weather", true)
	forecast := newRemoteProvider(t, adminURL, "forecast-api", false)
	at := time.Now().Add(-time.Second)
	ms := time.Millisecond
	sc := func(ctx context.Context) trace.SpanContext { return trace.SpanContextFromContext(ctx) }

	httpCtx := start(context.Background(), gw, spanOpts{at: at, name: "POST /mcp", kind: trace.SpanKindServer, to: 184 * ms,
		attrs: []attribute.KeyValue{
			attribute.String("http.request.method", "POST"), attribute.String("url.path", "/mcp"),
			attribute.Int("http.response.status_code", 200),
		}})
	agent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	toolAttrs := []attribute.KeyValue{
		attribute.String("mcp.method.name", "tools/call"),
		attribute.String("gen_ai.tool.name", "get_weather"),
		attribute.String("gen_ai.operation.name", "execute_tool"),
		attribute.String("jsonrpc.request.id", "3"),
		attribute.String("mcp.protocol.version", "2025-11-25"),
		attribute.String("network.transport", "tcp"),
		attribute.String("network.protocol.name", "http"),
	}
	serverCtx := start(trace.ContextWithRemoteSpanContext(context.Background(), agent), gw, spanOpts{
		at: at, name: "tools/call get_weather", kind: trace.SpanKindServer, from: 1 * ms, to: 183 * ms,
		links: []trace.Link{{SpanContext: sc(httpCtx), Attributes: []attribute.KeyValue{attribute.String("tracegate.link", "http_request")}}},
		attrs: append([]attribute.KeyValue{
			attribute.String("mcp.session.id", "9f1c2a7e4b"),
			attribute.String("client.address", "127.0.0.1"),
			attribute.String("tracegate.trace_context.source", "meta"),
		}, toolAttrs...),
	})
	hookCtx := start(serverCtx, gw, spanOpts{at: at, name: "plugin.hook.invoke", kind: trace.SpanKindInternal, from: 2 * ms, to: 4 * ms,
		attrs: []attribute.KeyValue{attribute.String("plugin.hook.name", "tool_pre_invoke"), attribute.Int("plugin.count", 2)}})
	clientCtx := start(serverCtx, gw, spanOpts{at: at, name: "tools/call get_weather", kind: trace.SpanKindClient, from: 5 * ms, to: 178 * ms,
		attrs: append([]attribute.KeyValue{
			attribute.String("tracegate.backend.name", "weather"),
			attribute.String("server.address", "127.0.0.1"), attribute.Int("server.port", 9001),
			attribute.String("mcp.session.id", "b-77d0"),
		}, toolAttrs...)})

	// The backend joins from the propagated context, in its own process.
	bctx := trace.ContextWithRemoteSpanContext(context.Background(), sc(clientCtx))
	backendCtx := start(bctx, weather, spanOpts{at: at, name: "tools/call get_weather", kind: trace.SpanKindServer, from: 9 * ms, to: 173 * ms,
		attrs: toolAttrs})
	_, cache := weather.Tracer("weather").Start(backendCtx, "cache.get", trace.WithTimestamp(at.Add(11*ms)),
		trace.WithAttributes(attribute.String("db.system.name", "redis")))
	cache.AddEvent("exception", trace.WithTimestamp(at.Add(14*ms)), trace.WithAttributes(
		attribute.String("exception.type", "net.OpError"), attribute.String("exception.message", "dial tcp 127.0.0.1:6379: connection refused")))
	cache.SetStatus(codes.Error, "dial tcp 127.0.0.1:6379: connection refused")
	cache.End(trace.WithTimestamp(at.Add(15 * ms)))
	fetchCtx := start(backendCtx, weather, spanOpts{at: at, name: "GET /forecast", kind: trace.SpanKindClient, from: 17 * ms, to: 166 * ms,
		attrs: []attribute.KeyValue{attribute.String("http.request.method", "GET"), attribute.String("url.full", "http://127.0.0.1:9002/forecast?city=Paris")}})
	fctx := trace.ContextWithRemoteSpanContext(context.Background(), sc(fetchCtx))
	forecastCtx := start(fctx, forecast, spanOpts{at: at, name: "GET /forecast", kind: trace.SpanKindServer, from: 22 * ms, to: 158 * ms,
		attrs: []attribute.KeyValue{attribute.String("http.route", "/forecast"), attribute.Int("http.response.status_code", 200)}})

	g := gatewayTrace{
		id:       sc(serverCtx).TraceID(),
		linked:   sc(httpCtx).TraceID(),
		server:   sc(serverCtx).SpanID(),
		hook:     sc(hookCtx).SpanID(),
		client:   sc(clientCtx).SpanID(),
		backend:  sc(backendCtx).SpanID(),
		cache:    cache.SpanContext().SpanID(),
		fetch:    sc(fetchCtx).SpanID(),
		forecast: sc(forecastCtx).SpanID(),
		httpSpan: sc(httpCtx).SpanID(),
	}
	g.parents = map[trace.SpanID]trace.SpanID{
		g.server: agent.SpanID(), g.hook: g.server, g.client: g.server, g.backend: g.client,
		g.cache: g.backend, g.fetch: g.backend, g.forecast: g.fetch,
	}
	g.services = map[trace.SpanID]string{
		g.server: "tracegate", g.hook: "tracegate", g.client: "tracegate", g.backend: "weather",
		g.cache: "weather", g.fetch: "weather", g.forecast: "forecast-api",
	}
	g.spanCount = len(g.parents)
	return g
}

func TestViewerInBrowser(t *testing.T) {
	t.Parallel()
	browser := browsertest.New(t)
	s := NewStore(0)
	admin := newAdmin(t, s)
	g := makeGatewayTrace(t, s, admin.URL)

	t.Run("trace", func(t *testing.T) {
		ctx := browsertest.NewTab(t, browser)
		checkGatewayTrace(t, ctx, admin.URL, g)
		if errs := browsertest.ConsoleErrors(ctx); len(errs) > 0 {
			t.Errorf("console errors: %q", errs)
		}
	})
	t.Run("1200 spans", func(t *testing.T) {
		ctx := browsertest.NewTab(t, browser)
		checkLargeTrace(t, ctx, s, admin.URL, 1200)
		if errs := browsertest.ConsoleErrors(ctx); len(errs) > 0 {
			t.Errorf("console errors: %q", errs)
		}
	})
	t.Run("missing trace", func(t *testing.T) {
		ctx := browsertest.NewTab(t, browser)
		err := browsertest.OpenTrace(ctx, admin.URL, strings.Repeat("ab", 16))
		if err == nil || !strings.Contains(err.Error(), "not in the store") {
			t.Errorf("got %v, want an error saying the trace is not in the store", err)
		}
	})
}

func checkGatewayTrace(t *testing.T, ctx context.Context, adminURL string, g gatewayTrace) {
	id := g.id.String()

	// The list shows the trace; open it by clicking its row.
	if err := browsertest.OpenList(ctx, adminURL); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.WaitTraceInList(ctx, id); err != nil {
		t.Fatal(err)
	}
	rows, err := browsertest.TraceRows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found *browsertest.TraceRow
	for i := range rows {
		if rows[i].TraceID == id {
			found = &rows[i]
		}
	}
	if found == nil {
		t.Fatalf("trace list: got %+v, want a row for %s", rows, id)
	}
	if got, want := strings.Join(found.Services, ","), "tracegate,weather,forecast-api"; got != want || !found.Error ||
		found.RootName != "tools/call get_weather" || found.SpanCount != fmt.Sprint(g.spanCount) {
		t.Errorf("list row: got %+v, want root tools/call get_weather, services %s, %d spans, error", *found, want, g.spanCount)
	}
	if err := browsertest.ClickTrace(ctx, id); err != nil {
		t.Fatal(err)
	}
	if loc, _ := browsertest.Location(ctx); !strings.HasSuffix(loc, "/ui/?trace="+id) {
		t.Errorf("location: got %q, want …/ui/?trace=%s", loc, id)
	}

	// Rows: every span, nested by parent, depth one more than the parent's.
	spans, err := browsertest.SpanRows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != g.spanCount {
		t.Fatalf("got %d rows, want %d: %+v", len(spans), g.spanCount, spans)
	}
	depth := map[string]int{}
	for i, r := range spans {
		sid, _ := trace.SpanIDFromHex(r.SpanID)
		wantParent, ok := g.parents[sid]
		if !ok {
			t.Errorf("row %d: unexpected span %s", i, r.SpanID)
			continue
		}
		if r.ParentSpanID != wantParent.String() || r.Service != g.services[sid] {
			t.Errorf("row %d (%s): got parent %s service %s, want %s %s", i, r.Name, r.ParentSpanID, r.Service, wantParent, g.services[sid])
		}
		wantDepth := 0
		if d, ok := depth[r.ParentSpanID]; ok {
			wantDepth = d + 1
		}
		if r.Depth != wantDepth {
			t.Errorf("row %d (%s): got depth %d, want %d", i, r.Name, r.Depth, wantDepth)
		}
		depth[r.SpanID] = r.Depth
		if wantErr := sid == g.cache; r.Error != wantErr {
			t.Errorf("row %d (%s): got error %v, want %v", i, r.Name, r.Error, wantErr)
		}
	}
	wantOrder := []trace.SpanID{g.server, g.hook, g.client, g.backend, g.cache, g.fetch, g.forecast}
	for i, w := range wantOrder {
		if spans[i].SpanID != w.String() {
			t.Errorf("row %d: got %s (%s), want %s", i, spans[i].SpanID, spans[i].Name, w)
		}
	}
	if d := depth[g.forecast.String()]; d != 4 {
		t.Errorf("forecast-api span depth: got %d, want 4", d)
	}

	// The SERVER span's detail lists its attributes.
	if err := browsertest.ClickSpan(ctx, g.server.String()); err != nil {
		t.Fatal(err)
	}
	text, err := browsertest.DetailText(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"gen_ai.tool.name", "get_weather", "mcp.method.name", "tools/call", "server", "links (1)"} {
		// Section titles are upper-cased by CSS, which innerText reflects.
		if !strings.Contains(strings.ToLower(text), want) {
			t.Errorf("detail text does not contain %q:\n%s", want, text)
		}
	}
	attrs, err := browsertest.DetailAttributes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if attrs["gen_ai.tool.name"] != "get_weather" || attrs["mcp.session.id"] != "9f1c2a7e4b" {
		t.Errorf("detail attributes: got %v, want gen_ai.tool.name=get_weather and mcp.session.id=9f1c2a7e4b", attrs)
	}

	// The error span shows its status.
	if err := browsertest.ClickSpan(ctx, g.cache.String()); err != nil {
		t.Fatal(err)
	}
	if text, _ := browsertest.DetailText(ctx); !strings.Contains(text, "connection refused") || !strings.Contains(text, "exception") {
		t.Errorf("error span detail: got %q, want its status message and exception event", text)
	}

	// Collapsing the CLIENT span hides its four descendants.
	if err := browsertest.ToggleSpan(ctx, g.client.String()); err != nil {
		t.Fatal(err)
	}
	after, _ := browsertest.SpanRows(ctx)
	for _, r := range after {
		if sid, _ := trace.SpanIDFromHex(r.SpanID); sid == g.backend || sid == g.forecast {
			t.Errorf("after collapse: descendant %s (%s) still drawn", r.SpanID, r.Name)
		}
	}
	if len(after) != len(spans)-4 {
		t.Errorf("after collapse: got %d rows, want %d, the client span's four descendants gone", len(after), len(spans)-4)
	}
	if err := browsertest.ToggleSpan(ctx, g.client.String()); err != nil {
		t.Fatal(err)
	}

	if path := os.Getenv("TRACEGATE_UI_SCREENSHOTS"); path != "" {
		screenshots(t, ctx, adminURL, g, path)
	}

	// Following the span link opens the linked trace with the span selected;
	// back returns to this trace.
	if err := browsertest.ClickSpan(ctx, g.server.String()); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.FollowLink(ctx, g.linked.String()); err != nil {
		t.Fatal(err)
	}
	if cur, _ := browsertest.CurrentTraceID(ctx); cur != g.linked.String() {
		t.Errorf("after following the link: got trace %q on screen, want %s", cur, g.linked)
	}
	linkedRows, _ := browsertest.SpanRows(ctx)
	if len(linkedRows) != 1 || linkedRows[0].Name != "POST /mcp" {
		t.Errorf("linked trace rows: got %+v, want one POST /mcp", linkedRows)
	}
	if sel, _ := browsertest.SelectedSpan(ctx); sel != g.httpSpan.String() {
		t.Errorf("linked trace: got selected span %q, want %s", sel, g.httpSpan)
	}
	if err := browsertest.Back(ctx); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.WaitTrace(ctx, id); err != nil {
		t.Fatal(err)
	}
	if loc, _ := browsertest.Location(ctx); !strings.Contains(loc, "trace="+id) {
		t.Errorf("after back: got location %q, want trace %s", loc, id)
	}
}

// checkLargeTrace records a trace of n spans (a root, fan-out children,
// and chains below them) and checks that every row is drawn and nested.
func checkLargeTrace(t *testing.T, ctx context.Context, s *Store, adminURL string, n int) {
	tp := newProvider(t, s, "bulk")
	at := time.Now().Add(-time.Minute)
	rootCtx, root := tp.Tracer("bulk").Start(context.Background(), "batch", trace.WithTimestamp(at))
	made := 1
	for i := 0; made < n; i++ {
		ctx := rootCtx
		// Each child starts a chain of up to 9 spans below it.
		for d := 0; d < 10 && made < n; d++ {
			var sp trace.Span
			ctx, sp = tp.Tracer("bulk").Start(ctx, fmt.Sprintf("step %d.%d", i, d),
				trace.WithTimestamp(at.Add(time.Duration(made)*time.Millisecond)),
				trace.WithAttributes(attribute.Int("i", made)))
			sp.End(trace.WithTimestamp(at.Add(time.Duration(made+5) * time.Millisecond)))
			made++
		}
	}
	root.End(trace.WithTimestamp(at.Add(time.Duration(n+10) * time.Millisecond)))
	id := root.SpanContext().TraceID().String()

	began := time.Now()
	if err := browsertest.OpenTrace(ctx, adminURL, id); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d-span trace drawn in %v (fetch and render, under -race and a shared CPU)", n, time.Since(began))
	// Opened straight from a link, the header still shows the store.
	if stats, err := browsertest.StoreStats(ctx); err != nil || !strings.Contains(stats, "spans") {
		t.Errorf("store figures %q, %v", stats, err)
	}
	rows, err := browsertest.SpanRows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != n {
		t.Fatalf("got %d rows, want %d", len(rows), n)
	}
	depth := map[string]int{}
	for i, r := range rows {
		if r.Hidden || r.Name == "" {
			t.Fatalf("row %d: got hidden=%v name %q, want a visible named row", i, r.Hidden, r.Name)
		}
		want := 0
		if r.ParentSpanID != "" {
			d, ok := depth[r.ParentSpanID]
			if !ok {
				t.Fatalf("row %d: parent %s not drawn above it", i, r.ParentSpanID)
			}
			want = d + 1
		}
		if r.Depth != want {
			t.Fatalf("row %d: got depth %d, want %d", i, r.Depth, want)
		}
		depth[r.SpanID] = r.Depth
	}
	// The last row is selectable, which scrolls it into view.
	if err := browsertest.ClickSpan(ctx, rows[len(rows)-1].SpanID); err != nil {
		t.Fatal(err)
	}
}

// screenshots saves the fixture trace's view to path, in light and dark,
// and the list beside it, for work on the UI's look. Only with
// TRACEGATE_UI_SCREENSHOTS set; a relative path is taken from the module
// root. (The README's screenshot is of a real demo trace: see
// TestDemoInBrowser in cmd/tracegate.)
func screenshots(t *testing.T, ctx context.Context, adminURL string, g gatewayTrace, path string) {
	if !filepath.IsAbs(path) {
		root, err := moduleRoot()
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(root, path)
	}
	if err := browsertest.ClickSpan(ctx, g.client.String()); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.Screenshot(ctx, path); err != nil {
		t.Fatal(err)
	}
	variant := func(suffix string) string {
		return strings.TrimSuffix(path, filepath.Ext(path)) + suffix + filepath.Ext(path)
	}
	if err := browsertest.ColorScheme(ctx, "dark"); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.Screenshot(ctx, variant("-dark")); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.ColorScheme(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.OpenList(ctx, adminURL); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.Screenshot(ctx, variant("-list")); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots: %s, %s, %s", path, variant("-dark"), variant("-list"))
	if err := browsertest.OpenTrace(ctx, adminURL, g.id.String()); err != nil {
		t.Fatal(err)
	}
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
}
