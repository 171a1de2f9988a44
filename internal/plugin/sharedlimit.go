package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tracegate/tracegate/internal/redact"
)

// SharedLimiter holds rate limit buckets for every replica of the gateway
// at once (in Redis, say), so that a ratelimit plugin's limit holds across
// all of them rather than per process.
//
// Take spends one call from the bucket named key, which refills at rate
// calls per second up to burst calls. It reports whether the call may go
// on and, when it may not, how long until one may. Buckets of the same key
// with a different rate or burst are distinct. Take is called concurrently
// from many requests and must return promptly once ctx is done: the plugin
// bounds each call and limits locally when Take fails or is late.
type SharedLimiter interface {
	Take(ctx context.Context, key string, rate float64, burst int) (ok bool, retryAfter time.Duration, err error)
}

// Defaults of [Options.SharedLimiterTimeout] and [Options.SharedLimiterRetry].
const (
	DefaultSharedLimiterTimeout = 50 * time.Millisecond
	DefaultSharedLimiterRetry   = time.Second
)

// metricFallbacks counts the calls a ratelimit plugin limited on its own.
const metricFallbacks = "tracegate.ratelimit.fallbacks"

// errLate is the cause of a shared limiter call cut by its bound.
var errLate = errors.New("no answer in time")

// sharedLimits is a chain's use of its SharedLimiter, one for all its
// ratelimit plugins since they share the limiter's fate. It bounds each
// call, and once the limiter fails it keeps calls off it (they are limited
// locally, at once) but for one call per retry interval that tries it
// again. The transitions are logged, each once.
type sharedLimits struct {
	limiter   SharedLimiter
	timeout   time.Duration
	retry     time.Duration
	now       func() time.Time
	log       *slog.Logger
	fallbacks metric.Int64Counter // nil without a meter provider

	down    atomic.Bool // the limiter failed; calls are limited locally
	mu      sync.Mutex
	since   time.Time // when it went down
	nextTry time.Time // while down, when one call may try it again
	probing bool      // that call is under way
}

func newSharedLimits(opts Options) *sharedLimits {
	s := &sharedLimits{
		limiter: opts.SharedLimiter,
		timeout: opts.SharedLimiterTimeout,
		retry:   opts.SharedLimiterRetry,
		now:     opts.Now,
		log:     opts.Logger,
	}
	if s.timeout <= 0 {
		s.timeout = DefaultSharedLimiterTimeout
	}
	if s.retry <= 0 {
		s.retry = DefaultSharedLimiterRetry
	}
	if s.now == nil {
		s.now = time.Now
	}
	if opts.MeterProvider != nil {
		// A failed counter counts nothing; it never fails the chain.
		s.fallbacks, _ = opts.MeterProvider.Meter(tracerName).Int64Counter(metricFallbacks,
			metric.WithUnit("{call}"),
			metric.WithDescription("Calls a ratelimit plugin limited locally, by plugin, because the limiter shared by the replicas failed or did not answer in time."))
	}
	return s
}

// fallbackAttrs is the metric option for one plugin, built once.
func fallbackAttrs(name string) metric.AddOption {
	return metric.WithAttributeSet(attribute.NewSet(attrName.String(name)))
}

// take asks the shared limiter for one call from key's bucket. shared is
// false when it has no answer (it is down, failed or was late) and the
// caller must decide locally.
func (s *sharedLimits) take(ctx context.Context, key string, rate float64, burst int) (ok bool, retryAfter time.Duration, shared bool) {
	bound := s.timeout
	// Leave the plugin's own deadline time for the local decision.
	if dl, has := ctx.Deadline(); has {
		if half := time.Until(dl) / 2; half < bound {
			bound = half
		}
	}
	if bound <= 0 {
		return false, 0, false // no time to ask: no news about the limiter
	}
	probe := false
	if s.down.Load() {
		s.mu.Lock()
		if s.probing || s.now().Before(s.nextTry) {
			s.mu.Unlock()
			return false, 0, false
		}
		s.probing, probe = true, true
		s.mu.Unlock()
	}

	// The bound sits within the plugin's deadline, so it can hang off the
	// request's context: a standard one, which WithTimeout joins without
	// a goroutine of its own (pluginContext would cost one per call).
	parent := ctx
	if pc, ok := ctx.(*pluginContext); ok {
		parent = pc.Context
	}
	tctx, cancel := context.WithTimeoutCause(parent, bound, errLate)
	ok, retryAfter, err := s.limiter.Take(tctx, key, rate, burst)
	late := errors.Is(context.Cause(tctx), errLate)
	cancel()

	switch {
	case err == nil:
		if probe {
			s.recovered(ctx)
		}
		return ok, retryAfter, true
	case parent.Err() != nil:
		// The request went away: no news about the limiter.
		if probe {
			s.mu.Lock()
			s.probing = false
			s.mu.Unlock()
		}
		return false, 0, false
	case late:
		err = fmt.Errorf("%w: none within %v", errLate, bound)
	}
	s.failed(ctx, err, probe)
	return false, 0, false
}

// failed records a failed call, logging the change to local limits.
func (s *sharedLimits) failed(ctx context.Context, err error, probe bool) {
	s.mu.Lock()
	now := s.now()
	s.nextTry = now.Add(s.retry)
	if probe {
		s.probing = false
	}
	first := !s.down.Load()
	if first {
		s.since = now
		s.down.Store(true)
	}
	s.mu.Unlock()
	if first && s.log != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "rate limits: the shared limiter failed; each replica limits calls on its own until it answers again",
			slog.String("error", redact.Error(err)),
			slog.String("timeout", s.timeout.String()),
			slog.String("retry_every", s.retry.String()))
	}
}

// recovered ends the local limits after a probe got an answer.
func (s *sharedLimits) recovered(ctx context.Context) {
	s.mu.Lock()
	s.probing = false
	s.down.Store(false)
	downFor := s.now().Sub(s.since)
	s.mu.Unlock()
	if s.log != nil {
		s.log.LogAttrs(ctx, slog.LevelInfo, "rate limits: the shared limiter answers again; limits hold across replicas",
			slog.String("local_for", downFor.String()))
	}
}

// countFallback counts one call limited locally.
func (s *sharedLimits) countFallback(ctx context.Context, attrs metric.AddOption) {
	if s.fallbacks != nil {
		s.fallbacks.Add(ctx, 1, attrs)
	}
}
