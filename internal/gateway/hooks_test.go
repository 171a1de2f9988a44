package gateway

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/plugin"
)

type noop struct{}

func (noop) Handle(context.Context, *plugin.Call) (plugin.Outcome, error) {
	return plugin.Outcome{}, nil
}

// hookRig is a gateway, never started, with the chain cfgs and one backend
// "files" whose tool read_file is files_read_file at /mcp.
func hookRig(tb testing.TB, cfgs []config.Plugin) (*Gateway, *backend.Backend) {
	tb.Helper()
	chain, err := plugin.New(cfgs, plugin.Options{Registry: plugin.Registry{
		"noop": func(config.Plugin, plugin.Options) (plugin.Plugin, error) { return noop{}, nil },
	}})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := &config.Config{Backends: []config.Backend{{Name: "files", URL: "http://127.0.0.1:1/mcp", Transport: config.TransportStreamable}}}
	cfg.Tools.NameFormat = "{backend}_{tool}"
	g, err := New(cfg, Options{Plugins: chain})
	if err != nil {
		tb.Fatal(err)
	}
	return g, g.topo.Load().byName["files"]
}

// The pipeline asks active() on every tools/call: with no
// plugin that applies, that must cost no allocation, on /mcp and on
// /mcp/{backend}.
func TestActiveDoesNotAllocate(t *testing.T) {
	tests := []struct {
		name string
		cfgs []config.Plugin
	}{
		{"no chain", nil},
		{"pre hooks elsewhere", []config.Plugin{{Name: "d", Type: "deny", Tools: []string{"files_delete*"}}}},
		{"another backend", []config.Plugin{{Name: "n", Type: "noop", Backends: []string{"weather"}}}},
	}
	for _, tt := range tests {
		g, b := hookRig(t, tt.cfgs)
		if tt.cfgs == nil {
			l := *g.live.Load()
			l.plugins = nil
			g.live.Store(&l)
		}
		ctx := context.Background()
		for _, name := range []string{"files_read_file", "read_file"} {
			allocs := testing.AllocsPerRun(100, func() {
				h := g.hooks(ctx, nil, b, name, "read_file", nil)
				if h.active(ToolPre) || h.active(ToolPost) {
					t.Fatalf("%s: a hook is active for %s", tt.name, name)
				}
			})
			if allocs != 0 {
				t.Errorf("%s: active for %s: %v allocations, want 0", tt.name, name, allocs)
			}
		}
	}
}

// The chain's cost per tools/call on the gateway's side: three no-op
// plugins, pre and post, on a small result.
func BenchmarkToolHooksThreeNoop(b *testing.B) {
	g, be := hookRig(b, []config.Plugin{{Name: "a", Type: "noop"}, {Name: "b", Type: "noop"}, {Name: "c", Type: "noop"}})
	ctx := context.Background()
	args := json.RawMessage(`{"text":"hello"}`)
	res := json.RawMessage(`{"content":[{"type":"text","text":"{\"text\":\"hello\"}"}]}`)
	b.ReportAllocs()
	for b.Loop() {
		h := g.hooks(ctx, nil, be, "files_read_file", "read_file", nil)
		a, err := h.pre(ToolPre, args)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := h.post(ToolPost, a, res); err != nil {
			b.Fatal(err)
		}
	}
}
