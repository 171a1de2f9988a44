package traceview

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// fixtureTraces fills s with four traces of known shape and returns
// their IDs, oldest start first.
//
//	call:   tracegate, tools/call get_weather, backend weather, session s1, 40ms, starts at +0s
//	list:   tracegate, tools/list, session s2, status Error, 5ms, starts at +1s
//	probe:  probe, tools/call get_weather (error.type=tool_error), 200ms, starts at +2s
//	remote: weather only, a child of a span not in the store, 60ms, starts at +3s
func fixtureTraces(t *testing.T, s *Store) (call, list, probe, remote trace.TraceID) {
	t.Helper()
	gw := newProvider(t, s, "tracegate")
	pr := newProvider(t, s, "probe")
	wx := newProvider(t, s, "weather")
	ms := time.Millisecond

	ctx := start(context.Background(), gw, spanOpts{name: "tools/call get_weather", kind: trace.SpanKindServer, to: 40 * ms,
		attrs: []attribute.KeyValue{
			attribute.String("mcp.method.name", "tools/call"), attribute.String("gen_ai.tool.name", "get_weather"),
			attribute.String("mcp.session.id", "s1"), attribute.String("enduser.id", "alice"),
		}})
	start(ctx, gw, spanOpts{name: "tools/call get_weather", kind: trace.SpanKindClient, from: 2 * ms, to: 38 * ms,
		attrs: []attribute.KeyValue{attribute.String("tracegate.backend.name", "weather"), attribute.String("mcp.method.name", "tools/call")}})
	call = trace.SpanContextFromContext(ctx).TraceID()

	ctx = start(context.Background(), gw, spanOpts{name: "tools/list", kind: trace.SpanKindServer, from: time.Second, to: time.Second + 5*ms, status: true,
		attrs: []attribute.KeyValue{attribute.String("mcp.method.name", "tools/list"), attribute.String("mcp.session.id", "s2")}})
	list = trace.SpanContextFromContext(ctx).TraceID()

	ctx = start(context.Background(), pr, spanOpts{name: "tools/call get_weather", kind: trace.SpanKindClient, from: 2 * time.Second, to: 2*time.Second + 200*ms,
		attrs: []attribute.KeyValue{attribute.String("error.type", "tool_error"), attribute.String("gen_ai.tool.name", "get_weather")}})
	probe = trace.SpanContextFromContext(ctx).TraceID()

	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xee, 1}, SpanID: trace.SpanID{0xee, 2}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	ctx = start(trace.ContextWithRemoteSpanContext(context.Background(), parent), wx,
		spanOpts{name: "tools/call get_weather", kind: trace.SpanKindServer, from: 3 * time.Second, to: 3*time.Second + 60*ms})
	start(ctx, wx, spanOpts{name: "GET /forecast", kind: trace.SpanKindClient, from: 3*time.Second + ms, to: 3*time.Second + 50*ms})
	remote = parent.TraceID()
	return call, list, probe, remote
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	s := NewStore(0)
	call, list, probe, remote := fixtureTraces(t, s)
	h := s.Handler()
	ids := func(tt ...trace.TraceID) []string {
		out := []string{}
		for _, id := range tt {
			out = append(out, id.String())
		}
		return out
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", ids(remote, probe, list, call)},
		{"?limit=2", ids(remote, probe)},
		{"?service=tracegate", ids(list, call)},
		{"?service=weather", ids(remote)},
		{"?service=nobody", ids()},
		{"?method=tools/call", ids(call)},
		{"?method=tools/list", ids(list)},
		{"?tool=get_weather", ids(probe, call)},
		{"?backend=weather", ids(call)},
		{"?session=s2", ids(list)},
		{"?user=alice", ids(call)},
		{"?user=bob", ids()},
		{"?error=true", ids(probe, list)},
		{"?error=false", ids(remote, call)},
		{"?min_duration=50ms", ids(remote, probe)},
		{"?min_duration=40ms", ids(remote, probe, call)},
		{"?service=tracegate&error=true", ids(list)},
		{"?tool=get_weather&min_duration=100ms", ids(probe)},
		{"?unknown=ignored", ids(remote, probe, list, call)},
		// Any attribute, of a span or of its resource; several are ANDed,
		// each satisfied by some span of the trace.
		{"?attr=mcp.session.id%3Ds1", ids(call)},
		{"?attr=service.name%3Dprobe", ids(probe)},
		{"?attr=mcp.session.id%3Ds1&attr=tracegate.backend.name%3Dweather", ids(call)},
		{"?attr=mcp.session.id%3Ds1&attr=mcp.session.id%3Ds2", ids()},
		{"?attr=service.name%3Dtracegate&attr=mcp.method.name%3Dtools/list", ids(list)},
		{"?attr=error.type%3Dtool_error", ids(probe)},
		{"?attr=mcp.session.id%3Ds", ids()},
		{"?max_duration=50ms", ids(list, call)},
		{"?min_duration=10ms&max_duration=100ms", ids(remote, call)},
		// Time range: on the trace's start.
		{"?start=" + base.Add(time.Second).Format(time.RFC3339), ids(remote, probe, list)},
		{"?end=" + base.Add(2*time.Second).Format(time.RFC3339Nano), ids(probe, list, call)},
		{"?start=" + strconv.FormatInt(base.Add(time.Second).UnixMilli(), 10) + "&end=" + strconv.FormatInt(base.Add(2*time.Second).UnixMilli(), 10), ids(probe, list)},
		// Sorting and pages.
		{"?sort=duration", ids(probe, remote, call, list)},
		{"?sort=duration&order=asc", ids(list, call, remote, probe)},
		{"?sort=spans", ids(remote, call, probe, list)},
		{"?sort=start&order=asc", ids(call, list, probe, remote)},
		{"?offset=1&limit=2", ids(probe, list)},
		{"?offset=10", ids()},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var l listResult
			if code := getJSON(t, h, "/api/traces"+tt.query, &l); code != http.StatusOK {
				t.Fatalf("got status %d, want 200", code)
			}
			if got := l.ids(); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestListItem(t *testing.T) {
	t.Parallel()
	s := NewStore(0)
	call, _, _, remote := fixtureTraces(t, s)
	var l listResult
	getJSON(t, s.Handler(), "/api/traces", &l)
	if l.Matched != 4 || l.StoredSpans != 6 {
		t.Errorf("totals: got matched %d stored %d, want 4 and 6", l.Matched, l.StoredSpans)
	}
	byID := map[string]int{}
	for i, tr := range l.Traces {
		byID[tr.TraceID] = i
	}
	got := l.Traces[byID[call.String()]]
	if got.RootName != "tools/call get_weather" || got.RootService != "tracegate" || got.SpanCount != 2 ||
		got.DurationMS != 40 || got.Error || !slices.Equal(got.Services, []string{"tracegate"}) {
		t.Errorf("call trace: got %+v", got)
	}
	if want := base.Format(time.RFC3339Nano); got.StartTime != want {
		t.Errorf("start time: got %q, want %q", got.StartTime, want)
	}
	// The root of a trace whose first span has a parent elsewhere is its
	// earliest span.
	if got := l.Traces[byID[remote.String()]]; got.RootName != "tools/call get_weather" || got.RootService != "weather" {
		t.Errorf("remote trace root: got %q of %q, want tools/call get_weather of weather", got.RootName, got.RootService)
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	s := NewStore(0)
	call, _, _, _ := fixtureTraces(t, s)
	h := s.Handler()
	tests := []struct {
		url       string
		wantCode  int
		wantParam string
	}{
		{"/api/traces?limit=0", 400, "limit"},
		{"/api/traces?limit=1001", 400, "limit"},
		{"/api/traces?limit=ten", 400, "limit"},
		{"/api/traces?error=maybe", 400, "error"},
		{"/api/traces?min_duration=-1s", 400, "min_duration"},
		{"/api/traces?min_duration=50", 400, "min_duration"},
		{"/api/traces/xyz", 400, "trace_id"},
		{"/api/traces/" + strings.Repeat("0", 32), 400, "trace_id"},
		{"/api/traces/" + strings.Repeat("a", 31), 400, "trace_id"},
		{"/api/traces/" + strings.Repeat("ab", 16), 404, "trace_id"},
		{"/api/traces/" + strings.ToUpper(call.String()), 200, ""},
		{"/api/traces?limit=1000", 200, ""},
		{"/api/traces?attr=novalue", 400, "attr"},
		{"/api/traces?attr=%3Dx", 400, "attr"},
		{"/api/traces?" + strings.Repeat("attr=a%3Db&", 17), 400, "attr"},
		{"/api/traces?max_duration=soon", 400, "max_duration"},
		{"/api/traces?min_duration=1s&max_duration=10ms", 400, "max_duration"},
		{"/api/traces?start=yesterday", 400, "start"},
		{"/api/traces?end=2026-13-01T00:00:00Z", 400, "end"},
		{"/api/traces?start=2026-03-02T00:00:00Z&end=2026-03-01T00:00:00Z", 400, "end"},
		{"/api/traces?lookback=-5m", 400, "lookback"},
		{"/api/traces?lookback=5m&start=2026-03-01T00:00:00Z", 400, "lookback"},
		{"/api/traces?sort=name", 400, "sort"},
		{"/api/traces?order=up", 400, "order"},
		{"/api/traces?offset=-1", 400, "offset"},
		{"/api/traces?lookback=1h&sort=duration&order=asc&offset=3", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			var body struct {
				Error     string `json:"error"`
				Parameter string `json:"parameter"`
			}
			code := getJSON(t, h, tt.url, &body)
			if code != tt.wantCode || body.Parameter != tt.wantParam {
				t.Errorf("got %d parameter %q, want %d parameter %q", code, body.Parameter, tt.wantCode, tt.wantParam)
			}
			if tt.wantCode != 200 && !strings.Contains(body.Error, tt.wantParam) {
				t.Errorf("message %q does not name %q", body.Error, tt.wantParam)
			}
		})
	}
}

func TestTraceDetail(t *testing.T) {
	t.Parallel()
	s := NewStore(0)
	gw := newProvider(t, s, "tracegate")
	other := start(context.Background(), gw, spanOpts{name: "earlier", to: time.Millisecond})
	otherSC := trace.SpanContextFromContext(other)
	gone := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{9}})

	ctx := start(context.Background(), gw, spanOpts{name: "root", kind: trace.SpanKindServer, from: 10 * time.Millisecond, to: 30 * time.Millisecond,
		links: []trace.Link{
			{SpanContext: otherSC, Attributes: []attribute.KeyValue{attribute.String("link.kind", "http")}},
			{SpanContext: gone},
		},
		attrs: []attribute.KeyValue{
			attribute.Float64("nan", math.NaN()),
			attribute.Float64("inf", math.Inf(1)),
			attribute.Int64("big", 1<<60),
			attribute.Int64("small", 7),
			attribute.StringSlice("list", []string{"a", "b"}),
		}})
	_, sp := gw.Tracer("t").Start(ctx, "child", trace.WithTimestamp(base.Add(15*time.Millisecond)))
	sp.AddEvent("exception", trace.WithTimestamp(base.Add(16*time.Millisecond)),
		trace.WithAttributes(attribute.String("exception.message", "boom")))
	sp.SetStatus(codes.Error, "bad")
	sp.End(trace.WithTimestamp(base.Add(20 * time.Millisecond)))

	id := sp.SpanContext().TraceID().String()
	var tr traceResult
	if code := getJSON(t, s.Handler(), "/api/traces/"+id, &tr); code != 200 {
		t.Fatalf("got %d, want 200", code)
	}
	if tr.SpanCount != 2 || tr.DurationMS != 20 || tr.TraceID != id {
		t.Fatalf("trace: got %d spans, %vms, id %s; want 2, 20ms, %s", tr.SpanCount, tr.DurationMS, tr.TraceID, id)
	}
	root, child := tr.Spans[0], tr.Spans[1]
	checks := []struct {
		what      string
		got, want any
	}{
		{"order", root.Name + "," + child.Name, "root,child"},
		{"root parent", root.ParentSpanID, ""},
		{"child parent", child.ParentSpanID, root.SpanID},
		{"root kind", root.Kind, "server"},
		{"child kind", child.Kind, "internal"},
		{"child offset", child.OffsetMS, 5.0},
		{"child duration", child.DurationMS, 5.0},
		{"child start", child.StartTime, base.Add(15 * time.Millisecond).Format(time.RFC3339Nano)},
		{"child end nanos", child.EndUnixNano, strconv.FormatInt(base.Add(20*time.Millisecond).UnixNano(), 10)},
		{"child status", child.Status.Code + ": " + child.Status.Message, "Error: bad"},
		{"child error", child.Error, true},
		{"root status", root.Status.Code, "Unset"},
		{"root error", root.Error, false},
		{"event", child.Events[0].Name, "exception"},
		{"event attr", child.Events[0].Attributes["exception.message"], "boom"},
		{"nan", root.Attributes["nan"], "NaN"},
		{"inf", root.Attributes["inf"], "+Inf"},
		{"big int", root.Attributes["big"], "1152921504606846976"},
		{"small int", root.Attributes["small"], 7.0},
		{"link 0 trace", root.Links[0].TraceID, otherSC.TraceID().String()},
		{"link 0 span", root.Links[0].SpanID, otherSC.SpanID().String()},
		{"link 0 present", root.Links[0].Present, true},
		{"link 0 attr", root.Links[0].Attributes["link.kind"], "http"},
		{"link 1 present", root.Links[1].Present, false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v (%T), want %v", c.what, c.got, c.got, c.want)
		}
	}
	if got, ok := root.Attributes["list"].([]any); !ok || len(got) != 2 {
		t.Errorf("list attr: got %#v, want [a b]", root.Attributes["list"])
	}
}

