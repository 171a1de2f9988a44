package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/plugin"
	"github.com/tracegate/tracegate/internal/redistest"
	"github.com/tracegate/tracegate/internal/testlog"
)

var _ plugin.SharedLimiter = (*RateLimiter)(nil)

// newClient is a go-redis client for url set up as the gateway's is: it
// honours context deadlines, and retries once.
func newClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	o.ContextTimeoutEnabled = true
	o.MaxRetries, o.DialerRetries = 1, 1
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// step is one Take at a time relative to the test's start.
type step struct {
	at    time.Duration
	ok    bool
	retry time.Duration
}

// The script's arithmetic, driven by an explicit clock: a full bucket
// allows burst calls at once, then one per interval; the retry time is
// exactly the time to the next conforming call.
func TestGCRAScript(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := newClient(t, srv.URL())
	ms := time.Millisecond
	tests := []struct {
		name  string
		rate  float64
		burst int
		steps []step
	}{
		{"burst then refill", 5, 5, []step{
			{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0},
			{0, false, 200 * ms},
			{50 * ms, false, 150 * ms},
			{200 * ms, true, 0},
			{200 * ms, false, 200 * ms},
			{399 * ms, false, ms},
			{400 * ms, true, 0},
			// Idle for long: full again, never more than burst.
			{time.Minute, true, 0}, {time.Minute, true, 0}, {time.Minute, true, 0}, {time.Minute, true, 0}, {time.Minute, true, 0},
			{time.Minute, false, 200 * ms},
		}},
		{"burst of one", 1, 1, []step{
			{0, true, 0}, {0, false, time.Second}, {999 * ms, false, ms}, {time.Second, true, 0},
		}},
		{"uneven rate, to the microsecond", 3, 1, []step{
			{0, true, 0}, {0, false, 333333 * time.Microsecond}, {333333 * time.Microsecond, true, 0},
		}},
		{"slow rate", 1.0 / 3600, 2, []step{
			{0, true, 0}, {0, true, 0}, {0, false, time.Hour}, {59 * time.Minute, false, time.Minute},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			var at time.Duration
			l := NewRateLimiter(c)
			l.now = func() time.Time { return start.Add(at) }
			for i, s := range tt.steps {
				at = s.at
				ok, retry, err := l.Take(context.Background(), t.Name(), tt.rate, tt.burst)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if ok != s.ok || retry != s.retry {
					t.Errorf("step %d at %v: got ok=%v retry %v, want ok=%v retry %v", i, s.at, ok, retry, s.ok, s.retry)
				}
			}
		})
	}
}

