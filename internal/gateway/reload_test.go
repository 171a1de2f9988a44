package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/examples/demo"
	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
	"github.com/tracegate/tracegate/internal/plugin"
	"github.com/tracegate/tracegate/mcptrace"
)

// reloadOptions are the options a reload of cfg gets: its plugin chain.
func reloadOptions(t *testing.T, cfg *config.Config) gateway.Options {
	t.Helper()
	chain, err := plugin.New(cfg.Plugins, plugin.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return gateway.Options{Plugins: chain}
}

// connectWith opens a go-sdk session on endpoint with a bearer token.
func connectWith(t *testing.T, endpoint, token string, copts *mcp.ClientOptions) (*mcp.ClientSession, error) {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, copts)
	cs, err := c.Connect(ctxT(t), &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: bearerTransport{token}}},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err == nil {
		t.Cleanup(func() { cs.Close() })
	}
	return cs, err
}

// TestReloadUnderLoad reloads a gateway while several go-sdk clients call
// tools without pause: the reload adds a backend, removes one, replaces
// a third (its settings changed), changes a deny rule and the bearer
// tokens. No call that should succeed fails, no session of /mcp or of the
// replaced backend's endpoint is dropped, and /mcp's clients get
// tools/list_changed and the new catalog.
func TestReloadUnderLoad(t *testing.T) {
	weather := startWeather(t, demo.WeatherOptions{})
	extra := startWeather(t, demo.WeatherOptions{})
	cfg := baseConfig(weatherCfg(weather.url()), filesCfg())
	cfg.Auth.BearerTokens = []config.BearerToken{{Name: "agent", Token: "keep-token"}, {Name: "retired", Token: "old-token"}}
	cfg.Plugins = []config.Plugin{{Name: "policy", Type: "deny", Tools: []string{"weather_flaky_radar"}}}
	var stateMu sync.Mutex
	lastState := map[string]string{}
	opts := reloadOptions(t, cfg)
	opts.OnBackendState = func(name, state string, _ time.Time, _ string) {
		stateMu.Lock()
		defer stateMu.Unlock()
		lastState[name] = state
	}
	gw := startGateway(t, cfg, opts)

	listChanged := make(chan struct{}, 16)
	watcher, err := connectWith(t, gw.url+"/mcp", "keep-token", &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			select {
			case listChanged <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := call(t, watcher, "weather_flaky_radar", map[string]any{"city": "Oslo"}); rpcCode(err) != plugin.CodeDenied {
		t.Fatalf("weather_flaky_radar before the reload: got %v, want code %d (denied)", err, plugin.CodeDenied)
	}
	filesSession, err := connectWith(t, gw.url+"/mcp/files", "keep-token", nil)
	if err != nil {
		t.Fatal(err)
	}

	// The load: four sessions on /mcp and one on /mcp/weather, each
	// calling without pause until told to stop.
	type worker struct {
		cs    *mcp.ClientSession
		tool  string
		after atomic.Int64 // calls answered since the reload returned
	}
	var workers []*worker
	for range 4 {
		cs, err := connectWith(t, gw.url+"/mcp", "keep-token", nil)
		if err != nil {
			t.Fatal(err)
		}
		workers = append(workers, &worker{cs: cs, tool: "weather_get_weather"})
	}
	cs, err := connectWith(t, gw.url+"/mcp/weather", "keep-token", nil)
	if err != nil {
		t.Fatal(err)
	}
	workers = append(workers, &worker{cs: cs, tool: "get_weather"})

	var (
		reloaded atomic.Bool
		calls    atomic.Int64
		failMu   sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	for i, w := range workers {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				city := fmt.Sprintf("City%d-%d", i, n)
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				res, err := w.cs.CallTool(ctx, &mcp.CallToolParams{Name: w.tool, Arguments: map[string]any{"city": city}})
				cancel()
				after := reloaded.Load()
				switch {
				case err != nil:
					failMu.Lock()
					failures = append(failures, fmt.Sprintf("worker %d (%s): %v", i, w.tool, err))
					failMu.Unlock()
				case res.IsError || !strings.Contains(text(res), city):
					failMu.Lock()
					failures = append(failures, fmt.Sprintf("worker %d (%s): got %q, want the weather of %s", i, w.tool, text(res), city))
					failMu.Unlock()
				}
				calls.Add(1)
				if after {
					w.after.Add(1)
				}
			}
		})
	}
	eventually(t, 20*time.Second, "calls under way before the reload", func() bool { return calls.Load() >= 20 })

	// weather is replaced (its timeout changed), files removed, extra
	// added; the deny rule moves to another tool; one token goes and
	// another comes.
	next := baseConfig(config.Backend{Name: "weather", URL: weather.url(), Transport: config.TransportStreamable, Timeout: config.Duration(6 * time.Second)},
		config.Backend{Name: "extra", URL: extra.url(), Transport: config.TransportStreamable, Timeout: config.Duration(5 * time.Second)})
	next.Auth.BearerTokens = []config.BearerToken{{Name: "agent", Token: "keep-token"}, {Name: "fresh", Token: "new-token"}}
	next.Plugins = []config.Plugin{{Name: "policy", Type: "deny", Tools: []string{"weather_slow_forecast"}}}
	rep, err := gw.gw.Reload(ctxT(t), next, reloadOptions(t, next))
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	reloaded.Store(true)
	if fmt.Sprint(rep.Added, rep.Removed, rep.Changed) != "[extra] [files] [weather]" {
		t.Errorf("reload: added %v, removed %v, changed %v; want [extra] [files] [weather]", rep.Added, rep.Removed, rep.Changed)
	}
	eventually(t, 30*time.Second, "each worker answered after the reload", func() bool {
		for _, w := range workers {
			if w.after.Load() < 3 {
				return false
			}
		}
		return true
	})
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d calls failed across the reload:\n%s", len(failures), calls.Load(), strings.Join(failures, "\n"))
	}

	// /mcp's clients were told, and see the new catalog.
	select {
	case <-listChanged:
	case <-ctxT(t).Done():
		t.Fatal("no notifications/tools/list_changed after the reload")
	}
	names := toolNames(t, watcher)
	if !slices.Contains(names, "extra_get_weather") || !slices.Contains(names, "weather_get_weather") || slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "files_") }) {
		t.Errorf("tools after the reload: %v, want extra_* and weather_* and no files_*", names)
	}
	wantWeather(t, watcher, "Lisbon")
	if res, err := call(t, watcher, "extra_get_weather", map[string]any{"city": "Nairobi"}); err != nil || !strings.Contains(text(res), "Nairobi") {
		t.Errorf("extra_get_weather: %v %v", textOrNil(res), err)
	}

	// The deny rule in force is the new one.
	if res, err := call(t, watcher, "weather_flaky_radar", map[string]any{"city": "Oslo"}); err != nil || !res.IsError {
		t.Errorf("weather_flaky_radar after the reload: got %v %v, want the backend's tool error (no longer denied)", textOrNil(res), err)
	}
	if _, err := call(t, watcher, "weather_slow_forecast", map[string]any{"city": "Oslo"}); rpcCode(err) != plugin.CodeDenied {
		t.Errorf("weather_slow_forecast after the reload: got %v, want code %d (denied)", err, plugin.CodeDenied)
	}

	// The tokens in force are the new ones.
	if _, err := connectWith(t, gw.url+"/mcp", "old-token", nil); err == nil {
		t.Error("a removed token still opens a session")
	}
	if _, err := connectWith(t, gw.url+"/mcp", "new-token", nil); err != nil {
		t.Errorf("an added token: %v", err)
	}

	// The removed backend's endpoint is gone, with its sessions once it
	// has drained; every other session is still there.
	select {
	case <-rep.Drained:
	case <-ctxT(t).Done():
		t.Fatal("the removed and replaced backends did not drain")
	}
	if _, err := call(t, filesSession, "read_file", map[string]any{"path": "/etc/hostname"}); err == nil {
		t.Error("a session of /mcp/files still works after files was removed")
	}
	if _, err := connectWith(t, gw.url+"/mcp/files", "keep-token", nil); err == nil {
		t.Error("/mcp/files still opens sessions after files was removed")
	}
	for i, w := range workers {
		if _, err := w.cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: w.tool, Arguments: map[string]any{"city": "Oslo"}}); err != nil {
			t.Errorf("worker %d's session after the drain: %v", i, err)
		}
	}
	for _, b := range gw.gw.Backends() {
		if b.Name() == "files" {
			t.Error("files is still a backend")
		}
	}
	// The state history (the viewer's, the metrics') ends with the
	// replacement's state, not the closing of the backend it replaced.
	stateMu.Lock()
	defer stateMu.Unlock()
	if lastState["weather"] != "ready" || lastState["files"] != "stopped" || lastState["extra"] != "ready" {
		t.Errorf("last states reported: %v, want weather and extra ready, files stopped", lastState)
	}
}

