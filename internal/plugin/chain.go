package plugin

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/config"
)

// DefaultTimeout bounds one plugin run when the config gives no timeout.
const DefaultTimeout = config.DefaultPluginTimeout

const tracerName = "github.com/tracegate/tracegate/internal/plugin"

// Span and attribute names of DESIGN.md section 4.
const (
	spanHook    = "plugin.hook.invoke"
	spanExecute = "plugin.execute"

	attrHookName   = attribute.Key("plugin.hook.name")
	attrCount      = attribute.Key("plugin.count")
	attrStoppedBy  = attribute.Key("plugin.stopped_by")
	attrName       = attribute.Key("plugin.name")
	attrType       = attribute.Key("plugin.type")
	attrDecision   = attribute.Key("plugin.decision")
	attrDenyReason = attribute.Key("plugin.deny.reason")
	attrErrorType  = attribute.Key("error.type")
)

// Chain runs the configured plugins in priority order. It is safe for
// concurrent use; a nil *Chain has no plugins.
type Chain struct {
	byHook [len(allHooks)][]*entry // applicable entries per hook, in run order
	tracer trace.Tracer
	logger *slog.Logger
	// hookStart holds the start options of each hook's span, built once.
	hookStart [len(allHooks)][]trace.SpanStartOption
}

// entry is one configured plugin.
type entry struct {
	cfg          config.Plugin
	name, typ    string
	plugin       Plugin
	backends     globs // empty: every backend
	names        globs // config `tools`: empty means every name
	ignoreErrors bool  // on_error: ignore
	timeout      time.Duration
	priority     int
	// start holds the plugin.execute start options per hook, built once so
	// the hot path does not rebuild attributes.
	start [len(allHooks)][]trace.SpanStartOption
}

func (e *entry) applies(backend, name string) bool {
	return e.backends.matchAll(backend) && e.names.matchAll(name)
}

// Result is what the chain made of a call.
type Result struct {
	Arguments json.RawMessage // the arguments to forward, possibly rewritten
	Result    json.RawMessage // the result to return, possibly rewritten
	Modified  bool            // some plugin rewrote Arguments or Result
}

// New builds the chain from the plugins' configuration. Plugins run by
// ascending Priority; ties keep their order in cfgs. Every configuration
// error is reported, each naming its plugin and key.
func New(cfgs []config.Plugin, opts Options) (*Chain, error) {
	reg := Builtins()
	for typ, f := range opts.Registry {
		reg[typ] = f
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SharedLimiter != nil {
		opts.shared = newSharedLimits(opts)
	}
	c := &Chain{logger: opts.Logger}
	if opts.TracerProvider != nil {
		c.tracer = opts.TracerProvider.Tracer(tracerName)
	}
	for i, h := range allHooks {
		c.hookStart[i] = []trace.SpanStartOption{
			trace.WithSpanKind(trace.SpanKindInternal),
			trace.WithAttributes(attrHookName.String(string(h))),
		}
	}

	var errs []error
	seen := map[string]bool{}
	entries := make([]*entry, 0, len(cfgs))
	for i, cfg := range cfgs {
		e, err := build(cfg, reg, opts)
		if err == nil && seen[cfg.Name] {
			err = &FieldError{Key: "name", Err: errors.New("another plugin has this name")}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("plugins[%d] %q: %w", i, cfg.Name, err))
			continue
		}
		seen[cfg.Name] = true
		if prev := opts.Previous.entry(cfg); prev != nil {
			e.plugin = prev.plugin
		}
		entries = append(entries, e)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortStableFunc(entries, func(a, b *entry) int { return cmp.Compare(a.priority, b.priority) })

	for _, e := range entries {
		hooks := allHooks[:]
		if h, ok := e.plugin.(Hooker); ok {
			hooks = h.Hooks()
		}
		for _, h := range hooks {
			i, ok := h.index()
			if !ok {
				return nil, fmt.Errorf("plugin %q: type %q wants unknown hook %q", e.name, e.typ, h)
			}
			if slices.Contains(c.byHook[i], e) {
				continue
			}
			c.byHook[i] = append(c.byHook[i], e)
			e.start[i] = []trace.SpanStartOption{
				trace.WithSpanKind(trace.SpanKindInternal),
				trace.WithAttributes(
					attrName.String(e.name),
					attrType.String(e.typ),
					attrHookName.String(string(h)),
				),
			}
		}
	}
	return c, nil
}

// entry returns c's entry configured exactly as cfg, or nil.
func (c *Chain) entry(cfg config.Plugin) *entry {
	if c == nil {
		return nil
	}
	for _, entries := range c.byHook {
		for _, e := range entries {
			if e.name == cfg.Name && reflect.DeepEqual(e.cfg, cfg) {
				return e
			}
		}
	}
	return nil
}

// Validate checks the type-specific keys of one plugin entry of a built-in
// type (rate, patterns, ...). The common fields (name, type, backends,
// tools, on_error, timeout) are config.Validate's to report, so an unknown
// type is not an error here. The error is nil or joins *FieldError values,
// one per key at fault, for the caller to prefix with the entry's path.
func Validate(cfg config.Plugin) error {
	f, ok := Builtins()[cfg.Type]
	if !ok {
		return nil
	}
	_, err := f(cfg, Options{Now: time.Now})
	return err
}

// build checks cfg and makes its entry.
func build(cfg config.Plugin, reg Registry, opts Options) (*entry, error) {
	var errs []error
	field := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Err: fmt.Errorf(format, args...)})
	}
	if cfg.Name == "" {
		field("name", "required")
	}
	e := &entry{cfg: cfg, name: cfg.Name, typ: cfg.Type, timeout: cfg.Timeout.D(), priority: cfg.Priority}
	switch cfg.OnError {
	case "", "fail":
	case "ignore":
		e.ignoreErrors = true
	default:
		field("on_error", "got %q, want fail or ignore", cfg.OnError)
	}
	if e.timeout < 0 {
		field("timeout", "got %v, want a positive duration", e.timeout)
	}
	if e.timeout == 0 {
		e.timeout = DefaultTimeout
	}
	var err error
	if e.backends, err = compileGlobs("backends", cfg.Backends); err != nil {
		errs = append(errs, err)
	}
	if e.names, err = compileGlobs("tools", cfg.Tools); err != nil {
		errs = append(errs, err)
	}
	f, ok := reg[cfg.Type]
	switch {
	case cfg.Type == "":
		field("type", "required (one of %s)", strings.Join(typeNames(reg), ", "))
	case !ok:
		field("type", "unknown plugin type %q (want one of %s)", cfg.Type, strings.Join(typeNames(reg), ", "))
	default:
		p, err := f(cfg, opts)
		if err != nil {
			errs = append(errs, err)
		}
		e.plugin = p
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if e.plugin == nil {
		return nil, &FieldError{Key: "type", Err: fmt.Errorf("factory for %q returned no plugin", cfg.Type)}
	}
	return e, nil
}

