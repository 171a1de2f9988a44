package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tracegate/tracegate/internal/redact"
)

// rateKeyPrefix begins the Redis key of every rate limit bucket.
const rateKeyPrefix = "tracegate:rl:"

// gcra is the generic cell rate algorithm (ITU-T I.371, the virtual
// scheduling form) for one bucket, run atomically by Redis. The bucket is
// a single value, its theoretical arrival time (TAT): when the next call
// would be due if calls came exactly at the sustained rate. A call at now
// conforms when the TAT it would push the bucket to lies no more than
// burst intervals ahead of now; the key then lives until that TAT, after
// which a missing key is the same as a full bucket.
//
// Times are whole microseconds, which a Lua number (a double) holds
// exactly for millennia. "now" is the server's clock, so the replicas'
// clocks do not matter; ARGV[3] replaces it only in tests.
//
//	KEYS[1]  the bucket
//	ARGV[1]  emission interval: microseconds between calls at the rate
//	ARGV[2]  burst: calls a full bucket allows at once
//	ARGV[3]  optional: now, in microseconds since the epoch
//
// It returns {1, 0} when the call may go on, else {0, microseconds until
// it would}.
var gcra = redis.NewScript(`
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local next_tat = tat + interval
local allow_at = next_tat - burst * interval
if allow_at > now then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], next_tat, 'PX', math.ceil((next_tat - now) / 1000))
return {1, 0}
`)

// RateLimiter is a rate limiter whose buckets live in Redis, shared by
// every replica that uses the same Redis: each Take is one atomic script
// run (EVALSHA, falling back to EVAL when Redis lacks the script, after a
// restart say). It is safe for concurrent use, and it is the ratelimit
// plugin's plugin.SharedLimiter.
//
// A bucket's key is rateKeyPrefix and a SHA-256 of the caller's key, rate
// and burst, so a key's content (a session ID, a caller's identity) is
// not visible in Redis, and a changed limit starts afresh. Idle buckets
// expire once full again.
type RateLimiter struct {
	client redis.Scripter
	redact *redact.Redactor // the client's password, kept out of errors
	// now, in tests, is passed to the script in place of Redis's clock.
	now func() time.Time
}

// NewRateLimiter returns a limiter over c. Every call takes its deadline
// from its context when c's options have ContextTimeoutEnabled.
func NewRateLimiter(c *redis.Client) *RateLimiter {
	return &RateLimiter{client: c, redact: redact.New(c.Options().Password)}
}

// Take spends one call from key's bucket, which refills at rate calls per
// second up to burst; it returns whether the call may go on, and if not,
// how long until one may. The rate is kept to the microsecond between
// calls: exact for a rate that divides a second evenly, otherwise within
// half a microsecond per call.
func (l *RateLimiter) Take(ctx context.Context, key string, rate float64, burst int) (bool, time.Duration, error) {
	if !(rate > 0) || math.IsInf(rate, 0) || burst < 1 {
		return false, 0, fmt.Errorf("rate limit in redis: invalid rate %v/s or burst %d", rate, burst)
	}
	interval := max(1, int64(math.Round(1e6/rate)))
	keys := []string{bucketKey(key, interval, burst)}
	args := []any{interval, burst}
	if l.now != nil {
		args = append(args, l.now().UnixMicro())
	}
	res, err := gcra.Run(ctx, l.client, keys, args...).Int64Slice()
	if err != nil {
		return false, 0, &redisError{err: err, msg: "rate limit in redis: " + l.redact.Error(err)}
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("rate limit in redis: got %d values from the script, want 2", len(res))
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
}

// bucketKey is the Redis key of key's bucket at this interval and burst.
func bucketKey(key string, interval int64, burst int) string {
	var buf [128]byte // most keys fit: no allocation but the result
	b := binary.BigEndian.AppendUint64(buf[:0], uint64(interval))
	b = binary.BigEndian.AppendUint64(b, uint64(burst))
	sum := sha256.Sum256(append(b, key...))
	var hx [32]byte
	hex.Encode(hx[:], sum[:16])
	return rateKeyPrefix + string(hx[:])
}

// redisError is a go-redis error whose text has been redacted; Unwrap
// keeps the original for errors.Is (a deadline, a closed client).
type redisError struct {
	err error
	msg string
}

func (e *redisError) Error() string { return e.msg }

func (e *redisError) Unwrap() error { return e.err }
