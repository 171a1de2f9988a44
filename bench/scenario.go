package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
)

var discardLogger = slog.New(slog.DiscardHandler)

// W3C Trace Context trace-flags values for the _meta.traceparent each call
// carries (https://www.w3.org/TR/trace-context/#trace-flags).
const (
	sampled   byte = 0x01
	unsampled byte = 0x00
)

// statefulRevision is the protocol revision the load generator speaks: the
// newest one with sessions, so that each worker has its own session as
// agents have today.
const statefulRevision = "2025-11-25"

// scenario is one path from the load generator to the backend.
type scenario struct {
	name string
	// baseline names the scenario this one is compared with (throughput
	// ratio, added latency, added allocations); "" for none.
	baseline string
	// traceFlags are the trace-flags of every call's _meta.traceparent.
	traceFlags byte
	// middle says the path has a gateway or proxy between the clients and
	// the backend. With -own-process it runs in a process of its own, as
	// it is deployed.
	middle bool
	// otlp says the path exports telemetry: the run starts an OTLP sink
	// for it beside the backend, and checks what arrived.
	otlp bool
	// serve starts the path in front of up and returns where clients
	// connect and the tool name they call there.
	serve func(ctx context.Context, up upstream) (*path, error)
}

// upstream is what a path stands in front of: the backend, and for a
// path that exports telemetry, the OTLP/HTTP receiver (base URL).
type upstream struct {
	BackendURL string `json:"backend_url"`
	OTLPURL    string `json:"otlp_url,omitempty"`
}

// path is a running scenario: clients call tool at endpoint.
type path struct {
	endpoint string
	tool     string
	close    func()
	// shared, if set, is one session every worker calls on (a stdio
	// server directly), instead of a session each at endpoint.
	shared *mcp.ClientSession
	// flush, if set, exports the path's pending telemetry and returns the
	// spans its export queue has dropped so far.
	flush func(context.Context) (dropped int64, err error)
	// stats, if set, reads the CPU time and allocations of the path's own
	// process (a child of the bench).
	stats func(context.Context) (procStats, error)
	// profile, if set, starts a CPU profile of the path's own process to
	// the named file and returns what stops it.
	profile func(ctx context.Context, file string) (stop func() error, err error)
	// workerEndpoint, if set, is where worker i connects, in place of
	// endpoint.
	workerEndpoint func(i int) string
	// roundTrips, if set, is the path's Redis round trips so far.
	roundTrips func() int64
}

// errSkip, in the error of a serve func, drops its scenario from the run,
// with the reason, rather than fail the run: a scenario that needs what
// the machine lacks.
var errSkip = errors.New("scenario skipped")

// scenarios is the list every run measures, in this order.
//
// EXTENSION POINT: plugin scenarios are gateways with other Options. Add
// them here with viaGateway and a baseline of "gateway", e.g.
//
//	{name: "plugins-3-noop", baseline: "gateway", traceFlags: sampled, serve: viaGateway(...)},
//
// The targets for those names are already in targets; they print n/a
// until the scenarios exist. A scenario that exports telemetry sets otlp
// and path.flush (see tracedGateway), and the run checks what it
// exported.
func scenarios() []scenario {
	return []scenario{
		{name: "direct", traceFlags: sampled, serve: direct},
		{name: "gateway", baseline: "direct", traceFlags: sampled, middle: true, serve: viaGateway(plainGateway)},
		// The alternative design: one backend session per client session.
		{name: "per-session-backend", baseline: "gateway", traceFlags: sampled, middle: true, serve: perSessionBackend},
		// A control: the same gateway again. Its ratio to "gateway" should
		// be 1; how far it strays says how noisy the machine was.
		{name: "gateway-control", baseline: "gateway", traceFlags: sampled, middle: true, serve: viaGateway(plainGateway)},
		// Reference: one more HTTP hop and no MCP work, the best any
		// gateway in front of this backend can do.
		{name: "raw-http-proxy", baseline: "direct", traceFlags: sampled, middle: true, serve: rawHTTPProxy},
		{name: "raw-inline-proxy", baseline: "direct", traceFlags: sampled, middle: true, serve: rawInlineProxy},
		// Tracing on, 100% sampled, exporting over OTLP/HTTP; then the
		// same gateway with calls whose trace flags say not sampled.
		{name: "tracing-sampled", baseline: "gateway", traceFlags: sampled, middle: true, otlp: true, serve: tracedGateway},
		{name: "tracing-unsampled", baseline: "gateway", traceFlags: unsampled, middle: true, otlp: true, serve: tracedGateway},
		// The gateway as it runs in production, 100% sampled with OTLP
		// export, against no gateway at all.
		{name: "traced-vs-direct", baseline: "direct", traceFlags: sampled, middle: true, otlp: true, serve: tracedGateway},
		// The plugin chain's own cost: three plugins that let every call
		// through (bench/plugins.go).
		{name: "plugins-3-noop", baseline: "gateway", traceFlags: sampled, middle: true, serve: viaGateway(threeNoopPlugins)},
		// A stdio server: directly, every worker's calls on one session
		// with one child, and the same child behind the gateway.
		{name: "stdio-direct", traceFlags: sampled, serve: stdioDirect},
		{name: "stdio-gateway", baseline: "stdio-direct", traceFlags: sampled, middle: true, serve: stdioGateway},
		// Replicas (bench/replicas.go): one gateway behind a round robin
		// with one target, then two replicas sharing sessions through a
		// redis-server from PATH behind the same round robin code, each
		// request of a session on the other replica than its last.
		{name: "gateway-rr", traceFlags: sampled, serve: behindRoundRobin(1)},
		{name: "replicas", baseline: "gateway-rr", traceFlags: sampled, serve: behindRoundRobin(2)},
	}
}

