package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Session records. The gateway decides what a record holds (it is opaque
// here); this file keeps them in Redis under tracegate:session:{id}, each
// with the session idle timeout as its TTL, renewed while the session is
// used.

func sessionKey(id string) string { return prefix + "session:" + id }

// SaveSession writes a session's record, with ttl.
func (c *Cluster) SaveSession(ctx context.Context, id string, record []byte, ttl time.Duration) error {
	return c.do(ctx, func(ctx context.Context) error {
		return c.rdb.Set(ctx, sessionKey(id), record, ttl).Err()
	})
}

// RestoreSessions writes back the records of sessions this replica holds
// after Redis came back, each only where Redis has none: a record another
// replica wrote since is newer than the copy held here.
func (c *Cluster) RestoreSessions(ctx context.Context, records map[string][]byte, ttl time.Duration) error {
	if len(records) == 0 {
		return nil
	}
	return c.do(ctx, func(ctx context.Context) error {
		_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for id, rec := range records {
				p.SetNX(ctx, sessionKey(id), rec, ttl)
			}
			return nil
		})
		return err
	})
}

// LoadSession reads a session's record: ErrNotFound when Redis has none,
// ErrUnavailable (at once, or within the bound) when Redis can't be asked.
func (c *Cluster) LoadSession(ctx context.Context, id string) ([]byte, error) {
	var rec []byte
	err := c.do(ctx, func(ctx context.Context) error {
		var err error
		rec, err = c.rdb.Get(ctx, sessionKey(id)).Bytes()
		return err
	})
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	return rec, err
}

// DeleteSession removes a session's record.
func (c *Cluster) DeleteSession(ctx context.Context, id string) error {
	return c.do(ctx, func(ctx context.Context) error {
		return c.rdb.Del(ctx, sessionKey(id)).Err()
	})
}

// RenewSessions extends the TTL of the sessions used since the last
// renewal, in one round trip however many there are.
func (c *Cluster) RenewSessions(ctx context.Context, ids []string, ttl time.Duration) error {
	if len(ids) == 0 {
		return nil
	}
	return c.do(ctx, func(ctx context.Context) error {
		_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, id := range ids {
				p.Expire(ctx, sessionKey(id), ttl)
			}
			return nil
		})
		return err
	})
}
