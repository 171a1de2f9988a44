package gateway

import (
	"context"
	"net"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/mcptrace"
)

// httpSpanKey holds the `POST /mcp` span's context for the MCP span, in
// the request's context: a fact the gateway sets for itself never travels
// in a header, where a client could set it too.
type httpSpanKey struct{}

// HTTPSpans returns a wrapper that makes one SERVER span per MCP HTTP
// request (`POST /mcp`), parented by the request's W3C headers. The MCP
// span links to it, and is its child only when the request's _meta carried
// no context (see mcptrace.WithHTTPSpanContext and HTTPSpanContext).
//
// incoming, when not nil, is the trust boundary of
// telemetry.incoming_context (see mcptrace.WithIncomingContext): an
// untrusted caller's headers give the span a link, or nothing, rather than
// its parent.
func HTTPSpans(tp trace.TracerProvider, prop propagation.TextMapPropagator, incoming func(context.Context) mcptrace.Trust) func(http.Handler) http.Handler {
	tracer := tp.Tracer("github.com/tracegate/tracegate/internal/gateway")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				next.ServeHTTP(w, r)
				return
			}
			ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			var untrusted []trace.SpanStartOption
			if incoming != nil {
				if t := incoming(r.Context()); t != mcptrace.TrustParent {
					untrusted = append(untrusted, trace.WithNewRoot())
					if sc := trace.SpanContextFromContext(ctx); t == mcptrace.TrustLink && sc.IsValid() {
						untrusted = append(untrusted, trace.WithLinks(trace.Link{SpanContext: sc}))
					}
					ctx = r.Context()
				}
			}
			ctx, span := tracer.Start(ctx, r.Method+" "+r.URL.Path, append(untrusted,
				trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(
					attribute.String("http.request.method", r.Method),
					attribute.String("url.path", r.URL.Path),
					attribute.String("network.protocol.version", strconv.Itoa(r.ProtoMajor)+"."+strconv.Itoa(r.ProtoMinor)),
					attribute.String("client.address", clientAddr(r)),
				))...)
			defer span.End()
			ctx = context.WithValue(ctx, httpSpanKey{}, span.SpanContext())
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(sw, r.WithContext(ctx))
			span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
			if sw.status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(sw.status))
			}
		})
	}
}

// HTTPSpanContext returns the span context HTTPSpans left for the MCP
// span, invalid when there is none.
func HTTPSpanContext(ctx context.Context, _ http.Header) trace.SpanContext {
	sc, _ := ctx.Value(httpSpanKey{}).(trace.SpanContext)
	return sc
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// statusWriter records the status code and keeps streaming working.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// RequestAttributes is a hook for mcptrace.WithRequestAttributes: it puts
// client.address and the client's name and version on the SERVER span of
// a client request, facts the gateway's HTTP layer keeps in the context.
func RequestAttributes(ctx context.Context, info mcptrace.RequestInfo) []attribute.KeyValue {
	if info.Kind != trace.SpanKindServer {
		return nil
	}
	f, ok := factsFrom(ctx)
	if !ok {
		return nil
	}
	out := make([]attribute.KeyValue, 0, 3)
	if f.clientAddress != "" {
		out = append(out, attribute.String("client.address", f.clientAddress))
	}
	if f.client.name != "" {
		out = append(out, attribute.String("tracegate.client.name", f.client.name))
	}
	if f.client.version != "" {
		out = append(out, attribute.String("tracegate.client.version", f.client.version))
	}
	return out
}