// direct is the baseline: clients call the backend itself.
func direct(_ context.Context, up upstream) (*path, error) {
	return &path{endpoint: up.BackendURL, tool: "echo", close: func() {}}, nil
}

// plainGateway is the gateway as it ships, with tracing off and no plugins.
func plainGateway(context.Context) (gateway.Options, func(), error) {
	return gateway.Options{}, func() {}, nil
}

// gatewayBackend is the backend's name in the gateway; its tool is
// exposed as gatewayBackend_echo.
const gatewayBackend = "fast"

// viaGateway returns a serve func that runs a tracegate gateway in this
// process, built with the options opts returns, in front of the backend.
// The cleanup opts returns runs after the gateway is closed.
func viaGateway(opts func(context.Context) (gateway.Options, func(), error)) func(context.Context, upstream) (*path, error) {
	return func(ctx context.Context, up upstream) (*path, error) {
		backendURL := up.BackendURL
		o, cleanup, err := opts(ctx)
		if err != nil {
			return nil, fmt.Errorf("gateway options: %w", err)
		}
		if o.Logger == nil {
			o.Logger = discardLogger
		}
		be := config.Backend{
			Name:      gatewayBackend,
			URL:       backendURL,
			Transport: config.TransportStreamable,
			Timeout:   config.Duration(30 * time.Second),
		}
		if backendURL == stdioBackendURL {
			self, err := os.Executable()
			if err != nil {
				cleanup()
				return nil, err
			}
			be.URL, be.Transport = "", config.TransportStdio
			be.Command, be.Env = []string{self}, map[string]string{stdioServerEnv: "1"}
		}
		cfg := &config.Config{Backends: []config.Backend{be}}
		cfg.Tools.NameFormat = "{backend}_{tool}"
		gw, err := gateway.New(cfg, o)
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("building gateway: %w", err)
		}
		gw.Start(ctx)
		stop := func() {
			gw.Close()
			cleanup()
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := gw.WaitReady(wctx); err != nil {
			stop()
			return nil, fmt.Errorf("waiting for the gateway's backend: %w", err)
		}
		srv, url, err := serveHTTP(ctx, gw.Handler())
		if err != nil {
			stop()
			return nil, err
		}
		p := &path{endpoint: url + "/mcp", tool: gatewayBackend + "_echo", close: func() {
			srv.Close()
			stop()
		}}
		// The catalog is published just after the backend turns ready.
		if err := waitForTool(wctx, p); err != nil {
			p.close()
			return nil, err
		}
		return p, nil
	}
}

// serveHTTP serves h on a fresh loopback port.
func serveHTTP(ctx context.Context, h http.Handler) (*http.Server, string, error) {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("listening: %w", err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	return srv, "http://" + ln.Addr().String(), nil
}

// waitForTool polls tools/list until p's tool is listed.
func waitForTool(ctx context.Context, p *path) error {
	c := mcp.NewClient(&mcp.Implementation{Name: "bench-probe", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: p.endpoint, DisableStandaloneSSE: true}, &mcp.ClientSessionOptions{ProtocolVersion: statefulRevision})
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", p.endpoint, err)
	}
	defer cs.Close()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		res, err := cs.ListTools(ctx, nil)
		if err != nil {
			return fmt.Errorf("listing tools at %s: %w", p.endpoint, err)
		}
		if slices.ContainsFunc(res.Tools, func(t *mcp.Tool) bool { return t.Name == p.tool }) {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("tool " + p.tool + " never listed at " + p.endpoint)
		case <-t.C:
		}
	}
}

// stdioServerEnv, set to 1, makes the bench binary serve the echo tool
// over stdio instead of benchmarking.
const stdioServerEnv = "TRACEGATE_BENCH_STDIO"

// stdioBackendURL stands for the stdio backend where a serve func takes a
// backend URL.
const stdioBackendURL = "stdio:"

// serveStdio serves the echo backend on stdin and stdout.
func serveStdio() error {
	return newEchoServer().Run(context.Background(), &mcp.StdioTransport{})
}

// stdioDirect starts the stdio backend as a child and opens one session
// with it, on which every worker calls.
func stdioDirect(ctx context.Context, _ upstream) (*path, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), stdioServerEnv+"=1")
	c := mcp.NewClient(&mcp.Implementation{Name: "bench-agent", Version: "1"}, &mcp.ClientOptions{Logger: discardLogger})
	cs, err := c.Connect(ctx, &mcp.CommandTransport{Command: cmd}, &mcp.ClientSessionOptions{ProtocolVersion: statefulRevision})
	if err != nil {
		return nil, fmt.Errorf("starting the stdio backend: %w", err)
	}
	return &path{tool: "echo", shared: cs, close: func() { cs.Close() }}, nil
}

// stdioGateway is the gateway, as it ships, in front of the same stdio
// backend.
func stdioGateway(ctx context.Context, _ upstream) (*path, error) {
	return viaGateway(plainGateway)(ctx, upstream{BackendURL: stdioBackendURL})
}
