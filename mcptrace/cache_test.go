package mcptrace

import (
	"context"
	"strconv"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func TestBoundedCacheStopsGrowing(t *testing.T) {
	t.Parallel()
	var c boundedCache[string, string]
	builds := 0
	build := func(k string) func() string {
		return func() string { builds++; return "v" + k }
	}
	for i := range maxCached + 10 {
		k := strconv.Itoa(i)
		if got := c.get(k, build(k)); got != "v"+k {
			t.Fatalf("get(%s): got %q, want %q", k, got, "v"+k)
		}
	}
	if c.len() != maxCached {
		t.Errorf("got %d entries, want the bound %d", c.len(), maxCached)
	}
	builds = 0
	c.get("0", build("0"))
	if builds != 0 {
		t.Errorf("a cached key was built again")
	}
	if got := c.get(strconv.Itoa(maxCached+5), build(strconv.Itoa(maxCached+5))); got != "v"+strconv.Itoa(maxCached+5) || builds != 1 {
		t.Errorf("past the bound: got %q after %d builds, want the built value after 1", got, builds)
	}
}

// TestCachedMetricAttributesFollowTheOutcome checks that the cached
// attribute sets keep successes and each kind of error apart, and that span
// names are right for every tool, cached or not.
func TestCachedMetricAttributesFollowTheOutcome(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	h := ServerMiddleware(tel.options()...)(func(_ context.Context, _ string, req mcp.Request) (mcp.Result, error) {
		if req.(*mcp.CallToolRequest).Params.Name == "bad" {
			return &mcp.CallToolResult{IsError: true}, nil
		}
		return &mcp.CallToolResult{}, nil
	})
	for _, tool := range []string{"good", "bad", "good", "bad", "good"} {
		req := &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: tool, Arguments: []byte(`{}`)}}
		if _, err := h(context.Background(), "tools/call", req); err != nil {
			t.Fatal(err)
		}
	}
	counts := map[string]uint64{}
	for _, p := range tel.histogramPoints(t, metricServerOperation) {
		tool, _ := p.Attributes.Value(keyToolName)
		errType, _ := p.Attributes.Value(keyErrorType)
		counts[tool.AsString()+"/"+errType.AsString()] += p.Count
	}
	want := map[string]uint64{"good/": 3, "bad/tool_error": 2}
	if len(counts) != len(want) || counts["good/"] != 3 || counts["bad/tool_error"] != 2 {
		t.Errorf("got points %v, want %v", counts, want)
	}
	names := map[string]int{}
	for _, s := range tel.spans.Ended() {
		names[s.Name()]++
		if v, _ := attr(s, keyToolName); s.Name() != "tools/call "+v.AsString() {
			t.Errorf("span %q has gen_ai.tool.name %q", s.Name(), v.AsString())
		}
	}
	if names["tools/call good"] != 3 || names["tools/call bad"] != 2 {
		t.Errorf("got span names %v, want 3 tools/call good and 2 tools/call bad", names)
	}
}

// TestUnsampledSpansBuildNoAttributes checks that an unsampled call skips
// the span's attributes (the request hook is not even called) while its
// measurement keeps every metric attribute.
func TestUnsampledSpansBuildNoAttributes(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSpanProcessor(tel.spans))
	t.Cleanup(func() { never.Shutdown(context.Background()) })
	hooks := 0
	h := ServerMiddleware(WithTracerProvider(never), WithMeterProvider(tel.mp), WithNetworkTransport("tcp", "http", "1.1"),
		WithRequestAttributes(func(context.Context, RequestInfo) []attribute.KeyValue { hooks++; return nil }),
	)(func(context.Context, string, mcp.Request) (mcp.Result, error) {
		return &mcp.CallToolResult{IsError: true}, nil
	})
	req := &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: "echo", Arguments: []byte(`{}`)}}
	if _, err := h(context.Background(), "tools/call", req); err != nil {
		t.Fatal(err)
	}
	if hooks != 0 || len(tel.spans.Ended()) != 0 {
		t.Errorf("got %d hook calls and %d recorded spans, want none", hooks, len(tel.spans.Ended()))
	}
	points := tel.histogramPoints(t, metricServerOperation)
	if len(points) != 1 {
		t.Fatalf("got %d points, want 1", len(points))
	}
	want := map[attribute.Key]string{keyMethodName: "tools/call", keyToolName: "echo", keyOperationName: "execute_tool", keyNetTransport: "tcp", keyErrorType: "tool_error"}
	for k, v := range want {
		if got, _ := points[0].Attributes.Value(k); got.AsString() != v {
			t.Errorf("metric attribute %s: got %q, want %q", k, got.AsString(), v)
		}
	}
}
