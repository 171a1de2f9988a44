package telemetry

import (
	"os"
	"runtime"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/tracegate/tracegate/internal/config"
)

const defaultServiceName = "tracegate"

// newResource describes this process. Later sources win: built-in facts
// and the caller's extra, then config, then OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME (which
// the spec puts above service.name in OTEL_RESOURCE_ATTRIBUTES).
//
// resource.Default and resource.WithFromEnv are avoided on purpose: they
// read os.Getenv.
func newResource(cfg config.Telemetry, version string, extra []attribute.KeyValue, e env) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{
		semconv.TelemetrySDKName("opentelemetry"),
		semconv.TelemetrySDKLanguageGo,
		semconv.TelemetrySDKVersion(sdk.Version()),
		semconv.ProcessPID(os.Getpid()),
		semconv.ProcessRuntimeName("go"),
		semconv.ProcessRuntimeVersion(runtime.Version()),
	}
	if host, err := os.Hostname(); err == nil {
		attrs = append(attrs, semconv.HostName(host))
	}
	attrs = append(attrs, extra...)
	name := cfg.ServiceName
	if name == "" {
		name = defaultServiceName
	}
	attrs = append(attrs, semconv.ServiceName(name))
	if version != "" {
		attrs = append(attrs, semconv.ServiceVersion(version))
	}
	if v := e.get("OTEL_RESOURCE_ATTRIBUTES"); v != "" {
		kv, err := parseKeyValues("OTEL_RESOURCE_ATTRIBUTES", v)
		if err != nil {
			return nil, err
		}
		for k, val := range kv {
			attrs = append(attrs, attribute.String(k, val))
		}
	}
	if v := e.get("OTEL_SERVICE_NAME"); v != "" {
		attrs = append(attrs, semconv.ServiceName(v))
	}
	// The attribute set keeps the last value of a repeated key.
	return resource.NewWithAttributes(semconv.SchemaURL, attrs...), nil
}