// A bucket lives in Redis until it is full again, and no longer.
func TestGCRAKeyExpires(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := newClient(t, srv.URL())
	l := NewRateLimiter(c)
	start := time.Now()
	l.now = func() time.Time { return start }
	ctx := context.Background()
	for n := 1; n <= 3; n++ {
		if ok, _, err := l.Take(ctx, "k", 5, 5); !ok || err != nil {
			t.Fatalf("take %d: ok=%v err=%v", n, ok, err)
		}
		// n calls at 5/s leave the bucket n*200ms from full.
		ttl, err := c.PTTL(ctx, bucketKey("k", 200000, 5)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if want := time.Duration(n) * 200 * time.Millisecond; ttl <= 0 || ttl > want {
			t.Errorf("after %d calls: TTL %v, want in (0, %v]", n, ttl, want)
		}
	}
}

// Without a test clock the script reads Redis's own.
func TestRateLimiterServerClock(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	l := NewRateLimiter(newClient(t, srv.URL()))
	ctx := context.Background()
	for i := range 3 {
		if ok, _, err := l.Take(ctx, "k", 3.0/60, 3); !ok || err != nil {
			t.Fatalf("take %d: ok=%v err=%v", i, ok, err)
		}
	}
	ok, retry, err := l.Take(ctx, "k", 3.0/60, 3)
	if err != nil || ok {
		t.Fatalf("take 4: ok=%v err=%v, want a denial", ok, err)
	}
	// 20s per call; the burst took some of it.
	if retry <= 0 || retry > 20*time.Second {
		t.Errorf("retry after %v, want in (0, 20s]", retry)
	}
}

// Keys are namespaced and hashed: what a key holds (here a session ID)
// never shows in Redis, and a different limit is a different bucket.
func TestRateLimiterKeys(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := newClient(t, srv.URL())
	ctx := context.Background()
	a, b := NewRateLimiter(c), NewRateLimiter(newClient(t, srv.URL()))
	const secret = "session-4f2a9c"
	a.Take(ctx, "rl\x00session\x00"+secret, 1, 1)
	if ok, _, _ := b.Take(ctx, "rl\x00session\x00"+secret, 1, 1); ok {
		t.Error("a second limiter on the same Redis got its own bucket for the same key")
	}
	if ok, _, _ := b.Take(ctx, "rl\x00session\x00"+secret, 1, 2); !ok {
		t.Error("a different burst shared the bucket")
	}
	if ok, _, _ := b.Take(ctx, "rl\x00session\x00"+secret, 2, 1); !ok {
		t.Error("a different rate shared the bucket")
	}
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Errorf("got keys %q, want 3", keys)
	}
	re := regexp.MustCompile(`^tracegate:rl:[0-9a-f]{32}$`)
	for _, k := range keys {
		if !re.MatchString(k) || strings.Contains(k, secret) {
			t.Errorf("key %q: want tracegate:rl: and 32 hex digits", k)
		}
	}
}

// EVALSHA fails with NOSCRIPT once Redis forgets its scripts (a restart,
// SCRIPT FLUSH); the limiter sends the script again.
func TestRateLimiterReloadsScript(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := newClient(t, srv.URL())
	l := NewRateLimiter(c)
	ctx := context.Background()
	for i := range 2 {
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if ok, _, err := l.Take(ctx, "k", 1, 5); !ok || err != nil {
			t.Fatalf("take %d after SCRIPT FLUSH: ok=%v err=%v", i, ok, err)
		}
	}
}

func TestRateLimiterInvalid(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	l := NewRateLimiter(newClient(t, srv.URL()))
	for _, tt := range []struct {
		rate  float64
		burst int
	}{{0, 1}, {-1, 1}, {1, 0}} {
		if _, _, err := l.Take(context.Background(), "k", tt.rate, tt.burst); err == nil {
			t.Errorf("rate %v burst %d: no error", tt.rate, tt.burst)
		}
	}
}

// The password of the Redis URL never reaches an error.
func TestRateLimiterErrorsHidePassword(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	if err := newClient(t, srv.URL()).ConfigSet(ctx, "requirepass", "right-horse-battery").Err(); err != nil {
		t.Fatal(err)
	}
	url := strings.Replace(srv.URL(), "redis://", "redis://:wrong-horse-staple@", 1)
	_, _, err := NewRateLimiter(newClient(t, url)).Take(ctx, "k", 1, 1)
	if err == nil || strings.Contains(err.Error(), "wrong-horse-staple") {
		t.Errorf("wrong password: got %v, want an error without the password", err)
	}
	url = strings.Replace(srv.URL(), "redis://", "redis://:right-horse-battery@", 1)
	if ok, _, err := NewRateLimiter(newClient(t, url)).Take(ctx, "k", 1, 1); !ok || err != nil {
		t.Errorf("right password: ok=%v err=%v", ok, err)
	}
	// An error that quotes the password is redacted; Unwrap keeps the cause.
	l := NewRateLimiter(newClient(t, url))
	l.client = failing{errors.New("AUTH right-horse-battery refused")}
	_, _, err = l.Take(ctx, "k", 1, 1)
	if err == nil || strings.Contains(err.Error(), "right-horse-battery") || !strings.Contains(err.Error(), "REDACTED") {
		t.Errorf("got %v, want the password masked", err)
	}
}

// failing is a redis.Scripter whose every command fails with err.
type failing struct{ err error }

