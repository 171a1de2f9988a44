package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/config"
)

func TestRunWithoutApplicablePlugins(t *testing.T) {
	t.Parallel()
	p := &testPlugin{}
	only := cfgOf("only")
	only.Backends = []string{"weather"}
	tests := []struct {
		name string
		cfgs []config.Plugin
	}{
		{"no plugins", nil},
		{"filtered out", []config.Plugin{only}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBed(t, tt.cfgs, registryOf(map[string]*testPlugin{"only": p}), nil)
			call := toolCall("files_read", `{"path":"/a"}`)
			if b.chain.Has(call.Hook, call.Backend, call.Name) {
				t.Errorf("Has = true, want false")
			}
			res, err := b.chain.Run(context.Background(), call)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if string(res.Arguments) != `{"path":"/a"}` || res.Modified {
				t.Errorf("got %s modified=%v, want the arguments unchanged", res.Arguments, res.Modified)
			}
			if n := len(b.rec.Ended()); n != 0 {
				t.Errorf("got %d spans, want none", n)
			}
			if p.calls.Load() != 0 {
				t.Errorf("plugin ran %d times, want 0", p.calls.Load())
			}
		})
	}
}

func TestNilChain(t *testing.T) {
	t.Parallel()
	var c *Chain
	if c.Has(ToolPreInvoke, "b", "t") {
		t.Errorf("Has on nil chain = true")
	}
	res, err := c.Run(context.Background(), toolCall("t", `{}`))
	if err != nil || string(res.Arguments) != `{}` {
		t.Errorf("got %s, %v; want {} and no error", res.Arguments, err)
	}
}

// A chain of three where the second denies: the third never runs, and the
// trace shows one hook span with two plugin.execute children.
func TestDenyStopsChain(t *testing.T) {
	t.Parallel()
	first, second, third := &testPlugin{}, &testPlugin{
		handle: func(context.Context, *Call) (Outcome, error) {
			return Outcome{Decision: Deny, Reason: "not today"}, nil
		},
	}, &testPlugin{}
	b := newBed(t, []config.Plugin{cfgOf("first"), cfgOf("second"), cfgOf("third")},
		registryOf(map[string]*testPlugin{"first": first, "second": second, "third": third}), nil)

	_, err := b.chain.Run(context.Background(), toolCall("files_read", `{}`))
	var de *DenyError
	if !errors.As(err, &de) {
		t.Fatalf("got %v, want a *DenyError", err)
	}
	if got, want := err.Error(), `denied by plugin "second": not today`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if first.calls.Load() != 1 || second.calls.Load() != 1 || third.calls.Load() != 0 {
		t.Errorf("got calls %d,%d,%d, want 1,1,0", first.calls.Load(), second.calls.Load(), third.calls.Load())
	}

	hooks, execs := b.spans(spanHook), b.spans(spanExecute)
	if len(hooks) != 1 || len(execs) != 2 {
		t.Fatalf("got %d hook and %d execute spans, want 1 and 2", len(hooks), len(execs))
	}
	h := hooks[0]
	if h.SpanKind() != trace.SpanKindInternal {
		t.Errorf("hook span kind %v, want internal", h.SpanKind())
	}
	wantHook := map[string]string{"plugin.hook.name": "tool_pre_invoke", "plugin.count": "2", "plugin.stopped_by": "second"}
	for k, want := range wantHook {
		if v, _ := attrOf(h, attrKey(k)); v.Emit() != want {
			t.Errorf("hook %s = %q, want %q", k, v.Emit(), want)
		}
	}
	if h.Status().Code == codes.Error {
		t.Errorf("hook span status error on a deny, want unset")
	}
	for i, s := range execs {
		name := []string{"first", "second"}[i]
		decision := []string{"continue", "deny"}[i]
		if s.Parent().SpanID() != h.SpanContext().SpanID() {
			t.Errorf("execute %d parent %v, want the hook span", i, s.Parent().SpanID())
		}
		if s.SpanKind() != trace.SpanKindInternal {
			t.Errorf("execute %d kind %v, want internal", i, s.SpanKind())
		}
		want := map[string]string{"plugin.name": name, "plugin.type": "t:" + name, "plugin.hook.name": "tool_pre_invoke", "plugin.decision": decision}
		for k, w := range want {
			if v, _ := attrOf(s, attrKey(k)); v.Emit() != w {
				t.Errorf("execute %d %s = %q, want %q", i, k, v.Emit(), w)
			}
		}
		if s.Status().Code == codes.Error {
			t.Errorf("execute %d status error, want unset (a deny is a decision)", i)
		}
	}
	if v, _ := attrOf(execs[1], attrDenyReason); v.Emit() != "not today" {
		t.Errorf("deny reason %q, want %q", v.Emit(), "not today")
	}
}

func attrKey(k string) attribute.Key { return attribute.Key(k) }

