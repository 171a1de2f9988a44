package traceview

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/browsertest"
)

// bulkTrace records a trace of n spans over three services: a root
// "batch" and, below it, chains of ten spans, each the child of the one
// before; every seventh span fails. Drawn depth first, the span at row p
// (from 0) is the root for p = 0 and "step p" after it. It returns the
// trace ID and the span IDs by row.
func bulkTrace(t *testing.T, s *Store, n int) (string, []string) {
	t.Helper()
	tps := []trace.TracerProvider{newProvider(t, s, "tracegate"), newProvider(t, s, "weather"), newProvider(t, s, "forecast-api")}
	at := time.Now().Add(-time.Minute)
	rootCtx, root := tps[0].Tracer("bulk").Start(context.Background(), "batch", trace.WithTimestamp(at))
	ids := []string{root.SpanContext().SpanID().String()}
	for made := 1; made < n; {
		ctx := rootCtx
		for d := 0; d < 10 && made < n; d++ {
			var sp trace.Span
			ctx, sp = tps[made%3].Tracer("bulk").Start(ctx, fmt.Sprintf("step %d", made), trace.WithTimestamp(at.Add(time.Duration(made)*time.Millisecond)),
				trace.WithAttributes(attribute.Int("i", made), attribute.String("mcp.method.name", "tools/call")))
			if made%7 == 0 {
				sp.SetStatus(codes.Error, "boom")
			}
			sp.End(trace.WithTimestamp(at.Add(time.Duration(made+5) * time.Millisecond)))
			ids = append(ids, sp.SpanContext().SpanID().String())
			made++
		}
	}
	root.End(trace.WithTimestamp(at.Add(time.Duration(n+10) * time.Millisecond)))
	return root.SpanContext().TraceID().String(), ids
}

// rowsState is what the page shows of the waterfall's rows.
type rowsState struct {
	Rows     int    // row nodes in the page
	InView   int    // rows the viewport has room for
	Height   int    // of #wf-rows, px
	Recycled bool   // every row node was marked before the scroll
	Window   bool   // the nodes show consecutive rows, one each
	Covered  bool   // every row in view has its node
	Names    bool   // the node at row p shows the span bulkTrace puts there
	Layer    string // #wf-rows's will-change and contain
	Contain  string // the rows' contain
}

const readRows = `(() => {
	const w = document.querySelector('#waterfall'), c = document.querySelector('#wf-rows');
	const rows = [...c.querySelectorAll('.span-row')];
	const pos = (r) => Math.round(new DOMMatrix(getComputedStyle(r).transform).m42 / 24);
	const at = new Set(rows.map(pos));
	const first = Math.max(0, Math.floor((w.scrollTop - c.offsetTop) / 24));
	const last = Math.min(c.offsetHeight / 24, Math.ceil((w.scrollTop + w.clientHeight - c.offsetTop) / 24)) - 1;
	let covered = true;
	for (let p = first; p <= last; p++) covered = covered && at.has(p);
	return {
		Rows: rows.length,
		InView: Math.ceil(w.clientHeight / 24),
		Height: c.offsetHeight,
		Recycled: rows.every((r) => r.marked === true),
		Window: [...at].sort((a, b) => a - b).every((p, i, ps) => i === 0 || p === ps[i - 1] + 1) && at.size === rows.length,
		Covered: covered,
		Names: rows.every((r) => r.querySelector('.span-name').textContent === (pos(r) === 0 ? 'batch' : 'step ' + pos(r))),
		Layer: getComputedStyle(c).willChange + ' ' + getComputedStyle(c).contain,
		Contain: rows.length ? getComputedStyle(rows[0]).contain : '',
	};
})()`

