// Package cluster lets several tracegate replicas serve the same client
// sessions behind a load balancer that needs no stickiness.
//
// The design, in one paragraph: Redis is the rendezvous, each replica a
// cache. A session's state (what initialize negotiated, the trace context
// it keeps, its log level and subscriptions, which replica holds its GET
// stream) is one small record in Redis. The replica that opens a session
// writes it; any other replica that gets a request for it reads it once
// and serves it from memory from then on, so a call costs no Redis round
// trip once each replica has seen the session. What must reach one
// particular replica (a client's answer to a request a backend sent
// through that replica, a cancellation of a call running there, a change
// to a session whose stream it holds) is forwarded to it over HTTP, inside
// a tracegate.forward CLIENT span whose context travels in the headers.
//
// Redis is never waited on for longer than Options.Timeout. While it is
// unreachable, operations fail at once instead of each waiting out the
// bound, sessions a replica holds keep working there, and a health loop
// notices recovery and tells the gateway, which writes back what it could
// not write meanwhile.
package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/redact"
)

// Defaults of Options.
const (
	// DefaultTimeout bounds one Redis operation.
	DefaultTimeout = 250 * time.Millisecond
	// memberTTL is how long a replica stays listed without a heartbeat;
	// it renews every memberTTL/3.
	memberTTL = 15 * time.Second
	// healthEvery spaces the health pings while Redis is down.
	healthEvery = 500 * time.Millisecond
)

// ErrUnavailable is returned, at once, for any Redis operation while Redis
// is unreachable.
var ErrUnavailable = errors.New("cluster: redis is unreachable")

// ErrNotFound is returned by LoadSession for a session Redis does not have.
var ErrNotFound = errors.New("cluster: no such session")

// Options configure a Cluster. The zero value works.
type Options struct {
	Logger *slog.Logger
	// TracerProvider makes the tracegate.forward spans. If nil, none.
	TracerProvider trace.TracerProvider
	// Propagator carries a forward's trace context in its headers. If
	// nil, W3C trace context and baggage.
	Propagator propagation.TextMapPropagator
	// Timeout bounds each Redis operation (default DefaultTimeout).
	Timeout time.Duration
	// MeterProvider, if set, gets the tracegate.cluster.* metrics.
	MeterProvider metric.MeterProvider
	// ID is the replica's id. If empty, NewID makes one. A process that
	// names itself before it joins (tracegate demo -replicas puts the id
	// in each replica's service.instance.id) sets it: 1 to 32 lowercase
	// letters and digits, since it is part of the ids of the requests
	// relayed through the replica.
	ID string
}

// NewID returns a fresh replica id: 8 random hex digits.
func NewID() string {
	var id [4]byte
	rand.Read(id[:])
	return hex.EncodeToString(id[:])
}