func (f failing) cmd() *redis.Cmd {
	c := redis.NewCmd(context.Background())
	c.SetErr(f.err)
	return c
}

func (f failing) Eval(context.Context, string, []string, ...any) *redis.Cmd      { return f.cmd() }
func (f failing) EvalSha(context.Context, string, []string, ...any) *redis.Cmd   { return f.cmd() }
func (f failing) EvalRO(context.Context, string, []string, ...any) *redis.Cmd    { return f.cmd() }
func (f failing) EvalShaRO(context.Context, string, []string, ...any) *redis.Cmd { return f.cmd() }
func (f failing) ScriptExists(context.Context, ...string) *redis.BoolSliceCmd {
	return redis.NewBoolSliceResult(nil, f.err)
}
func (f failing) ScriptLoad(context.Context, string) *redis.StringCmd {
	return redis.NewStringResult("", f.err)
}

// replica is one gateway's plugin chain over a shared Redis, with its own
// Redis client, log and metrics, as a separate process would have.
type replica struct {
	chain  *plugin.Chain
	logs   *testlog.Buffer
	reader *sdkmetric.ManualReader
}

// clock is a settable clock for the plugins; Redis keeps its own.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func rlCfg(opts map[string]any) config.Plugin {
	return config.Plugin{Name: "rl", Type: "ratelimit", Options: opts}
}

// patient is the bound on Redis calls for tests of what the limiter
// decides, not of how long it may take: a loaded machine can hold a call
// past the default 50 ms (half the plugin's 1 s timeout caps it).
const patient = time.Second

// newReplica builds the replica; bound is Options.SharedLimiterTimeout,
// 0 for the default.
func newReplica(t *testing.T, url string, cfg config.Plugin, now func() time.Time, bound time.Duration) *replica {
	t.Helper()
	r := &replica{logs: &testlog.Buffer{}, reader: sdkmetric.NewManualReader()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	var err error
	r.chain, err = plugin.New([]config.Plugin{cfg}, plugin.Options{
		Logger:        slog.New(slog.NewJSONHandler(r.logs, nil)),
		MeterProvider: mp,
		Now:           now,
		SharedLimiter: NewRateLimiter(newClient(t, url)),

		SharedLimiterTimeout: bound,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// call runs one tool call through the chain: nil when allowed, else the
// *plugin.DenyError.
func (r *replica) call(t testing.TB, session, tool string) *plugin.DenyError {
	t.Helper()
	_, err := r.chain.Run(context.Background(), &plugin.Call{Hook: plugin.ToolPreInvoke, Backend: "b", Name: tool, SessionID: session})
	if err == nil {
		return nil
	}
	var de *plugin.DenyError
	if !errors.As(err, &de) {
		t.Fatalf("got %v, want a *plugin.DenyError", err)
	}
	return de
}

// fallbacks reads tracegate.ratelimit.fallbacks for plugin "rl".
func (r *replica) fallbacks(t testing.TB) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "tracegate.ratelimit.fallbacks" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				if v, _ := dp.Attributes.Value("plugin.name"); v.AsString() == "rl" {
					return dp.Value
				}
			}
		}
	}
	return 0
}

func (r *replica) logLines(msg string) int { return strings.Count(r.logs.String(), msg) }

const (
	warnFallback = "rate limits: the shared limiter failed"
	infoRecovery = "rate limits: the shared limiter answers again"
)

// reasonShape is the denial reason in either mode.
var reasonShape = regexp.MustCompile(`^rate limit of 5/h per global exceeded, retry after ([0-9hms.]+)$`)

