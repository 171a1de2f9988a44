package traceview

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
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

// TestMCPViewsInBrowser drives the sessions, tools and backends views,
// the search form's scatter plot and pages, and the trace view's
// additions in headless Chromium: each click on a dot, a row or a link
// must land on the trace or the search it names.
func TestMCPViewsInBrowser(t *testing.T) {
	t.Parallel()
	browser := browsertest.New(t)
	s := NewStore(0)
	admin := newAdmin(t, s)
	f := recordMCP(t, s)
	g := makeGatewayTrace(t, s, admin.URL)
	for i, st := range []string{BackendConnecting, BackendReady, BackendDown, BackendConnecting, BackendReady} {
		s.RecordBackendState("weather", st, base.Add(time.Duration(i)*time.Second), map[bool]string{true: "EOF"}[st == BackendDown])
	}
	u := func(path string) string { return admin.URL + path }
	ok := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	location := func(ctx context.Context) string {
		loc, _ := browsertest.Location(ctx)
		return loc
	}
	listIDs := func(ctx context.Context) []string {
		rows, err := browsertest.TraceRows(ctx)
		ok(err)
		var ids []string
		for _, r := range rows {
			ids = append(ids, r.TraceID)
		}
		return ids
	}

	t.Run("sessions", func(t *testing.T) {
		ctx := newTab(t, browser)
		ok(browsertest.Navigate(ctx, u("/ui/?view=sessions")))
		ok(browsertest.WaitFor(ctx, `document.querySelector('#sessions-view[data-loaded]')`))
		keys, err := browsertest.Eval[[]string](ctx, `[...document.querySelectorAll('#session-list tr[data-session]')].map(r => r.dataset.session)`)
		ok(err)
		if !strings.Contains(strings.Join(keys, ","), "s1") || !strings.Contains(strings.Join(keys, ","), "client:cli@10.0.0.2") {
			t.Errorf("sessions: got %v, want s1 and client:cli@10.0.0.2", keys)
		}
		// A dot on the timeline opens its request's span in its trace.
		ok(browsertest.Click(ctx, fmt.Sprintf(`#session-list tr[data-session="s1"] .tl-dot[data-trace-id="%s"]`, f.failed)))
		ok(browsertest.WaitTrace(ctx, f.failed.String()))
		if sel, _ := browsertest.SelectedSpan(ctx); sel != f.calls[1].String() {
			t.Errorf("after clicking the dot: got span %q selected, want %s", sel, f.calls[1])
		}
		// A row opens the session's traces.
		ok(browsertest.Back(ctx))
		ok(browsertest.WaitFor(ctx, `document.querySelector('#sessions-view:not([hidden]) #session-list tr[data-session="s1"]')`))
		ok(browsertest.Click(ctx, `#session-list tr[data-session="s1"] td:nth-child(5)`))
		ok(browsertest.WaitList(ctx))
		if loc := location(ctx); !strings.Contains(loc, "session=s1") {
			t.Errorf("after clicking the row: got %s, want a search for session s1", loc)
		}
		if ids := listIDs(ctx); len(ids) != 4 {
			t.Errorf("session s1's traces: got %v, want 4", ids)
		}
	})

	t.Run("tools", func(t *testing.T) {
		ctx := newTab(t, browser)
		ok(browsertest.Navigate(ctx, u("/ui/?view=tools")))
		ok(browsertest.WaitFor(ctx, `document.querySelector('#tools-view[data-loaded] #tool-list tr[data-tool]')`))
		order := func() string {
			v, err := browsertest.Eval[string](ctx, `[...document.querySelectorAll('#tool-list tr[data-tool]')].map(r => r.dataset.tool).join(",")`)
			ok(err)
			return v
		}
		if got := order(); got != "get_weather,search" {
			t.Errorf("default order (calls): got %s", got)
		}
		ok(browsertest.Click(ctx, `#tool-list th[data-sort="tool"]`))
		if got := order(); got != "get_weather,search" {
			t.Errorf("by name: got %s", got)
		}
		ok(browsertest.Click(ctx, `#tool-list th[data-sort="tool"]`))
		if got := order(); got != "search,get_weather" {
			t.Errorf("by name, reversed: got %s", got)
		}
		// A row opens the tool's slowest traces, slowest first.
		ok(browsertest.Click(ctx, `#tool-list tr[data-tool="get_weather"] td:nth-child(3)`))
		ok(browsertest.WaitList(ctx))
		if ids := listIDs(ctx); len(ids) != 4 || ids[0] != g.id.String() || ids[1] != f.s1Traces[3].String() {
			t.Errorf("slowest get_weather traces: got %v, want 4, the 183 ms one (%s) first, then the 30 ms one (%s)", ids, g.id, f.s1Traces[3])
		}
		// The error rate opens the failing traces.
		ok(browsertest.Back(ctx))
		ok(browsertest.WaitFor(ctx, `document.querySelector('#tools-view:not([hidden]) #tool-list tr[data-tool="get_weather"] .err-link')`))
		ok(browsertest.Click(ctx, `#tool-list tr[data-tool="get_weather"] .err-link`))
		ok(browsertest.WaitList(ctx))
		if ids := listIDs(ctx); len(ids) != 2 || ids[0] != g.id.String() || ids[1] != f.failed.String() {
			t.Errorf("failing get_weather traces: got %v, want %s and %s", ids, g.id, f.failed)
		}
	})

	t.Run("backends", func(t *testing.T) {
		ctx := newTab(t, browser)
		ok(browsertest.Navigate(ctx, u("/ui/?view=backends")))
		ok(browsertest.WaitFor(ctx, `document.querySelector('#backends-view[data-loaded] section[data-backend="weather"]')`))
		text, err := browsertest.Eval[string](ctx, `document.querySelector('section[data-backend="weather"]').innerText`)
		ok(err)
		for _, want := range []string{"ready", "Restarts 1", "Calls 4", "Errors 1 (25%)", "connect"} {
			if !strings.Contains(text, want) {
				t.Errorf("weather card does not say %q:\n%s", want, text)
			}
		}
		segs, _ := browsertest.Eval[int](ctx, `document.querySelectorAll('section[data-backend="weather"] .history .seg').length`)
		if segs != 5 {
			t.Errorf("state history: got %d segments, want 5", segs)
		}
		ok(browsertest.Click(ctx, fmt.Sprintf(`section[data-backend="weather"] .ops a[data-trace-id="%s"]`, f.connect)))
		ok(browsertest.WaitTrace(ctx, f.connect.String()))
	})

	t.Run("search", func(t *testing.T) {
		ctx := newTab(t, browser)
		ok(browsertest.Navigate(ctx, u("/ui/?attr=mcp.session.id%3Ds1")))
		ok(browsertest.WaitList(ctx))
		if ids := listIDs(ctx); len(ids) != 4 {
			t.Errorf("attr search: got %v, want session s1's 4 traces", ids)
		}
		if v, _ := browsertest.Eval[string](ctx, `document.querySelector('#filters [name=attr]').value`); v != "mcp.session.id=s1" {
			t.Errorf("attr field: got %q", v)
		}
		ok(browsertest.WaitFor(ctx, `document.querySelector('#scatter[data-dots="4"]')`))
		ok(browsertest.Click(ctx, fmt.Sprintf(`#scatter circle[data-trace-id="%s"]`, f.s1Traces[2])))
		ok(browsertest.WaitTrace(ctx, f.s1Traces[2].String()))

		// Typing a search: two attributes, ANDed, one quoted.
		ok(browsertest.Navigate(ctx, u("/ui/")))
		ok(browsertest.WaitList(ctx))
		_, err := browsertest.Eval[bool](ctx, `(() => { const f = document.querySelector('#filters'); f.elements.attr.value = 'tracegate.backend.name=weather error.type="tool_error"'; f.requestSubmit(); return true })()`)
		ok(err)
		ok(browsertest.WaitFor(ctx, `location.search.includes('attr=error.type')`))
		ok(browsertest.WaitList(ctx))
		ok(browsertest.WaitFor(ctx, `document.querySelectorAll('#trace-list tr[data-trace-id]').length === 1`))
		if ids := listIDs(ctx); len(ids) != 1 || ids[0] != f.failed.String() {
			t.Errorf("typed attr search: got %v, want %s", ids, f.failed)
		}

		// Pages.
		ok(browsertest.Navigate(ctx, u("/ui/?session=s1&limit=3")))
		ok(browsertest.WaitList(ctx))
		first := listIDs(ctx)
		ok(browsertest.Click(ctx, `#page-next`))
		ok(browsertest.WaitFor(ctx, `location.search.includes('offset=3') && document.querySelectorAll('#trace-list tr[data-trace-id]').length === 1`))
		second := listIDs(ctx)
		if len(first) != 3 || len(second) != 1 || second[0] != f.s1Traces[0].String() {
			t.Errorf("pages: got %v then %v, want 3 then the oldest, %s", first, second, f.s1Traces[0])
		}

		// A bad parameter shows the API's message.
		ok(browsertest.Navigate(ctx, u("/ui/?max_duration=soon")))
		ok(browsertest.WaitFor(ctx, `document.querySelector('#list-status.error')`))
		if msg, _ := browsertest.Eval[string](ctx, `document.querySelector('#list-status').textContent`); !strings.Contains(msg, "max_duration") {
			t.Errorf("bad parameter: status %q, want it to name max_duration", msg)
		}
	})

	t.Run("compare", func(t *testing.T) {
		ctx := newTab(t, browser)
		ok(browsertest.Navigate(ctx, u("/ui/?session=s1")))
		ok(browsertest.WaitList(ctx))
		a, b := f.s1Traces[1], f.s1Traces[3] // 10 ms and 30 ms backend calls
		ok(browsertest.Click(ctx, fmt.Sprintf(`input.cmp[data-trace-id="%s"]`, a)))
		if loc := location(ctx); strings.Contains(loc, "trace=") {
			t.Fatalf("checking a trace opened it: %s", loc)
		}
		ok(browsertest.Click(ctx, fmt.Sprintf(`input.cmp[data-trace-id="%s"]`, b)))
		ok(browsertest.Click(ctx, `#compare-btn`))
		ok(browsertest.WaitFor(ctx, `document.querySelector('#compare-view[data-loaded]')`))
		type cmpRow struct {
			Key   string  `json:"key"`
			Delta float64 `json:"delta"`
		}
		rows, err := browsertest.Eval[[]cmpRow](ctx, `[...document.querySelectorAll('#compare-table tr[data-key]')].map(r => ({key: r.dataset.key, delta: +r.querySelector('.delta').dataset.deltaMs}))`)
		ok(err)
		if len(rows) != 3 || rows[0].Key != "tracegate tools/call weather_get_weather" || rows[0].Delta != 20 ||
			rows[2].Key != "tracegate tools/call weather_get_weather › tracegate tools/call get_weather › weather tools/call get_weather" || rows[2].Delta != 20 {
			t.Errorf("comparison rows: got %+v, want the three spans matched by path, each 20 ms slower in B", rows)
		}
		// Each side links to its trace.
		ok(browsertest.Click(ctx, fmt.Sprintf(`#compare-head a[data-trace-id="%s"]`, b)))
		ok(browsertest.WaitTrace(ctx, b.String()))
	})

	t.Run("trace", func(t *testing.T) {
		ctx := newTab(t, browser)
		// A tool that returned isError says so.
		ok(browsertest.OpenTrace(ctx, admin.URL, f.failed.String()))
		ok(browsertest.ClickSpan(ctx, f.calls[1].String()))
		if msg, _ := browsertest.Eval[string](ctx, `document.querySelector('#span-detail [data-error-message]').textContent`); msg != "Error: tool returned isError" {
			t.Errorf("tool error: got %q, want Error: tool returned isError", msg)
		}
		// The critical path runs down through the backend call.
		crit, _ := browsertest.Eval[int](ctx, `document.querySelectorAll('#wf-rows .span-row.crit').length`)
		if crit != 3 {
			t.Errorf("critical path: got %d spans, want 3 (server, client, backend)", crit)
		}
		if n, _ := browsertest.Eval[int](ctx, `document.querySelectorAll('#missing-parents').length`); n != 0 {
			t.Errorf("a whole trace warns of missing parents")
		}
		// The gateway trace continues an agent's span that is not here.
		ok(browsertest.OpenTrace(ctx, admin.URL, g.id.String()))
		if txt, _ := browsertest.Eval[string](ctx, `(document.querySelector('#missing-parents') || {}).textContent || ''`); !strings.Contains(txt, "1 span has a parent not in this trace") {
			t.Errorf("missing parent warning: got %q", txt)
		}
		ok(browsertest.ClickSpan(ctx, g.backend.String()))
		if txt, _ := browsertest.Eval[string](ctx, `document.querySelector('#span-detail .res-attrs').innerText`); !strings.Contains(txt, "weather") {
			t.Errorf("resource attributes: got %q, want service.name weather", txt)
		}
		// Dragging across the second half of the minimap zooms into it:
		// the axis starts near the middle, and the first span's bar, which
		// starts at 0, moves left out of view.
		type zoomState struct {
			First, Last string
			Left        float64
			Reset       bool
		}
		state := func() zoomState {
			z, err := browsertest.Eval[zoomState](ctx, fmt.Sprintf(`(() => {
				const t = [...document.querySelectorAll('#wf-axis .tick')].map(e => e.textContent);
				return {First: t[0], Last: t[t.length-1], Left: parseFloat(document.querySelector('.span-row[data-span-id="%s"] .bar').dataset.from), Reset: !document.querySelector('#zoom-reset').hidden};
			})()`, g.server))
			ok(err)
			return z
		}
		before := state()
		ok(browsertest.Drag(ctx, "#minimap", 0.5, 0.98))
		after := state()
		if before.First != "0" || after.First == "0" || after.Left >= 0 || !after.Reset {
			t.Errorf("zoom: before %+v, after %+v; want the axis to start past 0, the root's bar to start left of the view, and a zoom-out button", before, after)
		}
		ok(browsertest.Click(ctx, "#zoom-reset"))
		if z := state(); z.First != "0" || z.Left != 0 || z.Reset {
			t.Errorf("after zooming out: got %+v, want the whole trace again", z)
		}
		// The axis speaks in ms from 1 ms on.
		tp := newProvider(t, s, "axis")
		_, sp := tp.Tracer("t").Start(context.Background(), "short", trace.WithTimestamp(base))
		sp.End(trace.WithTimestamp(base.Add(1500 * time.Microsecond)))
		ok(browsertest.OpenTrace(ctx, admin.URL, sp.SpanContext().TraceID().String()))
		ticks, _ := browsertest.Eval[[]string](ctx, `[...document.querySelectorAll('#wf-axis .tick')].map(t => t.textContent)`)
		joined := strings.Join(ticks, ",")
		if !strings.Contains(joined, "1 ms") || strings.Contains(joined, "1000") {
			t.Errorf("axis of a 1.5 ms trace: got %v, want 1 ms, not 1000 µs", ticks)
		}
	})

	t.Run("download and open", func(t *testing.T) {
		ctx := newTab(t, browser)
		ok(browsertest.OpenTrace(ctx, admin.URL, g.id.String()))
		href, _ := browsertest.Eval[string](ctx, `document.querySelector('#trace-head a[data-download]').href`)
		res, err := http.Get(href)
		ok(err)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		path := filepath.Join(t.TempDir(), "trace.otlp.json")
		ok(os.WriteFile(path, body, 0o600))
		// Another viewer, empty, opens the file.
		other := newAdmin(t, NewStore(0))
		ok(browsertest.OpenList(ctx, other.URL))
		ok(browsertest.UploadFile(ctx, "#open-file", path))
		ok(browsertest.WaitTrace(ctx, g.id.String()))
		rows, _ := browsertest.SpanRows(ctx)
		if len(rows) != g.spanCount {
			t.Errorf("opened file: got %d rows, want %d", len(rows), g.spanCount)
		}
		// Dropping the file on a third viewer's page opens it too.
		third := newAdmin(t, NewStore(0))
		ok(browsertest.OpenList(ctx, third.URL))
		ok(browsertest.DropFile(ctx, path, 400, 400))
		ok(browsertest.WaitTrace(ctx, g.id.String()))
	})

	t.Run("800 px", func(t *testing.T) {
		ctx := newTab(t, browser)
		ok(browsertest.Viewport(ctx, 800, 700))
		ok(browsertest.OpenList(ctx, admin.URL))
		ok(browsertest.WaitTraceInList(ctx, g.id.String()))
		fit, err := browsertest.Eval[string](ctx, fmt.Sprintf(`(() => {
			const b = document.querySelector('#trace-list tr[data-trace-id="%s"] .err-badge').getBoundingClientRect();
			const c = document.querySelector('#trace-list tr[data-trace-id="%s"] td.t-root').getBoundingClientRect();
			return b.width > 20 && b.right <= c.right + 0.5 && document.documentElement.scrollWidth <= 800 ? 'ok' : JSON.stringify({b, c, w: document.documentElement.scrollWidth});
		})()`, g.id, g.id))
		ok(err)
		if fit != "ok" {
			t.Errorf("at 800 px the error badge is cut or the page scrolls sideways: %s", fit)
		}
		for _, view := range []string{"sessions", "tools", "backends"} {
			ok(browsertest.Navigate(ctx, u("/ui/?view="+view)))
			ok(browsertest.WaitFor(ctx, `document.querySelector('#`+view+`-view[data-loaded]')`))
			if w, _ := browsertest.Eval[int](ctx, `document.documentElement.scrollWidth`); w > 800 {
				t.Errorf("%s at 800 px: page is %d px wide", view, w)
			}
		}
	})

	if dir := os.Getenv("TRACEGATE_VIEW_SCREENSHOTS"); dir != "" {
		t.Run("screenshots", func(t *testing.T) { viewScreenshots(t, browser, dir) })
	}
}

