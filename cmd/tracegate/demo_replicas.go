package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/tracegate/tracegate/internal/cluster"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/traceview"
)

// maxDemoReplicas bounds demo -replicas: each replica runs its own stdio
// child.
const maxDemoReplicas = 16

// demoReplica is one gateway of `tracegate demo -replicas N`.
type demoReplica struct {
	id  string
	url string // its MCP listener's base URL, the cluster's advertise_url
	rt  *runtime
	ln  net.Listener
	srv *http.Server
}

// demoCluster is what serveReplicas runs: the replicas, and the round
// robin in front of them on the demo's MCP address.
type demoCluster struct {
	replicas []*demoReplica
	redisURL string
	front    string // the round robin's address
	admin    string // the admin listener's address
}

// serveReplicas runs n replicas of cfg's gateway in this process, sharing
// sessions through the Redis at redisURL, behind a round robin without
// stickiness on cfg.Listen. The admin listener (adminLn) is the first
// replica's, with one viewer store that every replica's spans go to: the
// resource's service.instance.id, the replica's id, tells them apart.
// started is called once everything accepts and every replica knows the
// others. Like serve, it runs until ctx is done, then shuts down: streams
// end, in-flight requests finish within shutdown_grace, each replica
// leaves the cluster and flushes its telemetry.
func serveReplicas(ctx context.Context, cfg *config.Config, n int, redisURL string, adminLn net.Listener, started func(context.Context, *demoCluster, *slog.Logger), stderr io.Writer) (err error) {
	v := cfg.Telemetry.Viewer
	store := traceview.New(traceview.Limits{MaxSpans: v.MaxSpans, MaxBytes: v.MaxBytes})
	dc := &demoCluster{redisURL: redisURL}
	errc := make(chan error, n+2)
	var servers []*http.Server
	defer func() {
		if err != nil {
			for _, s := range servers {
				s.Close()
			}
			for _, r := range dc.replicas {
				r.rt.close(context.Background())
			}
		}
	}()
	var targets []*url.URL
	for range n {
		r, err := startReplica(ctx, cfg, redisURL, store, stderr)
		if err != nil {
			return err
		}
		dc.replicas = append(dc.replicas, r)
		servers = append(servers, r.srv)
		u, _ := url.Parse(r.url)
		targets = append(targets, u)
		go func() { errc <- r.srv.Serve(r.ln) }()
	}
	first := dc.replicas[0].rt
	log := first.log
	errorLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)

	frontLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	dc.front = frontLn.Addr().String()
	front := &http.Server{
		Handler:           cluster.NewRoundRobin(targets, nil),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errorLog,
	}
	servers = append(servers, front)
	go func() { errc <- front.Serve(frontLn) }()

	dc.admin = adminLn.Addr().String()
	first.adminAddr = dc.admin
	adminSrv, err := first.adminServer(nil, errorLog)
	if err != nil {
		adminLn.Close()
		return err
	}
	servers = append(servers, adminSrv)
	go func() { errc <- adminSrv.Serve(adminLn) }()

	for _, r := range dc.replicas {
		r.rt.cluster.Start(ctx)
		r.rt.gateway.Start(ctx)
	}
	// Each replica registered at its start, before the later ones: read
	// the member list again, so that every replica can forward to every
	// other from the first request on.
	for _, r := range dc.replicas {
		if err := r.rt.cluster.Sync(ctx); err != nil {
			return fmt.Errorf("replica %s: redis: %w", r.id, err)
		}
	}
	// The banner says the demo is ready: the backends have had their try.
	for _, r := range dc.replicas {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		r.rt.gateway.WaitReady(wctx)
		cancel()
	}
	first.logStart(cfg.Warnings())
	for _, r := range dc.replicas {
		log.Info("replica listening", "replica", r.id, "mcp", r.url+"/mcp")
	}
	log.Info("tracegate listening", "mcp", "http://"+dc.front+"/mcp", "round_robin_over", n, "admin", "http://"+dc.admin, "backends", len(cfg.Backends))
	if started != nil {
		started(ctx, dc, log)
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	log.Info("shutting down", "grace", first.grace().String(), "flush_timeout", first.flushTimeout().String())
	for _, r := range dc.replicas {
		r.rt.closeStreams()
	}
	shutdownServers(first.grace(), log, servers...)
	var errs []error
	for _, r := range dc.replicas {
		errs = append(errs, r.rt.stop())
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		errs = append(errs, serveErr)
	}
	servers = nil // shut down: nothing for the deferred cleanup
	dc.replicas = nil
	return errors.Join(errs...)
}

// startReplica builds one replica of cfg's gateway on a listener of its
// own, a member of the cluster at redisURL, its spans going to store. Its
// server is not serving yet.
func startReplica(ctx context.Context, cfg *config.Config, redisURL string, store *traceview.Store, stderr io.Writer) (*demoReplica, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &demoReplica{id: cluster.NewID(), url: "http://" + ln.Addr().String()}
	c := *cfg
	c.Cluster = &config.Cluster{RedisURL: redisURL, AdvertiseURL: r.url}
	if err := c.Validate(); err != nil {
		ln.Close()
		return nil, err
	}
	if r.rt, err = buildRuntime(ctx, &c, stderr, runtimeParts{store: store, replicaID: r.id}); err != nil {
		ln.Close()
		return nil, fmt.Errorf("replica %s: %w", r.id, err)
	}
	r.rt.mcpAddr = ln.Addr().String()
	h, err := r.rt.mcpHandler()
	if err != nil {
		ln.Close()
		r.rt.close(context.Background())
		return nil, err
	}
	r.srv = mcpServer(h, slog.NewLogLogger(r.rt.log.Handler(), slog.LevelWarn))
	r.ln = ln
	return r, nil
}