// Two replicas on one Redis hold one limit between them, per key.
func TestReplicasShareLimit(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	type callSpec struct{ session, tool string }
	tests := []struct {
		per   string
		calls []callSpec
		group func(callSpec) string // the calls that share a bucket
	}{
		{"session", []callSpec{{"s1", "x"}, {"s2", "x"}, {"s1", "y"}, {"s2", "y"}}, func(c callSpec) string { return c.session }},
		{"tool", []callSpec{{"s1", "x"}, {"s2", "x"}, {"s1", "y"}, {"s2", "y"}}, func(c callSpec) string { return c.tool }},
		{"session+tool", []callSpec{{"s1", "x"}, {"s2", "x"}, {"s1", "y"}}, func(c callSpec) string { return c.session + "/" + c.tool }},
		{"global", []callSpec{{"s1", "x"}, {"s2", "y"}}, func(callSpec) string { return "" }},
	}
	for _, tt := range tests {
		t.Run(tt.per, func(t *testing.T) {
			t.Parallel()
			// Each subtest is its own plugin instance: a name of its own.
			cfg := config.Plugin{Name: "rl-" + tt.per, Type: "ratelimit", Options: map[string]any{"rate": "5/h", "burst": 5, "per": tt.per}}
			now := newClock().now // never advanced: every refill comes from Redis's clock
			a, b := newReplica(t, srv.URL(), cfg, now, patient), newReplica(t, srv.URL(), cfg, now, patient)
			allowed := map[string]int{}
			for i := range 10 {
				for _, call := range tt.calls {
					r := a
					if i%2 == 1 {
						r = b
					}
					if de := r.call(t, call.session, call.tool); de == nil {
						allowed[tt.group(call)]++
					} else if de.RetryAfter <= 0 || plugin.RPCError(de).Code != plugin.CodeRateLimited {
						t.Errorf("denial %v: want a rate limit with a retry time", de)
					}
				}
			}
			groups := map[string]bool{}
			for _, call := range tt.calls {
				groups[tt.group(call)] = true
			}
			for g := range groups {
				if allowed[g] != 5 {
					t.Errorf("bucket %q: %d calls allowed across both replicas, want 5", g, allowed[g])
				}
			}
			for _, r := range []*replica{a, b} {
				if n := r.fallbacks(t); n != 0 || r.logLines(warnFallback) != 0 {
					t.Errorf("with Redis up: %d fallbacks, log %s", n, r.logs)
				}
			}
		})
	}
}

