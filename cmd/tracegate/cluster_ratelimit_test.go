package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/tracegate/tracegate/examples/demo"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/plugin"
	"github.com/tracegate/tracegate/internal/redistest"
)

// Two gateways with the same cluster section hold one rate limit between
// them, through a real Redis, for real MCP clients; with Redis gone each
// limits on its own and says so, and the Redis password is in no log line.
func TestClusterRateLimitAcrossGateways(t *testing.T) {
	srv := redistest.Start(t)
	const password = "s3cret-redis-pass"
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.ConfigSet(ctx, "requirepass", password).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.Options().Password = password

	weather := demo.NewWeatherServer(demo.WeatherOptions{})
	backend := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return weather }, nil))
	t.Cleanup(backend.Close)

	type gw struct {
		cs   *mcp.ClientSession
		logs *syncBuffer
	}
	var gws []gw
	for range 2 {
		cfg := config.Default()
		cfg.Log.Level = "debug"
		cfg.Telemetry.Viewer.Enabled = new(false)
		cfg.Backends = []config.Backend{{Name: "weather", URL: backend.URL, Timeout: config.Duration(10 * time.Second)}}
		cfg.Plugins = []config.Plugin{{Name: "calls", Type: "ratelimit", Options: map[string]any{"rate": "3/h", "burst": 3, "per": "global"}}}
		cfg.Cluster = &config.Cluster{
			RedisURL:     strings.Replace(srv.URL(), "redis://", "redis://:"+password+"@", 1),
			AdvertiseURL: "http://127.0.0.1:8081",
		}
		logs := &syncBuffer{}
		_, url, _ := runRuntime(t, cfg, logs)
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent"}, nil).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		gws = append(gws, gw{cs, logs})
	}
	call := func(g gw) error {
		_, err := g.cs.CallTool(ctx, &mcp.CallToolParams{Name: "weather_get_weather", Arguments: map[string]any{"city": "Oslo"}})
		return err
	}
	limited := func(err error) bool {
		var rpc *jsonrpc.Error
		return errors.As(err, &rpc) && rpc.Code == plugin.CodeRateLimited
	}

	allowed := 0
	for i := range 8 {
		err := call(gws[i%2])
		switch {
		case err == nil:
			allowed++
		case !limited(err):
			t.Fatalf("call %d: %v, want success or -32031", i, err)
		}
	}
	if allowed != 3 {
		t.Errorf("%d of 8 calls allowed across both gateways, want the burst, 3", allowed)
	}
	if keys, err := rdb.Keys(ctx, "tracegate:rl:*").Result(); err != nil || len(keys) != 1 {
		t.Errorf("Redis keys %q (err %v), want the one global bucket", keys, err)
	}

	srv.Stop()
	for _, g := range gws {
		allowed := 0
		for i := range 4 {
			if err := call(g); err == nil {
				allowed++
			} else if !limited(err) {
				t.Fatalf("Redis down, call %d: %v, want success or -32031", i, err)
			}
		}
		if allowed != 3 {
			t.Errorf("Redis down: %d of 4 allowed, want this gateway's own burst, 3", allowed)
		}
		if n := strings.Count(g.logs.String(), "the shared limiter failed"); n != 1 {
			t.Errorf("fallback logged %d times, want once:\n%s", n, g.logs)
		}
		if strings.Contains(g.logs.String(), password) {
			t.Errorf("the Redis password is in the log:\n%s", g.logs)
		}
	}
}

// A configuration without a cluster section keeps limits per process, and
// an unreadable redis_url is an error that does not show its password.
func TestShareRateLimitsConfig(t *testing.T) {
	rt := &runtime{cfg: config.Default()}
	var opts plugin.Options
	if err := rt.shareRateLimits(&opts); err != nil || opts.SharedLimiter != nil {
		t.Errorf("no cluster section: got limiter %v, err %v; want neither", opts.SharedLimiter, err)
	}
	for _, u := range []string{
		"redis://user:pa55word-x@127.0.0.1:6379/notanumber",
		"redis://user:pa55word-x%zz@127.0.0.1:6379/0",
	} {
		rt := &runtime{cfg: &config.Config{Cluster: &config.Cluster{RedisURL: u}}}
		err := rt.shareRateLimits(&opts)
		if err == nil || strings.Contains(err.Error(), "pa55word") || !strings.Contains(err.Error(), "cluster.redis_url") {
			t.Errorf("%s: got %v, want an error naming cluster.redis_url without the password", u, err)
		}
	}
}