// newTab opens a tab that fails t if its pages log a script error. A
// response with an error status, which the browser logs too, is expected
// where a test asks for a bad search.
func newTab(t *testing.T, browser context.Context) context.Context {
	ctx := browsertest.NewTab(t, browser)
	t.Cleanup(func() {
		for _, e := range browsertest.ConsoleErrors(ctx) {
			if !strings.Contains(e, "Failed to load resource") {
				t.Errorf("console error: %s", e)
			}
		}
	})
	return ctx
}

// recordTraffic fills s with ten minutes of gateway traffic ending now:
// three clients (two stateful sessions, one stateless), tools of three
// backends with their own latencies and failure rates, connect traces and
// state changes, so that the screenshots show what a live gateway does.
func recordTraffic(t *testing.T, s *Store) {
	t.Helper()
	gw := newProvider(t, s, "tracegate")
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	from := now.Add(-10 * time.Minute)
	type tool struct {
		name, backend string
		ms, failPct   float64
	}
	tools := []tool{{"get_weather", "weather", 40, 4}, {"get_forecast", "weather", 120, 8}, {"search", "files", 15, 1}, {"read_file", "files", 6, 0}, {"query", "db", 250, 20}}
	clients := []struct{ name, version, session, addr, proto string }{
		{"claude-code", "2.1.0", "9f1c2a7e4b8d4e21", "10.0.4.17", "2025-11-25"},
		{"cursor", "1.7.3", "c0ffee12aa904bd3", "10.0.4.22", "2025-06-18"},
		{"ci-agent", "0.9", "", "10.0.9.3", "2026-07-28"},
	}
	for _, b := range []string{"weather", "files", "db"} {
		at := from.Add(-time.Minute)
		s.RecordBackendState(b, BackendConnecting, at, "")
		ctx, c := gw.Tracer("t").Start(context.Background(), "connect "+b, trace.WithTimestamp(at))
		_, init := gw.Tracer("t").Start(ctx, "initialize", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(at.Add(time.Millisecond)),
			trace.WithAttributes(attribute.String("mcp.method.name", "initialize"), attribute.String("tracegate.backend.name", b)))
		init.End(trace.WithTimestamp(at.Add(30 * time.Millisecond)))
		c.End(trace.WithTimestamp(at.Add(42 * time.Millisecond)))
		s.RecordBackendState(b, BackendReady, at.Add(42*time.Millisecond), "")
	}
	s.RecordBackendState("db", BackendDegraded, from.Add(4*time.Minute), "p95 over 500 ms")
	s.RecordBackendState("db", BackendDown, from.Add(5*time.Minute), "connection reset by peer")
	s.RecordBackendState("db", BackendConnecting, from.Add(5*time.Minute+2*time.Second), "")
	s.RecordBackendState("db", BackendReady, from.Add(5*time.Minute+3*time.Second), "")
	for i := range 160 {
		at := from.Add(time.Duration(rng.Float64() * float64(10*time.Minute)))
		cl := clients[rng.IntN(len(clients))]
		tl := tools[rng.IntN(len(tools))]
		d := time.Duration(tl.ms * (0.5 + rng.ExpFloat64()) * float64(time.Millisecond))
		fail := rng.Float64()*100 < tl.failPct
		attrs := []attribute.KeyValue{
			attribute.String("mcp.method.name", "tools/call"), attribute.String("gen_ai.tool.name", tl.backend+"_"+tl.name),
			attribute.String("jsonrpc.request.id", fmt.Sprint(i)), attribute.String("mcp.protocol.version", cl.proto),
			attribute.String("client.address", cl.addr), attribute.String("tracegate.client.name", cl.name), attribute.String("tracegate.client.version", cl.version),
		}
		if cl.session != "" {
			attrs = append(attrs, attribute.String("mcp.session.id", cl.session))
		}
		ctx, srv := gw.Tracer("t").Start(context.Background(), "tools/call "+tl.backend+"_"+tl.name, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(at), trace.WithAttributes(attrs...))
		_, hook := gw.Tracer("t").Start(ctx, "plugin.hook.invoke", trace.WithTimestamp(at.Add(100*time.Microsecond)), trace.WithAttributes(attribute.String("plugin.hook.name", "tool_pre_invoke")))
		hook.End(trace.WithTimestamp(at.Add(300 * time.Microsecond)))
		_, cli := gw.Tracer("t").Start(ctx, "tools/call "+tl.name, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(at.Add(400*time.Microsecond)),
			trace.WithAttributes(attribute.String("mcp.method.name", "tools/call"), attribute.String("gen_ai.tool.name", tl.name), attribute.String("tracegate.backend.name", tl.backend)))
		if fail {
			cli.SetAttributes(attribute.String("error.type", "tool_error"))
			cli.SetStatus(codes.Error, "tool_error")
			srv.SetAttributes(attribute.String("error.type", "tool_error"))
			srv.SetStatus(codes.Error, "tool_error")
		}
		cli.End(trace.WithTimestamp(at.Add(400*time.Microsecond + d)))
		srv.End(trace.WithTimestamp(at.Add(600*time.Microsecond + d)))
	}
}

