package plugin

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/config"
)

// Call is what a hook sees. The gateway fills it; plugins must not keep it,
// or any slice in it, after Handle returns, and must not modify it in place:
// a plugin that rewrites returns Modify with new bytes.
type Call struct {
	Hook    Hook
	Backend string // backend name
	// Name is the namespaced tool or prompt name as the client sees it, or
	// the URI for resources.
	Name string
	// Original is the backend's own name for the tool or prompt.
	Original string
	// SessionID is the client's session, "" for stateless requests.
	SessionID string
	// Arguments are, on pre hooks, the tool arguments (a JSON object) or the
	// prompt arguments; on post hooks, the arguments that were sent.
	Arguments json.RawMessage
	// Result is, on post hooks only, the JSON-encoded CallToolResult,
	// GetPromptResult or ReadResourceResult.
	Result json.RawMessage
	// InputSchema is the tool's inputSchema from the backend, when known.
	InputSchema json.RawMessage
}

// Outcome is a plugin's answer.
type Outcome struct {
	Decision Decision
	// Arguments are the new arguments when Decision is Modify on a pre hook.
	Arguments json.RawMessage
	// Result is the new result when Decision is Modify on a post hook.
	Result json.RawMessage
	// Reason says why a call was denied. The client sees it and the gateway
	// records it on spans, so it must never contain argument or result
	// values: name fields, patterns and limits instead.
	Reason string
	// RetryAfter, on a denial, tells the client when trying again may work
	// (rate limits).
	RetryAfter time.Duration
	// Events are added to the plugin.execute span, e.g. redaction counts.
	// Their attributes must never carry user values.
	Events []Event
}

// Event is a span event a plugin asks the chain to record.
type Event struct {
	Name       string
	Attributes []attribute.KeyValue
}

// Plugin is one policy. Handle is called concurrently from many requests.
//
// Handle runs in the request's goroutine under ctx, whose deadline is the
// plugin's timeout: it must return promptly once ctx is done. A plugin that
// returns after its deadline has failed, whatever it answered.
type Plugin interface {
	Handle(ctx context.Context, call *Call) (Outcome, error)
}

// Hooker is implemented by plugins that want only some hooks; a plugin
// without it runs on all of them.
type Hooker interface {
	Hooks() []Hook
}

// Factory builds a plugin from its configuration. It must check
// cfg.Options strictly, rejecting unknown keys with an error that names
// them (see [FieldError]). The common fields (Backends, Tools, Priority,
// OnError, Timeout) are handled by the chain.
type Factory func(cfg config.Plugin, opts Options) (Plugin, error)

// Registry maps a plugin type (config.Plugin.Type) to its factory.
type Registry map[string]Factory

// Builtins returns a new registry holding the built-in plugin types.
func Builtins() Registry {
	return Registry{
		"deny":      newDeny,
		"allow":     newAllow,
		"ratelimit": newRateLimit,
		"redact":    newRedact,
		"max_size":  newMaxSize,
		"schema":    newSchema,
	}
}

// Options are the chain's dependencies, captured once by [New].
type Options struct {
	// TracerProvider makes the plugin spans. If nil, no spans are made.
	TracerProvider trace.TracerProvider
	// Logger receives plugin failures. If nil, they are not logged.
	Logger *slog.Logger
	// Registry adds plugin types to the built-in ones (and may replace
	// them). If nil, only the built-ins exist.
	Registry Registry
	// Now is the clock for rate limits. If nil, time.Now.
	Now func() time.Time
	// MeterProvider makes the plugins' metrics (tracegate.ratelimit.fallbacks).
	// If nil, none are recorded.
	MeterProvider metric.MeterProvider

	// SharedLimiter, if set, holds the ratelimit plugins' buckets for every
	// replica, so a limit holds across them. While it fails, each plugin
	// limits calls with its own buckets, as it does when SharedLimiter is
	// nil.
	SharedLimiter SharedLimiter
	// SharedLimiterTimeout bounds each call to SharedLimiter, and so how
	// long it can hold a request; a call it cuts is limited locally. If
	// zero, DefaultSharedLimiterTimeout.
	SharedLimiterTimeout time.Duration
	// SharedLimiterRetry is how often, while SharedLimiter is failing, one
	// call tries it again; the others are limited locally at once. If zero,
	// DefaultSharedLimiterRetry.
	SharedLimiterRetry time.Duration

	// shared is New's one sharedLimits for all the chain's plugins.
	shared *sharedLimits

	// Previous, when set, is the chain the new one replaces (a
	// configuration reload): an entry whose configuration is unchanged
	// keeps its plugin, and with it the plugin's state, such as the
	// buckets of a rate limit.
	Previous *Chain
}
