package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
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
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "MCP listener")
	admin := fs.String("admin", "127.0.0.1:9090", "admin listener: trace viewer, metrics, health")
	traffic := fs.Bool("traffic", false, "send a steady trickle of sample tool calls")
	logFormat := fs.String("log", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	ctx, stop := signalContext(stderr)
	defer stop()

	otlpURL := "http://" + *admin
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
	cfg.Listen, cfg.AdminListen = *listen, *admin
	cfg.Log.Format = *logFormat
	cfg.ShutdownGrace = config.Duration(3 * time.Second)
	cfg.Backends = []config.Backend{
		{Name: "weather", URL: weatherURL, Transport: config.TransportStreamable, Timeout: config.Duration(10 * time.Second), Baggage: config.BaggagePolicy{Mode: config.BaggageAll}},
		{Name: "files", Command: []string{self, demoBackendCmd, "files"}, Transport: config.TransportStdio, Timeout: config.Duration(10 * time.Second),
			Env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": otlpURL, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_SERVICE_NAME": "files-demo"}},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "tracegate demo: %v\n", err)
		return exitFail
	}
	hooks := serveHooks{started: func(ctx context.Context, rt *runtime) {
		printDemoBanner(stdout, rt)
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

func printDemoBanner(w io.Writer, rt *runtime) {
	mcpURL := "http://" + rt.mcpAddr + "/mcp"
	ui := "http://" + rt.adminAddr + "/ui/"
	fmt.Fprintf(w, `
tracegate demo is running.

  MCP endpoint   %s   (weather over HTTP, files over stdio)
  trace viewer   %s
  metrics        http://%s/metrics
  health         http://%s/readyz

Make a traced tool call (then open the viewer and click the newest trace):

  go run ./cmd/tracegate probe -tool weather_get_weather -args '{"city":"Lisbon"}' -viewer http://%s %s

or with curl, carrying your own trace context:

  curl -s %s -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'MCP-Protocol-Version: 2026-07-28' -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"weather_get_weather","arguments":{"city":"Oslo"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'

Press Ctrl-C to stop.
`, mcpURL, ui, rt.adminAddr, rt.adminAddr, rt.adminAddr, mcpURL, mcpURL)
}

// demoTracing builds a provider for one demo service that sends its spans
// to the gateway's viewer over OTLP/HTTP, as a separate service would.
func demoTracing(ctx context.Context, service, otlpURL string) (*telemetry.Telemetry, error) {
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": otlpURL, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
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
	c := mcp.NewClient(&mcp.Implementation{Name: "demo-traffic", Version: version}, nil)
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
