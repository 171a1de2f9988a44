package traceview

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// mcpFixture records, at base:
//
//	session s1 (client agent 1.2 at 10.0.0.1, 2025-11-25): initialize, then three
//	  tools/call get_weather 1s apart through backend weather (10, 20, 30 ms;
//	  the second fails with tool_error), each with the backend's own SERVER
//	  span (its own session b-1) under the gateway's CLIENT span;
//	a stateless client cli at 10.0.0.2: two tools/call search via backend
//	  files (5 ms each), at +10s and +11s;
//	connect weather: a 50 ms root, with a keepalive ping joining six minutes
//	  later.
type mcpFixture struct {
	s1Traces          []trace.TraceID
	failed            trace.TraceID
	stateless         []trace.TraceID
	connect           trace.TraceID
	initialize, calls []trace.SpanID
}

func recordMCP(t *testing.T, s *Store) mcpFixture {
	t.Helper()
	gw := newProvider(t, s, "tracegate")
	wx := newProvider(t, s, "weather")
	ms := time.Millisecond
	var f mcpFixture
	server := func(at time.Duration, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
		return gw.Tracer("t").Start(context.Background(), name, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithTimestamp(base.Add(at)), trace.WithAttributes(attrs...))
	}
	s1 := []attribute.KeyValue{attribute.String("mcp.session.id", "s1")}
	ctx, sp := server(0, "initialize", append(s1, attribute.String("mcp.method.name", "initialize"),
		attribute.String("tracegate.client.name", "agent"), attribute.String("tracegate.client.version", "1.2"),
		attribute.String("mcp.protocol.version", "2025-11-25"), attribute.String("client.address", "10.0.0.1"))...)
	sp.End(trace.WithTimestamp(base.Add(2 * ms)))
	f.initialize = append(f.initialize, sp.SpanContext().SpanID())
	f.s1Traces = append(f.s1Traces, trace.SpanContextFromContext(ctx).TraceID())

	for i := range 3 {
		at := time.Duration(i+1) * time.Second
		d := time.Duration(10*(i+1)) * ms
		ctx, sp := server(at, "tools/call weather_get_weather", append(s1, attribute.String("mcp.method.name", "tools/call"),
			attribute.String("gen_ai.tool.name", "weather_get_weather"), attribute.String("client.address", "10.0.0.1"))...)
		cctx, client := gw.Tracer("t").Start(ctx, "tools/call get_weather", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(base.Add(at+ms)),
			trace.WithAttributes(attribute.String("mcp.method.name", "tools/call"), attribute.String("gen_ai.tool.name", "get_weather"),
				attribute.String("tracegate.backend.name", "weather")))
		_, bs := wx.Tracer("t").Start(cctx, "tools/call get_weather", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(base.Add(at+2*ms)),
			trace.WithAttributes(attribute.String("mcp.method.name", "tools/call"), attribute.String("mcp.session.id", "b-1")))
		bs.End(trace.WithTimestamp(base.Add(at + d)))
		if i == 1 {
			client.SetAttributes(attribute.String("error.type", "tool_error"))
			client.SetStatus(codes.Error, "tool_error")
			sp.SetAttributes(attribute.String("error.type", "tool_error"))
			f.failed = sp.SpanContext().TraceID()
		}
		client.End(trace.WithTimestamp(base.Add(at + ms + d)))
		sp.End(trace.WithTimestamp(base.Add(at + 2*ms + d)))
		f.calls = append(f.calls, sp.SpanContext().SpanID())
		f.s1Traces = append(f.s1Traces, sp.SpanContext().TraceID())
	}
	for i := range 2 {
		at := time.Duration(10+i) * time.Second
		ctx, sp := server(at, "tools/call files_search", attribute.String("mcp.method.name", "tools/call"),
			attribute.String("tracegate.client.name", "cli"), attribute.String("client.address", "10.0.0.2"),
			attribute.String("mcp.protocol.version", "2026-07-28"))
		_, c := gw.Tracer("t").Start(ctx, "tools/call search", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(base.Add(at)),
			trace.WithAttributes(attribute.String("mcp.method.name", "tools/call"), attribute.String("gen_ai.tool.name", "search"),
				attribute.String("tracegate.backend.name", "files")))
		c.End(trace.WithTimestamp(base.Add(at + 5*ms)))
		sp.End(trace.WithTimestamp(base.Add(at + 5*ms)))
		f.stateless = append(f.stateless, sp.SpanContext().TraceID())
	}
	ctx, conn := gw.Tracer("t").Start(context.Background(), "connect weather", trace.WithTimestamp(base.Add(-time.Second)))
	conn.End(trace.WithTimestamp(base.Add(-time.Second + 50*ms)))
	_, ping := wx.Tracer("t").Start(ctx, "ping", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(base.Add(6*time.Minute)),
		trace.WithAttributes(attribute.String("mcp.method.name", "ping")))
	ping.End(trace.WithTimestamp(base.Add(6*time.Minute + ms)))
	f.connect = conn.SpanContext().TraceID()
	return f
}