// holdBackend is an MCP server whose tool hold answers only when the test
// releases it, and tells the test when a call has arrived.
type holdBackend struct {
	url     string
	entered chan struct{}
	release chan struct{}
}

func startHoldBackend(t *testing.T) *holdBackend {
	t.Helper()
	h := &holdBackend{entered: make(chan struct{}, 1), release: make(chan struct{})}
	s := mcp.NewServer(&mcp.Implementation{Name: "hold", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "hold", Description: "Answers once released."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			h.entered <- struct{}{}
			select {
			case <-h.release:
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "released"}}}, nil, nil
		})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

// TestReloadDrainsRemovedBackend: a backend removed by a reload takes no
// new call, finishes the call in flight on it, and only then closes.
func TestReloadDrainsRemovedBackend(t *testing.T) {
	hold := startHoldBackend(t)
	weather := startWeather(t, demo.WeatherOptions{})
	holdCfg := config.Backend{Name: "hold", URL: hold.url, Transport: config.TransportStreamable, Timeout: config.Duration(time.Minute)}
	cfg := baseConfig(holdCfg, weatherCfg(weather.url()))
	gw := startGateway(t, cfg, gateway.Options{})
	var held *backend.Backend
	for _, b := range gw.gw.Backends() {
		if b.Name() == "hold" {
			held = b
		}
	}
	cs := connect(t, gw.url+"/mcp", nil, nil)

	type outcome struct {
		res *mcp.CallToolResult
		err error
	}
	inFlight := make(chan outcome, 1)
	go func() {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "hold_hold", Arguments: map[string]any{}})
		inFlight <- outcome{res, err}
	}()
	select {
	case <-hold.entered:
	case <-ctxT(t).Done():
		t.Fatal("the call did not reach the backend")
	}

	rep, err := gw.gw.Reload(ctxT(t), baseConfig(weatherCfg(weather.url())), gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rep.Removed) != "[hold]" {
		t.Fatalf("removed %v, want [hold]", rep.Removed)
	}
	// No new call goes to it.
	if _, err := call(t, cs, "hold_hold", map[string]any{}); rpcCode(err) != -32602 {
		t.Errorf("a new call to the removed backend: got %v, want unknown tool (-32602)", err)
	}
	wantWeather(t, cs, "Oslo")
	// The call in flight keeps it open: give a wrong drain the time to
	// close it anyway.
	time.Sleep(300 * time.Millisecond)
	select {
	case <-rep.Drained:
		t.Fatal("the removed backend drained with a call in flight on it")
	default:
	}
	if s := held.State(); s != backend.StateReady {
		t.Fatalf("the removed backend is %s with a call in flight, want ready", s)
	}
	close(hold.release)
	o := <-inFlight
	if o.err != nil || text(o.res) != "released" {
		t.Fatalf("the call in flight on the removed backend: got %v %v, want its answer", textOrNil(o.res), o.err)
	}
	select {
	case <-rep.Drained:
	case <-ctxT(t).Done():
		t.Fatal("the removed backend did not close once its call ended")
	}
	if s := held.State(); s != backend.StateStopped {
		t.Errorf("the removed backend is %s after draining, want stopped", s)
	}
}

