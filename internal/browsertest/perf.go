package browsertest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/io"
	"github.com/chromedp/cdproto/tracing"
	"github.com/chromedp/chromedp"
)

// Frames are the intervals between consecutive animation frames of a
// page, in milliseconds, as requestAnimationFrame's timestamps give them.
// An idle page in headless Chromium gets one frame per vsync (16.7 ms); a
// frame whose work (script, style, layout, paint) overruns it delays the
// next one.
type Frames []float64

// Median is the middle interval.
func (f Frames) Median() float64 { return f.Quantile(0.5) }

// P95 is the interval that 95% of frames are no longer than.
func (f Frames) P95() float64 { return f.Quantile(0.95) }

// Quantile is the nearest-rank q-quantile of the intervals, 0 when there
// are none.
func (f Frames) Quantile(q float64) float64 {
	if len(f) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(f))
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func (f Frames) String() string {
	return fmt.Sprintf("median %.1f ms, p95 %.1f ms over %d frames", f.Median(), f.P95(), len(f))
}

// nextFrame is a script function that resolves with the next animation
// frame's timestamp, or fails when none comes within 10 s (a stalled
// renderer), so that a measurement fails at once instead of at the
// test's deadline.
const nextFrame = `() => new Promise((resolve, reject) => {
	const t = setTimeout(() => reject(new Error('no animation frame in 10 s')), 10000);
	requestAnimationFrame((ts) => { clearTimeout(t); resolve(ts); });
})`

// ScrollFrames scrolls the element matching selector down by step CSS
// pixels in each of n animation frames, as a steady wheel or a dragged
// scroll bar does, and returns the intervals between those frames. When
// the element reaches its end it jumps back to the top and goes on.
func ScrollFrames(ctx context.Context, selector string, n int, step float64) (Frames, error) {
	sel, _ := json.Marshal(selector)
	js := fmt.Sprintf(`(async () => {
		const frame = %s;
		const el = document.querySelector(%s);
		if (!el) throw new Error('no element ' + %s);
		const out = [];
		let last = await frame();
		for (let i = 0; i < %d; i++) {
			const max = el.scrollHeight - el.clientHeight;
			el.scrollTop = el.scrollTop + %g > max ? 0 : el.scrollTop + %g;
			const t = await frame();
			out.push(t - last);
			last = t;
		}
		return out;
	})()`, nextFrame, sel, sel, n, step, step)
	f, err := Eval[Frames](ctx, js)
	if err != nil {
		return nil, fmt.Errorf("scroll %s: %w", selector, err)
	}
	return f, nil
}

// IdleFrames returns the intervals between n animation frames of the page
// with nothing to do: what the machine gives any page at that moment.
func IdleFrames(ctx context.Context, n int) (Frames, error) {
	js := fmt.Sprintf(`(async () => {
		const frame = %s;
		const out = [];
		let last = await frame();
		for (let i = 0; i < %d; i++) {
			const t = await frame();
			out.push(t - last);
			last = t;
		}
		return out;
	})()`, nextFrame, n)
	f, err := Eval[Frames](ctx, js)
	if err != nil {
		return nil, fmt.Errorf("idle frames: %w", err)
	}
	return f, nil
}

// Breakdown is where a page's renderer spent its time during a DevTools
// performance trace: the self time of each trace event name on the
// renderer's main thread (Layout, Paint, UpdateLayoutTree for style,
// FunctionCall for script, and so on), and the raster threads' RasterTask
// time, in milliseconds.
type Breakdown struct {
	Main   map[string]float64
	Raster float64
}

// Top lists the n names of the most main-thread time, with their time.
func (b Breakdown) Top(n int) []NameTime {
	var out []NameTime
	for k, v := range b.Main {
		out = append(out, NameTime{k, v})
	}
	slices.SortFunc(out, func(a, b NameTime) int { return cmp.Or(cmp.Compare(b.MS, a.MS), strings.Compare(a.Name, b.Name)) })
	return out[:min(n, len(out))]
}

// NameTime is one trace event name and its time in milliseconds.
type NameTime struct {
	Name string
	MS   float64
}

// Groups sums the main thread's time into the stages of a frame: script,
// style, layout, paint (with layerization), commit (handing the frame to
// the compositor), gc and other, by the usual trace event names.
func (b Breakdown) Groups() map[string]float64 {
	out := map[string]float64{}
	for name, ms := range b.Main {
		out[stage(name)] += ms
	}
	return out
}

// stage names the stage of a frame that a main-thread trace event is
// part of.
func stage(name string) string {
	has := func(subs ...string) bool {
		return slices.ContainsFunc(subs, func(s string) bool { return strings.Contains(name, s) })
	}
	switch {
	case has("GC"):
		return "gc"
	case has("UpdateLayoutTree", "Style", "rebuildLayoutTree"): // before Layout: UpdateLayoutTree is style
		return "style"
	case has("Layout", "Shape"):
		return "layout"
	case has("Paint", "Layerize", "UpdateLayer"):
		return "paint"
	case has("ommit"):
		return "commit"
	case has("FunctionCall", "EvaluateScript", "EventDispatch", "FireAnimationFrame", "TimerFire", "RunMicrotasks", "V8", "v8"):
		return "script"
	}
	return "other"
}

