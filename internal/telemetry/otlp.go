package telemetry

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/redact"
)

const (
	protoHTTPProtobuf = "http/protobuf"
	protoHTTPJSON     = "http/json"
	protoGRPC         = "grpc"

	defaultOTLPTimeout = 10 * time.Second
)

// otlpTarget is where and how one signal is exported over OTLP.
type otlpTarget struct {
	Protocol string // grpc, http/protobuf or http/json
	// URL is the full request URL for OTLP/HTTP (path included) and the
	// server URL for gRPC, whose scheme says plaintext (http) or TLS.
	URL      string
	Headers  map[string]string
	Timeout  time.Duration
	Compress bool // gzip
}

// resolveOTLP applies, for signal "traces" or "metrics", the precedence of
// the OTLP exporter spec: the signal's own variable, then the generic
// OTEL_EXPORTER_OTLP_* one, then the config file, then the default.
// https://opentelemetry.io/docs/specs/otel/protocol/exporter/
func resolveOTLP(signal string, cfg config.OTLP, e env) (otlpTarget, error) {
	sig := "OTEL_EXPORTER_OTLP_" + strings.ToUpper(signal) + "_"
	var t otlpTarget

	t.Protocol = cfg.Protocol
	if v, _ := e.first(sig+"PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"); v != "" {
		t.Protocol = v
	}
	switch t.Protocol {
	case "":
		t.Protocol = protoHTTPProtobuf
	case protoHTTPProtobuf, protoGRPC, protoHTTPJSON:
	default:
		return t, fmt.Errorf("otlp protocol %q: want http/protobuf, http/json or grpc", t.Protocol)
	}

	if v := e.get(sig + "ENDPOINT"); v != "" {
		// A signal-specific endpoint is used as is, path included.
		v = grpcHostPort(t.Protocol, v, e, sig)
		if err := checkEndpoint(sig+"ENDPOINT", v); err != nil {
			return t, err
		}
		t.URL = v
	} else {
		base, source := e.get("OTEL_EXPORTER_OTLP_ENDPOINT"), "OTEL_EXPORTER_OTLP_ENDPOINT"
		if base == "" {
			base, source = cfg.Endpoint, "telemetry.otlp.endpoint"
		}
		if base == "" {
			base, source = "http://localhost:4318", "default endpoint"
			if t.Protocol == protoGRPC {
				base = "http://localhost:4317"
			}
		}
		base = grpcHostPort(t.Protocol, base, e, sig)
		if err := checkEndpoint(source, base); err != nil {
			return t, err
		}
		t.URL = base
		if t.Protocol != protoGRPC {
			// The base URL's path is a prefix: http://h:4318/otel becomes
			// http://h:4318/otel/v1/traces.
			t.URL = strings.TrimSuffix(base, "/") + "/v1/" + signal
		}
	}

	t.Headers = maps.Clone(cfg.Headers)
	for _, key := range []string{"OTEL_EXPORTER_OTLP_HEADERS", sig + "HEADERS"} {
		if v := e.get(key); v != "" {
			h, err := parseKeyValues(key, v)
			if err != nil {
				return t, err
			}
			if t.Headers == nil {
				t.Headers = map[string]string{}
			}
			maps.Copy(t.Headers, h)
		}
	}

	t.Timeout = cfg.Timeout.D()
	d, ok, err := e.millis(sig+"TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
	if err != nil {
		return t, err
	}
	if ok {
		t.Timeout = d
	}
	if t.Timeout <= 0 {
		t.Timeout = defaultOTLPTimeout
	}

	switch v, key := e.first(sig+"COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"); v {
	case "", "none":
	case "gzip":
		t.Compress = true
	default:
		return t, fmt.Errorf("%s=%q: want gzip or none", key, v)
	}
	return t, nil
}

// grpcHostPort turns a gRPC endpoint written as a bare host:port, as
// collectors write it, into a URL: https unless the INSECURE variable of the
// signal, else the generic one, is true (OTLP exporter spec:
// OTEL_EXPORTER_OTLP_INSECURE applies to gRPC endpoints without a scheme).
func grpcHostPort(protocol, v string, e env, sig string) string {
	if protocol != protoGRPC || strings.Contains(v, "://") {
		return v
	}
	if host, _, err := net.SplitHostPort(v); err != nil || host == "" {
		return v // checkEndpoint says what is wrong
	}
	if ins, _ := e.first(sig+"INSECURE", "OTEL_EXPORTER_OTLP_INSECURE"); strings.EqualFold(ins, "true") {
		return "http://" + v
	}
	return "https://" + v
}

// checkEndpoint insists on a scheme: the exporters would otherwise guess
// between plaintext and TLS.
func checkEndpoint(source, v string) error {
	u, err := url.Parse(v)
	if err != nil {
		// url.Parse's error quotes the URL: drop it for the redacted one.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s %q: %w", source, redact.URL(v), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%s %q: want an http:// or https:// URL", source, redact.URL(v))
	}
	if u.Host == "" {
		return fmt.Errorf("%s %q: missing host", source, redact.URL(v))
	}
	return nil
}