// TestReloadRefusedChangesNothing: a reload whose auth section cannot be
// built is refused, and the gateway keeps serving what it served.
func TestReloadRefusedChangesNothing(t *testing.T) {
	weather := startWeather(t, demo.WeatherOptions{})
	cfg := baseConfig(weatherCfg(weather.url()))
	gw := startGateway(t, cfg, gateway.Options{})
	cs := connect(t, gw.url+"/mcp", nil, nil)
	before := toolNames(t, cs)

	extra := startWeather(t, demo.WeatherOptions{})
	bad := baseConfig(weatherCfg(weather.url()), config.Backend{Name: "extra", URL: extra.url(), Transport: config.TransportStreamable})
	bad.Auth.OAuth = &config.OAuth{Issuer: "https://issuer.example", Audience: "not a URL"}
	if _, err := gw.gw.Reload(ctxT(t), bad, gateway.Options{}); err == nil || !strings.Contains(err.Error(), "auth") {
		t.Fatalf("reload with a bad auth section: got %v, want an auth error", err)
	}
	if got := toolNames(t, cs); !slices.Equal(got, before) {
		t.Errorf("tools after a refused reload: %v, want %v", got, before)
	}
	if n := len(gw.gw.Backends()); n != 1 {
		t.Errorf("%d backends after a refused reload, want 1", n)
	}
	wantWeather(t, cs, "Lisbon")
	// The listener is still open: no token was required before, none is.
	if _, err := connectWith(t, gw.url+"/mcp", "", nil); err != nil {
		t.Errorf("a client without a token after a refused reload: %v", err)
	}

	gw.gw.Close()
	if _, err := gw.gw.Reload(ctxT(t), cfg, gateway.Options{}); !errors.Is(err, gateway.ErrClosed) {
		t.Errorf("reload after Close: got %v, want ErrClosed", err)
	}
}

