package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestMain lets the test binary be what the bench's binary is to the
// runs it makes: a path's own process, or the stdio backend.
func TestMain(m *testing.M) {
	switch {
	case os.Getenv(stdioServerEnv) == "1":
		if err := serveStdio(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	case os.Getenv(pathChildEnv) != "":
		if err := servePathChild(); err != nil {
			os.Stderr.WriteString("bench path process: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestQuickRun runs the harness for a fraction of a second per scenario at
// concurrency 1, so that the default test run keeps it compiling and
// working: the gateway (through per-session-backend, whose baseline it is,
// and whose baseline is direct) and the two proxies written here, each in
// a process of its own (-own-process), profiled.
func TestQuickRun(t *testing.T) {
	// Not parallel: allocations are counted for the whole process, and
	// another test allocating at the same time would skew them.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	profiles := filepath.Join(t.TempDir(), "cpu")
	rep, err := run(ctx, settings{
		// Long enough that a loaded machine under -race completes calls.
		Duration:       400 * time.Millisecond,
		Warmup:         100 * time.Millisecond,
		Rounds:         1,
		Concurrency:    []int{1},
		Scenarios:      []string{"per-session-backend", "raw-http-proxy", "raw-inline-proxy"},
		SessionSamples: 2,
		CPUProfile:     profiles,
		OwnProcess:     true,
	}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(rep.Results), 5; got != want {
		t.Fatalf("got %d results, want %d (direct, gateway, per-session-backend, raw-http-proxy, raw-inline-proxy)", got, want)
	}
	for _, r := range rep.Results {
		if r.Calls == 0 || r.Errors != 0 {
			t.Errorf("%s: got %d calls and %d errors (%s), want calls and no errors", r.Scenario, r.Calls, r.Errors, r.FirstError)
		}
		if r.P50 <= 0 || r.P99 < r.P50 || r.AllocsPerCall <= 0 || r.CPUPerCall <= 0 {
			t.Errorf("%s: got p50 %v p99 %v allocs %v cpu %v, want positive and ordered", r.Scenario, r.P50, r.P99, r.AllocsPerCall, r.CPUPerCall)
		}
		// Every path but direct runs in a process of its own, whose CPU
		// time is part of the call's.
		if own := r.Scenario != "direct"; own != (r.PathCPUPerCall > 0) || r.PathCPUPerCall >= r.CPUPerCall {
			t.Errorf("%s: got %v of %v CPU per call in the path's own process, want some (and less than all) exactly when it has one", r.Scenario, r.PathCPUPerCall, r.CPUPerCall)
		}
	}
	for _, name := range []string{"direct-c1-r1.prof", "gateway-c1-r1.prof", "gateway-c1-r1.path.prof"} {
		if fi, err := os.Stat(profiles + "." + name); err != nil || fi.Size() == 0 {
			t.Errorf("CPU profile %s: %v, want a written file", name, err)
		}
	}
	if _, err := os.Stat(profiles + ".direct-c1-r1.path.prof"); err == nil {
		t.Error("got a path profile for direct, which has no process of its own")
	}
	gw, ok := find(rep.Results, "gateway", 1)
	if !ok || gw.Baseline != "direct" || gw.ThroughputRatio <= 0 || gw.CPURatio <= 0 {
		t.Errorf("got gateway result %+v, want a ratio against direct", gw)
	}
	// The gateway decodes and re-encodes every call: it must allocate.
	if gw.AddedAllocs <= 0 {
		t.Errorf("got %v added allocations per call through the gateway, want more than 0", gw.AddedAllocs)
	}
	if ps, ok := find(rep.Results, "per-session-backend", 1); !ok || ps.Baseline != "gateway" || ps.ThroughputRatio <= 0 {
		t.Errorf("got per-session-backend result %+v, want a ratio against gateway", ps)
	}
	if rep.SessionCost.OpenP50 <= 0 {
		t.Errorf("got session open cost %v, want > 0", rep.SessionCost.OpenP50)
	}
	statuses := map[string]string{}
	for _, v := range rep.Targets {
		statuses[v.Target] = v.Status
	}
	for _, tg := range targets {
		want := "n/a"
		if tg.scenario == "gateway" && tg.conc == 1 {
			want = "PASS or MISS"
		}
		got := statuses[tg.what]
		if (want == "n/a") != (got == "n/a") {
			t.Errorf("target %q: got %s, want %s", tg.what, got, want)
		}
	}

	var out bytes.Buffer
	printReport(&out, rep)
	for _, want := range []string{"GOMAXPROCS=", "direct", "gateway", "targets:", "open a session"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestOneProcess runs the gateway in the bench's own process, as a run
// without -own-process does: no process of its own, and its work counted
// all the same.
func TestOneProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := run(ctx, settings{
		Duration:    200 * time.Millisecond,
		Warmup:      50 * time.Millisecond,
		Rounds:      1,
		Concurrency: []int{1},
		Scenarios:   []string{"gateway"},
	}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	gw, ok := find(rep.Results, "gateway", 1)
	if !ok || gw.Calls == 0 || gw.Errors != 0 || gw.PathCPUPerCall != 0 || gw.AddedAllocs <= 0 {
		t.Errorf("got gateway result %+v, want calls, no errors, no process of its own, and its allocations counted", gw)
	}
	var out bytes.Buffer
	printReport(&out, rep)
	if !strings.Contains(out.String(), "one process") {
		t.Errorf("report does not say the run was one process:\n%s", out.String())
	}
}

// TestSessionProxy checks that the per-session-backend scenario measures
// what it claims: one backend session per client session, opened at
// initialize and closed when the client session ends.
func TestSessionProxy(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := startBackend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	p, pt, err := startSessionProxy(ctx, b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer pt.close()
	var ws []*worker
	for i := range 3 {
		w, err := connectWorker(ctx, pt, i, sampled)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
		if _, err := w.call(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := p.count(), i+1; got != want {
			t.Errorf("after %d client sessions and calls: got %d backend sessions, want %d", i+1, got, want)
		}
	}
	ws[0].close()
	for p.count() != 2 {
		select {
		case <-ctx.Done():
			t.Fatalf("got %d backend sessions after a client left, want 2", p.count())
		case <-time.After(5 * time.Millisecond):
		}
	}
	for _, w := range ws[1:] {
		w.close()
	}
}

func TestSelectScenarios(t *testing.T) {
	t.Parallel()
	all := []scenario{{name: "a"}, {name: "b", baseline: "a"}, {name: "c", baseline: "b"}, {name: "d"}}
	tests := []struct {
		names []string
		want  string
	}{
		{nil, "a,b,c,d"},
		{[]string{"c"}, "a,b,c"},
		{[]string{"d", "a"}, "a,d"},
	}
	for _, tt := range tests {
		got, err := selectScenarios(all, tt.names)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, sc := range got {
			names = append(names, sc.name)
		}
		if strings.Join(names, ",") != tt.want {
			t.Errorf("selectScenarios(%v): got %v, want %s", tt.names, names, tt.want)
		}
	}
	if _, err := selectScenarios(all, []string{"nope"}); err == nil {
		t.Error("got no error for an unknown scenario, want one")
	}
}

func TestMedianRound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rates []float64
		want  float64
	}{
		{[]float64{5}, 5},
		{[]float64{9, 1, 5}, 5},
		{[]float64{4, 1, 3, 2}, 2},
	}
	for _, tt := range tests {
		var ms []measurement
		for i, r := range tt.rates {
			ms = append(ms, measurement{Round: i + 1, PerSecond: r})
		}
		if got := medianRound(ms).PerSecond; got != tt.want {
			t.Errorf("medianRound(%v): got %v, want %v", tt.rates, got, tt.want)
		}
	}
}

// TestSummarizePairsRounds checks that comparisons are made within each
// round and then the median taken, so that a shift in the machine's load
// between rounds does not skew a ratio.
func TestSummarizePairsRounds(t *testing.T) {
	t.Parallel()
	sel := []scenario{{name: "direct"}, {name: "gateway", baseline: "direct"}}
	var rounds []measurement
	// The machine is twice as fast in rounds 2 and 3; the gateway is always
	// half as fast as direct within a round.
	for i, speed := range []float64{1, 2, 2} {
		rounds = append(rounds,
			measurement{Scenario: "direct", Concurrency: 16, Round: i + 1, PerSecond: 1000 * speed, P50: time.Duration(1000 / speed), CPUPerCall: 100, AllocsPerCall: 10},
			measurement{Scenario: "gateway", Concurrency: 16, Round: i + 1, PerSecond: 500 * speed, P50: time.Duration(3000 / speed), CPUPerCall: 250, AllocsPerCall: 25},
		)
	}
	// Medians picked per scenario would pair direct's round 2 (2000/s) with
	// the gateway's round 2 too here, so make the gateway's median round a
	// slow one.
	rounds[3].PerSecond = 400
	res := summarize(sel, []int{16}, rounds)
	gw, ok := find(res, "gateway", 16)
	if !ok {
		t.Fatal("no gateway result")
	}
	tests := []struct {
		what      string
		got, want float64
	}{
		{"throughput ratio", gw.ThroughputRatio, 0.5},
		{"cpu ratio", gw.CPURatio, 0.4},
		{"added p50 (ns)", float64(gw.AddedP50), 1000},
		{"added cpu (ns)", float64(gw.AddedCPU), 150},
		{"added allocs", gw.AddedAllocs, 15},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.what, tt.got, tt.want)
		}
	}
	if got := len(gw.ThroughputRatioRounds); got != 3 {
		t.Errorf("got %d per-round ratios, want 3", got)
	}
}

func TestTraceparent(t *testing.T) {
	t.Parallel()
	for _, flags := range []byte{sampled, unsampled} {
		w := &worker{flags: flags, rng: newRand()}
		a, b := w.traceparent(), w.traceparent()
		if len(a) != 55 || !strings.HasPrefix(a, "00-") || a[35] != '-' || a[52] != '-' {
			t.Errorf("got %q, want a version 00 traceparent", a)
		}
		if want := []string{"-00", "-01"}[flags]; !strings.HasSuffix(a, want) {
			t.Errorf("got %q, want flags %s", a, want)
		}
		if a[3:35] == b[3:35] {
			t.Errorf("got trace id %s twice, want a fresh one per call", a[3:35])
		}
	}
}

func TestJSONOutput(t *testing.T) {
	t.Parallel()
	name := filepath.Join(t.TempDir(), "out.json")
	rep := &report{Results: []result{{measurement: measurement{Scenario: "gateway", Concurrency: 16, PerSecond: 10}}}}
	if err := writeJSON(name, nil, rep); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var got report
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Results) != 1 || got.Results[0].Scenario != "gateway" || got.Results[0].PerSecond != 10 {
		t.Errorf("got %+v, want the gateway result back", got.Results)
	}
}

// TestOTLPSink exports real spans over OTLP/HTTP to the sink tracing
// scenarios use, and checks it counts them.
func TestOTLPSink(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sink, err := startOTLPSink(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.close()
	for _, gzip := range []bool{false, true} {
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(sink.URL + "/v1/traces")}
		if gzip {
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			t.Fatal(err)
		}
		before, beforeCalls := sink.Spans(), sink.CallSpans()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		for _, name := range []string{"tools/call echo", "tools/list", "tools/call other"} {
			_, span := tp.Tracer("bench-test").Start(ctx, name, trace.WithAttributes(attribute.String("mcp.method.name", name)))
			span.End()
		}
		if err := tp.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if got := sink.Spans() - before; got != 3 {
			t.Errorf("gzip %v: got %d spans, want 3", gzip, got)
		}
		if got := sink.CallSpans() - beforeCalls; got != 2 {
			t.Errorf("gzip %v: got %d tools/call spans, want 2", gzip, got)
		}
	}
	if got := sink.Bad(); got != 0 {
		t.Errorf("got %d undecodable exports, want 0", got)
	}

	// A truncated export is refused and counted, not half-counted.
	var req collectortrace.ExportTraceServiceRequest
	req.ResourceSpans = []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{Name: "tools/call echo"}}}}}}
	body, err := proto.Marshal(&req)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(sink.URL+"/v1/traces", "application/x-protobuf", bytes.NewReader(body[:len(body)-3]))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || sink.Bad() != 1 {
		t.Errorf("truncated export: got HTTP %d and %d bad exports, want 400 and 1", resp.StatusCode, sink.Bad())
	}
}

