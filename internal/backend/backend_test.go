package backend_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/mcptrace"
)

// server is a go-sdk Streamable HTTP server on a port the test can stop
// and start again.
type server struct {
	addr string
	srv  *http.Server
	mcp  *mcp.Server
}

func startServer(t *testing.T, tools int, pageSize int) *server {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "t", Version: "1"}, &mcp.ServerOptions{PageSize: pageSize})
	for i := range tools {
		s.AddTool(&mcp.Tool{Name: fmt.Sprintf("tool%d", i), InputSchema: json.RawMessage(`{"type":"object"}`)},
			func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil
			})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sv := &server{addr: ln.Addr().String(), mcp: s}
	sv.serve(ln)
	t.Cleanup(sv.stop)
	return sv
}

func (s *server) serve(ln net.Listener) {
	s.srv = &http.Server{Handler: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.mcp }, nil)}
	go s.srv.Serve(ln)
}

func (s *server) stop() {
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
}

func (s *server) restart(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 100 {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.serve(ln)
}

func newBackend(t *testing.T, s *server, mutate func(*config.Backend, *backend.Options)) *backend.Backend {
	t.Helper()
	cfg := config.Backend{Name: "b", URL: "http://" + s.addr + "/", Transport: config.TransportStreamable, Timeout: config.Duration(5 * time.Second)}
	opts := backend.Options{Logger: slog.New(slog.DiscardHandler)}
	if mutate != nil {
		mutate(&cfg, &opts)
	}
	b := backend.New(cfg, opts)
	b.Start(context.Background())
	t.Cleanup(func() { b.Close() })
	return b
}

func waitState(t *testing.T, b *backend.Backend, want backend.State, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for b.State() != want {
		if time.Since(start) > within {
			t.Fatalf("backend %s after %s, want %s", b.State(), within, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// The catalog follows pagination to its end.
func TestCatalogFollowsPagination(t *testing.T) {
	s := startServer(t, 7, 2)
	b := newBackend(t, s, nil)
	waitState(t, b, backend.StateReady, 10*time.Second)
	if n := len(b.Catalog().Tools); n != 7 {
		t.Errorf("got %d tools over pages of 2, want 7", n)
	}
}

// A backend that was down for long is serving again within seconds of
// coming back: the reconnect delay of a network backend is capped.
func TestRecoveryAfterALongOutage(t *testing.T) {
	s := startServer(t, 1, 0)
	b := newBackend(t, s, func(_ *config.Backend, o *backend.Options) { o.KeepAlive = 100 * time.Millisecond })
	waitState(t, b, backend.StateReady, 10*time.Second)
	s.stop()
	waitState(t, b, backend.StateDown, 10*time.Second)
	// Long enough for a backoff doubling from 100ms without a cap to wait
	// more than 5 s for its next attempt (at 6.3 s, then 12.7 s).
	time.Sleep(7 * time.Second)
	s.restart(t)
	if took := waitState(t, b, backend.StateReady, 5*time.Second); took > 4*time.Second {
		t.Errorf("ready %s after the server came back, want within seconds", took)
	}
}

// per_client sessions are bounded, and a client's release frees its slot.
func TestPerClientSessionsBounded(t *testing.T) {
	s := startServer(t, 1, 0)
	b := newBackend(t, s, func(c *config.Backend, o *backend.Options) {
		c.Sessions = config.SessionsPerClient
		o.MaxClientSessions = 2
	})
	waitState(t, b, backend.StateReady, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := b.SessionFor(ctx, "client-a")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := b.SessionFor(ctx, "client-a")
	if again != a {
		t.Error("a client's second call got another session")
	}
	if _, err := b.SessionFor(ctx, "client-b"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SessionFor(ctx, "client-c"); !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("a third client past the limit of 2: got %v, want ErrUnavailable", err)
	}
	b.ReleaseClient("client-a")
	if _, err := b.SessionFor(ctx, "client-c"); err != nil {
		t.Errorf("after a release: %v", err)
	}
	if ctl, _ := b.SessionFor(ctx, ""); ctl == a || ctl.Client() != "" {
		t.Error("the control session is a client's")
	}
}

// Keepalive pings make no spans, the gateway's or an instrumented
// backend's: the connect trace keeps the spans of connecting and listing,
// however long the backend lives.
func TestKeepaliveMakesNoSpans(t *testing.T) {
	s := startServer(t, 1, 0)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	// The backend is instrumented too: a request with no context of its
	// own would join the trace its session kept from initialize.
	s.mcp.AddReceivingMiddleware(mcptrace.ServerMiddleware(mcptrace.WithTracerProvider(tp)))
	b := newBackend(t, s, func(_ *config.Backend, o *backend.Options) {
		o.KeepAlive = 30 * time.Millisecond
		o.SpanTracer = tp.Tracer("t")
		o.Tracer = mcptrace.NewClientTracer(mcptrace.WithTracerProvider(tp))
	})
	waitState(t, b, backend.StateReady, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // about ten keepalive intervals
	before := len(rec.Ended())
	time.Sleep(300 * time.Millisecond)
	if after := len(rec.Ended()); after != before {
		var names []string
		for _, sp := range rec.Ended()[before:] {
			names = append(names, sp.Name())
		}
		t.Errorf("%d spans appeared while the backend only idled: %v", after-before, names)
	}
	if before == 0 {
		t.Error("connecting made no spans: the test would prove nothing")
	}
}
