package mcptrace

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestClientAttributes checks the gateway's hooks: fixed attributes on spans
// and metrics, the per-request hook on spans only, and the peer's address.
func TestClientAttributes(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	var mu sync.Mutex
	var infos []RequestInfo
	hook := func(ctx context.Context, info RequestInfo) []attribute.KeyValue {
		mu.Lock()
		defer mu.Unlock()
		infos = append(infos, info)
		return []attribute.KeyValue{attribute.String("test.hook", info.Method)}
	}
	s := rig{
		transport:        "http",
		protocol:         legacyProtocol,
		clientMiddleware: true,
		clientOpts: []Option{
			WithServerAddress("weather.internal", 9001),
			WithNetworkTransport("tcp", "http", "1.1"),
			WithAttributes(attribute.String("tracegate.backend.name", "weather")),
			WithRequestAttributes(hook),
		},
	}.start(t, tel)
	meta := map[string]any{"progressToken": "p1"}
	if _, err := s.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "greet", Meta: meta}); err != nil {
		t.Fatalf("calling greet: %v", err)
	}

	client := tel.span(t, "tools/call greet", trace.SpanKindClient)
	wantAttrs(t, client, map[attribute.Key]any{
		"server.address":           "weather.internal",
		"server.port":              int64(9001),
		"network.transport":        "tcp",
		"network.protocol.name":    "http",
		"network.protocol.version": "1.1",
		"tracegate.backend.name":   "weather",
		"test.hook":                "tools/call",
		"mcp.session.id":           s.cs.ID(),
	})
	// The initialize span learns the session ID from the response.
	wantAttrs(t, tel.span(t, "initialize", trace.SpanKindClient), map[attribute.Key]any{"mcp.session.id": s.cs.ID(), "mcp.protocol.version": legacyProtocol})

	mu.Lock()
	defer mu.Unlock()
	i := slices.IndexFunc(infos, func(ri RequestInfo) bool { return ri.Method == "tools/call" })
	if i < 0 {
		t.Fatalf("hook never saw tools/call; saw %v", infos)
	}
	if got := infos[i]; got.Kind != trace.SpanKindClient || got.ToolName != "greet" || got.Meta["progressToken"] != "p1" || got.SessionID != s.cs.ID() {
		t.Errorf("hook got %+v, want a CLIENT tools/call greet with the caller's _meta", got)
	}

	points := tel.histogramPoints(t, metricClientOperation)
	i = slices.IndexFunc(points, func(p metricdataPoint) bool {
		v, _ := p.Attributes.Value("mcp.method.name")
		return v.AsString() == "tools/call"
	})
	if i < 0 {
		t.Fatalf("got no %s point for tools/call", metricClientOperation)
	}
	p := points[i]
	for key, want := range map[attribute.Key]string{"tracegate.backend.name": "weather", "server.address": "weather.internal", "gen_ai.tool.name": "greet", "mcp.protocol.version": legacyProtocol} {
		if v, _ := p.Attributes.Value(key); v.Emit() != want {
			t.Errorf("metric %s: got %q, want %q", key, v.Emit(), want)
		}
	}
	for _, key := range []attribute.Key{"test.hook", "mcp.session.id"} {
		if _, ok := p.Attributes.Value(key); ok {
			t.Errorf("metric has %s, want it on spans only", key)
		}
	}
	if !slices.Equal(p.Bounds, durationBuckets) {
		t.Errorf("got bucket bounds %v, want the semantic conventions' %v", p.Bounds, durationBuckets)
	}

	if err := s.cs.Close(); err != nil {
		t.Fatalf("closing: %v", err)
	}
	eventually(t, metricClientSession, func() bool {
		points := tel.histogramPoints(t, metricClientSession)
		return len(points) == 1 && points[0].Count == 1
	})
}

// TestClientBaggagePolicy checks the per-instance baggage filter on _meta.
func TestClientBaggagePolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy BaggagePolicy
		want   string
	}{
		{"all", BaggageAll(), "tenant=acme,user=alice"},
		{"none", BaggageNone(), ""},
		{"keys", BaggageKeys("tenant"), "tenant=acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tel := newTelemetry(t)
			s := rig{transport: "memory", protocol: legacyProtocol, clientMiddleware: true, clientOpts: []Option{WithBaggage(tt.policy)}}.start(t, tel)
			ctx, _ := NewPropagation().Extract(context.Background(), nil, map[string]any{"baggage": "user=alice,tenant=acme"})
			seen := inspect(ctx, t, s.cs, nil)
			if got := sortedMembers(seen.Baggage); got != tt.want {
				t.Errorf("server saw baggage %q, want %q", got, tt.want)
			}
		})
	}
}

func sortedMembers(b string) string {
	if b == "" {
		return ""
	}
	parts := bytes.Split([]byte(b), []byte(","))
	slices.SortFunc(parts, bytes.Compare)
	return string(bytes.Join(parts, []byte(",")))
}

// TestContentCapture checks that arguments and results are recorded only on
// opt-in, bounded and redacted.
func TestContentCapture(t *testing.T) {
	t.Parallel()
	redact := WithContentRedactor(func(attr string, data []byte) []byte {
		return bytes.ReplaceAll(data, []byte("secret"), []byte("******"))
	})
	tests := []struct {
		name       string
		opts       []Option
		wantArgs   any
		wantResult any
	}{
		{"off by default", nil, nil, nil},
		{"bounded", []Option{WithContentCapture(12)}, `{"name":"sec`, `{"content":[`},
		{"redacted", []Option{WithContentCapture(1000), redact}, `{"name":"******"}`, `{"content":[{"type":"text","text":"hello ******"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tel := newTelemetry(t)
			s := rig{transport: "memory", protocol: legacyProtocol, clientMiddleware: true, clientOpts: tt.opts, serverOpts: tt.opts}.start(t, tel)
			if _, err := s.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "greet", Arguments: map[string]any{"name": "secret"}}); err != nil {
				t.Fatalf("calling greet: %v", err)
			}
			for _, kind := range []trace.SpanKind{trace.SpanKindClient, trace.SpanKindServer} {
				wantAttrs(t, tel.span(t, "tools/call greet", kind), map[attribute.Key]any{
					"gen_ai.tool.call.arguments": tt.wantArgs,
					"gen_ai.tool.call.result":    tt.wantResult,
				})
			}
		})
	}
}