// TestTracingScenarios runs the two traced gateways briefly, in the
// bench's process and each in its own, and checks that they really
// exported: tools/call spans for sampled calls, none for unsampled ones,
// metrics, and nothing the sink could not decode.
func TestTracingScenarios(t *testing.T) {
	t.Parallel()
	for _, own := range []bool{false, true} {
		t.Run(fmt.Sprintf("own-process=%v", own), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			rep, err := run(ctx, settings{
				Duration:    100 * time.Millisecond,
				Warmup:      30 * time.Millisecond,
				Rounds:      1,
				Concurrency: []int{1},
				Scenarios:   []string{"tracing-sampled", "tracing-unsampled"},
				OwnProcess:  own,
			}, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if err := rep.exportProblems(); err != nil {
				t.Fatal(err)
			}
			got := map[string]exported{}
			for _, e := range rep.Exports {
				got[e.Scenario] = e
			}
			if s := got["tracing-sampled"]; s.Calls == 0 || s.CallSpans < 2*s.Calls || s.MetricExports == 0 {
				t.Errorf("tracing-sampled: got %+v, want at least 2 tools/call spans per call and metrics", s)
			}
			if u := got["tracing-unsampled"]; u.Calls == 0 || u.CallSpans != 0 || u.MetricExports == 0 {
				t.Errorf("tracing-unsampled: got %+v, want calls, no tools/call spans, and metrics", u)
			}
			for _, name := range []string{"tracing-sampled", "tracing-unsampled"} {
				r, ok := find(rep.Results, name, 1)
				if !ok || r.Baseline != "gateway" || r.ThroughputRatio <= 0 || r.Errors != 0 {
					t.Errorf("%s: got %+v, want a ratio against gateway and no errors", name, r)
				}
				if (r.PathCPUPerCall > 0) != own {
					t.Errorf("%s: got %v CPU per call in a process of its own, want some exactly when it has one", name, r.PathCPUPerCall)
				}
			}
			var out bytes.Buffer
			printReport(&out, rep)
			if !strings.Contains(out.String(), "OTLP export of the traced scenarios") {
				t.Errorf("report lacks the export check:\n%s", out.String())
			}
		})
	}
}

func TestExportCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		flags byte
		e     exported
		fails bool
	}{
		{"sampled, every call exported", sampled, exported{CallSpans: 20, Calls: 10, MetricExports: 1}, false},
		{"sampled, some dropped", sampled, exported{CallSpans: 15, Dropped: 5, Calls: 10, MetricExports: 1}, false},
		{"sampled, spans missing", sampled, exported{CallSpans: 10, Calls: 10, MetricExports: 1}, true},
		{"unsampled, none", unsampled, exported{Spans: 4, Calls: 10, MetricExports: 1}, false},
		{"unsampled, call spans", unsampled, exported{CallSpans: 1, Calls: 10, MetricExports: 1}, true},
		{"undecodable export", sampled, exported{CallSpans: 20, Calls: 10, MetricExports: 1, Bad: 1}, true},
		{"no metrics", unsampled, exported{Calls: 10}, true},
	}
	for _, tt := range tests {
		e := tt.e
		e.check(tt.flags)
		if (e.Problem != "") != tt.fails {
			t.Errorf("%s: got problem %q, want failure %v", tt.name, e.Problem, tt.fails)
		}
	}
}
