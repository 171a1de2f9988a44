package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/config"
)

// fakeClock is a settable clock for rate limit tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func rateCfg(opts map[string]any) config.Plugin {
	return config.Plugin{Name: "rl", Type: "ratelimit", Options: opts}
}

func TestRateLimitBucket(t *testing.T) {
	t.Parallel()
	clock := newClock()
	b := newBed(t, []config.Plugin{rateCfg(map[string]any{"rate": "20/s", "burst": 2})}, nil, clock.now)
	run := func() error {
		_, err := b.chain.Run(context.Background(), toolCall("files_read", `{}`))
		return err
	}
	for i := range 2 {
		if err := run(); err != nil {
			t.Fatalf("call %d within burst: %v", i, err)
		}
	}
	err := run()
	var de *DenyError
	if !errors.As(err, &de) {
		t.Fatalf("third call: got %v, want a *DenyError", err)
	}
	if got, want := err.Error(), `denied by plugin "rl": rate limit of 20/s per session exceeded, retry after 50ms`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if de.RetryAfter != 50*time.Millisecond {
		t.Errorf("RetryAfter %v, want 50ms", de.RetryAfter)
	}
	if rpc := RPCError(err); rpc.Code != CodeRateLimited || string(rpc.Data) != `{"plugin":"rl","retryAfterMs":50}` {
		t.Errorf("RPCError: got code %d data %s, want %d and retryAfterMs 50", rpc.Code, rpc.Data, CodeRateLimited)
	}

	clock.advance(30 * time.Millisecond)
	err = run()
	if !errors.As(err, &de) || de.RetryAfter != 20*time.Millisecond {
		t.Fatalf("after 30ms: got %v, want retry after 20ms", err)
	}
	clock.advance(20 * time.Millisecond)
	if err := run(); err != nil {
		t.Fatalf("after the retry time: %v", err)
	}
}

func TestRateLimitKeys(t *testing.T) {
	t.Parallel()
	type step struct {
		session, tool string
		allowed       bool
	}
	tests := []struct {
		per   string
		steps []step
	}{
		{"session", []step{{"a", "x", true}, {"a", "y", false}, {"b", "x", true}, {"", "x", true}, {"", "y", false}}},
		{"tool", []step{{"a", "x", true}, {"b", "x", false}, {"a", "y", true}}},
		{"session+tool", []step{{"a", "x", true}, {"a", "x", false}, {"a", "y", true}, {"b", "x", true}}},
		{"global", []step{{"a", "x", true}, {"b", "y", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.per, func(t *testing.T) {
			t.Parallel()
			b := newBed(t, []config.Plugin{rateCfg(map[string]any{"rate": "1/m", "per": tt.per})}, nil, newClock().now)
			for i, s := range tt.steps {
				_, err := b.chain.Run(context.Background(), &Call{Hook: ToolPreInvoke, Name: s.tool, SessionID: s.session})
				if got := err == nil; got != s.allowed {
					t.Errorf("step %d (%s,%s): allowed=%v, want %v (err %v)", i, s.session, s.tool, got, s.allowed, err)
				}
			}
		})
	}
}

func TestRateLimitDefaultsAndUnits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opts      map[string]any
		rate      float64
		burst     float64
		retryText string
	}{
		{map[string]any{"rate": "20/s"}, 20, 20, "retry after 50ms"},
		{map[string]any{"rate": "2.5/s"}, 2.5, 3, "retry after 400ms"},
		{map[string]any{"rate": "30/m"}, 0.5, 1, "retry after 2s"},
		{map[string]any{"rate": "60/h", "burst": 5}, 1.0 / 60, 5, "retry after 1m0s"},
		{map[string]any{"rate": "7/m"}, 7.0 / 60, 1, "retry after 8.572s"},
		{map[string]any{"rate": "4/m"}, 4.0 / 60, 1, "retry after 15s"},
		{map[string]any{"rate": "7/h"}, 7.0 / 3600, 1, "retry after 8m35s"}, // 514.29s, up to the second
	}
	for _, tt := range tests {
		clock := newClock()
		p, err := newRateLimit(rateCfg(tt.opts), Options{Now: clock.now})
		if err != nil {
			t.Fatalf("%v: %v", tt.opts, err)
		}
		rl := p.(*rateLimitPlugin)
		if rl.rate != tt.rate || rl.burst != tt.burst || rl.per != "session" {
			t.Errorf("%v: got rate %v burst %v per %s, want %v %v session", tt.opts, rl.rate, rl.burst, rl.per, tt.rate, tt.burst)
		}
		var out Outcome
		for range int(tt.burst) + 1 {
			out, _ = rl.Handle(context.Background(), &Call{Hook: ToolPreInvoke})
		}
		if out.Decision != Deny || !strings.HasSuffix(out.Reason, tt.retryText) {
			t.Errorf("%v: got %v %q, want deny ending %q", tt.opts, out.Decision, out.Reason, tt.retryText)
		}
	}
}

