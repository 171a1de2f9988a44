package main

import (
	"context"
	"fmt"
	"io"
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
	if code, done := parseFlags(fs, args); done {
		return code
	}
	ctx, stop := signalContext(stderr)
	defer stop()

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
	hooks := serveHooks{adminListener: adminLn, started: func(ctx context.Context, rt *runtime) {
		printDemoBanner(stdout, rt, selfCommand(self))
		if *traffic {
			go sendTraffic(ctx, "http://"+rt.mcpAddr+"/mcp", rt)
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

func printDemoBanner(w io.Writer, rt *runtime, self string) {
	mcpURL := "http://" + rt.mcpAddr + "/mcp"
	admin := "http://" + rt.adminAddr
	// A fresh trace ID per run, so that the pasted call's trace is its own
	// and never adds to a trace that an earlier run left in a collector.
	tp := randomTraceparent()
	traceID := tp[3:35]
	fmt.Fprintf(w, `
tracegate demo is running.

  MCP endpoint   %s   (weather over HTTP, files over stdio)
  trace viewer   %s/ui/
  metrics        %s/metrics
  health         %s/readyz

Make a traced tool call (it prints a link to its trace in the viewer):

  %s probe -tool weather_get_weather -args '{"city":"Lisbon"}' -otlp %s -viewer %s %s

or with curl, carrying your own trace context:

  curl -s %s -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: weather_get_weather' \
    -H 'traceparent: %s' \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"weather_get_weather","arguments":{"city":"Oslo"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'

and open %s/ui/?trace=%s

Press Ctrl-C to stop.
`, mcpURL, admin, admin, admin, self, admin, admin, mcpURL, mcpURL, tp, admin, traceID)
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
// stdio call, and now and then an unknown tool.
func sendTraffic(ctx context.Context, endpoint string, rt *runtime) {
	c := mcp.NewClient(&mcp.Implementation{Name: "demo-traffic", Version: currentBuild.Version}, nil)
	var cs *mcp.ClientSession
	cities := []string{"Lisbon", "Oslo", "Nairobi", "Atlantis", "Kyoto", "Lima"}
	for i := 0; ctx.Err() == nil; i++ {
		if cs == nil {
			var err error
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			cs, err = c.Connect(cctx, &mcp.StreamableClientTransport{Endpoint: endpoint}, nil)
			cancel()
			if err != nil {
				rt.log.Warn("demo traffic: connect", "error", err)
				sleepCtx(ctx, 2*time.Second)
				continue
			}
		}
		city := cities[rand.IntN(len(cities))]
		var p *mcp.CallToolParams
		switch i % 7 {
		case 3:
			p = &mcp.CallToolParams{Name: "weather_slow_forecast", Arguments: map[string]any{"city": city}}
		case 5:
			p = &mcp.CallToolParams{Name: "weather_flaky_radar", Arguments: map[string]any{"city": city}}
		case 1, 4:
			p = &mcp.CallToolParams{Name: "files_read_file", Arguments: map[string]any{"path": "notes/todo.md"}}
		case 6:
			p = &mcp.CallToolParams{Name: "weather_tornado_alerts", Arguments: map[string]any{}}
		default:
			p = &mcp.CallToolParams{Name: "weather_get_weather", Arguments: map[string]any{"city": city}}
		}
		p.Meta = mcp.Meta{"traceparent": randomTraceparent()}
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		_, err := cs.CallTool(cctx, p)
		cancel()
		if err != nil && ctx.Err() == nil {
			rt.log.Debug("demo traffic call failed (some are meant to)", "tool", p.Name, "error", err)
		}
		sleepCtx(ctx, time.Duration(700+rand.IntN(600))*time.Millisecond)
	}
	if cs != nil {
		cs.Close()
	}
}

func randomTraceparent() string {
	return fmt.Sprintf("00-%016x%016x-%016x-01", rand.Uint64(), rand.Uint64(), rand.Uint64()|1)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
