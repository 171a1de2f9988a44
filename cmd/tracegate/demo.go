package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/tracegate/tracegate/examples/demo"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/redisserver"
	"github.com/tracegate/tracegate/internal/telemetry"
	"github.com/tracegate/tracegate/mcptrace"
)

// demoBackendCmd is the hidden subcommand the demo re-executes itself with
// to run its stdio backend as a real child process.
const demoBackendCmd = "demo-backend"

func demoCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "", "Run the gateway with built-in demo backends (weather over HTTP, files over\nstdio) and the trace viewer, with no configuration file.", stdout, stderr)
	listen := fs.String("listen", config.DefaultListen, "MCP listener (port 0 picks a free port)")
	admin := fs.String("admin", config.DefaultAdminListen, "admin listener: trace viewer, metrics, health (port 0 picks a free port)")
	traffic := fs.Bool("traffic", false, "send a steady trickle of sample tool calls")
	httpSpans := fs.Bool("http-spans", false, "add a POST /mcp span per HTTP request, linked from the MCP span")
	logFormat := fs.String("log", "text", "log format: text or json")
	replicas := fs.Int("replicas", 1, fmt.Sprintf("run `N` gateway replicas (2 to %d) sharing sessions through a redis-server from PATH,\nbehind a round robin on -listen", maxDemoReplicas))
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *replicas < 1 || *replicas > maxDemoReplicas {
		fmt.Fprintf(stderr, "tracegate demo: -replicas %d: want 1 (one gateway) to %d\n\n", *replicas, maxDemoReplicas)
		fs.printHelp(stderr)
		return exitUsage
	}
	ctx, stop := signalContext(stderr)
	defer stop()

	// Redis first: without it there is no point starting the rest.
	var redis *redisserver.Server
	if *replicas > 1 {
		var err error
		if redis, err = redisserver.Start(""); err != nil {
			fmt.Fprintf(stderr, "tracegate demo: -replicas %d: %v\n", *replicas, err)
			return exitFail
		}
		// After the replicas, which leave the cluster as they stop.
		defer redis.Close()
	}

	// The viewer's address must be known before the demo backends start,
	// since they export their spans to it.
	adminLn, err := net.Listen("tcp", *admin)
	if err != nil {
		fmt.Fprintf(stderr, "tracegate demo: listen %s: %v\n", *admin, err)
		return exitFail
	}
	defer adminLn.Close()
	otlpURL := "http://" + adminLn.Addr().String()
	forecastURL, closeForecast, err := startForecast(ctx, otlpURL)
	if err != nil {
		fmt.Fprintf(stderr, "tracegate demo: %v\n", err)
		return exitFail
	}
	defer closeForecast()
	weatherURL, closeWeather, err := startWeather(ctx, otlpURL, forecastURL)
	if err != nil {
		fmt.Fprintf(stderr, "tracegate demo: %v\n", err)
		return exitFail
	}
	defer closeWeather()
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "tracegate demo: %v\n", err)
		return exitFail
	}

	cfg := config.Default()
	cfg.Listen, cfg.AdminListen = *listen, adminLn.Addr().String()
	cfg.Log.Format = *logFormat
	cfg.ShutdownGrace = config.Duration(3 * time.Second)
	cfg.Telemetry.HTTPSpans = httpSpans
	childEnv := demoExportEnv(otlpURL)
	childEnv["OTEL_SERVICE_NAME"] = "files-demo"
	cfg.Backends = []config.Backend{
		{Name: "weather", URL: weatherURL, Transport: config.TransportStreamable, Timeout: config.Duration(10 * time.Second), Baggage: config.BaggagePolicy{Mode: config.BaggageAll}},
		{Name: "files", Command: []string{self, demoBackendCmd, "files"}, Transport: config.TransportStdio, Timeout: config.Duration(10 * time.Second), Env: childEnv},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "tracegate demo: %v\n", err)
		return exitFail
	}
	if redis != nil {
		started := func(ctx context.Context, dc *demoCluster, log *slog.Logger) {
			printDemoBanner(stdout, demoBanner{mcpAddr: dc.front, adminAddr: dc.admin, self: selfCommand(self), cluster: dc})
			if *traffic {
				go sendTraffic(ctx, "http://"+dc.front+"/mcp", true, log)
			}
		}
		if err := serveReplicas(ctx, cfg, *replicas, redis.URL(), adminLn, started, stderr); err != nil {
			fmt.Fprintf(stderr, "tracegate demo: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	hooks := serveHooks{adminListener: adminLn, started: func(ctx context.Context, rt *runtime) {
		printDemoBanner(stdout, demoBanner{mcpAddr: rt.mcpAddr, adminAddr: rt.adminAddr, self: selfCommand(self)})
		if *traffic {
			go sendTraffic(ctx, "http://"+rt.mcpAddr+"/mcp", false, rt.log)
		}
	}}
	if err := serve(ctx, cfg, hooks, stderr); err != nil {
		fmt.Fprintf(stderr, "tracegate demo: %v\n", err)
		return exitFail
	}
	return exitOK
}

