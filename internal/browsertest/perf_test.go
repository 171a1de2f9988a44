package browsertest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestFramesQuantiles(t *testing.T) {
	var f Frames
	for i := 20; i >= 1; i-- {
		f = append(f, float64(i))
	}
	if f.Median() != 10 || f.P95() != 19 || f.Quantile(1) != 20 || f.Quantile(0) != 1 {
		t.Errorf("got median %v, p95 %v, max %v, min %v; want 10, 19, 20, 1", f.Median(), f.P95(), f.Quantile(1), f.Quantile(0))
	}
	if f[0] != 20 {
		t.Errorf("quantiles reordered the frames: got %v first, want 20", f[0])
	}
	if (Frames{}).Median() != 0 {
		t.Errorf("median of no frames: got %v, want 0", (Frames{}).Median())
	}
}

func TestStage(t *testing.T) {
	for name, want := range map[string]string{
		"UpdateLayoutTree":                  "style",
		"Document::recalcStyle":             "style",
		"Layout":                            "layout",
		"LocalFrameView::performLayout":     "layout",
		"Paint":                             "paint",
		"PaintArtifactCompositor::Update":   "paint",
		"ProxyMain::BeginMainFrame::commit": "commit",
		"FunctionCall":                      "script",
		"V8.GC_SCAVENGER_SCAVENGE_PARALLEL": "gc",
		"ThreadControllerImpl::RunTask":     "other",
	} {
		if got := stage(name); got != want {
			t.Errorf("stage(%q): got %s, want %s", name, got, want)
		}
	}
}

// TestScrollFramesAndProfile drives a real page: frames are counted, the
// scroll moves the element, and a trace of a script that forces layouts
// shows script and layout time.
func TestScrollFramesAndProfile(t *testing.T) {
	t.Parallel()
	ctx := New(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<!doctype html><title>t</title>
<div id="box" style="height:300px;overflow:auto"><div style="height:30000px">tall</div></div>`))
	}))
	t.Cleanup(srv.Close)
	if err := Navigate(ctx, srv.URL); err != nil {
		t.Fatal(err)
	}

	idle, err := IdleFrames(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := ScrollFrames(ctx, "#box", 12, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range [][]float64{idle, frames} {
		for _, d := range f {
			if !(d > 0) {
				t.Fatalf("got frame intervals %v, want all positive", f)
			}
		}
	}
	if len(idle) != 10 || len(frames) != 12 {
		t.Errorf("got %d idle and %d scroll frames, want 10 and 12", len(idle), len(frames))
	}
	if top, _ := Eval[float64](ctx, `document.querySelector('#box').scrollTop`); top != 600 {
		t.Errorf("after 12 steps of 50 px: scrollTop %v, want 600", top)
	}
	if _, err := ScrollFrames(ctx, "#nothing", 1, 1); err == nil || !strings.Contains(err.Error(), "#nothing") {
		t.Errorf("scrolling a missing element: got %v, want an error naming it", err)
	}

	b, err := Profile(ctx, func() error {
		_, err := Eval[int](ctx, `(() => {
			const b = document.querySelector('#box');
			let h = 0;
			for (let i = 0; i < 300; i++) { b.style.width = (200 + i) + 'px'; h += b.firstChild.offsetHeight }
			return h;
		})()`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	g := b.Groups()
	if g["layout"] <= 0 || g["script"] <= 0 {
		t.Errorf("profile of a script forcing 300 layouts: got %v, want script and layout time", b)
	}
}