func TestModifyPassesOn(t *testing.T) {
	t.Parallel()
	rewrite := &testPlugin{handle: func(context.Context, *Call) (Outcome, error) {
		return Outcome{Decision: Modify, Arguments: json.RawMessage(`{"path":"/safe"}`)}, nil
	}}
	after := &testPlugin{}
	b := newBed(t, []config.Plugin{cfgOf("rewrite"), cfgOf("after")},
		registryOf(map[string]*testPlugin{"rewrite": rewrite, "after": after}), nil)
	call := toolCall("files_read", `{"path":"/etc/passwd"}`)
	res, err := b.chain.Run(context.Background(), call)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := string(res.Arguments), `{"path":"/safe"}`; got != want || !res.Modified {
		t.Errorf("got %s modified=%v, want %s modified=true", got, res.Modified, want)
	}
	if got := string(after.seen()); got != `{"path":"/safe"}` {
		t.Errorf("next plugin saw %s, want the rewritten arguments", got)
	}
	if got := string(call.Arguments); got != `{"path":"/etc/passwd"}` {
		t.Errorf("Run changed the caller's call to %s", got)
	}
	if v, _ := attrOf(b.spans(spanHook)[0], attrCount); v.AsInt64() != 2 {
		t.Errorf("plugin.count = %d, want 2", v.AsInt64())
	}
	if _, ok := attrOf(b.spans(spanHook)[0], attrStoppedBy); ok {
		t.Errorf("plugin.stopped_by set on a chain that ran through")
	}
}

func TestModifyResultOnPostHook(t *testing.T) {
	t.Parallel()
	p := &testPlugin{handle: func(context.Context, *Call) (Outcome, error) {
		return Outcome{Decision: Modify, Result: json.RawMessage(`{"content":[]}`)}, nil
	}}
	b := newBed(t, []config.Plugin{cfgOf("p")}, registryOf(map[string]*testPlugin{"p": p}), nil)
	res, err := b.chain.Run(context.Background(), &Call{Hook: ToolPostInvoke, Name: "t", Arguments: json.RawMessage(`{}`), Result: json.RawMessage(`{"content":[{"type":"text","text":"x"}]}`)})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if string(res.Result) != `{"content":[]}` || string(res.Arguments) != `{}` {
		t.Errorf("got result %s args %s, want the new result and the same arguments", res.Result, res.Arguments)
	}
}