// selfCommand is how to run this binary again in a command to paste:
// `go run ./cmd/tracegate` when it was started by go run, which builds
// into a temporary directory, else its own path.
func selfCommand(exe string) string {
	if strings.Contains(exe, string(os.PathSeparator)+"go-build") {
		return "go run ./cmd/tracegate"
	}
	return shellQuote(exe)
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:@%,=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// demoBanner is what the demo's banner shows.
type demoBanner struct {
	mcpAddr, adminAddr string
	self               string       // how to run this binary again
	cluster            *demoCluster // with -replicas
}

func printDemoBanner(w io.Writer, b demoBanner) {
	mcpURL := "http://" + b.mcpAddr + "/mcp"
	admin := "http://" + b.adminAddr
	// A fresh trace ID per run, so that the pasted call's trace is its own
	// and never adds to a trace that an earlier run left in a collector.
	tp := randomTraceparent()
	traceID := tp[3:35]
	what, replicas := "weather over HTTP, files over stdio", ""
	if dc := b.cluster; dc != nil {
		what = fmt.Sprintf("a round robin over %d replicas; weather over HTTP, files over stdio", len(dc.replicas))
		var rb strings.Builder
		fmt.Fprintf(&rb, "  redis          %s   (redis-server, no persistence)\n", dc.redisURL)
		for i, r := range dc.replicas {
			label := ""
			if i == 0 {
				label = "replicas"
			}
			fmt.Fprintf(&rb, "  %-14s %s   %s/mcp\n", label, r.id, r.url)
		}
		replicas = rb.String()
	}
	fmt.Fprintf(w, `
tracegate demo is running.

  MCP endpoint   %s   (%s)
%s  trace viewer   %s/ui/
  metrics        %s/metrics
  health         %s/readyz
`, mcpURL, what, replicas, admin, admin, admin)
	if dc := b.cluster; dc != nil {
		fmt.Fprintf(w, `
Each request to the MCP endpoint goes to the next replica in turn, whatever
its session: the replicas share sessions through Redis. Metrics and health
are replica %s's; the viewer has every replica's spans, and its
service.instance.id is the replica's id. A client's answer to a sampling or
elicitation request that lands on another replica than the one whose backend
asked is forwarded to it, in a tracegate.forward span (-traffic makes some,
with weather_ask_assistant):

  %s/ui/?attr=tracegate.forward.operation%%3Danswer
`, dc.replicas[0].id, admin)
	}
	fmt.Fprintf(w, `
Make a traced tool call (it prints a link to its trace in the viewer):

  %s probe -tool weather_get_weather -args '{"city":"Lisbon"}' -otlp %s -viewer %s %s

or with curl, carrying your own trace context:

  curl -s %s -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: weather_get_weather' \
    -H 'traceparent: %s' \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"weather_get_weather","arguments":{"city":"Oslo"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'

and open %s/ui/?trace=%s

Press Ctrl-C to stop.
`, b.self, admin, admin, mcpURL, mcpURL, tp, admin, traceID)
}

// demoExportEnv is the OTLP setup of every demo backend: export to the
// viewer, in batches sent every 200ms rather than the default 5s, so a
// trace is complete in the viewer by the time someone opens it.
func demoExportEnv(otlpURL string) map[string]string {
	return map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": otlpURL,
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_BSP_SCHEDULE_DELAY":     "200",
	}
}

// demoTracing builds a provider for one demo service that sends its spans
// to the gateway's viewer over OTLP/HTTP, as a separate service would.
func demoTracing(ctx context.Context, service, otlpURL string) (*telemetry.Telemetry, error) {
	env := demoExportEnv(otlpURL)
	return telemetry.New(ctx, config.Telemetry{ServiceName: service, Exporter: "otlp"}, telemetry.Options{
		Getenv: func(k string) string { return env[k] },
	})
}

func startForecast(ctx context.Context, otlpURL string) (string, func(), error) {
	tel, err := demoTracing(ctx, "forecast-api", otlpURL)
	if err != nil {
		return "", nil, err
	}
	h := otelhttp.NewHandler(demo.NewForecastAPI(), "forecast-api",
		otelhttp.WithTracerProvider(tel.TracerProvider), otelhttp.WithPropagators(tel.Propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }))
	return serveLocal(h, tel)
}

func startWeather(ctx context.Context, otlpURL, forecastURL string) (string, func(), error) {
	tel, err := demoTracing(ctx, "weather-demo", otlpURL)
	if err != nil {
		return "", nil, err
	}
	client := &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport,
		otelhttp.WithTracerProvider(tel.TracerProvider), otelhttp.WithPropagators(tel.Propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }))}
	s := demo.NewWeatherServer(demo.WeatherOptions{ForecastURL: forecastURL, HTTPClient: client})
	traced := []mcptrace.Option{mcptrace.WithTracerProvider(tel.TracerProvider), mcptrace.WithMeterProvider(tel.MeterProvider), mcptrace.WithPropagators(tel.Propagator)}
	s.AddReceivingMiddleware(mcptrace.ServerMiddleware(append(traced, mcptrace.WithNetworkTransport("tcp", "http", "1.1"))...))
	s.AddSendingMiddleware(mcptrace.ServerSendingMiddleware(traced...))
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	base, closeFn, err := serveLocal(mux, tel)
	return base + "/mcp", closeFn, err
}

