package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// The helpers below drive tracegate's trace viewer through the DOM hooks
// its UI keeps stable: list rows tr[data-trace-id] in #trace-list; span
// rows .span-row with data-span-id, data-parent-span-id, data-depth and
// data-service, the name in .span-name, ordered by data-idx (the page may
// hold them in another order); #trace-view[data-trace-id] once a
// trace is drawn; the detail panel #span-detail[data-span-id]; span links
// a[data-trace-link].

var (
	traceIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)
	spanIDRe  = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// pollOpts check page conditions every 25ms; the context's
// deadline, not a poll timeout, bounds the wait.
var pollOpts = []chromedp.PollOption{
	chromedp.WithPollingInterval(25 * time.Millisecond),
	chromedp.WithPollingTimeout(0),
}

func checkTraceID(id string) (string, error) {
	id = strings.ToLower(id)
	if !traceIDRe.MatchString(id) {
		return "", fmt.Errorf("trace ID %q: want 32 hex digits", id)
	}
	return id, nil
}

func checkSpanID(id string) (string, error) {
	id = strings.ToLower(id)
	if !spanIDRe.MatchString(id) {
		return "", fmt.Errorf("span ID %q: want 16 hex digits", id)
	}
	return id, nil
}

// OpenList loads the trace list at baseURL (the admin root, such as
// http://127.0.0.1:9090) and waits until it is drawn.
func OpenList(ctx context.Context, baseURL string) error {
	url := strings.TrimSuffix(baseURL, "/") + "/ui/"
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		return fmt.Errorf("open trace list %s: %w", url, err)
	}
	return WaitList(ctx)
}

// WaitList waits until the trace list is on screen and drawn.
func WaitList(ctx context.Context) error {
	const js = `!!document.querySelector('#list-view:not([hidden]) #trace-list[data-loaded]')`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, pollOpts...)); err != nil {
		return fmt.Errorf("wait for trace list: %w", err)
	}
	return nil
}

// TraceRow is one row of the trace list.
type TraceRow struct {
	TraceID   string   `json:"trace_id"`
	RootName  string   `json:"root_name"`
	Services  []string `json:"services"`
	SpanCount string   `json:"span_count"` // as shown
	Duration  string   `json:"duration"`   // as shown
	Error     bool     `json:"error"`
}

// TraceRows reads the rows of the trace list on screen.
func TraceRows(ctx context.Context) ([]TraceRow, error) {
	const js = `[...document.querySelectorAll('#trace-list tbody tr[data-trace-id]')].map(tr => ({
		trace_id: tr.dataset.traceId,
		root_name: tr.querySelector('.t-root a').textContent,
		services: [...tr.querySelectorAll('.chip[data-service]')].map(c => c.dataset.service),
		span_count: tr.children[3].textContent,
		duration: tr.querySelector('.dur-num').textContent,
		error: tr.classList.contains('err'),
	}))`
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js))
	if err != nil {
		return nil, fmt.Errorf("read trace list: %w", err)
	}
	var rows []TraceRow
	if err := json.Unmarshal(raw, &rows); err != nil {
		return nil, fmt.Errorf("decode trace list: %w", err)
	}
	return rows, nil
}

// WaitTraceInList waits until the list on screen (with auto-refresh on, or
// after reloads by the caller) has a row for traceID.
func WaitTraceInList(ctx context.Context, traceID string) error {
	id, err := checkTraceID(traceID)
	if err != nil {
		return err
	}
	js := fmt.Sprintf(`!!document.querySelector('#trace-list tr[data-trace-id="%s"]')`, id)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, pollOpts...)); err != nil {
		return fmt.Errorf("wait for trace %s in the list: %w", id, err)
	}
	return nil
}

// ClickTrace clicks the list row of traceID and waits for the trace view.
func ClickTrace(ctx context.Context, traceID string) error {
	id, err := checkTraceID(traceID)
	if err != nil {
		return err
	}
	sel := chromedp.CSS(fmt.Sprintf(`#trace-list tr[data-trace-id="%s"] td.t-start`, id))
	if err := chromedp.Do(ctx, chromedp.Click(sel)); err != nil {
		return fmt.Errorf("click trace %s in the list: %w", id, err)
	}
	return WaitTrace(ctx, id)
}

// OpenTrace loads the trace view of traceID at baseURL and waits until its
// waterfall is drawn. It fails fast when the viewer reports the trace
// missing.
func OpenTrace(ctx context.Context, baseURL, traceID string) error {
	id, err := checkTraceID(traceID)
	if err != nil {
		return err
	}
	url := strings.TrimSuffix(baseURL, "/") + "/ui/?trace=" + id
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		return fmt.Errorf("open %s: %w", url, err)
	}
	return WaitTrace(ctx, id)
}