func TestOrderAndFilters(t *testing.T) {
	t.Parallel()
	var order []string
	mk := func(name string) *testPlugin {
		return &testPlugin{handle: func(context.Context, *Call) (Outcome, error) {
			order = append(order, name) // Run is sequential within a call
			return Outcome{}, nil
		}}
	}
	ps := map[string]*testPlugin{"a": mk("a"), "b": mk("b"), "c": mk("c"), "d": mk("d"), "w": mk("w"), "post": mk("post")}
	ps["post"].hooks = []Hook{ToolPostInvoke}
	cfgs := []config.Plugin{cfgOf("a"), cfgOf("b"), cfgOf("c"), cfgOf("d"), cfgOf("w"), cfgOf("post")}
	cfgs[0].Priority = 10
	cfgs[1].Priority = -1
	cfgs[2].Priority = 10 // ties with a: keeps file order
	cfgs[3].Tools = []string{"files_write", "files_del*"}
	cfgs[4].Backends = []string{"weather"}
	b := newBed(t, cfgs, registryOf(ps), nil)

	tests := []struct {
		backend, name string
		want          string
	}{
		{"files", "files_read", "b,a,c"},
		{"files", "files_delete", "b,d,a,c"},
		{"weather", "weather_get", "b,w,a,c"},
	}
	for _, tt := range tests {
		order = nil
		call := &Call{Hook: ToolPreInvoke, Backend: tt.backend, Name: tt.name}
		if !b.chain.Has(call.Hook, tt.backend, tt.name) {
			t.Errorf("Has(%s) = false, want true", tt.name)
		}
		if _, err := b.chain.Run(context.Background(), call); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got := strings.Join(order, ","); got != tt.want {
			t.Errorf("%s/%s: got order %s, want %s", tt.backend, tt.name, got, tt.want)
		}
	}
	// a, b and c run on every hook (they have no Hooks method); post only
	// on tool_post_invoke.
	for _, h := range []Hook{ToolPostInvoke, PromptPostFetch, ResourcePreFetch} {
		if !b.chain.Has(h, "files", "x") {
			t.Errorf("Has(%s) = false, want true", h)
		}
	}
	order = nil
	if _, err := b.chain.Run(context.Background(), &Call{Hook: PromptPostFetch, Backend: "files", Name: "p"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ","); got != "b,a,c" {
		t.Errorf("prompt_post_fetch order %s, want b,a,c (post is tool_post_invoke only)", got)
	}
	if b.chain.Has("nonsense", "files", "x") {
		t.Errorf("Has(unknown hook) = true")
	}
}

func TestUnknownHookIsRefused(t *testing.T) {
	t.Parallel()
	b := newBed(t, nil, nil, nil)
	_, err := b.chain.Run(context.Background(), &Call{Hook: "tool_pre_invok"})
	if err == nil || !strings.Contains(err.Error(), `unknown hook "tool_pre_invok"`) {
		t.Errorf("got %v, want an unknown hook error", err)
	}
}

// Failures: a panic, an error, a plugin that honours its deadline and one
// that ignores it, each with on_error fail and ignore.
func TestPluginFailures(t *testing.T) {
	t.Parallel()
	failures := []struct {
		name     string
		handle   func(ctx context.Context, call *Call) (Outcome, error)
		errText  string // in PluginError, status and log
		errType  string
		panicked bool
		timeout  time.Duration // 0: the default, ample under load
	}{
		{"panic", func(context.Context, *Call) (Outcome, error) { panic("plugin bug 42") }, "panic: plugin bug 42", "panic", true, 0},
		{"error", func(context.Context, *Call) (Outcome, error) { return Outcome{}, errBoom }, "boom", "error", false, 0},
		{"deadline", func(ctx context.Context, _ *Call) (Outcome, error) {
			<-ctx.Done()
			return Outcome{}, ctx.Err()
		}, "timed out after 20ms", "timeout", false, 20 * time.Millisecond},
		{"ignores deadline", func(context.Context, *Call) (Outcome, error) {
			time.Sleep(30 * time.Millisecond) // answers late, and cleanly
			return Outcome{Decision: Continue}, nil
		}, "timed out after 20ms", "timeout", false, 20 * time.Millisecond},
		{"bad modify", func(context.Context, *Call) (Outcome, error) {
			return Outcome{Decision: Modify, Arguments: json.RawMessage(`{"a":`)}, nil
		}, "decision modify on tool_pre_invoke without valid JSON arguments", "error", false, 0},
		{"unknown decision", func(context.Context, *Call) (Outcome, error) {
			return Outcome{Decision: Decision(9)}, nil
		}, "unknown decision 9", "error", false, 0},
	}
	for _, f := range failures {
		for _, onError := range []string{"fail", "ignore"} {
			t.Run(f.name+"/"+onError, func(t *testing.T) {
				t.Parallel()
				bad, next := &testPlugin{handle: f.handle}, &testPlugin{}
				cfg := cfgOf("bad")
				cfg.OnError = onError
				cfg.Timeout = config.Duration(f.timeout)
				b := newBed(t, []config.Plugin{cfg, cfgOf("next")}, registryOf(map[string]*testPlugin{"bad": bad, "next": next}), nil)
				call := toolCall("files_read", `{"secret":"hunter2"}`)
				res, err := b.chain.Run(context.Background(), call)

				execs := b.spans(spanExecute)
				if len(execs) == 0 {
					t.Fatal("no plugin.execute span")
				}
				s := execs[0]
				if s.Status().Code != codes.Error || !strings.Contains(s.Status().Description, f.errText) {
					t.Errorf("status %v %q, want error containing %q", s.Status().Code, s.Status().Description, f.errText)
				}
				if v, _ := attrOf(s, attrErrorType); v.Emit() != f.errType {
					t.Errorf("error.type %q, want %q", v.Emit(), f.errType)
				}
				var exc bool
				for _, ev := range s.Events() {
					if ev.Name == "exception" {
						exc = true
						for _, a := range ev.Attributes {
							if a.Key == "exception.message" && !strings.Contains(a.Value.Emit(), f.errText) {
								t.Errorf("exception.message %q, want %q", a.Value.Emit(), f.errText)
							}
							if a.Key == exceptionStack && !f.panicked {
								t.Errorf("stack trace on a non-panic")
							}
						}
					}
				}
				if !exc {
					t.Errorf("no exception event")
				}
				logs := b.logs.String()
				for _, want := range []string{`"msg":"plugin failed"`, `"plugin":"bad"`, `"on_error":"` + onError + `"`, f.errText} {
					if !strings.Contains(logs, want) {
						t.Errorf("log %s lacks %s", logs, want)
					}
				}
				if strings.Contains(logs+b.dump(), "hunter2") {
					t.Errorf("argument value leaked into spans or logs")
				}

				if onError == "fail" {
					var pe *PluginError
					if !errors.As(err, &pe) || pe.Plugin != "bad" || !strings.Contains(err.Error(), f.errText) {
						t.Fatalf("got %v, want a *PluginError from bad with %q", err, f.errText)
					}
					if got, want := err.Error(), `plugin "bad" failed: `+f.errText; got != want {
						t.Errorf("got %q, want %q", got, want)
					}
					if next.calls.Load() != 0 {
						t.Errorf("next plugin ran after a failure with on_error fail")
					}
					h := b.spans(spanHook)[0]
					if v, _ := attrOf(h, attrStoppedBy); v.Emit() != "bad" {
						t.Errorf("stopped_by %q, want bad", v.Emit())
					}
					if v, _ := attrOf(s, attrDecision); v.Emit() != "deny" {
						t.Errorf("decision %q, want deny", v.Emit())
					}
					return
				}
				if err != nil {
					t.Fatalf("on_error ignore: got %v, want nil", err)
				}
				if next.calls.Load() != 1 {
					t.Errorf("next plugin ran %d times, want 1", next.calls.Load())
				}
				if string(res.Arguments) != `{"secret":"hunter2"}` || res.Modified {
					t.Errorf("got %s modified=%v, want the arguments unchanged", res.Arguments, res.Modified)
				}
				if v, _ := attrOf(s, attrDecision); v.Emit() != "continue" {
					t.Errorf("decision %q, want continue", v.Emit())
				}
				if _, ok := attrOf(b.spans(spanHook)[0], attrStoppedBy); ok {
					t.Errorf("stopped_by set with on_error ignore")
				}
			})
		}
	}
}

func TestCancelledRequest(t *testing.T) {
	t.Parallel()
	p := &testPlugin{handle: func(ctx context.Context, _ *Call) (Outcome, error) {
		<-ctx.Done()
		return Outcome{}, ctx.Err()
	}}
	cfg := cfgOf("p")
	cfg.OnError = "ignore" // a cancelled request is not let through even so
	b := newBed(t, []config.Plugin{cfg}, registryOf(map[string]*testPlugin{"p": p}), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.chain.Run(ctx, toolCall("t", `{}`))
	var pe *PluginError
	if !errors.Is(err, context.Canceled) || errors.As(err, &pe) {
		t.Errorf("got %v, want context.Canceled and no PluginError", err)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfgs []config.Plugin
		want []string
	}{
		{"missing name and type", []config.Plugin{{}}, []string{`plugins[0] "": name: required`, "type: required (one of allow, deny, max_size, ratelimit, redact, schema)"}},
		{"unknown type", []config.Plugin{{Name: "x", Type: "firewall"}}, []string{`plugins[0] "x": type: unknown plugin type "firewall"`}},
		{"on_error", []config.Plugin{{Name: "x", Type: "deny", OnError: "retry"}}, []string{`on_error: got "retry", want fail or ignore`}},
		{"timeout", []config.Plugin{{Name: "x", Type: "deny", Timeout: -1}}, []string{"timeout: got -1ns, want a positive duration"}},
		{"bad glob", []config.Plugin{{Name: "x", Type: "deny", Tools: []string{"ok", "[bad"}}}, []string{`tools[1]: invalid pattern "[bad": syntax error in pattern`}},
		{"bad backend glob", []config.Plugin{{Name: "x", Type: "deny", Backends: []string{"a["}}}, []string{`backends[0]: invalid pattern "a["`}},
		{"duplicate", []config.Plugin{{Name: "x", Type: "deny"}, {Name: "x", Type: "deny"}}, []string{`plugins[1] "x": name: another plugin has this name`}},
		{"unknown option", []config.Plugin{{Name: "x", Type: "deny", Options: map[string]any{"prioriy": 3, "patterns": []any{"a"}}}}, []string{`prioriy: unknown key for this plugin type`}},
		{"every error", []config.Plugin{{Name: "a", Type: "nope"}, {Name: "b", Type: "ratelimit"}}, []string{`plugins[0] "a": type`, `plugins[1] "b": rate: required`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.cfgs, Options{})
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestValidateFieldErrors(t *testing.T) {
	t.Parallel()
	err := Validate(config.Plugin{Name: "rl", Type: "ratelimit", Options: map[string]any{"rate": "fast", "burst": 0, "per": "user"}})
	var keys []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		for _, inner := range flatten(e) {
			var fe *FieldError
			if errors.As(inner, &fe) {
				keys = append(keys, fe.Key)
			}
		}
	}
	if got, want := strings.Join(keys, ","), "rate,per,burst"; got != want {
		t.Errorf("got keys %s, want %s (err %v)", got, want, err)
	}
	if err := Validate(config.Plugin{Name: "ok", Type: "deny", Tools: []string{"files_delete*"}}); err != nil {
		t.Errorf("valid deny: %v", err)
	}
	// The common fields are config.Validate's: reporting them here too
	// would print each problem twice.
	for _, cfg := range []config.Plugin{{Type: "deny", OnError: "retry", Tools: []string{"[x"}}, {Name: "x", Type: "nope"}} {
		if err := Validate(cfg); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", cfg, err)
		}
	}
}

// flatten expands joined errors.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