func (b Breakdown) String() string {
	var sb strings.Builder
	g := b.Groups()
	for _, k := range []string{"script", "style", "layout", "paint", "commit", "gc", "other"} {
		fmt.Fprintf(&sb, "%s %.0f ms, ", k, g[k])
	}
	fmt.Fprintf(&sb, "raster (other threads) %.0f ms; most: ", b.Raster)
	for i, nt := range b.Top(6) {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%s %.0f", nt.Name, nt.MS)
	}
	return sb.String()
}

// Profile records a DevTools performance trace of ctx's tab while fn runs
// and returns where the renderer's time went.
func Profile(ctx context.Context, fn func() error) (Breakdown, error) {
	// Subscribe before starting, so that the end cannot be missed.
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	complete := make(chan tracing.EventTracingComplete, 1)
	go func() {
		for ev, err := range chromedp.Events(lctx, tracing.TracingComplete) {
			if err == nil {
				complete <- ev
			}
			return
		}
	}()
	cats := []string{"devtools.timeline", "disabled-by-default-devtools.timeline", "v8.execute", "blink", "cc", "__metadata"}
	if _, err := chromedp.Call(ctx, tracing.Start, tracing.StartParams{
		TransferMode: tracing.StartTransferModeReturnAsStream,
		StreamFormat: tracing.StreamFormatJSON,
		TraceConfig:  &tracing.TraceConfig{IncludedCategories: cats, ExcludedCategories: []string{"*"}},
	}); err != nil {
		return Breakdown{}, fmt.Errorf("start trace: %w", err)
	}
	ferr := fn()
	if _, err := chromedp.Call(ctx, tracing.End, cdp.Empty{}); err != nil {
		return Breakdown{}, fmt.Errorf("end trace: %w", err)
	}
	var done tracing.EventTracingComplete
	select {
	case done = <-complete:
	case <-ctx.Done():
		return Breakdown{}, fmt.Errorf("wait for trace: %w", ctx.Err())
	}
	if ferr != nil {
		return Breakdown{}, ferr
	}
	var raw []byte
	for {
		r, err := chromedp.Call(ctx, io.Read, io.ReadParams{Handle: done.Stream, Size: 1 << 20})
		if err != nil {
			return Breakdown{}, fmt.Errorf("read trace: %w", err)
		}
		raw = append(raw, r.Data...)
		if r.EOF {
			break
		}
	}
	_, _ = chromedp.Call(ctx, io.Close, io.CloseParams{Handle: done.Stream})
	var file struct {
		TraceEvents []traceEvent `json:"traceEvents"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		return Breakdown{}, fmt.Errorf("decode trace: %w", err)
	}
	return summarize(file.TraceEvents), nil
}

type traceEvent struct {
	Name string          `json:"name"`
	Ph   string          `json:"ph"`
	Ts   float64         `json:"ts"`  // µs
	Dur  float64         `json:"dur"` // µs
	Pid  int             `json:"pid"`
	Tid  int             `json:"tid"`
	Args json.RawMessage `json:"args"`
}

// summarize sums self times per event name on each renderer main thread
// (CrRendererMain), and RasterTask time on any thread.
func summarize(events []traceEvent) Breakdown {
	type thread struct{ pid, tid int }
	main := map[thread]bool{}
	for _, e := range events {
		if e.Ph == "M" && e.Name == "thread_name" {
			var a struct{ Name string }
			if json.Unmarshal(e.Args, &a) == nil && a.Name == "CrRendererMain" {
				main[thread{e.Pid, e.Tid}] = true
			}
		}
	}
	b := Breakdown{Main: map[string]float64{}}
	byThread := map[thread][]traceEvent{}
	for _, e := range events {
		if e.Ph != "X" {
			continue
		}
		if e.Name == "RasterTask" {
			b.Raster += e.Dur / 1000
		}
		if th := (thread{e.Pid, e.Tid}); main[th] {
			byThread[th] = append(byThread[th], e)
		}
	}
	for _, evs := range byThread {
		// Outer events first: by start, the longer first at a tie.
		sort.SliceStable(evs, func(i, j int) bool {
			if evs[i].Ts != evs[j].Ts {
				return evs[i].Ts < evs[j].Ts
			}
			return evs[i].Dur > evs[j].Dur
		})
		// self[i] is evs[i]'s time less that of the events nested in it.
		self := make([]float64, len(evs))
		var stack []int
		for i, e := range evs {
			self[i] = e.Dur
			for len(stack) > 0 {
				top := evs[stack[len(stack)-1]]
				if e.Ts < top.Ts+top.Dur {
					break
				}
				stack = stack[:len(stack)-1]
			}
			if len(stack) > 0 {
				self[stack[len(stack)-1]] -= e.Dur
			}
			stack = append(stack, i)
		}
		for i, e := range evs {
			b.Main[e.Name] += max(self[i], 0) / 1000
		}
	}
	return b
}