// TestWaterfall10000Spans opens a trace of 10,000 spans in Chromium and
// checks what keeps it fast at any size: the page holds row nodes for the
// viewport and a margin only, and scrolling refills those same nodes
// rather than making new ones; #wf-rows is its own compositing layer and
// every row is laid out on its own. Scrolled to
// the end, the last span is drawn and can be selected; a link to a span
// deep in the trace scrolls to it. It logs the time to the first frame
// that shows the waterfall, and the frames of the scroll beside idle ones;
// with TRACEGATE_PERF=1 (an idle machine) the waterfall must show within
// 1 s:
//
//	go test -run TestWaterfall10000Spans -v ./internal/traceview/
func TestWaterfall10000Spans(t *testing.T) {
	t.Parallel()
	browser := browsertest.New(t)
	s := NewStore(0)
	admin := newAdmin(t, s)
	const n = 10000
	id, ids := bulkTrace(t, s, n)
	ok := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	ctx := newTab(t, browser)
	// Warm the page once, so that the figure is the trace's, not the
	// browser's first start.
	ok(browsertest.OpenList(ctx, admin.URL))
	began := time.Now()
	ok(browsertest.OpenTrace(ctx, admin.URL, id))
	wall := time.Since(began)
	shown, err := browsertest.Eval[float64](ctx, `new Promise(r => requestAnimationFrame(() => setTimeout(() => r(performance.now()))))`)
	ok(err)
	// The API's answer, on the server's side of the figure: under -race
	// the server is several times slower, the browser is not.
	type fetchTimes struct{ Took, End float64 }
	fetch, _ := browsertest.Eval[fetchTimes](ctx, `(() => { const e = performance.getEntriesByType('resource').filter(e => e.name.includes('/api/traces/')).pop(); return e ? {Took: e.responseEnd - e.startTime, End: e.responseEnd} : {Took: -1, End: 0} })()`)

	rows := func() rowsState {
		t.Helper()
		st, err := browsertest.Eval[rowsState](ctx, readRows)
		ok(err)
		return st
	}
	// A pool: the rows in view, a margin of a few rows, no more.
	maxRows := func(st rowsState) int { return st.InView + 25 }
	st := rows()
	if st.Rows < st.InView || st.Rows > maxRows(st) || st.Height != n*24 || !st.Window || !st.Covered || !st.Names {
		t.Fatalf("opened: got %+v; want from %d to %d row nodes, for consecutive rows, covering the view, in a %d px container", st, st.InView, maxRows(st), n*24)
	}
	if st.Layer != "transform strict" || st.Contain != "strict" {
		t.Errorf("got #wf-rows will-change and contain %q, rows' contain %q; want a layer of its own (transform strict), rows strict", st.Layer, st.Contain)
	}

	// Scroll down a wheel's flick per frame: the same nodes move.
	_, err = browsertest.Eval[bool](ctx, `(() => { for (const r of document.querySelectorAll('#wf-rows .span-row')) r.marked = true; return true })()`)
	ok(err)
	idle, err := browsertest.IdleFrames(ctx, 60)
	ok(err)
	frames, err := browsertest.ScrollFrames(ctx, "#waterfall", 120, 240)
	ok(err)
	if st := rows(); st.Rows > maxRows(st) || !st.Recycled || !st.Window || !st.Covered || !st.Names {
		t.Errorf("after scrolling 120 frames of 240 px: got %+v; want at most %d nodes, all recycled, showing consecutive rows over the view", st, maxRows(st))
	}
	t.Logf("%d spans: waterfall shown %.0f ms after navigation (in page; the API's answer took %.0f ms of it, drawing %.0f ms after it arrived); %v from the test's side; scroll at 240 px a frame: %v; idle: %v",
		n, shown, fetch.Took, shown-fetch.End, wall.Round(time.Millisecond), frames, idle)

	// At the end, the last span is drawn in view, and a click selects it.
	type lastRow struct {
		Name, SpanID string
		InView       bool
	}
	last, err := browsertest.Eval[lastRow](ctx, `(async () => {
		const w = document.querySelector('#waterfall');
		w.scrollTop = w.scrollHeight;
		await new Promise(requestAnimationFrame);
		await new Promise(requestAnimationFrame);
		const r = [...document.querySelectorAll('#wf-rows .span-row')].sort((a, b) => a.dataset.idx - b.dataset.idx).pop();
		const b = r.getBoundingClientRect(), v = w.getBoundingClientRect();
		// Below the sticky header, above the bottom. Layout is in fractions of a pixel, scrollTop in whole ones.
		return {Name: r.querySelector('.span-name').textContent, SpanID: r.dataset.spanId, InView: b.top >= v.top + document.querySelector('#wf-rows').offsetTop - 1 && b.bottom <= v.bottom + 1};
	})()`)
	ok(err)
	if last.Name != fmt.Sprintf("step %d", n-1) || last.SpanID != ids[n-1] || !last.InView {
		t.Fatalf("scrolled to the end: got last row %+v, want step %d (%s) in view", last, n-1, ids[n-1])
	}
	ok(browsertest.ClickSpan(ctx, last.SpanID))
	if st := rows(); st.Rows > maxRows(st) || !st.Window || !st.Covered || !st.Names {
		t.Errorf("at the end: got %+v", st)
	}

	// Collapsing the root leaves one row; expanding all brings them back.
	ok(browsertest.OpenTrace(ctx, admin.URL, id))
	ok(browsertest.ToggleSpan(ctx, ids[0]))
	if st := rows(); st.Rows != 1 || st.Height != 24 {
		t.Errorf("root collapsed: got %+v, want 1 row in 24 px", st)
	}
	ok(browsertest.Click(ctx, "#expand-all"))
	if st := rows(); st.Rows < st.InView || st.Rows > maxRows(st) || st.Height != n*24 || !st.Names {
		t.Errorf("expanded again: got %+v", st)
	}

	// A link to a span deep in the trace selects it and scrolls to it.
	mid := n / 2
	ok(browsertest.Navigate(ctx, admin.URL+"/ui/?trace="+id+"&span="+ids[mid]))
	ok(browsertest.WaitFor(ctx, fmt.Sprintf(`document.querySelector('#span-detail[data-span-id="%s"]')`, ids[mid])))
	sel, err := browsertest.Eval[lastRow](ctx, `(() => {
		const w = document.querySelector('#waterfall'), r = document.querySelector('#wf-rows .span-row.sel');
		if (!r) return {};
		const b = r.getBoundingClientRect(), v = w.getBoundingClientRect();
		return {Name: r.querySelector('.span-name').textContent, SpanID: r.dataset.spanId, InView: b.top >= v.top + document.querySelector('#wf-rows').offsetTop - 1 && b.bottom <= v.bottom + 1};
	})()`)
	ok(err)
	if sel.SpanID != ids[mid] || sel.Name != fmt.Sprintf("step %d", mid) || !sel.InView {
		t.Errorf("deep link to step %d: got selected row %+v, want it drawn in view", mid, sel)
	}
	if st := rows(); st.Rows > maxRows(st) || !st.Window || !st.Covered || !st.Names {
		t.Errorf("deep link: got %+v", st)
	}

	// A time is a measurement, not a test, on a shared machine: the
	// budget is checked only when asked for (TRACEGATE_PERF=1, an idle
	// machine); the default run checks what the page shows.
	if os.Getenv("TRACEGATE_PERF") == "1" && shown > 1000 {
		t.Errorf("waterfall of %d spans shown after %.0f ms (the page's own part %.0f ms), want under 1000", n, shown, shown-fetch.End)
	}
}