// WaitTrace waits until the trace view of traceID is drawn, or fails when
// the viewer reports that it cannot show it.
func WaitTrace(ctx context.Context, traceID string) error {
	id, err := checkTraceID(traceID)
	if err != nil {
		return err
	}
	js := fmt.Sprintf(`(() => {
		if (document.querySelector('#trace-view[data-trace-id="%s"]')) return 'ok';
		const m = document.querySelector('#trace-view:not([hidden]) .trace-msg p');
		return m ? 'error: ' + m.textContent : '';
	})()`, id)
	res, err := chromedp.Run(ctx, chromedp.Poll[string](js, pollOpts...))
	if err != nil {
		return fmt.Errorf("wait for trace %s: %w", id, err)
	}
	if res != "ok" {
		return fmt.Errorf("trace %s: viewer says %s", id, strings.TrimPrefix(res, "error: "))
	}
	return nil
}

// CurrentTraceID returns the ID of the trace on screen, or "".
func CurrentTraceID(ctx context.Context) (string, error) {
	id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#trace-view').dataset.traceId || ''`))
	if err != nil {
		return "", fmt.Errorf("read current trace: %w", err)
	}
	return id, nil
}

// Row is one span row of the waterfall.
type Row struct {
	SpanID       string `json:"span_id"`
	ParentSpanID string `json:"parent_span_id"` // "" for a root
	Depth        int    `json:"depth"`
	Name         string `json:"name"`
	Service      string `json:"service"`
	Error        bool   `json:"error"`
	// Hidden is true for a row drawn but hidden. The viewer does not draw
	// the rows inside a collapsed subtree at all, nor, in a trace of more
	// than 2000 visible spans, those outside the viewport and a margin of
	// a few rows around it.
	Hidden bool `json:"hidden"`
}

// SpanRows reads the waterfall's rows in display order.
func SpanRows(ctx context.Context) ([]Row, error) {
	const js = `[...document.querySelectorAll('#wf-rows .span-row')].sort((a, b) => a.dataset.idx - b.dataset.idx).map(r => ({
		span_id: r.dataset.spanId,
		parent_span_id: r.dataset.parentSpanId,
		depth: +r.dataset.depth,
		name: r.querySelector('.span-name').textContent,
		service: r.dataset.service,
		error: r.classList.contains('err'),
		hidden: r.hidden,
	}))`
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js))
	if err != nil {
		return nil, fmt.Errorf("read span rows: %w", err)
	}
	var rows []Row
	if err := json.Unmarshal(raw, &rows); err != nil {
		return nil, fmt.Errorf("decode span rows: %w", err)
	}
	return rows, nil
}

// ClickSpan clicks the waterfall row of spanID and waits until the detail
// panel shows that span.
func ClickSpan(ctx context.Context, spanID string) error {
	id, err := checkSpanID(spanID)
	if err != nil {
		return err
	}
	row := fmt.Sprintf(`#wf-rows .span-row[data-span-id="%s"]`, id)
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(row+" .span-name")),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#span-detail[data-span-id="%s"]`, id))),
	); err != nil {
		return fmt.Errorf("click span %s: %w", id, err)
	}
	return nil
}

// ToggleSpan clicks the collapse/expand control of spanID's row.
func ToggleSpan(ctx context.Context, spanID string) error {
	id, err := checkSpanID(spanID)
	if err != nil {
		return err
	}
	sel := chromedp.CSS(fmt.Sprintf(`#wf-rows .span-row[data-span-id="%s"] button.tog`, id))
	if err := chromedp.Do(ctx, chromedp.Click(sel)); err != nil {
		return fmt.Errorf("toggle span %s: %w", id, err)
	}
	return nil
}

// SelectedSpan returns the span ID the detail panel shows, or "".
func SelectedSpan(ctx context.Context) (string, error) {
	id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const d = document.querySelector('#span-detail'); return d && !d.hidden && d.dataset.spanId || '' })()`))
	if err != nil {
		return "", fmt.Errorf("read selected span: %w", err)
	}
	return id, nil
}

// DetailText returns the visible text of the span detail panel.
func DetailText(ctx context.Context) (string, error) {
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#span-detail")))
	if err != nil {
		return "", fmt.Errorf("read span detail: %w", err)
	}
	return s, nil
}

// DetailAttributes returns the attributes the detail panel lists, key to
// value as shown.
func DetailAttributes(ctx context.Context) (map[string]string, error) {
	const js = `Object.fromEntries([...document.querySelectorAll('#span-detail section.attrs tr[data-k]')]
		.map(tr => [tr.querySelector('.k').textContent, tr.querySelector('.v').textContent]))`
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js))
	if err != nil {
		return nil, fmt.Errorf("read span attributes: %w", err)
	}
	m := map[string]string{}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode span attributes: %w", err)
	}
	return m, nil
}

// FollowLink clicks the detail panel's link to traceID and waits for that
// trace's view.
func FollowLink(ctx context.Context, traceID string) error {
	id, err := checkTraceID(traceID)
	if err != nil {
		return err
	}
	sel := chromedp.CSS(fmt.Sprintf(`#span-detail a[data-trace-link="%s"]`, id))
	if err := chromedp.Do(ctx, chromedp.Click(sel)); err != nil {
		return fmt.Errorf("follow link to trace %s: %w", id, err)
	}
	return WaitTrace(ctx, id)
}