// Idle buckets go away once they have refilled, so the map tracks only
// recently active keys.
func TestRateLimitEvictsIdleBuckets(t *testing.T) {
	t.Parallel()
	clock := newClock()
	p, err := newRateLimit(rateCfg(map[string]any{"rate": "10/s", "burst": 10}), Options{Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	rl := p.(*rateLimitPlugin)
	for i := range 1000 {
		rl.Handle(context.Background(), &Call{Hook: ToolPreInvoke, SessionID: fmt.Sprint("s", i)})
	}
	if got := rl.size(); got != 1000 {
		t.Fatalf("got %d buckets, want 1000", got)
	}
	clock.advance(time.Second) // the fill time: every bucket is full again
	rl.Handle(context.Background(), &Call{Hook: ToolPreInvoke, SessionID: "new"})
	if got := rl.size(); got != 1 {
		t.Errorf("after the fill time: got %d buckets, want 1", got)
	}
}

func TestRateLimitBucketCap(t *testing.T) {
	t.Parallel()
	clock := newClock()
	p, _ := newRateLimit(rateCfg(map[string]any{"rate": "1/h"}), Options{Now: clock.now})
	rl := p.(*rateLimitPlugin)
	rl.limit = 100
	for i := range 150 {
		rl.take(fmt.Sprint(i))
	}
	if got := rl.size(); got != rl.limit {
		t.Errorf("got %d buckets, want the cap %d", got, rl.limit)
	}
}

func TestRateLimitConcurrent(t *testing.T) {
	t.Parallel()
	b := newBed(t, []config.Plugin{rateCfg(map[string]any{"rate": "1/h", "burst": 50, "per": "global"})}, nil, newClock().now)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := b.chain.Run(context.Background(), toolCall("t", `{}`)); err == nil {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if allowed != 50 {
		t.Errorf("got %d calls allowed, want exactly the burst, 50", allowed)
	}
}

func TestRateLimitOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opts map[string]any
		want string
	}{
		{nil, `rate: required, e.g. "20/s"`},
		{map[string]any{"rate": nil}, `rate: required`},
		{map[string]any{"rate": 20}, "rate: got a number, want a string"},
		{map[string]any{"rate": "20"}, `rate: invalid rate "20"`},
		{map[string]any{"rate": "20/d"}, `rate: invalid rate "20/d"`},
		{map[string]any{"rate": "-1/s"}, `rate: invalid rate "-1/s"`},
		{map[string]any{"rate": "NaN/s"}, `rate: invalid rate "NaN/s"`},
		{map[string]any{"rate": "1/s", "burst": 0}, "burst: got 0, want at least 1"},
		{map[string]any{"rate": "1/s", "burst": 1.5}, "burst: got a number, want a whole number"},
		{map[string]any{"rate": "1/s", "per": "user"}, `per: got "user", want session, tool, session+tool, subject, subject+tool or global`},
		{map[string]any{"rate": "1/s", "window": "1m"}, "window: unknown key for this plugin type"},
	}
	for _, tt := range tests {
		err := Validate(rateCfg(tt.opts))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want %q", tt.opts, err, tt.want)
		}
	}
}

// A chain built with Previous keeps the rate limits whose entry is
// unchanged, with their buckets, and starts those that changed afresh.
func TestRateLimitKeptAcrossRebuild(t *testing.T) {
	t.Parallel()
	clock := newClock()
	kept := config.Plugin{Name: "kept", Type: "ratelimit", Tools: []string{"a_*"}, Options: map[string]any{"rate": "1/h", "burst": 1}}
	changed := config.Plugin{Name: "changed", Type: "ratelimit", Tools: []string{"b_*"}, Options: map[string]any{"rate": "1/h", "burst": 1}}
	old, err := New([]config.Plugin{kept, changed}, Options{Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	run := func(c *Chain, tool string) error {
		_, err := c.Run(context.Background(), toolCall(tool, `{}`))
		return err
	}
	for _, tool := range []string{"a_x", "b_x"} {
		if err := run(old, tool); err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
	}
	changed.Tools = []string{"b_*", "c_*"}
	next, err := New([]config.Plugin{kept, changed}, Options{Now: clock.now, Previous: old})
	if err != nil {
		t.Fatal(err)
	}
	var de *DenyError
	if err := run(next, "a_y"); !errors.As(err, &de) || !strings.Contains(err.Error(), `"kept"`) {
		t.Errorf("a_y after the rebuild: got %v, want kept's bucket, spent before, to deny", err)
	}
	if err := run(next, "b_y"); err != nil {
		t.Errorf("b_y after the rebuild: got %v, want a fresh bucket for the changed entry", err)
	}
}
