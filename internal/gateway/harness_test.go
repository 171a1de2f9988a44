package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/examples/demo"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
)

// filesBin is the stdio demo backend, built once for all tests.
var filesBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tracegate-gw-test")
	if err != nil {
		panic(err)
	}
	filesBin = filepath.Join(dir, "files")
	out, err := exec.Command("go", "build", "-o", filesBin, "../../examples/files").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building examples/files: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// weatherBackend serves the weather demo over Streamable HTTP on a port the
// test can stop and restart.
type weatherBackend struct {
	addr string
	srv  *http.Server
	opts demo.WeatherOptions
}

func startWeather(t *testing.T, opts demo.WeatherOptions) *weatherBackend {
	t.Helper()
	w := &weatherBackend{opts: opts}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.addr = ln.Addr().String()
	w.serve(ln)
	t.Cleanup(w.stop)
	return w
}

func (w *weatherBackend) url() string { return "http://" + w.addr + "/mcp" }

func (w *weatherBackend) serve(ln net.Listener) {
	s := demo.NewWeatherServer(w.opts)
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	w.srv = &http.Server{Handler: mux}
	go w.srv.Serve(ln)
}

func (w *weatherBackend) stop() {
	if w.srv != nil {
		w.srv.Close()
		w.srv = nil
	}
}

func (w *weatherBackend) restart(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", w.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("relisten on %s: %v", w.addr, err)
	}
	w.serve(ln)
}

type testGateway struct {
	gw  *gateway.Gateway
	url string // base URL; /mcp and /mcp/{backend} below it
}

func baseConfig(backends ...config.Backend) *config.Config {
	cfg := &config.Config{Backends: backends}
	cfg.Tools.NameFormat = "{backend}_{tool}"
	return cfg
}

func weatherCfg(url string) config.Backend {
	return config.Backend{Name: "weather", URL: url, Transport: config.TransportStreamable, Timeout: config.Duration(5 * time.Second)}
}

func filesCfg() config.Backend {
	return config.Backend{Name: "files", Command: []string{filesBin}, Transport: config.TransportStdio, Timeout: config.Duration(5 * time.Second)}
}

func startGateway(t testing.TB, cfg *config.Config, opts gateway.Options) *testGateway {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.KeepAlive == 0 {
		opts.KeepAlive = time.Second
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 20 * time.Millisecond
	}
	gw, err := gateway.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	gw.Start(context.Background())
	t.Cleanup(func() { gw.Close() })
	if err := gw.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	return &testGateway{gw: gw, url: srv.URL}
}

func connect(t *testing.T, endpoint string, copts *mcp.ClientOptions, sopts *mcp.ClientSessionOptions) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, copts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint}, sopts)
	if err != nil {
		t.Fatalf("connect %s: %v", endpoint, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func text(res *mcp.CallToolResult) string {
	s := ""
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			s += tc.Text
		}
	}
	return s
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
