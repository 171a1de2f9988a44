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

// httpSpanHeader carries the `POST /mcp` span's context from the HTTP layer
// to the MCP span, through the request headers the SDK hands to middleware.
// It is internal: any value a client sends is removed first.
const httpSpanHeader = "Tracegate-Http-Span"

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
			r.Header.Del(httpSpanHeader)
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
					attribute.String("network.protocol.version", protoVersion(r)),
					attribute.String("client.address", clientAddr(r)),
				))...)
			defer span.End()
			if sc := span.SpanContext(); sc.IsValid() {
				r.Header.Set(httpSpanHeader, sc.TraceID().String()+"-"+sc.SpanID().String()+"-"+flags(sc))
			}
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(sw, r.WithContext(ctx))
			span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
			if sw.status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(sw.status))
			}
		})
	}
}

// HTTPSpanContext reads the span context HTTPSpans left for the MCP span.
func HTTPSpanContext(_ context.Context, h http.Header) trace.SpanContext {
	v := h.Get(httpSpanHeader)
	if len(v) != 32+1+16+1+2 {
		return trace.SpanContext{}
	}
	tid, err1 := trace.TraceIDFromHex(v[:32])
	sid, err2 := trace.SpanIDFromHex(v[33:49])
	if err1 != nil || err2 != nil {
		return trace.SpanContext{}
	}
	var f trace.TraceFlags
	if v[50:] == "01" {
		f = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: f})
}

func flags(sc trace.SpanContext) string {
	if sc.IsSampled() {
		return "01"
	}
	return "00"
}

func protoVersion(r *http.Request) string {
	return strconv.Itoa(r.ProtoMajor) + "." + strconv.Itoa(r.ProtoMinor)
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// statusWriter records the status code and keeps streaming working: the SDK
// flushes server-sent events as it writes them.
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
// jsonrpc.request.id and client.address on the SERVER span of a request
// received over HTTP, facts the SDK does not pass to middleware and the
// gateway's HTTP layer reads for it.
func RequestAttributes(_ context.Context, info mcptrace.RequestInfo) []attribute.KeyValue {
	if info.Kind != trace.SpanKindServer || info.Header == nil {
		return nil
	}
	var out []attribute.KeyValue
	if v := info.Header[headerRequestID]; len(v) == 1 {
		out = append(out, attribute.String("jsonrpc.request.id", v[0]))
	}
	if v := info.Header[headerClientAddress]; len(v) == 1 {
		out = append(out, attribute.String("client.address", v[0]))
	}
	return out
}