// TestWaterfallScrollFrames measures scrolling a trace of 10,000 spans in
// Chromium, only with TRACEGATE_PERF=1 (on an idle machine; the test runs
// before the package's parallel tests, alone). In three rounds it takes
// 60 idle frames, then scrolls 120 frames by 240 px each (ten rows a
// frame, a fast wheel); it asserts that the median scroll frame is at
// most 1.5 times the median idle frame, and the 95th percentile at most
// three idle frames (50 ms at 60 Hz), with 5 ms for jitter: rows drawn
// as HTML gave 83 to 167 ms there, at load 4 to 8, the row pool 17 to
// 50 ms. It logs a scroll of a whole page per frame, and where a
// scroll's main-thread time goes, from a DevTools trace:
//
//	TRACEGATE_PERF=1 go test -run TestWaterfallScrollFrames -v ./internal/traceview/
func TestWaterfallScrollFrames(t *testing.T) {
	if os.Getenv("TRACEGATE_PERF") != "1" {
		t.Skip("frame times are measured with TRACEGATE_PERF=1, on an idle machine")
	}
	browser := browsertest.New(t)
	s := NewStore(0)
	admin := newAdmin(t, s)
	id, _ := bulkTrace(t, s, 10000)
	ctx := newTab(t, browser)
	ok := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ok(browsertest.OpenTrace(ctx, admin.URL, id))
	// Warm up: the script's first runs are interpreted.
	_, err := browsertest.ScrollFrames(ctx, "#waterfall", 30, 240)
	ok(err)

	var idle, scroll browsertest.Frames
	for range 3 {
		i, err := browsertest.IdleFrames(ctx, 60)
		ok(err)
		f, err := browsertest.ScrollFrames(ctx, "#waterfall", 120, 240)
		ok(err)
		idle, scroll = append(idle, i...), append(scroll, f...)
	}
	page, err := browsertest.Eval[float64](ctx, `document.querySelector('#waterfall').clientHeight`)
	ok(err)
	fast, err := browsertest.ScrollFrames(ctx, "#waterfall", 120, page)
	ok(err)
	var profiled browsertest.Frames
	b, err := browsertest.Profile(ctx, func() error {
		var err error
		profiled, err = browsertest.ScrollFrames(ctx, "#waterfall", 120, 240)
		return err
	})
	ok(err)
	ratio := scroll.Median() / idle.Median()
	t.Logf("idle: %v; scroll at 240 px a frame: %v (median %.2f x idle); a page (%.0f px) a frame: %v", idle, scroll, ratio, page, fast)
	t.Logf("main thread over a traced scroll of 120 frames (%v): %v", profiled, b)
	if limit := 3*idle.Median() + 5; ratio > 1.5 || scroll.P95() > limit {
		t.Errorf("scroll frames: median %.1f ms (%.2f x idle %.1f ms), p95 %.1f ms; want median at most 1.5 x idle and p95 at most %.0f ms",
			scroll.Median(), ratio, idle.Median(), scroll.P95(), limit)
	}
}