func TestTraceDetailDedupes(t *testing.T) {
	t.Parallel()
	s := NewStore(0)
	// The same span reaching the store twice, as when a process both
	// records in process and exports to its own OTLP receiver.
	sp := &span{traceID: trace.TraceID{1}, spanID: trace.SpanID{2}, name: "twice", start: 1, end: 2, service: "x"}
	s.add(sp, 0)
	s.add(sp, 0)
	var tr traceResult
	getJSON(t, s.Handler(), "/api/traces/"+sp.traceID.String(), &tr)
	if len(tr.Spans) != 1 {
		t.Errorf("got %d spans, want 1", len(tr.Spans))
	}
}

func TestServicesAndUI(t *testing.T) {
	t.Parallel()
	s := NewStore(0)
	fixtureTraces(t, s)
	h := s.Handler()

	var svcs struct {
		Services []string `json:"services"`
	}
	getJSON(t, h, "/api/services", &svcs)
	if want := []string{"probe", "tracegate", "weather"}; !slices.Equal(svcs.Services, want) {
		t.Errorf("services: got %v, want %v", svcs.Services, want)
	}

	tests := []struct {
		path      string
		wantCode  int
		wantType  string
		wantBody  string
		wantCSP   bool
		wantRedir string
	}{
		{"/ui/", 200, "text/html; charset=utf-8", `id="wf-rows"`, true, ""},
		{"/ui/?trace=" + strings.Repeat("ab", 16), 200, "text/html; charset=utf-8", `<script src="viewer.js"`, true, ""},
		{"/ui/viewer.js", 200, "text/javascript; charset=utf-8", "data-span-id", true, ""},
		{"/ui/viewer.css", 200, "text/css; charset=utf-8", ".span-row", true, ""},
		{"/ui/missing.js", 404, "", "", true, ""},
		{"/ui", 307, "", "", false, "/ui/"},
		{"/", 302, "", "", false, "/ui/"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.wantCode {
				t.Fatalf("got %d, want %d", res.StatusCode, tt.wantCode)
			}
			if tt.wantType != "" && res.Header.Get("Content-Type") != tt.wantType {
				t.Errorf("Content-Type: got %q, want %q", res.Header.Get("Content-Type"), tt.wantType)
			}
			if !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("body does not contain %q", tt.wantBody)
			}
			if got := res.Header.Get("Content-Security-Policy") != ""; got != tt.wantCSP {
				t.Errorf("CSP header present: got %v, want %v", got, tt.wantCSP)
			}
			if loc := res.Header.Get("Location"); loc != tt.wantRedir {
				t.Errorf("Location: got %q, want %q", loc, tt.wantRedir)
			}
		})
	}
}

// TestUIIsSelfContained guards the offline promise: the embedded files
// reference nothing outside the admin origin.
func TestUIIsSelfContained(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"ui/index.html", "ui/viewer.js", "ui/viewer.css"} {
		b, err := uiFiles.ReadFile(name)
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		for _, bad := range []string{"http://", "https://", "//cdn", "@import", "fonts.g"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s references %q", name, bad)
			}
		}
	}
}