// viewScreenshots saves a screenshot of each view into dir (relative to
// the module root), from recordTraffic's store:
//
//	TRACEGATE_VIEW_SCREENSHOTS=docs go test -run TestMCPViewsInBrowser/screenshots ./internal/traceview/
func viewScreenshots(t *testing.T, browser context.Context, dir string) {
	if !filepath.IsAbs(dir) {
		root, err := moduleRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, dir)
	}
	s := NewStore(0)
	admin := newAdmin(t, s)
	recordTraffic(t, s)
	g := makeGatewayTrace(t, s, admin.URL)
	ctx := browsertest.NewTab(t, browser)
	shot := func(name, path, ready string) {
		t.Helper()
		if err := browsertest.Navigate(ctx, admin.URL+path); err != nil {
			t.Fatal(err)
		}
		if err := browsertest.WaitFor(ctx, ready); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // let the scatter plot settle
		if err := browsertest.Screenshot(ctx, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", filepath.Join(dir, name))
	}
	shot("viewer-search.png", "/ui/?lookback=1h&sort=duration&limit=25", `document.querySelector('#trace-list[data-loaded]') && document.querySelector('#scatter[data-dots]')`)
	shot("viewer-sessions.png", "/ui/?view=sessions", `document.querySelector('#sessions-view[data-loaded]')`)
	shot("viewer-tools.png", "/ui/?view=tools", `document.querySelector('#tools-view[data-loaded]')`)
	shot("viewer-backends.png", "/ui/?view=backends", `document.querySelector('#backends-view[data-loaded]')`)
	shot("viewer-trace.png", "/ui/?trace="+g.id.String()+"&span="+g.client.String(), `document.querySelector('#trace-view[data-trace-id] ~ *, #span-detail[data-span-id]')`)
	if err := browsertest.Viewport(ctx, 800, 700); err != nil {
		t.Fatal(err)
	}
	shot("viewer-narrow.png", "/ui/?trace="+g.id.String()+"&span="+g.cache.String(), `document.querySelector('#span-detail[data-span-id]')`)
}