// Replicas calling at once: the script is atomic, so exactly the burst
// goes through.
func TestReplicasShareLimitConcurrently(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	cfg := rlCfg(map[string]any{"rate": "1/h", "burst": 50, "per": "global"})
	reps := []*replica{newReplica(t, srv.URL(), cfg, nil, patient), newReplica(t, srv.URL(), cfg, nil, patient)}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for i := range 6 {
		r := reps[i%2]
		wg.Go(func() {
			for range 20 {
				if r.call(t, "s", "x") == nil {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 50 {
		t.Errorf("got %d of 120 calls allowed, want exactly the burst, 50", got)
	}
	for _, r := range reps {
		if n := r.fallbacks(t); n != 0 {
			t.Errorf("%d fallbacks with Redis up; log %s", n, r.logs)
		}
	}
}

// timed runs f and, under TRACEGATE_PERF=1, checks that it returned
// within limit.
func timed(t *testing.T, limit time.Duration, what string, f func()) {
	t.Helper()
	start := time.Now()
	f()
	if d := time.Since(start); os.Getenv("TRACEGATE_PERF") == "1" && d > limit {
		t.Errorf("%s took %v, want at most %v", what, d, limit)
	}
}

// With Redis gone each replica limits on its own, logs that once, counts
// each call it decided alone, and goes back to the shared buckets by
// itself once Redis is back.
func TestFallbackWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ck := newClock()
	cfg := rlCfg(map[string]any{"rate": "5/h", "burst": 5, "per": "global"})
	a, b := newReplica(t, srv.URL(), cfg, ck.now, patient), newReplica(t, srv.URL(), cfg, ck.now, patient)
	rdb := newClient(t, srv.URL())
	ctx := context.Background()

	// Shared: 5 between both replicas.
	var sharedReason string
	allowed := 0
	for i := range 6 {
		if de := []*replica{a, b}[i%2].call(t, "s", "x"); de == nil {
			allowed++
		} else {
			sharedReason = de.Reason
		}
	}
	if allowed != 5 || !reasonShape.MatchString(sharedReason) {
		t.Fatalf("Redis up: %d allowed, reason %q; want 5 and a reason matching %v", allowed, sharedReason, reasonShape)
	}

	srv.Stop()
	// Local: each replica has its own 5 (the shared ones are gone with
	// Redis). The calls come at once, so several find Redis gone.
	for _, r := range []*replica{a, b} {
		var mu sync.Mutex
		allowed := 0
		var reason string
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				var de *plugin.DenyError
				// Redis refuses at once: no call waits for the bound.
				timed(t, 100*time.Millisecond, fmt.Sprintf("call %d with Redis down", i), func() {
					de = r.call(t, "s", "x")
				})
				mu.Lock()
				defer mu.Unlock()
				if de == nil {
					allowed++
				} else {
					reason = de.Reason
				}
			})
		}
		wg.Wait()
		if allowed != 5 {
			t.Errorf("Redis down: %d of 8 allowed, want this replica's burst, 5", allowed)
		}
		if !reasonShape.MatchString(reason) {
			t.Errorf("local reason %q, want the shape of the shared one, %q", reason, sharedReason)
		}
		if n := r.logLines(warnFallback); n != 1 {
			t.Errorf("fallback logged %d times, want once; log:\n%s", n, r.logs)
		}
		if n := r.fallbacks(t); n != 8 {
			t.Errorf("fallback counter %d, want 8", n)
		}
		if strings.Contains(r.logs.String(), infoRecovery) {
			t.Errorf("recovery logged while Redis is down")
		}
	}

	// After the retry interval one call tries Redis again, finds it
	// still down, and says nothing new.
	ck.advance(plugin.DefaultSharedLimiterRetry)
	a.call(t, "s", "x")
	if n := a.logLines(warnFallback); n != 1 {
		t.Errorf("after a failed retry: fallback logged %d times, want still once", n)
	}

	srv.Restart()
	// Within the retry interval the replicas stay local without asking.
	a.call(t, "s", "x")
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("within the retry interval: Redis holds %d keys (err %v), want none", n, err)
	}
	if n := a.fallbacks(t); n != 10 {
		t.Errorf("fallback counter %d, want 10", n)
	}

	ck.advance(plugin.DefaultSharedLimiterRetry)
	// One call each probes Redis and finds it: shared again, over an
	// empty Redis, so 5 between both.
	allowed = 0
	for i := range 10 {
		if [](*replica){a, b}[i%2].call(t, "s", "x") == nil {
			allowed++
		}
	}
	if allowed != 5 {
		t.Errorf("after Redis came back: %d of 10 allowed, want 5 between both replicas", allowed)
	}
	for _, r := range []*replica{a, b} {
		if n := r.logLines(infoRecovery); n != 1 {
			t.Errorf("recovery logged %d times, want once; log:\n%s", n, r.logs)
		}
		if n := r.logLines(warnFallback); n != 1 {
			t.Errorf("fallback logged %d times in all, want once", n)
		}
	}
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n != 1 {
		t.Errorf("Redis holds %d keys (err %v), want the one global bucket", n, err)
	}
	if n := b.fallbacks(t); n != 8 {
		t.Errorf("replica b: fallback counter %d, want still 8", n)
	}
}

