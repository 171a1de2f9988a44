package telemetry

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/config"
)

func TestResolveOTLP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		signal string
		cfg    config.OTLP
		env    map[string]string
		want   otlpTarget
	}{
		{"defaults", "traces", config.OTLP{}, nil,
			otlpTarget{Protocol: "http/protobuf", URL: "http://localhost:4318/v1/traces", Timeout: 10 * time.Second}},
		{"grpc default port", "metrics", config.OTLP{Protocol: "grpc"}, nil,
			otlpTarget{Protocol: "grpc", URL: "http://localhost:4317", Timeout: 10 * time.Second}},
		{"config base URL with path prefix", "metrics",
			config.OTLP{Endpoint: "https://collector:4318/otel/", Timeout: config.Duration(3 * time.Second), Headers: map[string]string{"a": "cfg"}}, nil,
			otlpTarget{Protocol: "http/protobuf", URL: "https://collector:4318/otel/v1/metrics", Timeout: 3 * time.Second, Headers: map[string]string{"a": "cfg"}}},
		{"grpc ignores path", "traces", config.OTLP{Endpoint: "http://c:4317/ignored", Protocol: "grpc"}, nil,
			otlpTarget{Protocol: "grpc", URL: "http://c:4317/ignored", Timeout: 10 * time.Second}},
		{"env beats config", "traces",
			config.OTLP{Endpoint: "http://cfg:4318", Protocol: "grpc", Timeout: config.Duration(time.Second), Headers: map[string]string{"a": "cfg", "b": "cfg"}},
			map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT":    "http://env:4318",
				"OTEL_EXPORTER_OTLP_PROTOCOL":    "http/protobuf",
				"OTEL_EXPORTER_OTLP_TIMEOUT":     "2500",
				"OTEL_EXPORTER_OTLP_HEADERS":     "a=env,c=x%20y",
				"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
			},
			otlpTarget{Protocol: "http/protobuf", URL: "http://env:4318/v1/traces", Timeout: 2500 * time.Millisecond,
				Headers: map[string]string{"a": "env", "b": "cfg", "c": "x y"}, Compress: true}},
		{"signal variables beat generic ones", "traces", config.OTLP{},
			map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT":           "http://generic:4318",
				"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":    "http://traces:9999/custom",
				"OTEL_EXPORTER_OTLP_PROTOCOL":           "grpc",
				"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL":    "http/json",
				"OTEL_EXPORTER_OTLP_TIMEOUT":            "1000",
				"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT":     "2000",
				"OTEL_EXPORTER_OTLP_HEADERS":            "a=generic,b=generic",
				"OTEL_EXPORTER_OTLP_TRACES_HEADERS":     "a=traces",
				"OTEL_EXPORTER_OTLP_COMPRESSION":        "gzip",
				"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "none",
			},
			otlpTarget{Protocol: "http/json", URL: "http://traces:9999/custom", Timeout: 2 * time.Second,
				Headers: map[string]string{"a": "traces", "b": "generic"}}},
		{"grpc host:port in the file is TLS", "traces", config.OTLP{Endpoint: "collector:4317", Protocol: "grpc"}, nil,
			otlpTarget{Protocol: "grpc", URL: "https://collector:4317", Timeout: 10 * time.Second}},
		{"grpc host:port with INSECURE is plaintext", "traces", config.OTLP{Endpoint: "collector:4317", Protocol: "grpc"},
			map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "true"},
			otlpTarget{Protocol: "grpc", URL: "http://collector:4317", Timeout: 10 * time.Second}},
		{"grpc host:port from the environment", "metrics", config.OTLP{},
			map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "collector:4317", "OTEL_EXPORTER_OTLP_METRICS_INSECURE": "true"},
			otlpTarget{Protocol: "grpc", URL: "http://collector:4317", Timeout: 10 * time.Second}},
		{"http/json in the file", "traces", config.OTLP{Endpoint: "http://c:4318", Protocol: "http/json"}, nil,
			otlpTarget{Protocol: "http/json", URL: "http://c:4318/v1/traces", Timeout: 10 * time.Second}},
		{"other signal's variables ignored", "metrics", config.OTLP{},
			map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:9999/custom"},
			otlpTarget{Protocol: "http/protobuf", URL: "http://localhost:4318/v1/metrics", Timeout: 10 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := resolveOTLP(tt.signal, tt.cfg, func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatalf("resolveOTLP: %v", err)
			}
			if got.Protocol != tt.want.Protocol || got.URL != tt.want.URL || got.Timeout != tt.want.Timeout ||
				got.Compress != tt.want.Compress || !maps.Equal(got.Headers, tt.want.Headers) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestResolveOTLPDoesNotMutateConfig(t *testing.T) {
	t.Parallel()
	cfg := config.OTLP{Headers: map[string]string{"a": "cfg"}}
	_, err := resolveOTLP("traces", cfg, func(k string) string {
		if k == "OTEL_EXPORTER_OTLP_HEADERS" {
			return "a=env"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Headers["a"] != "cfg" {
		t.Errorf("config headers: got %v, want them untouched", cfg.Headers)
	}
}

func TestParseKeyValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{"a=1,b=2", map[string]string{"a": "1", "b": "2"}, ""},
		{" a = 1 , , b=", map[string]string{"a": "1", "b": ""}, ""},
		{"k=v%3Dw%2Cx+y", map[string]string{"k": "v=w,x+y"}, ""},
		{"a=1=2", map[string]string{"a": "1=2"}, ""},
		{"=v", nil, `member "=v"`},
		{"novalue", nil, `member "novalue"`},
		{"a=%g0", nil, `member "a"`},
	}
	for _, tt := range tests {
		got, err := parseKeyValues("X", tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseKeyValues(%q): got error %v, want one containing %s", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tt.want) {
			t.Errorf("parseKeyValues(%q): got %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