func validID(id string) bool {
	if id == "" || len(id) > 32 {
		return false
	}
	for _, c := range id {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Member is one replica.
type Member struct {
	ID  string // short and random, made at start
	URL string // advertise_url: where the other replicas reach it
}

// Cluster is one replica's view of the cluster.
type Cluster struct {
	opts   Options
	log    *slog.Logger
	rdb    *redis.Client
	self   Member
	key    []byte // authenticates forwards between replicas
	secret string // Redis' password, kept out of errors
	tracer trace.Tracer
	prop   propagation.TextMapPropagator

	up        atomic.Bool
	onRecover atomic.Pointer[func()]
	ops       atomic.Int64 // Redis round trips, for the bench and the metric
	kick      chan struct{}
	cancel    context.CancelFunc
	done      chan struct{}

	mu      sync.RWMutex
	members map[string]Member

	fw *forwarder
}

// New makes the replica's cluster membership for cfg. It does not reach
// Redis until Start.
func New(cfg config.Cluster, opts Options) (*Cluster, error) {
	ro, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		// go-redis errors may quote the URL; the password must not reach
		// logs.
		var secret string
		if u, perr := url.Parse(cfg.RedisURL); perr == nil {
			secret, _ = u.User.Password()
		}
		return nil, fmt.Errorf("cluster.redis_url %s: %s", redact.URL(cfg.RedisURL), redact.Error(err, secret))
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = cfg.Timeout.D()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Propagator == nil {
		opts.Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	tp := opts.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	adv, err := url.Parse(cfg.AdvertiseURL)
	if err != nil || adv.Host == "" {
		return nil, fmt.Errorf("cluster.advertise_url %q: want an http or https base URL", cfg.AdvertiseURL)
	}
	// Each operation is bounded by its context. One retry (for a pooled
	// connection Redis closed) and one dial per attempt, within that
	// bound; ?max_retries= in the URL still applies.
	if ro.MaxRetries == 0 {
		ro.MaxRetries = 1
	}
	ro.DialerRetries = 1
	ro.DialTimeout = opts.Timeout
	ro.ReadTimeout = opts.Timeout
	ro.WriteTimeout = opts.Timeout
	ro.ContextTimeoutEnabled = true
	ro.PoolTimeout = opts.Timeout
	if opts.ID == "" {
		opts.ID = NewID()
	}
	if !validID(opts.ID) {
		return nil, fmt.Errorf("cluster: replica id %q: want 1 to 32 lowercase letters and digits", opts.ID)
	}
	c := &Cluster{
		opts:    opts,
		log:     opts.Logger,
		rdb:     redis.NewClient(ro),
		self:    Member{ID: opts.ID, URL: strings.TrimSuffix(cfg.AdvertiseURL, "/")},
		tracer:  tp.Tracer("github.com/tracegate/tracegate/internal/cluster"),
		prop:    opts.Propagator,
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		members: map[string]Member{},
	}
	if opts.MeterProvider != nil {
		if err := c.registerMetrics(opts.MeterProvider); err != nil {
			c.log.Warn("cluster metrics", "error", err.Error())
		}
	}
	c.key = forwardKey(cfg, ro.Password)
	c.secret = ro.Password
	c.fw = newForwarder(c)
	return c, nil
}

// forwardKey is the key replicas authenticate forwards with: the
// configured secret, or one derived from the Redis URL and password,
// which every replica of the cluster is given.
func forwardKey(cfg config.Cluster, password string) []byte {
	mac := hmac.New(sha256.New, []byte("tracegate cluster forward key"))
	if cfg.Secret != "" {
		mac.Write([]byte(cfg.Secret))
	} else {
		mac.Write([]byte(cfg.RedisURL))
		mac.Write([]byte{0})
		mac.Write([]byte(password))
	}
	return mac.Sum(nil)
}

// OnRecover sets fn to be called, in its own goroutine, each time Redis
// becomes reachable after it was not.
func (c *Cluster) OnRecover(fn func()) { c.onRecover.Store(&fn) }

// Self is this replica.
func (c *Cluster) Self() Member { return c.self }

// Up reports whether Redis was reachable at the last operation or ping.
func (c *Cluster) Up() bool { return c.up.Load() }

// RoundTrips is the number of Redis round trips made so far.
func (c *Cluster) RoundTrips() int64 { return c.ops.Load() }

// Redis is the replica's Redis client, for cluster-wide policy (rate
// limits). Its operations are bounded by Options.Timeout.
func (c *Cluster) Redis() *redis.Client { return c.rdb }

// Timeout is the bound on one Redis operation.
func (c *Cluster) Timeout() time.Duration { return c.opts.Timeout }

// Start joins the cluster: it registers the replica and keeps its
// registration and the member list fresh, and watches Redis' health.
func (c *Cluster) Start(ctx context.Context) {
	ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if c.heartbeat(ctx) != nil {
		c.setUp(false)
	}
	go c.loop(ctx)
}

// Close leaves the cluster: the replica's registration is removed so no
// other replica forwards to it, and the Redis client closes.
func (c *Cluster) Close() error {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
	if c.up.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
		c.rdb.ZRem(ctx, membersKey, c.self.ID+" "+c.self.URL)
		cancel()
	}
	c.fw.close()
	return c.rdb.Close()
}

func (c *Cluster) loop(ctx context.Context) {
	defer close(c.done)
	beat := time.NewTicker(memberTTL / 3)
	defer beat.Stop()
	health := time.NewTicker(healthEvery)
	defer health.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			c.heartbeat(ctx)
		case <-health.C:
			if !c.up.Load() {
				c.heartbeat(ctx)
			}
		case <-c.kick:
			c.heartbeat(ctx)
		}
	}
}

