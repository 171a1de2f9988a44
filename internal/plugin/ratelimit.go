package plugin

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/tracegate/tracegate/internal/auth"
	"github.com/tracegate/tracegate/internal/config"
)

// maxBuckets bounds a rate limiter's memory whatever the traffic: beyond
// it, buckets are dropped even if not yet full (their keys start afresh).
const maxBuckets = 100_000

// rateLimitPlugin is a token bucket per key: each call takes one token,
// tokens come back at rate per second up to burst. With a shared limiter
// the buckets are the replicas' common ones, and its own only stand in
// while the shared limiter fails.
type rateLimitPlugin struct {
	rate  float64 // tokens per second
	burst float64
	per   string // session, tool, session+tool, subject, subject+tool or global
	spec  string // the configured rate, for reasons
	now   func() time.Time
	limit int // maxBuckets; tests lower it

	shared *sharedLimits // nil: limits are this process's own
	// scope prefixes the keys in the shared limiter: the plugin's name and
	// per, which are the same on every replica with the same config.
	scope         string
	fallbackAttrs metric.AddOption

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimit(cfg config.Plugin, opts Options) (Plugin, error) {
	o := newOptions(cfg.Options)
	spec, hasRate := o.string("rate")
	burst, hasBurst := o.int("burst")
	per, hasPer := o.string("per")
	var errs []error
	if err := o.err(); err != nil {
		errs = append(errs, err)
	}
	p := &rateLimitPlugin{spec: spec, per: "session", now: opts.Now, limit: maxBuckets, buckets: map[string]*bucket{}}
	if p.now == nil {
		p.now = time.Now
	}
	if hasRate {
		r, err := parseRate(spec)
		if err != nil {
			errs = append(errs, &FieldError{Key: "rate", Err: err})
		}
		p.rate = r
	} else if cfg.Options["rate"] == nil { // absent, not merely mistyped
		errs = append(errs, &FieldError{Key: "rate", Err: errors.New(`required, e.g. "20/s", "100/m" or "1000/h"`)})
	}
	if hasPer {
		switch per {
		case "session", "tool", "session+tool", "global", "subject", "subject+tool":
			p.per = per
		default:
			errs = append(errs, &FieldError{Key: "per", Err: fmt.Errorf("got %q, want session, tool, session+tool, subject, subject+tool or global", per)})
		}
	}
	switch {
	case hasBurst && burst < 1:
		errs = append(errs, &FieldError{Key: "burst", Err: fmt.Errorf("got %d, want at least 1", burst)})
	case hasBurst:
		p.burst = float64(burst)
	default:
		p.burst = math.Max(1, math.Ceil(p.rate))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if opts.SharedLimiter != nil {
		p.shared = opts.shared
		if p.shared == nil { // built outside New
			p.shared = newSharedLimits(opts)
		}
		p.scope = cfg.Name + "\x00" + p.per + "\x00"
		p.fallbackAttrs = fallbackAttrs(cfg.Name)
	}
	return p, nil
}

// parseRate reads "20/s", "100/m", "1000/h" (also "0.5/s") as tokens per
// second.
func parseRate(s string) (float64, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	var per float64
	switch strings.TrimSpace(unit) {
	case "s":
		per = 1
	case "m":
		per = 60
	case "h":
		per = 3600
	default:
		ok = false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
	if !ok || err != nil || !(f > 0) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("invalid rate %q: want a positive count per s, m or h, e.g. \"20/s\"", s)
	}
	return f / per, nil
}

func (p *rateLimitPlugin) Hooks() []Hook { return preHooks }

func (p *rateLimitPlugin) key(ctx context.Context, call *Call) string {
	switch p.per {
	case "subject", "subject+tool":
		// Callers without an identity (an open listener) share one
		// bucket, apart from every identified caller's.
		k := "\x01"
		if id, ok := auth.FromContext(ctx); ok {
			k = id.ID()
		}
		if p.per == "subject+tool" {
			k += "\x00" + call.Name
		}
		return k
	case "tool":
		return call.Name
	case "session+tool":
		return call.SessionID + "\x00" + call.Name
	case "global":
		return ""
	}
	// Stateless requests have no session: they share the "" bucket, so
	// dropping the session does not escape the limit.
	return call.SessionID
}

func (p *rateLimitPlugin) Handle(ctx context.Context, call *Call) (Outcome, error) {
	key := p.key(ctx, call)
	var wait time.Duration
	ok, retry, shared := p.takeShared(ctx, key)
	switch {
	case shared && !ok:
		wait = max(roundWait(retry), time.Millisecond)
	case shared:
	case p.shared != nil && ctx.Err() != nil:
		// The call cannot go on: it spends no token, and the chain
		// reports why.
		return Outcome{}, ctx.Err()
	default:
		if p.shared != nil {
			p.shared.countFallback(ctx, p.fallbackAttrs)
		}
		wait = p.take(key)
	}
	if wait == 0 {
		return Outcome{}, nil
	}
	// The same reason in both modes: clients cannot tell them apart.
	return Outcome{
		Decision:   Deny,
		Reason:     fmt.Sprintf("rate limit of %s per %s exceeded, retry after %v", p.spec, p.per, wait),
		RetryAfter: wait,
	}, nil
}

// takeShared asks the shared limiter; shared is false when there is none
// or it has no answer, and the plugin's own bucket must decide.
func (p *rateLimitPlugin) takeShared(ctx context.Context, key string) (ok bool, retryAfter time.Duration, shared bool) {
	if p.shared == nil {
		return false, 0, false
	}
	return p.shared.take(ctx, p.scope+key, p.rate, int(p.burst))
}

// take spends a token for key, or returns how long until one is there
// (see roundWait).
func (p *rateLimitPlugin) take(key string) time.Duration {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweep(now)
	b := p.buckets[key]
	if b == nil {
		if len(p.buckets) >= p.limit {
			p.evictOne()
		}
		b = &bucket{tokens: p.burst, last: now}
		p.buckets[key] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(p.burst, b.tokens+el*p.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return roundWait(time.Duration((1 - b.tokens) / p.rate * float64(time.Second)))
}

// roundWait rounds a wait up to the millisecond, or to the second beyond
// ten seconds so the message stays readable.
func roundWait(wait time.Duration) time.Duration {
	unit := time.Millisecond
	if wait > 10*time.Second {
		unit = time.Second
	}
	return (wait + unit - 1).Truncate(unit)
}

// fill is how long an empty bucket takes to fill up again.
func (p *rateLimitPlugin) fill() time.Duration {
	return time.Duration(p.burst / p.rate * float64(time.Second))
}

// sweep drops the buckets that have refilled: a full bucket is the same
// as none, so idle keys cost nothing. It runs at most once per fill time,
// keeping the cost per call constant on average.
func (p *rateLimitPlugin) sweep(now time.Time) {
	fill := p.fill()
	if now.Sub(p.lastSweep) < fill {
		return
	}
	p.lastSweep = now
	for k, b := range p.buckets {
		if now.Sub(b.last) >= fill {
			delete(p.buckets, k)
		}
	}
}

// evictOne drops the bucket idle the longest among a few, for when
// maxBuckets keys were all active within one fill time.
func (p *rateLimitPlugin) evictOne() {
	var oldKey string
	var old *bucket
	n := 0
	for k, b := range p.buckets { // map order is random: a sample
		if old == nil || b.last.Before(old.last) {
			oldKey, old = k, b
		}
		if n++; n == 8 {
			break
		}
	}
	delete(p.buckets, oldKey)
}

// size is the number of live buckets, for tests.
func (p *rateLimitPlugin) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.buckets)
}
