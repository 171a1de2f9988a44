package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// exceptionStack is the semconv exception attribute for a panic's stack.
const exceptionStack = attribute.Key("exception.stacktrace")

// timeoutError marks a plugin that ran out of time; it wraps
// context.DeadlineExceeded so errors.Is works.
type timeoutError struct{ d time.Duration }

func (e timeoutError) Error() string { return "timed out after " + e.d.String() }

func (e timeoutError) Unwrap() error { return context.DeadlineExceeded }

// panicError is a recovered panic. The stack goes on the span's exception
// event; it holds code locations, not argument values.
type panicError struct {
	value string
	stack []byte
}

func (e *panicError) Error() string { return "panic: " + e.value }

// execute runs one plugin under its own span and timeout and turns its
// failures into policy: with on_error: ignore a failure counts as Continue;
// otherwise it is a *PluginError. A cancelled request is returned as is.
func (c *Chain) execute(ctx context.Context, hi int, e *entry, call *Call) (Outcome, error) {
	ctx, span := c.start(ctx, spanExecute, e.start[hi])
	defer span.End()

	pctx := newPluginContext(ctx, e.timeout)
	out, err := safeHandle(pctx, e.plugin, call)
	late := pctx.release()

	if ctx.Err() != nil {
		// The request itself was cancelled or ran out of time: not the
		// plugin's fault, and the call cannot go on either way.
		err = fmt.Errorf("plugin %q: %w", e.name, context.Cause(ctx))
		span.SetStatus(codes.Error, err.Error())
		return Outcome{}, err
	}
	if late && (err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		// Past its deadline the plugin's answer no longer counts, even a
		// clean one: the operator bounded how long a plugin may hold a call.
		// A panic or its own error says more, and is kept.
		err = timeoutError{e.timeout}
	}
	if err == nil {
		err = checkOutcome(call.Hook, &out)
	}
	if err != nil {
		return c.failed(ctx, span, e, call, err)
	}

	span.SetAttributes(decisionAttrs[out.Decision]...)
	if out.Decision == Deny && out.Reason != "" {
		span.SetAttributes(attrDenyReason.String(out.Reason))
	}
	for _, ev := range out.Events {
		span.AddEvent(ev.Name, trace.WithAttributes(ev.Attributes...))
	}
	return out, nil
}

// decisionAttrs are the plugin.decision attributes, built once: a
// variadic call through the Span interface would allocate them per run.
var decisionAttrs = [...][]attribute.KeyValue{
	Continue: {attrDecision.String(Continue.String())},
	Modify:   {attrDecision.String(Modify.String())},
	Deny:     {attrDecision.String(Deny.String())},
}

// safeHandle calls the plugin, turning a panic into an error so one bad
// plugin never takes the gateway down.
func safeHandle(ctx context.Context, p Plugin, call *Call) (out Outcome, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = Outcome{}, &panicError{value: fmt.Sprint(r), stack: debug.Stack()}
		}
	}()
	return p.Handle(ctx, call)
}

// checkOutcome rejects answers the chain cannot act on, so a buggy plugin
// fails like any other instead of forwarding garbage.
func checkOutcome(h Hook, out *Outcome) error {
	switch out.Decision {
	case Continue, Deny:
		return nil
	case Modify:
		v, what := out.Result, "result"
		if h.Pre() {
			v, what = out.Arguments, "arguments"
		}
		if len(v) == 0 || !json.Valid(v) {
			return fmt.Errorf("decision modify on %s without valid JSON %s", h, what)
		}
		return nil
	}
	return fmt.Errorf("unknown decision %d", out.Decision)
}

// failed records a plugin failure on its span and in the log, then applies
// on_error.
func (c *Chain) failed(ctx context.Context, span trace.Span, e *entry, call *Call, err error) (Outcome, error) {
	errType := "error"
	var opts []trace.EventOption
	var pe *panicError
	switch {
	case errors.As(err, &pe):
		errType = "panic"
		opts = append(opts, trace.WithAttributes(exceptionStack.String(string(pe.stack))))
	case errors.Is(err, context.DeadlineExceeded):
		errType = "timeout"
	}
	span.RecordError(err, opts...)
	span.SetStatus(codes.Error, err.Error())
	decision := Deny
	if e.ignoreErrors {
		decision = Continue
	}
	span.SetAttributes(attrDecision.String(decision.String()), attrErrorType.String(errType))

	if c.logger != nil {
		onError := "fail"
		if e.ignoreErrors {
			onError = "ignore"
		}
		// Names only: the arguments and result never reach the log.
		c.logger.LogAttrs(ctx, slog.LevelError, "plugin failed",
			slog.String("plugin", e.name),
			slog.String("plugin_type", e.typ),
			slog.String("hook", string(call.Hook)),
			slog.String("backend", call.Backend),
			slog.String(call.Hook.Kind(), call.Name),
			slog.String("error_type", errType),
			slog.String("on_error", onError),
			slog.String("error", err.Error()),
		)
	}
	if e.ignoreErrors {
		return Outcome{Decision: Continue}, nil
	}
	return Outcome{}, &PluginError{Plugin: e.name, Err: err}
}