type sessionsResult struct {
	Sessions []struct {
		Key             string  `json:"key"`
		SessionID       string  `json:"session_id"`
		ClientName      string  `json:"client_name"`
		ClientVersion   string  `json:"client_version"`
		ClientAddress   string  `json:"client_address"`
		ProtocolVersion string  `json:"protocol_version"`
		Stateless       bool    `json:"stateless"`
		Requests        int     `json:"requests"`
		Errors          int     `json:"errors"`
		Traces          int     `json:"traces"`
		DurationMS      float64 `json:"duration_ms"`
		Timeline        []struct {
			TraceID  string  `json:"trace_id"`
			SpanID   string  `json:"span_id"`
			Name     string  `json:"name"`
			OffsetMS float64 `json:"offset_ms"`
			Error    bool    `json:"error"`
		} `json:"timeline"`
	} `json:"sessions"`
	Matched int `json:"matched"`
}

func TestSessionsView(t *testing.T) {
	t.Parallel()
	s := NewStore(0)
	f := recordMCP(t, s)
	var got sessionsResult
	if code := getJSON(t, s.Handler(), "/api/sessions", &got); code != http.StatusOK {
		t.Fatalf("got %d", code)
	}
	if got.Matched != 2 || len(got.Sessions) != 2 {
		t.Fatalf("got %d sessions (%+v), want the client session s1 and the stateless client; the backend's own session b-1 is not a client's", got.Matched, got.Sessions)
	}
	// Most recent first: the stateless client's requests are the latest.
	cli, s1 := got.Sessions[0], got.Sessions[1]
	if cli.Key != "client:cli@10.0.0.2" || !cli.Stateless || cli.Requests != 2 || cli.Traces != 2 || cli.ProtocolVersion != "2026-07-28" {
		t.Errorf("stateless client: got %+v", cli)
	}
	if s1.SessionID != "s1" || s1.Stateless || s1.ClientName != "agent" || s1.ClientVersion != "1.2" || s1.ProtocolVersion != "2025-11-25" ||
		s1.ClientAddress != "10.0.0.1" || s1.Requests != 4 || s1.Errors != 1 || s1.Traces != 4 || s1.DurationMS != 3032 {
		t.Errorf("session s1: got %+v, want agent 1.2, 4 requests in 4 traces, 1 error, 3032 ms", s1)
	}
	var ids []string
	for i, c := range s1.Timeline {
		ids = append(ids, c.TraceID)
		if wantErr := c.TraceID == f.failed.String(); c.Error != wantErr {
			t.Errorf("timeline %d: got error %v, want %v", i, c.Error, wantErr)
		}
	}
	var want []string
	for _, id := range f.s1Traces {
		want = append(want, id.String())
	}
	if !slices.Equal(ids, want) || s1.Timeline[0].Name != "initialize" || s1.Timeline[3].OffsetMS != 3000 || s1.Timeline[3].SpanID != f.calls[2].String() {
		t.Errorf("timeline: got %+v, want the four requests in order, the last at +3000 ms", s1.Timeline)
	}

	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"?error=true", []string{"s1"}},
		{"?error=false", []string{"client:cli@10.0.0.2"}},
		{"?client=agent", []string{"s1"}},
		{"?limit=1&offset=1", []string{"s1"}},
		{"?offset=5", nil},
	} {
		var r sessionsResult
		getJSON(t, s.Handler(), "/api/sessions"+tt.query, &r)
		var keys []string
		for _, se := range r.Sessions {
			keys = append(keys, se.Key)
		}
		if !slices.Equal(keys, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.query, keys, tt.want)
		}
	}
}