func typeNames(reg Registry) []string {
	names := make([]string, 0, len(reg))
	for t := range reg {
		names = append(names, t)
	}
	slices.Sort(names)
	return names
}

// Has reports whether any plugin applies to the hook for this backend and
// name. The gateway calls it first, to skip building a Call (and encoding
// a result) when nothing would look at it.
func (c *Chain) Has(hook Hook, backend, name string) bool {
	if c == nil {
		return false
	}
	i, ok := hook.index()
	if !ok {
		return false
	}
	for _, e := range c.byHook[i] {
		if e.applies(backend, name) {
			return true
		}
	}
	return false
}

// Run passes the call through every applicable plugin, in order. A
// denial returns a *DenyError; a failure of a plugin with on_error: fail
// returns a *PluginError; either way the call must not go on, and the
// gateway answers with [RPCError]. Run does not modify call.
func (c *Chain) Run(ctx context.Context, call *Call) (Result, error) {
	res := Result{Arguments: call.Arguments, Result: call.Result}
	if c == nil {
		return res, nil
	}
	hi, ok := call.Hook.index()
	if !ok {
		// A hook the chain does not know cannot be let through: policy
		// would be skipped silently.
		return res, fmt.Errorf("plugin chain: unknown hook %q", call.Hook)
	}
	entries := c.byHook[hi]
	for i, e := range entries {
		if e.applies(call.Backend, call.Name) {
			return c.run(ctx, hi, call, entries[i:], res)
		}
	}
	return res, nil
}

// run is Run once at least one plugin applies: entries[0] does.
func (c *Chain) run(ctx context.Context, hi int, call *Call, entries []*entry, res Result) (Result, error) {
	ctx, span := c.start(ctx, spanHook, c.hookStart[hi])
	defer span.End()

	// Plugins see the arguments and result as rewritten so far, in a copy
	// from a pool: plugins must not keep the Call after Handle returns.
	cur := callPool.Get().(*Call)
	*cur = *call
	defer func() {
		*cur = Call{}
		callPool.Put(cur)
	}()
	count := 0
	var stop error
	for i, e := range entries {
		if i > 0 && !e.applies(call.Backend, call.Name) {
			continue
		}
		count++
		out, err := c.execute(ctx, hi, e, cur)
		if err != nil {
			stop = err
			if _, failed := err.(*PluginError); failed {
				span.SetAttributes(attrStoppedBy.String(e.name))
			}
			span.SetStatus(codes.Error, err.Error())
			break
		}
		switch out.Decision {
		case Modify:
			if cur.Hook.Pre() {
				cur.Arguments = out.Arguments
			} else {
				cur.Result = out.Result
			}
			res.Modified = true
		case Deny:
			span.SetAttributes(attrStoppedBy.String(e.name))
			stop = &DenyError{Plugin: e.name, Reason: out.Reason, RetryAfter: out.RetryAfter}
		}
		if stop != nil {
			break
		}
	}
	if span.IsRecording() {
		span.SetAttributes(attrCount.Int(count))
	}
	res.Arguments, res.Result = cur.Arguments, cur.Result
	return res, stop
}

var callPool = sync.Pool{New: func() any { return new(Call) }}

// noSpan stands in when the chain has no tracer provider.
var noSpan = trace.SpanFromContext(context.Background())

// start begins a span, or does nothing at all without a tracer provider.
func (c *Chain) start(ctx context.Context, name string, opts []trace.SpanStartOption) (context.Context, trace.Span) {
	if c.tracer == nil {
		return ctx, noSpan
	}
	return c.tracer.Start(ctx, name, opts...)
}