func serveLocal(h http.Handler, tel *telemetry.Telemetry) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		tel.Shutdown(ctx)
	}, nil
}

// demoBackend runs a demo backend over stdio, traced and exporting to the
// OTLP endpoint in its environment (the demo points it at the viewer).
func demoBackend(args []string, stderr io.Writer) int {
	if len(args) != 1 || args[0] != "files" {
		fmt.Fprintln(stderr, "usage: tracegate demo-backend files")
		return exitUsage
	}
	ctx, stop := signalContext(stderr)
	defer stop()
	tel, err := telemetry.New(ctx, config.Telemetry{ServiceName: "files-demo", Exporter: "otlp"}, telemetry.Options{Stdout: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "files-demo: %v\n", err)
		return exitFail
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		tel.Shutdown(sctx)
	}()
	s := demo.NewFilesServer()
	traced := []mcptrace.Option{mcptrace.WithTracerProvider(tel.TracerProvider), mcptrace.WithMeterProvider(tel.MeterProvider), mcptrace.WithPropagators(tel.Propagator)}
	s.AddReceivingMiddleware(mcptrace.ServerMiddleware(append(traced, mcptrace.WithNetworkTransport("pipe", "", ""))...))
	if err := s.Run(ctx, &mcp.StdioTransport{}); err != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "files-demo: %v\n", err)
		return exitFail
	}
	return exitOK
}

// sendTraffic makes a sample call about every second until ctx is done, so
// the viewer fills up by itself: fast calls, a slow one, a failing tool, a
// stdio call, one that asks the client to sample (answered here), and now
// and then an unknown tool. With stateful set, the client opens a session
// (what replicas share) rather than speak the stateless revision.
func sendTraffic(ctx context.Context, endpoint string, stateful bool, log *slog.Logger) {
	c := mcp.NewClient(&mcp.Implementation{Name: "demo-traffic", Version: currentBuild.Version}, &mcp.ClientOptions{
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: "demo-model", Role: "assistant", Content: &mcp.TextContent{Text: "mild, with a chance of traces"}}, nil
		},
	})
	var opts *mcp.ClientSessionOptions
	if stateful {
		opts = &mcp.ClientSessionOptions{ProtocolVersion: demoStatefulRevision}
	}
	var cs *mcp.ClientSession
	cities := []string{"Lisbon", "Oslo", "Nairobi", "Atlantis", "Kyoto", "Lima"}
	for i := 0; ctx.Err() == nil; i++ {
		if cs == nil {
			var err error
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			cs, err = c.Connect(cctx, &mcp.StreamableClientTransport{Endpoint: endpoint}, opts)
			cancel()
			if err != nil {
				log.Warn("demo traffic: connect", "error", err)
				sleepCtx(ctx, 2*time.Second)
				continue
			}
		}
		city := cities[rand.IntN(len(cities))]
		var p *mcp.CallToolParams
		switch i % 8 {
		case 3:
			p = &mcp.CallToolParams{Name: "weather_slow_forecast", Arguments: map[string]any{"city": city}}
		case 5:
			p = &mcp.CallToolParams{Name: "weather_flaky_radar", Arguments: map[string]any{"city": city}}
		case 1, 4:
			p = &mcp.CallToolParams{Name: "files_read_file", Arguments: map[string]any{"path": "notes/todo.md"}}
		case 6:
			p = &mcp.CallToolParams{Name: "weather_tornado_alerts", Arguments: map[string]any{}}
		case 7:
			p = &mcp.CallToolParams{Name: "weather_ask_assistant", Arguments: map[string]any{"city": city}}
		default:
			p = &mcp.CallToolParams{Name: "weather_get_weather", Arguments: map[string]any{"city": city}}
		}
		p.Meta = mcp.Meta{"traceparent": randomTraceparent()}
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		_, err := cs.CallTool(cctx, p)
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Debug("demo traffic call failed (some are meant to)", "tool", p.Name, "error", err)
		}
		sleepCtx(ctx, time.Duration(700+rand.IntN(600))*time.Millisecond)
	}
	if cs != nil {
		cs.Close()
	}
}

// demoStatefulRevision is the protocol revision of the demo traffic's
// sessions with -replicas: the newest one with sessions.
const demoStatefulRevision = "2025-11-25"

func randomTraceparent() string {
	return fmt.Sprintf("00-%016x%016x-%016x-01", rand.Uint64(), rand.Uint64(), rand.Uint64()|1)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