type toolsResult struct {
	Tools []struct {
		Tool, Backend string
		Calls, Errors int
		ErrorPct      float64 `json:"error_pct"`
		RatePerMin    float64 `json:"rate_per_min"`
		P50MS         float64 `json:"p50_ms"`
		P95MS         float64 `json:"p95_ms"`
		P99MS         float64 `json:"p99_ms"`
		Spark         []int   `json:"spark"`
		SparkErrors   []int   `json:"spark_errors"`
	} `json:"tools"`
	Buckets int `json:"buckets"`
}

func TestToolsView(t *testing.T) {
	t.Parallel()
	s := NewStore(0)
	recordMCP(t, s)
	var got toolsResult
	getJSON(t, s.Handler(), "/api/tools", &got)
	if len(got.Tools) != 2 {
		t.Fatalf("got %+v, want get_weather of weather and search of files", got.Tools)
	}
	w, f := got.Tools[0], got.Tools[1]
	if w.Tool != "get_weather" || w.Backend != "weather" || w.Calls != 3 || w.Errors != 1 || fmt.Sprintf("%.1f", w.ErrorPct) != "33.3" ||
		w.P50MS != 20 || w.P95MS != 30 || w.P99MS != 30 {
		t.Errorf("get_weather: got %+v, want 3 calls, 1 error (33.3%%), p50 20 ms, p95 and p99 30 ms", w)
	}
	if f.Tool != "search" || f.Backend != "files" || f.Calls != 2 || f.Errors != 0 || f.P50MS != 5 {
		t.Errorf("search: got %+v", f)
	}
	// The window runs from the connect at -1s to the ping at +6m: 361 s.
	if want := 3.0 / 361.001 * 60; fmt.Sprintf("%.4f", w.RatePerMin) != fmt.Sprintf("%.4f", want) {
		t.Errorf("rate: got %v per minute, want %v", w.RatePerMin, want)
	}
	sum, errs := 0, 0
	for i := range w.Spark {
		sum += w.Spark[i]
		errs += w.SparkErrors[i]
	}
	if len(w.Spark) != got.Buckets || sum != 3 || errs != 1 || w.Spark[0] != 3 {
		t.Errorf("sparkline: got %v errors %v, want 3 calls, all in the first of %d buckets, 1 error", w.Spark, w.SparkErrors, got.Buckets)
	}

	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"?sort=tool", []string{"search", "get_weather"}},
		{"?sort=tool&order=asc", []string{"get_weather", "search"}},
		{"?sort=p50&order=asc", []string{"search", "get_weather"}},
		{"?sort=errors", []string{"get_weather", "search"}},
		{"?backend=files", []string{"search"}},
	} {
		var r toolsResult
		getJSON(t, s.Handler(), "/api/tools"+tt.query, &r)
		var names []string
		for _, x := range r.Tools {
			names = append(names, x.Tool)
		}
		if !slices.Equal(names, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.query, names, tt.want)
		}
	}
}

type backendsResult struct {
	Backends []struct {
		Name, State, Detail string
		Restarts            int
		History             []struct{ State, At, Detail string }
		Calls, Errors       int
		P50MS               float64 `json:"p50_ms"`
		Operations          []struct {
			Kind       string  `json:"kind"`
			TraceID    string  `json:"trace_id"`
			DurationMS float64 `json:"duration_ms"`
		} `json:"operations"`
	} `json:"backends"`
}

func TestBackendsView(t *testing.T) {
	t.Parallel()
	s := NewStore(0)
	f := recordMCP(t, s)
	at := base
	step := func(state, detail string) {
		s.RecordBackendState("weather", state, at, detail)
		at = at.Add(time.Second)
	}
	step(BackendConnecting, "")
	step(BackendReady, "")
	step(BackendReady, "") // a repeat is not a transition
	step(BackendDegraded, "slow")
	step(BackendDown, "EOF")
	step(BackendConnecting, "")
	step(BackendReady, "")

	var got backendsResult
	getJSON(t, s.Handler(), "/api/backends", &got)
	if len(got.Backends) != 2 || got.Backends[0].Name != "files" || got.Backends[1].Name != "weather" {
		t.Fatalf("got %+v, want files and weather", got.Backends)
	}
	files, wx := got.Backends[0], got.Backends[1]
	if files.State != "" || files.Calls != 2 || len(files.History) != 0 {
		t.Errorf("files: got %+v, want 2 calls and no state reported", files)
	}
	var states []string
	for _, h := range wx.History {
		states = append(states, h.State)
	}
	if want := []string{"connecting", "ready", "degraded", "down", "connecting", "ready"}; !slices.Equal(states, want) {
		t.Errorf("history: got %v, want %v", states, want)
	}
	if wx.State != "ready" || wx.Restarts != 1 || wx.Calls != 3 || wx.Errors != 1 || wx.P50MS != 20 || wx.History[3].Detail != "EOF" {
		t.Errorf("weather: got %+v, want ready, 1 restart, 3 calls, 1 error, p50 20 ms", wx)
	}
	if len(wx.Operations) != 1 || wx.Operations[0].Kind != "connect" || wx.Operations[0].TraceID != f.connect.String() || wx.Operations[0].DurationMS != 50 {
		t.Errorf("operations: got %+v, want the 50 ms connect (the root's duration, not stretched by the late ping)", wx.Operations)
	}
}

