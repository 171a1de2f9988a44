package cluster

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/metric"
)

// registerMetrics exports the replica's view of Redis: whether it is
// reachable, and the round trips made (the cost of sharing sessions,
// which a warm session does not add to).
func (c *Cluster) registerMetrics(mp metric.MeterProvider) error {
	m := mp.Meter("github.com/tracegate/tracegate/internal/cluster")
	up, err := m.Int64ObservableGauge("tracegate.cluster.redis.up",
		metric.WithDescription("1 while this replica reaches the cluster's Redis, else 0."))
	if err != nil {
		return fmt.Errorf("tracegate.cluster.redis.up gauge: %w", err)
	}
	trips, err := m.Int64ObservableCounter("tracegate.cluster.redis.round_trips",
		metric.WithUnit("{round_trip}"),
		metric.WithDescription("Redis round trips this replica made for sessions and membership (rate limits not included)."))
	if err != nil {
		return fmt.Errorf("tracegate.cluster.redis.round_trips counter: %w", err)
	}
	replicas, err := m.Int64ObservableGauge("tracegate.cluster.replicas",
		metric.WithUnit("{replica}"),
		metric.WithDescription("Replicas registered in Redis at this replica's last heartbeat, itself included."))
	if err != nil {
		return fmt.Errorf("tracegate.cluster.replicas gauge: %w", err)
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		v := int64(0)
		if c.Up() {
			v = 1
		}
		o.ObserveInt64(up, v)
		o.ObserveInt64(trips, c.RoundTrips())
		c.mu.RLock()
		o.ObserveInt64(replicas, int64(len(c.members)))
		c.mu.RUnlock()
		return nil
	}, up, trips, replicas)
	return err
}