// Back goes back in the tab's history; follow it with WaitTrace or
// WaitList as the page requires.
func Back(ctx context.Context) error {
	if err := chromedp.Do(ctx, chromedp.NavigateBack()); err != nil {
		return fmt.Errorf("navigate back: %w", err)
	}
	return nil
}

// Location returns the tab's current URL.
func Location(ctx context.Context) (string, error) {
	return chromedp.Run(ctx, chromedp.Location())
}

// ColorScheme makes the page see prefers-color-scheme as scheme ("light"
// or "dark"); "" restores the default.
func ColorScheme(ctx context.Context, scheme string) error {
	params := emulation.SetEmulatedMediaParams{}
	if scheme != "" {
		params.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
	}
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, params); err != nil {
		return fmt.Errorf("emulate prefers-color-scheme %q: %w", scheme, err)
	}
	return nil
}

// Screenshot saves a PNG of the viewport to path, creating its directory.
func Screenshot(ctx context.Context, path string) error {
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return fmt.Errorf("capture screenshot: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("screenshot directory: %w", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Errorf("write screenshot: %w", err)
	}
	return nil
}

// StoreStats waits for the header's store figures ("N traces · M / max
// spans") and returns them.
func StoreStats(ctx context.Context) (string, error) {
	s, err := chromedp.Run(ctx, chromedp.Poll[string](`document.querySelector("#store-stats").textContent || null`, chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		return "", fmt.Errorf("store figures never shown: %w", err)
	}
	return s, nil
}

// The helpers below are generic: they drive any page of the viewer by CSS
// selector and script, for its views beyond the trace list and waterfall.

// Navigate loads url in the tab.
func Navigate(ctx context.Context, url string) error {
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		return fmt.Errorf("open %s: %w", url, err)
	}
	return nil
}

// WaitFor polls the page until the expression js is truthy.
func WaitFor(ctx context.Context, js string) error {
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+js+")", pollOpts...)); err != nil {
		return fmt.Errorf("wait for %s: %w", js, err)
	}
	return nil
}

// Click clicks the first element matching the CSS selector, with the
// mouse at its centre, as a user would.
func Click(ctx context.Context, selector string) error {
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector))); err != nil {
		return fmt.Errorf("click %s: %w", selector, err)
	}
	return nil
}

// Eval evaluates js in the page, waits for it if it is a promise, and
// decodes its JSON result into T.
func Eval[T any](ctx context.Context, js string) (T, error) {
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		return v, fmt.Errorf("evaluate %.80s: %w", js, err)
	}
	return v, nil
}

// Viewport resizes the tab's viewport, in CSS pixels.
func Viewport(ctx context.Context, width, height int64) error {
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		return fmt.Errorf("viewport %dx%d: %w", width, height, err)
	}
	return nil
}

// UploadFile sets the file of the file input matching selector, as
// choosing it in the file dialog does; the input's change event fires.
func UploadFile(ctx context.Context, selector, path string) error {
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS(selector), []string{path}, chromedp.NodeReady)); err != nil {
		return fmt.Errorf("upload %s into %s: %w", path, selector, err)
	}
	return nil
}

// Drag presses the mouse at the fraction fromX of the width of the element
// matching selector (at its vertical middle), moves it to toX, and
// releases it there: real input events, so pointer capture works as for a
// user.
func Drag(ctx context.Context, selector string, fromX, toX float64) error {
	type rect struct{ X, Y, W, H float64 }
	sel, _ := json.Marshal(selector)
	r, err := Eval[rect](ctx, `(() => { const b = document.querySelector(`+string(sel)+`).getBoundingClientRect(); return {X: b.left, Y: b.top, W: b.width, H: b.height} })()`)
	if err != nil {
		return err
	}
	y := r.Y + r.H/2
	if err := chromedp.Do(ctx, chromedp.DragAndDropXY(r.X+fromX*r.W, y, r.X+toX*r.W, y)); err != nil {
		return fmt.Errorf("drag across %s: %w", selector, err)
	}
	return nil
}

// DropFile drags the file at path from outside the browser and drops it on
// the page at (x, y), as a user dropping a file from their desktop does.
func DropFile(ctx context.Context, path string, x, y float64) error {
	data := &input.DragData{Items: []*input.DragDataItem{}, Files: []string{path}, DragOperationsMask: 1}
	for _, typ := range []input.DispatchDragEventType{input.DispatchDragEventTypeDragEnter, input.DispatchDragEventTypeDragOver, input.DispatchDragEventTypeDrop} {
		if _, err := chromedp.Call(ctx, input.DispatchDragEvent, input.DispatchDragEventParams{Type: typ, X: x, Y: y, Data: data}); err != nil {
			return fmt.Errorf("drop %s (%s): %w", path, typ, err)
		}
	}
	return nil
}
