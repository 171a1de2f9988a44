package gateway

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/auth"
	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/plugin"
	"github.com/tracegate/tracegate/internal/telemetry"
	"github.com/tracegate/tracegate/mcptrace"
)

// TracingOptions returns Options that trace the gateway with tel's
// providers: the SERVER span of every client message, one CLIENT span per
// backend request, and mcptrace's round tripper carrying the CLIENT span's
// context in the backend's HTTP headers too (no span of its own). The
// plugin chain (nil for none) runs inside the SERVER span. Logger and
// Version are left for the caller. The command and the bench both build
// their gateway from this, so the bench measures what ships.
func TracingOptions(cfg *config.Config, tel *telemetry.Telemetry, chain *plugin.Chain) Options {
	common := []mcptrace.Option{
		mcptrace.WithTracerProvider(tel.TracerProvider),
		mcptrace.WithMeterProvider(tel.MeterProvider),
		mcptrace.WithPropagators(tel.Propagator),
	}
	if cfg.Telemetry.CaptureArguments {
		common = append(common, mcptrace.WithContentCapture(4096))
		// Captured content passes through the redact plugins' patterns:
		// the SERVER span sees the arguments before the chain scrubs them.
		if redact := chain.ContentRedactor(); redact != nil {
			common = append(common, mcptrace.WithContentRedactor(redact))
		}
	}
	requestAttrs := RequestAttributes
	if cfg.Telemetry.CaptureIdentity {
		// enduser.id is personal data: only when the operator opts in.
		requestAttrs = func(ctx context.Context, info mcptrace.RequestInfo) []attribute.KeyValue {
			attrs := RequestAttributes(ctx, info)
			if info.Kind == trace.SpanKindServer {
				attrs = append(attrs, auth.Attributes(ctx)...)
			}
			return attrs
		}
	}
	server := append(common[:len(common):len(common)],
		mcptrace.WithNetworkTransport("tcp", "http", "1.1"),
		mcptrace.WithHTTPSpanContext(HTTPSpanContext),
		mcptrace.WithRequestAttributes(requestAttrs),
		mcptrace.WithIncomingContext(incomingContext(cfg.Telemetry)),
	)
	opts := Options{
		TracerProvider: tel.TracerProvider,
		Plugins:        chain,
		Server:         mcptrace.NewServerTracer(server...),
		Backend: func(b config.Backend) *mcptrace.ClientTracer {
			return mcptrace.NewClientTracer(backendTraceOptions(common, b)...)
		},
		BackendTransport: func(b config.Backend) http.RoundTripper {
			// TLS and the gateway's own credentials for b (never the
			// client's token), under the trace header injection.
			base, err := auth.BackendTransport(backend.NewHTTPTransport(), b, nil)
			if err != nil {
				base = failedTransport{err} // serve checks every backend before this
			}
			return mcptrace.NewTransport(base, backendTraceOptions(common, b)...)
		},
	}
	if cfg.Telemetry.HTTPSpans != nil && *cfg.Telemetry.HTTPSpans {
		opts.WrapHTTP = HTTPSpans(tel.TracerProvider, tel.Propagator, incomingContext(cfg.Telemetry))
	}
	return opts
}

// incomingContext decides how far a caller's trace context is trusted
// (telemetry.incoming_context): callers with an identity get
// incoming_context_authenticated, the others incoming_context. nil, the
// cheapest, when both trust.
func incomingContext(t config.Telemetry) func(context.Context) mcptrace.Trust {
	anyone, known := trustOf(t.IncomingContext), trustOf(t.IncomingContextAuthenticated)
	if t.IncomingContextAuthenticated == "" {
		known = anyone
	}
	if anyone == mcptrace.TrustParent && known == mcptrace.TrustParent {
		return nil
	}
	return func(ctx context.Context) mcptrace.Trust {
		if _, ok := auth.FromContext(ctx); ok {
			return known
		}
		return anyone
	}
}

func trustOf(mode string) mcptrace.Trust {
	switch mode {
	case config.IncomingLink:
		return mcptrace.TrustLink
	case config.IncomingIgnore:
		return mcptrace.TrustIgnore
	}
	return mcptrace.TrustParent
}

// failedTransport fails every request with the error that kept a backend's
// transport from being built.
type failedTransport struct{ err error }

func (t failedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return nil, t.err
}

// backendTraceOptions describe one backend on its CLIENT spans and set what
// baggage it is sent.
func backendTraceOptions(common []mcptrace.Option, b config.Backend) []mcptrace.Option {
	opts := append(common[:len(common):len(common)],
		mcptrace.WithAttributes(attribute.String("tracegate.backend.name", b.Name)),
		mcptrace.WithBaggage(baggagePolicy(b.Baggage)),
	)
	if b.URL == "" {
		return append(opts, mcptrace.WithNetworkTransport("pipe", "", ""))
	}
	u, err := url.Parse(b.URL)
	if err != nil {
		return opts
	}
	host, portStr, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, portStr = u.Host, "80"
		if u.Scheme == "https" {
			portStr = "443"
		}
	}
	port, _ := strconv.Atoi(portStr)
	return append(opts, mcptrace.WithServerAddress(host, port), mcptrace.WithNetworkTransport("tcp", "http", "1.1"))
}

func baggagePolicy(p config.BaggagePolicy) mcptrace.BaggagePolicy {
	switch p.Mode {
	case config.BaggageAll:
		return mcptrace.BaggageAll()
	case config.BaggageKeys:
		return mcptrace.BaggageKeys(p.Keys...)
	default:
		return mcptrace.BaggageNone()
	}
}
