package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/testlog"
)

// testBed is a chain with its own span recorder and log buffer.
type testBed struct {
	chain *Chain
	rec   *tracetest.SpanRecorder
	logs  *testlog.Buffer
}

// newBed builds a chain from cfgs with the test plugin types registered.
func newBed(t *testing.T, cfgs []config.Plugin, reg Registry, now func() time.Time) *testBed {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	logs := &testlog.Buffer{}
	c, err := New(cfgs, Options{
		TracerProvider: tp,
		Logger:         slog.New(slog.NewJSONHandler(logs, nil)),
		Registry:       reg,
		Now:            now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testBed{chain: c, rec: rec, logs: logs}
}

// spans returns the ended spans by name.
func (b *testBed) spans(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range b.rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// dump renders every recorded span, attribute, event and status as text,
// to search for values that must not be there.
func (b *testBed) dump() string {
	var sb strings.Builder
	for _, s := range b.rec.Ended() {
		fmt.Fprintf(&sb, "%s status=%v %q\n", s.Name(), s.Status().Code, s.Status().Description)
		for _, a := range s.Attributes() {
			fmt.Fprintf(&sb, "  %s=%s\n", a.Key, a.Value.Emit())
		}
		for _, e := range s.Events() {
			fmt.Fprintf(&sb, "  event %s\n", e.Name)
			for _, a := range e.Attributes {
				fmt.Fprintf(&sb, "    %s=%s\n", a.Key, a.Value.Emit())
			}
		}
	}
	return sb.String()
}

func attrOf(s sdktrace.ReadOnlySpan, key attribute.Key) (attribute.Value, bool) {
	for _, a := range s.Attributes() {
		if a.Key == key {
			return a.Value, true
		}
	}
	return attribute.Value{}, false
}

// testPlugin is a configurable plugin for chain tests.
type testPlugin struct {
	calls   atomic.Int64
	handle  func(ctx context.Context, call *Call) (Outcome, error)
	hooks   []Hook
	mu      sync.Mutex
	lastArg json.RawMessage
}

func (p *testPlugin) Handle(ctx context.Context, call *Call) (Outcome, error) {
	p.calls.Add(1)
	p.mu.Lock()
	p.lastArg = append(json.RawMessage(nil), call.Arguments...)
	p.mu.Unlock()
	if p.handle == nil {
		return Outcome{}, nil
	}
	return p.handle(ctx, call)
}

func (p *testPlugin) seen() json.RawMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastArg
}

// testHooked is a testPlugin that declares its hooks.
type testHooked struct{ *testPlugin }

func (p testHooked) Hooks() []Hook { return p.hooks }

// registryOf registers each plugin under the type "t:<name>"; cfg builds
// the matching config entries.
func registryOf(ps map[string]*testPlugin) Registry {
	reg := Registry{}
	for name, p := range ps {
		reg["t:"+name] = func(cfg config.Plugin, _ Options) (Plugin, error) {
			if err := newOptions(cfg.Options).err(); err != nil {
				return nil, err
			}
			if p.hooks != nil {
				return testHooked{p}, nil
			}
			return p, nil
		}
	}
	return reg
}

func cfgOf(name string) config.Plugin {
	return config.Plugin{Name: name, Type: "t:" + name}
}

func toolCall(name string, args string) *Call {
	return &Call{Hook: ToolPreInvoke, Backend: "files", Name: name, Original: strings.TrimPrefix(name, "files_"), SessionID: "s1", Arguments: json.RawMessage(args)}
}

var errBoom = errors.New("boom")
