package backend_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/mcptrace"
)

// Connecting (initialize, then the catalog) is one trace under a "connect"
// span, and a relist one trace under a "relist" span, rather than a root
// trace per request.
func TestConnectAndRelistAreOneTraceEach(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return testServer() }, nil))
	t.Cleanup(srv.Close)
	b := start(t, config.Backend{Name: "web", URL: srv.URL, Transport: config.TransportStreamable, Timeout: config.Duration(5 * time.Second)}, backend.Options{
		Tracer:     tp.Tracer("test"),
		Middleware: []mcp.Middleware{mcptrace.ClientMiddleware(mcptrace.WithTracerProvider(tp))},
	})
	waitFor(t, "ready", func() bool { return b.State() == backend.StateReady })

	children := func(root sdktrace.ReadOnlySpan) []string {
		var names []string
		for _, s := range rec.Ended() {
			if s.Parent().SpanID() == root.SpanContext().SpanID() && s.SpanContext().TraceID() == root.SpanContext().TraceID() {
				names = append(names, s.Name())
			}
		}
		return names
	}
	find := func(name string) sdktrace.ReadOnlySpan {
		for _, s := range rec.Ended() {
			if s.Name() == name {
				return s
			}
		}
		return nil
	}
	connect := find("connect web")
	if connect == nil || connect.SpanKind() != trace.SpanKindInternal || connect.Parent().IsValid() {
		t.Fatalf("want a root INTERNAL span \"connect web\", got %v", connect)
	}
	got := children(connect)
	for _, want := range []string{"initialize", "tools/list"} {
		if !slices.Contains(got, want) {
			t.Errorf("connect's children %v lack %s", got, want)
		}
	}
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindClient && !s.Parent().IsValid() {
			t.Errorf("CLIENT span %q is a root of its own", s.Name())
		}
	}

	b.Refresh()
	waitFor(t, "relist span", func() bool { return find("relist web") != nil })
	if got := children(find("relist web")); !slices.Contains(got, "tools/list") {
		t.Errorf("relist's children %v lack tools/list", got)
	}
}
