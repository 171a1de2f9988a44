package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/redis/go-redis/v9"

	"github.com/tracegate/tracegate/internal/cluster"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/plugin"
	"github.com/tracegate/tracegate/internal/redact"
)

// shareRateLimits gives the ratelimit plugins the replicas' common buckets
// in the Redis of cluster.redis_url, when the configuration has a cluster
// section; without one, each process keeps its own. Opening the client
// does not connect: a Redis that is down at start is one the plugins
// fall back from, like one that goes down later.
func (rt *runtime) shareRateLimits(opts *plugin.Options) error {
	if rt.cfg.Cluster == nil {
		return nil
	}
	c, err := rt.redisClient()
	if err != nil {
		return err
	}
	opts.SharedLimiter = cluster.NewRateLimiter(c)
	return nil
}

// redisClient is the client for cluster.redis_url, made on first use;
// closeCluster closes it.
func (rt *runtime) redisClient() (*redis.Client, error) {
	if rt.redis != nil {
		return rt.redis, nil
	}
	o, err := redisOptions(rt.cfg.Cluster)
	if err != nil {
		return nil, err
	}
	// go-redis logs its pool's dial failures itself; they belong in the
	// gateway's log, which already says when Redis is down.
	redis.SetLogger(redisLogger{rt.log})
	rt.redis = redis.NewClient(o)
	return rt.redis, nil
}

// closeCluster closes the Redis client, if any; it may be called twice.
func (rt *runtime) closeCluster() {
	if rt.redis != nil {
		rt.redis.Close()
		rt.redis = nil
	}
}

// redisOptions reads cluster.redis_url for go-redis. Its errors never
// carry the URL's password.
func redisOptions(cl *config.Cluster) (*redis.Options, error) {
	o, err := redis.ParseURL(cl.RedisURL)
	if err != nil {
		var secret string
		if u, perr := url.Parse(cl.RedisURL); perr == nil {
			secret, _ = u.User.Password()
		}
		return nil, fmt.Errorf("cluster.redis_url %s: %s", redact.URL(cl.RedisURL), redact.Error(err, secret))
	}
	// Each call to Redis is bounded by its context (a rate limit's is
	// 50 ms), not by the client's default 3 s read timeout.
	o.ContextTimeoutEnabled = true
	// One retry (for a pooled connection that Redis closed) and one dial
	// per attempt: callers retry on their own schedule, and a refused
	// connection reaches them as such, not as the timeout of go-redis's
	// retries. ?max_retries= in the URL still applies.
	if o.MaxRetries == 0 {
		o.MaxRetries = 1
	}
	o.DialerRetries = 1
	return o, nil
}

// redisLogger passes go-redis's own log lines to the gateway's log at
// debug level, redacted.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if l.log.Enabled(ctx, slog.LevelDebug) {
		l.log.DebugContext(ctx, "redis: "+redact.String(fmt.Sprintf(format, v...)))
	}
}
