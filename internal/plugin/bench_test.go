package plugin

import (
	"context"
	"encoding/json"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/config"
)

// discard is a span processor that drops every span, so benchmarks pay
// for recording spans but not for keeping them.
type discard struct{}

func (discard) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discard) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discard) Shutdown(context.Context) error                  { return nil }
func (discard) ForceFlush(context.Context) error                { return nil }

type noopPlugin struct{}

func (noopPlugin) Handle(context.Context, *Call) (Outcome, error) { return Outcome{}, nil }

func benchChain(b *testing.B, cfgs []config.Plugin, tp trace.TracerProvider) *Chain {
	b.Helper()
	c, err := New(cfgs, Options{
		TracerProvider: tp,
		Registry:       Registry{"noop": func(config.Plugin, Options) (Plugin, error) { return noopPlugin{}, nil }},
	})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func benchRun(b *testing.B, c *Chain) {
	ctx := context.Background()
	call := &Call{Hook: ToolPreInvoke, Backend: "files", Name: "files_read", SessionID: "s1", Arguments: json.RawMessage(`{"path":"/data/report.csv"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Run(ctx, call); err != nil {
			b.Fatal(err)
		}
	}
}

func tracerProviders(b *testing.B) map[string]trace.TracerProvider {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discard{}))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return map[string]trace.TracerProvider{"sdk": tp, "untraced": nil}
}

// The gateway's path when no plugin is configured, or none applies.
func BenchmarkChainNoPlugins(b *testing.B) {
	b.Run("empty", func(b *testing.B) { benchRun(b, benchChain(b, nil, nil)) })
	b.Run("none applies", func(b *testing.B) {
		cfgs := []config.Plugin{
			{Name: "a", Type: "noop", Backends: []string{"weather"}},
			{Name: "b", Type: "deny", Tools: []string{"files_delete*"}},
			{Name: "c", Type: "redact", Options: map[string]any{"patterns": "email"}}, // post hooks... and arguments
		}
		cfgs[2].Backends = []string{"mail"}
		benchRun(b, benchChain(b, cfgs, nil))
	})
}

// Three plugins that say continue on tool_pre_invoke: the cost of the
// chain itself, its spans and its timeouts.
func BenchmarkChainThreeNoop(b *testing.B) {
	cfgs := []config.Plugin{{Name: "a", Type: "noop"}, {Name: "b", Type: "noop"}, {Name: "c", Type: "noop"}}
	for name, tp := range tracerProviders(b) {
		b.Run(name, func(b *testing.B) { benchRun(b, benchChain(b, cfgs, tp)) })
	}
}

// The built-ins an operator is likely to run on every call, none of which
// ends up denying or rewriting.
func BenchmarkChainBuiltins(b *testing.B) {
	cfgs := []config.Plugin{
		{Name: "no-deletes", Type: "deny", Options: map[string]any{"patterns": "*_delete"}},
		{Name: "per-session", Type: "ratelimit", Options: map[string]any{"rate": "1000000/s"}},
		{Name: "small", Type: "max_size", Options: map[string]any{"max_argument_bytes": "64KiB"}},
		{Name: "scrub", Type: "redact", Options: map[string]any{"patterns": []any{"email", "bearer_token", "aws_access_key", "credit_card"}}},
	}
	for name, tp := range tracerProviders(b) {
		b.Run(name, func(b *testing.B) { benchRun(b, benchChain(b, cfgs, tp)) })
	}
}

func BenchmarkHas(b *testing.B) {
	c := benchChain(b, []config.Plugin{{Name: "b", Type: "deny", Tools: []string{"files_delete*"}}}, nil)
	b.ReportAllocs()
	for b.Loop() {
		if c.Has(ToolPreInvoke, "files", "files_read") {
			b.Fatal("applies")
		}
	}
}
