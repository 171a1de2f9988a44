package config

import (
	"fmt"
	"reflect"
	"testing"
)

func where(es Errors) []string {
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%d:%d %s: %s", e.Line, e.Column, e.Path, e.Msg))
	}
	return out
}

// TestCheckOnePass: decoding and validation errors come together, each
// where its value (or, when missing, its entry) is in the file.
func TestCheckOnePass(t *testing.T) {
	const doc = `listen: 127.0.0.1:8080
max_request_bytes: lots
auth:
  bearer_tokens: ["${TOKEN}"]
defaults: &defaults
  timeout: -5s
backends:
  - name: Weather
    url: weather.local/mcp
  - name: files
    <<: *defaults
    command: [./files]
  - urll: http://x
telemetry:
  exporter: zipkin
  otlp: {endpoint: "${OTLP}/v1"}
`
	r := Check([]byte(doc), env())
	want := []string{
		"2:20 max_request_bytes: want an integer",
		"5:1 defaults: unknown key",
		"6:12 backends[1].timeout: must not be negative",
		"13:5 backends[2].urll: unknown key",
		"4:19 auth.bearer_tokens[0]: empty token (${TOKEN} unset or empty)",
		`8:11 backends[0].name: "Weather" must match [a-z0-9_-]+`,
		"9:10 backends[0].url: missing scheme",
		"13:5 backends[2].name: required",
		"13:5 backends[2]: set exactly one of url and command",
		"15:13 telemetry.exporter: must be otlp, stdout or none",
		"16:20 telemetry.otlp.endpoint: missing scheme (${OTLP} unset or empty)",
	}
	if got := where(r.Errors); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\ngot  %q\nwant %q", got, want)
	}
	if r.Config == nil || len(r.Config.Backends) != 3 {
		t.Errorf("Check kept no partial config: %+v", r.Config)
	}
}

func TestCheckWarnings(t *testing.T) {
	const doc = `admin_listen: 0.0.0.0:8418
backends: []
telemetry:
  service_name: "gw-${REGION}"
`
	r := Check([]byte(doc), env())
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %q", where(r.Errors))
	}
	want := []string{
		"2:11 backends: no backends: the gateway will serve no tools, prompts or resources",
		"1:15 admin_listen: binds beyond loopback and no admin.bearer_tokens or auth.bearer_tokens are set: anyone who reaches it can read traces, metrics and the configuration",
		`4:17 telemetry.service_name: ${REGION} unset or empty, so the value is "gw-"`,
	}
	if got := where(r.Warnings); !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\ngot  %q\nwant %q", got, want)
	}
}

func TestCheckAliasCycleEnds(t *testing.T) {
	r := Check([]byte("plugins:\n  - &p {name: a, type: deny, loop: [*p]}\n"), nil)
	if len(r.Errors) == 0 {
		t.Fatal("an alias cycle passed")
	}
}

// TestOTLPValuesAsTheEnvironmentTakesThem: what OTEL_EXPORTER_OTLP_PROTOCOL
// and _ENDPOINT accept, the file accepts too.
func TestOTLPValuesAsTheEnvironmentTakesThem(t *testing.T) {
	tests := []struct {
		otlp string
		want []string
	}{
		{"{protocol: http/json, endpoint: 'http://c:4318'}", nil},
		{"{protocol: grpc, endpoint: 'collector:4317'}", nil},
		{"{protocol: grpc, endpoint: '[::1]:4317'}", nil},
		{"{protocol: grpc, endpoint: 'https://collector:4317'}", nil},
		{"{protocol: grpc, endpoint: 'collector'}", []string{"telemetry.otlp.endpoint: want a URL, or host:port for grpc"}},
		{"{protocol: http/protobuf, endpoint: 'collector:4318'}", []string{"telemetry.otlp.endpoint: missing scheme"}},
		{"{protocol: zipkin}", []string{"telemetry.otlp.protocol: must be http/protobuf, http/json or grpc"}},
	}
	for _, tc := range tests {
		_, err := Parse([]byte("backends: []\ntelemetry: {otlp: "+tc.otlp+"}\n"), nil)
		if got := msgLines(t, err); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("otlp %s: got %q, want %q", tc.otlp, got, tc.want)
		}
	}
}