// Redis keys. One prefix for all, so an operator can find them.
const (
	prefix     = "tracegate:"
	membersKey = prefix + "members" // sorted set: "id url" scored by expiry (unix ms)
)

// heartbeat renews the replica's registration and reads the members.
func (c *Cluster) heartbeat(ctx context.Context) error {
	now := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	var members *redis.StringSliceCmd
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, membersKey, redis.Z{Score: float64(now.Add(memberTTL).UnixMilli()), Member: c.self.ID + " " + c.self.URL})
		p.ZRemRangeByScore(ctx, membersKey, "-inf", fmt.Sprint(now.UnixMilli()))
		members = p.ZRange(ctx, membersKey, 0, -1)
		return nil
	})
	c.ops.Add(1)
	if err != nil {
		c.failed(err)
		return err
	}
	m := map[string]Member{}
	for _, v := range members.Val() {
		id, u, ok := strings.Cut(v, " ")
		if ok {
			m[id] = Member{ID: id, URL: u}
		}
	}
	c.mu.Lock()
	c.members = m
	c.mu.Unlock()
	c.setUp(true)
	return nil
}

// Sync renews the replica's registration and reads the member list now,
// rather than at the next heartbeat.
func (c *Cluster) Sync(ctx context.Context) error { return c.heartbeat(ctx) }

// Members returns the replicas registered at the last heartbeat, this one
// included.
func (c *Cluster) Members() []Member {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Member, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, m)
	}
	return out
}

// Member returns the replica id names: as of the last heartbeat, or, for
// one that joined since, as Redis has it now.
func (c *Cluster) Member(id string) (Member, bool) {
	c.mu.RLock()
	m, ok := c.members[id]
	c.mu.RUnlock()
	if ok || !c.up.Load() {
		return m, ok
	}
	if c.heartbeat(context.Background()) != nil {
		return m, false
	}
	c.mu.RLock()
	m, ok = c.members[id]
	c.mu.RUnlock()
	return m, ok
}

func (c *Cluster) setUp(up bool) {
	was := c.up.Swap(up)
	switch {
	case up && !was:
		c.log.Info("cluster: redis is reachable; sessions are shared between replicas", "replica", c.self.ID)
		if fn := c.onRecover.Load(); fn != nil {
			go (*fn)()
		}
	case !up && was:
		c.log.Warn("cluster: redis is unreachable; each replica serves the sessions it holds until it is back", "replica", c.self.ID)
	}
}

// failed notes a failed Redis operation: a network failure or timeout
// marks Redis down (operations then fail at once) until a health ping
// succeeds.
func (c *Cluster) failed(err error) {
	if err == nil || errors.Is(err, redis.Nil) {
		return
	}
	var re redis.Error
	if errors.As(err, &re) {
		// Redis answered: it is up, the command was wrong.
		return
	}
	c.setUp(false)
}

// do runs one bounded Redis operation, or fails at once while Redis is
// down.
func (c *Cluster) do(ctx context.Context, op func(context.Context) error) error {
	if !c.up.Load() {
		return ErrUnavailable
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.Timeout)
	defer cancel()
	c.ops.Add(1)
	err := op(ctx)
	if err != nil && !errors.Is(err, redis.Nil) {
		c.failed(err)
		if !c.up.Load() {
			select {
			case c.kick <- struct{}{}:
			default:
			}
			return fmt.Errorf("%w: %s", ErrUnavailable, redact.Error(err, c.secret))
		}
	}
	return err
}
