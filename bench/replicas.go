package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracegate/tracegate/internal/cluster"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
	"github.com/tracegate/tracegate/internal/redisserver"
)

// What replicas cost: gateways sharing sessions through a real
// redis-server, behind a round robin without stickiness, against one
// gateway behind the same round robin code with one target, so that the
// proxy hop is in both and the ratio is the replicas' own cost.
//
// Each worker's requests go through a round robin of its own, so every
// request of a session lands on the other replica than the one before it,
// the worst case for a cluster; one round robin shared by all workers
// would send about half of them to the replica that served the last one.

// replicaSet is the gateways of a replicas scenario and the round robin
// in front of them.
type replicaSet struct {
	redis    *redisserver.Server // nil with one gateway, which has no cluster
	replicas []*benchReplica
	front    *http.Server
	url      string

	// With track set, last holds the replica that served each session's
	// last request, and repeats counts the requests that found the same
	// replica as their session's last one; the tests read them.
	track   bool
	last    sync.Map
	repeats atomic.Int64
}

type benchReplica struct {
	gw   *gateway.Gateway
	cl   *cluster.Cluster // nil with one gateway
	srv  *http.Server
	url  string
	hits atomic.Int64 // MCP requests served
	set  *replicaSet
	i    int
}

// behindRoundRobin returns a serve func that runs n gateways (n > 1:
// replicas sharing sessions through a redis-server started from PATH)
// behind a round robin per worker.
func behindRoundRobin(n int) func(context.Context, upstream) (*path, error) {
	return func(ctx context.Context, up upstream) (*path, error) {
		_, p, err := startReplicaSet(ctx, up.BackendURL, n, false)
		return p, err
	}
}

func startReplicaSet(ctx context.Context, backendURL string, n int, track bool) (_ *replicaSet, _ *path, err error) {
	rs := &replicaSet{track: track}
	defer func() {
		if err != nil {
			rs.close()
		}
	}()
	if n > 1 {
		if rs.redis, err = redisserver.Start(""); err != nil {
			if errors.Is(err, redisserver.ErrNotInstalled) {
				return nil, nil, fmt.Errorf("%w: %v", errSkip, err)
			}
			return nil, nil, err
		}
	}
	var targets []*url.URL
	for i := range n {
		r, err := startBenchReplica(ctx, backendURL, rs, i)
		if r != nil {
			rs.replicas = append(rs.replicas, r)
		}
		if err != nil {
			return nil, nil, err
		}
		u, _ := url.Parse(r.url)
		targets = append(targets, u)
	}
	// Every replica knows every other before the first request.
	for _, r := range rs.replicas {
		if r.cl != nil {
			if err := r.cl.Sync(ctx); err != nil {
				return nil, nil, fmt.Errorf("redis: %w", err)
			}
		}
	}
	// The proxy's connections to the replicas are kept, as a load
	// balancer's are: the default two idle ones per host would churn at
	// c16.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	front := &perWorkerRoundRobin{targets: targets, transport: tr, rr: map[string]*cluster.RoundRobin{}}
	if rs.front, rs.url, err = serveHTTP(ctx, front); err != nil {
		return nil, nil, err
	}
	p := &path{
		endpoint: rs.url + "/w/0/mcp",
		workerEndpoint: func(i int) string {
			return fmt.Sprintf("%s/w/%d/mcp", rs.url, i)
		},
		tool:  gatewayBackend + "_echo",
		close: func() { rs.close(); tr.CloseIdleConnections() },
	}
	if rs.redis != nil {
		p.roundTrips = rs.roundTrips
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := waitForTool(wctx, p); err != nil {
		return nil, nil, err
	}
	return rs, p, nil
}

func startBenchReplica(ctx context.Context, backendURL string, rs *replicaSet, i int) (*benchReplica, error) {
	redis := rs.redis
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	r := &benchReplica{url: "http://" + ln.Addr().String(), set: rs, i: i}
	cfg := &config.Config{Backends: []config.Backend{{
		Name: gatewayBackend, URL: backendURL, Transport: config.TransportStreamable, Timeout: config.Duration(30 * time.Second),
	}}}
	cfg.Tools.NameFormat = "{backend}_{tool}"
	opts := gateway.Options{Logger: discardLogger}
	if redis != nil {
		cfg.Cluster = &config.Cluster{RedisURL: redis.URL(), AdvertiseURL: r.url}
		if r.cl, err = cluster.New(*cfg.Cluster, cluster.Options{Logger: discardLogger}); err != nil {
			ln.Close()
			return nil, err
		}
		r.cl.Start(ctx)
		opts.Cluster = r.cl
	}
	if r.gw, err = gateway.New(cfg, opts); err != nil {
		ln.Close()
		if r.cl != nil {
			r.cl.Close()
		}
		return nil, fmt.Errorf("building gateway: %w", err)
	}
	r.gw.Start(ctx)
	h := r.gw.Handler()
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, "/mcp") {
			r.hits.Add(1)
			if rs.track {
				rs.served(req.Header.Get("Mcp-Session-Id"), i)
			}
		}
		h.ServeHTTP(w, req)
	})}
	go r.srv.Serve(ln)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.gw.WaitReady(wctx); err != nil {
		return r, fmt.Errorf("waiting for the gateway's backend: %w", err)
	}
	return r, nil
}

// served notes that replica i served a request of session id.
func (rs *replicaSet) served(id string, i int) {
	if id == "" {
		return
	}
	if prev, ok := rs.last.Swap(id, i); ok && prev.(int) == i {
		rs.repeats.Add(1)
	}
}

// roundTrips is the Redis round trips of every replica so far.
func (rs *replicaSet) roundTrips() int64 {
	var n int64
	for _, r := range rs.replicas {
		if r.cl != nil {
			n += r.cl.RoundTrips()
		}
	}
	return n
}

func (rs *replicaSet) close() {
	if rs.front != nil {
		rs.front.Close()
	}
	for _, r := range rs.replicas {
		r.srv.Close()
		r.gw.Close()
		if r.cl != nil {
			r.cl.Close()
		}
	}
	if rs.redis != nil {
		rs.redis.Close()
	}
}

// perWorkerRoundRobin serves /w/{worker}/... through the worker's own
// round robin over targets, which gets the rest of the path.
type perWorkerRoundRobin struct {
	targets   []*url.URL
	transport http.RoundTripper

	mu sync.Mutex
	rr map[string]*cluster.RoundRobin
}

func (f *perWorkerRoundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	worker, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/w/"), "/")
	if !ok || !strings.HasPrefix(r.URL.Path, "/w/") {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	rr := f.rr[worker]
	if rr == nil {
		rr = cluster.NewRoundRobin(f.targets, f.transport)
		f.rr[worker] = rr
	}
	f.mu.Unlock()
	// As http.StripPrefix does.
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = new(url.URL)
	*r2.URL = *r.URL
	r2.URL.Path, r2.URL.RawPath = "/"+rest, ""
	rr.ServeHTTP(w, r2)
}