func TestBackendStateRing(t *testing.T) {
	t.Parallel()
	s := NewStore(0)
	for i := range 100 {
		st := []string{BackendConnecting, BackendReady}[i%2]
		s.RecordBackendState("b", st, base.Add(time.Duration(i)*time.Second), "")
	}
	got := s.backendsView().Backends[0]
	if len(got.History) != maxStateHistory || got.Restarts != 49 {
		t.Fatalf("got %d events and %d restarts, want %d and 49", len(got.History), got.Restarts, maxStateHistory)
	}
	for i := 1; i < len(got.History); i++ {
		if got.History[i].at <= got.History[i-1].at {
			t.Fatalf("history not oldest first at %d", i)
		}
	}
	if last := got.History[len(got.History)-1]; last.at != base.Add(99*time.Second).UnixNano() || last.State != BackendReady {
		t.Errorf("last event: got %+v, want ready at +99s", last)
	}
}

func TestViewsBadRequests(t *testing.T) {
	t.Parallel()
	h := NewStore(0).Handler()
	for _, tt := range []struct{ url, param string }{
		{"/api/sessions?error=yes", "error"},
		{"/api/sessions?limit=0", "limit"},
		{"/api/sessions?offset=x", "offset"},
		{"/api/tools?sort=name", "sort"},
		{"/api/tools?order=sideways", "order"},
	} {
		var body struct{ Error, Parameter string }
		if code := getJSON(t, h, tt.url, &body); code != http.StatusBadRequest || body.Parameter != tt.param {
			t.Errorf("%s: got %d %+v, want 400 naming %s", tt.url, code, body, tt.param)
		}
	}
	var body struct{ Error string }
	if code := getJSON(t, h, "/api/nothing", &body); code != http.StatusNotFound || body.Error == "" {
		t.Errorf("/api/nothing: got %d %+v, want 404 with a message", code, body)
	}
}

// TestScratchSharedByStores queries two stores at once, over and over:
// the working memory the list and the sessions view reuse between
// requests must carry nothing from one request, or one store, to the
// next.
func TestScratchSharedByStores(t *testing.T) {
	t.Parallel()
	a, b := NewStore(0), NewStore(0)
	recordMCP(t, a)
	tp := newProvider(t, b, "other")
	for i := range 3 {
		_, sp := tp.Tracer("t").Start(context.Background(), "tools/call x", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(base.Add(time.Duration(i)*time.Second)),
			trace.WithAttributes(attribute.String("mcp.method.name", "tools/call"), attribute.String("mcp.session.id", fmt.Sprintf("b%d", i))))
		sp.End(trace.WithTimestamp(base.Add(time.Duration(i)*time.Second + time.Millisecond)))
	}
	want := map[*Store]struct {
		sessions []string
		traces   int
	}{
		a: {[]string{"client:cli@10.0.0.2", "s1"}, 7},
		b: {[]string{"b2", "b1", "b0"}, 3},
	}
	done := make(chan struct{})
	for _, s := range []*Store{a, b, a, b} {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 50 {
				var ss sessionsResult
				getJSON(t, s.Handler(), "/api/sessions", &ss)
				var keys []string
				for _, se := range ss.Sessions {
					keys = append(keys, se.Key)
				}
				var l struct {
					Traces []struct{} `json:"traces"`
				}
				getJSON(t, s.Handler(), "/api/traces", &l)
				if w := want[s]; !slices.Equal(keys, w.sessions) || len(l.Traces) != w.traces {
					t.Errorf("got sessions %v and %d traces, want %v and %d", keys, len(l.Traces), w.sessions, w.traces)
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}
