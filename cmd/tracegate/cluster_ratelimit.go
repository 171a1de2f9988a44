package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/tracegate/tracegate/internal/cluster"
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
	c, err := rt.openCluster()
	if err != nil {
		return err
	}
	opts.SharedLimiter = cluster.NewRateLimiter(c.Redis())
	return nil
}

// openCluster makes the replica's cluster membership, once, for
// cluster.redis_url; serve starts it, and closeCluster ends it. Sessions
// and rate limits share its one Redis client.
func (rt *runtime) openCluster() (*cluster.Cluster, error) {
	if rt.cluster != nil {
		return rt.cluster, nil
	}
	opts := cluster.Options{Logger: rt.log, ID: rt.replicaID}
	if rt.tel != nil {
		opts.TracerProvider, opts.MeterProvider = rt.tel.TracerProvider, rt.tel.MeterProvider
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c, err := cluster.New(*rt.cfg.Cluster, opts)
	if err != nil {
		return nil, err
	}
	// go-redis logs its pool's dial failures itself; they belong in the
	// gateway's log, which already says when Redis is down.
	redis.SetLogger(redisLogger{opts.Logger})
	rt.cluster = c
	return c, nil
}

// closeCluster leaves the cluster, if any; it may be called twice.
func (rt *runtime) closeCluster() {
	if rt.cluster != nil {
		rt.cluster.Close()
		rt.cluster = nil
	}
}

// redisLogger passes go-redis's own log lines to the gateway's log at
// debug level, redacted.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if l.log.Enabled(ctx, slog.LevelDebug) {
		l.log.DebugContext(ctx, "redis: "+redact.String(fmt.Sprintf(format, v...)))
	}
}