// A Redis that does not answer (here, busy running a script that never
// ends) holds no call past the bound: each is limited locally.
func TestFallbackWhileRedisIsSlow(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ck := newClock()
	cfg := rlCfg(map[string]any{"rate": "5/h", "burst": 2, "per": "global"})
	a := newReplica(t, srv.URL(), cfg, ck.now, 0)
	ctx := context.Background()
	if a.call(t, "s", "x") != nil {
		t.Fatal("first call denied")
	}

	// The script's client never retries: a retry could run it again on
	// the restarted Redis.
	bo, _ := redis.ParseURL(srv.URL())
	bo.MaxRetries, bo.ReadTimeout = -1, -1
	busy := redis.NewClient(bo)
	t.Cleanup(func() { busy.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		busy.Eval(ctx, "while true do end", nil)
	}()
	t.Cleanup(func() { srv.Stop(); <-done })
	// Wait until Redis is stuck in the script: a PING gets no answer.
	probe := newClient(t, srv.URL())
	deadline := time.Now().Add(10 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		err := probe.Ping(pctx).Err()
		cancel()
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Redis still answers PING with the script running")
		}
	}

	// A request that went away is no news about Redis.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.chain.Run(cctx, &plugin.Call{Hook: plugin.ToolPreInvoke, Name: "x", SessionID: "s"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: got %v, want context.Canceled", err)
	}
	if n := a.logLines(warnFallback); n != 0 {
		t.Errorf("a cancelled request logged the fallback:\n%s", a.logs)
	}

	allowed := 0
	for i := range 4 {
		var de *plugin.DenyError
		timed(t, plugin.DefaultSharedLimiterTimeout+100*time.Millisecond, fmt.Sprintf("call %d with Redis stuck", i), func() {
			de = a.call(t, "s", "x")
		})
		if de == nil {
			allowed++
		}
	}
	if allowed != 2 {
		t.Errorf("Redis stuck: %d of 4 allowed, want the local burst, 2", allowed)
	}
	if n := a.logLines(warnFallback); n != 1 {
		t.Errorf("fallback logged %d times, want once; log:\n%s", n, a.logs)
	}
	if !strings.Contains(a.logs.String(), "no answer in time: none within 50ms") {
		t.Errorf("log does not say Redis was late:\n%s", a.logs)
	}
	if n := a.fallbacks(t); n != 4 {
		t.Errorf("fallback counter %d, want 4", n)
	}

	// Only a restart ends the script; then the limits are shared again.
	srv.Stop()
	<-done
	srv.Restart()
	ck.advance(plugin.DefaultSharedLimiterRetry)
	if a.call(t, "s", "x") != nil {
		t.Error("first call on a fresh Redis denied")
	}
	if n := a.logLines(infoRecovery); n != 1 {
		t.Errorf("recovery logged %d times, want once; log:\n%s", n, a.logs)
	}
}

// BenchmarkTake is one Take against a real redis-server on loopback,
// EVALSHA included.
func BenchmarkTake(b *testing.B) {
	srv := redistest.Start(b)
	l := NewRateLimiter(newClient(b, srv.URL()))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := l.Take(ctx, "rl\x00session\x00s1", 1e6, 1000); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTakeParallel is Take from GOMAXPROCS goroutines on distinct
// keys, as concurrent sessions would.
func BenchmarkTakeParallel(b *testing.B) {
	srv := redistest.Start(b)
	l := NewRateLimiter(newClient(b, srv.URL()))
	ctx := context.Background()
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		key := fmt.Sprint("rl\x00session\x00s", n.Add(1))
		for pb.Next() {
			if _, _, err := l.Take(ctx, key, 1e6, 1000); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRateLimitPlugin is a tool call through a chain holding one
// ratelimit plugin, with its own buckets and with Redis's: the ratio is
// what sharing the limit costs per call.
func BenchmarkRateLimitPlugin(b *testing.B) {
	srv := redistest.Start(b)
	cfg := rlCfg(map[string]any{"rate": "1000000/s", "burst": 1000})
	for _, mode := range []string{"local", "shared"} {
		b.Run(mode, func(b *testing.B) {
			logs := &testlog.Buffer{}
			opts := plugin.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil))}
			if mode == "shared" {
				opts.SharedLimiter = NewRateLimiter(newClient(b, srv.URL()))
				opts.SharedLimiterTimeout = patient
			}
			chain, err := plugin.New([]config.Plugin{cfg}, opts)
			if err != nil {
				b.Fatal(err)
			}
			call := &plugin.Call{Hook: plugin.ToolPreInvoke, Backend: "b", Name: "x", SessionID: "s1"}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				chain.Run(ctx, call)
			}
			if strings.Contains(logs.String(), warnFallback) {
				b.Fatalf("the benchmark measured local limits: %s", logs)
			}
		})
	}
}