// TestReloadRenamesTools: a new tools.name_format renames /mcp's tools,
// and the plugin filters follow the new names on /mcp/{backend} too.
func TestReloadRenamesTools(t *testing.T) {
	weather := startWeather(t, demo.WeatherOptions{})
	cfg := baseConfig(weatherCfg(weather.url()))
	cfg.Plugins = []config.Plugin{{Name: "no-radar", Type: "deny", Tools: []string{"weather_flaky_radar"}}}
	gw := startGateway(t, cfg, reloadOptions(t, cfg))
	cs := connect(t, gw.url+"/mcp", nil, nil)
	single := connect(t, gw.url+"/mcp/weather", nil, nil)
	if _, err := call(t, single, "flaky_radar", map[string]any{"city": "Oslo"}); rpcCode(err) != plugin.CodeDenied {
		t.Fatalf("flaky_radar on /mcp/weather: got %v, want denied", err)
	}

	next := baseConfig(weatherCfg(weather.url()))
	next.Tools.NameFormat = "{backend}.{tool}"
	next.Plugins = cfg.Plugins
	if _, err := gw.gw.Reload(ctxT(t), next, reloadOptions(t, next)); err != nil {
		t.Fatal(err)
	}
	names := toolNames(t, cs)
	if !slices.Contains(names, "weather.get_weather") || slices.Contains(names, "weather_get_weather") {
		t.Errorf("tools after the reload: %v, want weather.get_weather", names)
	}
	if res, err := call(t, cs, "weather.get_weather", map[string]any{"city": "Oslo"}); err != nil || !strings.Contains(text(res), "Oslo") {
		t.Errorf("weather.get_weather: %v %v", textOrNil(res), err)
	}
	// The filter names weather_flaky_radar, which is now weather.flaky_radar.
	if res, err := call(t, single, "flaky_radar", map[string]any{"city": "Oslo"}); err != nil || !res.IsError {
		t.Errorf("flaky_radar on /mcp/weather after the rename: got %v %v, want the tool's own error", textOrNil(res), err)
	}
}

// TestReloadChangesTracing: the tracers a reload gives reach the SERVER
// span and the CLIENT spans of backends that stay connected.
func TestReloadChangesTracing(t *testing.T) {
	weather := startWeather(t, demo.WeatherOptions{})
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	options := func(extra ...mcptrace.Option) gateway.Options {
		common := append([]mcptrace.Option{mcptrace.WithTracerProvider(tp), mcptrace.WithPropagators(propagation.TraceContext{})}, extra...)
		return gateway.Options{
			Server:  mcptrace.NewServerTracer(common...),
			Backend: func(config.Backend) *mcptrace.ClientTracer { return mcptrace.NewClientTracer(common...) },
		}
	}
	cfg := baseConfig(weatherCfg(weather.url()))
	gw := startGateway(t, cfg, options())
	cs := connect(t, gw.url+"/mcp", nil, nil)
	captured := func(city string) (server, client bool) {
		t.Helper()
		rec.Reset()
		wantWeather(t, cs, city)
		spans := rec.Ended()
		for _, s := range []struct {
			name string
			kind trace.SpanKind
			got  *bool
		}{{"tools/call weather_get_weather", trace.SpanKindServer, &server}, {"tools/call get_weather", trace.SpanKindClient, &client}} {
			sp := spanNamed(spans, s.name, s.kind)
			if sp == nil {
				t.Fatalf("no %s span among %d", s.name, len(spans))
			}
			v, ok := attr(sp, "gen_ai.tool.call.arguments")
			*s.got = ok && strings.Contains(v.AsString(), city)
		}
		return server, client
	}
	if s, c := captured("Oslo"); s || c {
		t.Errorf("arguments captured before the reload turned capture on: server %v, client %v", s, c)
	}
	if _, err := gw.gw.Reload(ctxT(t), cfg, options(mcptrace.WithContentCapture(4096))); err != nil {
		t.Fatal(err)
	}
	if s, c := captured("Lima"); !s || !c {
		t.Errorf("arguments captured after the reload turned capture on: server %v, client %v; want both", s, c)
	}
}

// TestReloadReplacementDown: a backend replaced by one that cannot
// connect is published down, and its tools answer "unavailable", as a
// backend that went down does, not "unknown tool".
func TestReloadReplacementDown(t *testing.T) {
	weather := startWeather(t, demo.WeatherOptions{})
	gw := startGateway(t, baseConfig(weatherCfg(weather.url())), gateway.Options{})
	cs := connect(t, gw.url+"/mcp", nil, nil)
	wantWeather(t, cs, "Oslo")
	dead := config.Backend{Name: "weather", URL: "http://127.0.0.1:1/mcp", Transport: config.TransportStreamable, Timeout: config.Duration(2 * time.Second)}
	rep, err := gw.gw.Reload(ctxT(t), baseConfig(dead), gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rep.Changed) != "[weather]" {
		t.Fatalf("changed %v, want [weather]", rep.Changed)
	}
	_, err = call(t, cs, "weather_get_weather", map[string]any{"city": "Oslo"})
	wantUnavailable(t, err, "weather")
}
