package main

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
	"github.com/tracegate/tracegate/internal/plugin"
)

// noopPlugin says continue on every hook, so a scenario with it measures
// what the chain itself costs a call: matching, running each plugin under
// its timeout, and handing the result to the post hook as JSON.
type noopPlugin struct{ runs *atomic.Int64 }

func (p noopPlugin) Handle(context.Context, *plugin.Call) (plugin.Outcome, error) {
	p.runs.Add(1)
	return plugin.Outcome{}, nil
}

// threeNoopPlugins is the gateway with a chain of three no-op plugins on
// every tool, pre and post. Tracing is off, as in its baseline "gateway":
// the chain makes no spans without a tracer provider.
func threeNoopPlugins(context.Context) (gateway.Options, func(), error) {
	runs := new(atomic.Int64)
	reg := plugin.Registry{"noop": func(config.Plugin, plugin.Options) (plugin.Plugin, error) { return noopPlugin{runs}, nil }}
	cfgs := []config.Plugin{{Name: "noop-1", Type: "noop"}, {Name: "noop-2", Type: "noop"}, {Name: "noop-3", Type: "noop"}}
	chain, err := plugin.New(cfgs, plugin.Options{Registry: reg})
	if err != nil {
		return gateway.Options{}, nil, err
	}
	check := func() {
		// A scenario whose plugins never ran would measure the plain
		// gateway under another name.
		if runs.Load() == 0 {
			fmt.Fprintln(os.Stderr, "bench: plugins-3-noop: the plugins never ran")
		}
	}
	return gateway.Options{Plugins: chain}, check, nil
}
