package config

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

// validateCase is one configuration and the errors Parse must report.
type validateCase struct {
	name string
	yaml string
	want []string // nil: valid
}

// checkValidate parses each case and compares the errors.
func checkValidate(t *testing.T, tests []validateCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(tt.yaml), nil)
			if got := msgLines(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) errors:\ngot  %q\nwant %q", tt.yaml, got, tt.want)
			}
			if (c == nil) != (tt.want != nil) {
				t.Errorf("Parse(%q): got config %v with errors %v", tt.yaml, c != nil, err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []validateCase{
		{"defaults only", "backends: []", nil},
		{"one url backend", okBackend, nil},
		{"one command backend", "backends: [{name: files_2-b, command: [srv]}]", nil},
		{"admin off on the same port", "listen: 127.0.0.1:8418\nadmin_listen: 'off'", nil},
		{"admin off unquoted", "listen: 127.0.0.1:8418\nadmin_listen: off", nil},
		{"port zero twice", "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0", nil},
		{"same port, other hosts", "listen: 127.0.0.1:9000\nadmin_listen: 127.0.0.2:9000", nil},

		{"listen equals admin_listen", "admin_listen: 127.0.0.1:8080", []string{"listen and admin_listen must differ"}},
		{"wildcard listen shares admin port", "listen: :8418", []string{"listen and admin_listen must differ"}},
		{"listen without port", "listen: localhost", []string{"listen: want host:port"}},
		{"admin port out of range", "admin_listen: 127.0.0.1:70000", []string{"admin_listen: port must be a number from 0 to 65535"}},
		{"negative body limit", "max_request_bytes: -1", []string{"max_request_bytes: must be positive"}},
		{"negative limits", "limits: {max_sessions: -1, max_concurrent_requests: -2, max_streams: -3}", []string{
			"limits.max_sessions: must be positive",
			"limits.max_concurrent_requests: must be positive",
			"limits.max_streams: must be positive",
		}},
		{"negative body read timeout", "limits: {body_read_timeout: -1s}", []string{"limits.body_read_timeout: must not be negative"}},
		{"negative flush timeout", "telemetry: {flush_timeout: -1s}", []string{"telemetry.flush_timeout: must not be negative"}},

		{"empty token", `auth: {bearer_tokens: ["${TRACEGATE_TOKEN}", ok]}`, []string{"auth.bearer_tokens[0]: empty token (${TRACEGATE_TOKEN} unset or empty)"}},

		{"bad name", "backends: [{name: Weather, url: 'http://x'}]", []string{`backends[0].name: "Weather" must match [a-z0-9_-]+`}},
		{"missing name", "backends: [{url: 'http://x'}]", []string{"backends[0].name: required"}},
		{"duplicate names", "backends: [{name: a, url: 'http://x'}, {name: b, url: 'http://x'}, {name: a, command: [x]}]",
			[]string{"backends[2].name: duplicate of backends[0]"}},
		{"url and command", "backends: [{name: a, url: 'http://x', command: [x]}]", []string{"backends[0]: set exactly one of url and command"}},
		{"neither url nor command", "backends: [{name: a}]", []string{"backends[0]: set exactly one of url and command"}},
		{"url without scheme", "backends: [{name: a, url: '127.0.0.1:9001/mcp'}]", []string{"backends[0].url: missing scheme"}},
		{"url with other scheme", "backends: [{name: a, url: 'ws://x/mcp'}]", []string{`backends[0].url: scheme "ws" not supported; use http or https`}},
		{"url without host", "backends: [{name: a, url: 'http:///mcp'}]", []string{"backends[0].url: missing host"}},
		{"url that does not parse", "backends: [{name: a, url: 'http://x:y/mcp'}]", []string{`backends[0].url: invalid URL: invalid port ":y" after host`}},
		{"sse with command", "backends: [{name: a, command: [x], transport: sse}]", []string{"backends[0].transport: sse needs url"}},
		{"streamable with command", "backends: [{name: a, command: [x], transport: streamable}]", []string{"backends[0].transport: streamable needs url"}},
		{"stdio with url", "backends: [{name: a, url: 'http://x', transport: stdio}]", []string{"backends[0].transport: stdio needs command"}},
		{"unknown transport", "backends: [{name: a, url: 'http://x', transport: ws}]", []string{"backends[0].transport: must be streamable, sse or stdio"}},
		{"headers for a command", "backends: [{name: a, command: [x], headers: {A: b}}]", []string{"backends[0].headers: only for url backends"}},
		{"bad header name", "backends: [{name: a, url: 'http://x', headers: {'X:Y': b, '': c}}]", []string{
			`backends[0].headers[""]: invalid header name`,
			`backends[0].headers["X:Y"]: invalid header name`,
		}},
		{"header set per request", "backends: [{name: a, url: 'http://x', headers: {TraceParent: x, Mcp-Session-Id: y}}]", []string{
			"backends[0].headers.Mcp-Session-Id: set by tracegate on each request; remove it",
			"backends[0].headers.TraceParent: set by tracegate on each request; remove it",
		}},
		{"header value with newline", "backends: [{name: a, url: 'http://x', headers: {A: \"b\\nC: d\"}}]", []string{"backends[0].headers.A: value contains CR, LF or NUL"}},
		{"env and dir for a url", "backends: [{name: a, url: 'http://x', env: {A: b}, dir: /tmp}]", []string{
			"backends[0].env: only for command backends",
			"backends[0].dir: only for command backends",
		}},
		{"bad env", "backends: [{name: a, command: [x], env: {'A=B': c, D: \"\\0\"}}]", []string{
			`backends[0].env["A=B"]: invalid variable name`,
			"backends[0].env.D: value contains NUL",
		}},
		{"empty program", "backends: [{name: a, command: ['', x]}]", []string{"backends[0].command[0]: empty program name"}},
		{"bad baggage key", "backends: [{name: a, url: 'http://x', baggage: [ok, 'no good']}]", []string{`backends[0].baggage[1]: "no good" is not a valid baggage key`}},

		{"name format without tool", "tools: {name_format: '{backend}'}", []string{"tools.name_format: must contain {tool}"}},
		{"name format placeholders", "tools: {name_format: '{backend}.{tool}{Tool}{'}", []string{
			`tools.name_format: unknown placeholder "{Tool}"; use {backend} and {tool}`,
			`tools.name_format: unclosed "{"`,
		}},
		{"name format characters", "tools: {name_format: '{backend}/{tool} é/'}", []string{
			`tools.name_format: characters not allowed in tool names (SEP-986): "/", " ", "é"`,
		}},

		{"unknown plugin type", "plugins: [{name: a, type: foo}]", []string{`plugins[0].type: unknown type "foo"`}},
		{"plugin without name or type", "plugins: [{tools: [a]}]", []string{"plugins[0].name: required", "plugins[0].type: required"}},
		{"duplicate plugin", "plugins: [{name: a, type: deny}, {name: a, type: allow}]", []string{"plugins[1].name: duplicate of plugins[0]"}},
		{"plugin on_error", "plugins: [{name: a, type: deny, on_error: retry}]", []string{"plugins[0].on_error: must be fail or ignore"}},
		{"plugin patterns", okBackend + "plugins: [{name: a, type: deny, backends: ['[', b, 'a*'], tools: ['x[']}]", []string{
			`plugins[0].backends[0]: bad pattern "["`,
			`plugins[0].backends[1]: "b" matches no backend`,
			`plugins[0].tools[0]: bad pattern "x["`,
		}},

		{"exporter", "telemetry: {exporter: jaeger}", []string{"telemetry.exporter: must be otlp, stdout or none"}},
		{"otlp protocol", "telemetry: {otlp: {protocol: http/xml}}", []string{"telemetry.otlp.protocol: must be http/protobuf, http/json or grpc"}},
		{"otlp endpoint", "telemetry: {otlp: {endpoint: 'localhost:4317'}}", []string{"telemetry.otlp.endpoint: missing scheme"}},
		{"otlp header", "telemetry: {otlp: {headers: {'a b': c}}}", []string{`telemetry.otlp.headers["a b"]: invalid header name`}},
		{"ratio above 1", "telemetry: {sampler: {ratio: 1.5}}", []string{"telemetry.sampler.ratio: must be within [0, 1]"}},
		{"ratio below 0", "telemetry: {sampler: {ratio: -0.1}}", []string{"telemetry.sampler.ratio: must be within [0, 1]"}},
		{"ratio NaN", "telemetry: {sampler: {ratio: .nan}}", []string{"telemetry.sampler.ratio: must be within [0, 1]"}},
		{"ratio 0 is fine", "telemetry: {sampler: {ratio: 0}}", nil},
		{"max_spans", "telemetry: {viewer: {max_spans: -5}}", []string{"telemetry.viewer.max_spans: must be positive"}},
		{"max_bytes negative", "telemetry: {viewer: {max_bytes: -1}}", []string{"telemetry.viewer.max_bytes: must be at least 1048576 (1 MiB)"}},
		{"max_bytes too small", "telemetry: {viewer: {max_bytes: 4096}}", []string{"telemetry.viewer.max_bytes: must be at least 1048576 (1 MiB)"}},
		{"max_bytes 1 MiB is fine", "telemetry: {viewer: {max_bytes: 1048576}}", nil},
		{"max_bytes ignored when off", "telemetry: {viewer: {enabled: false, max_bytes: 0}}", nil},
		{"propagators", "telemetry: {propagators: [tracecontext, b3]}", []string{`telemetry.propagators[1]: unknown propagator "b3"; use tracecontext, baggage or none`}},
		{"service name", "telemetry: {service_name: ''}", nil}, // empty means default

		{"log", "log: {format: xml, level: trace}", []string{"log.format: must be json or text", "log.level: must be debug, info, warn or error"}},

		{"redis scheme", "cluster: {redis_url: 'http://r:6379', advertise_url: 'http://a:1'}", []string{`cluster.redis_url: scheme "http" not supported; use redis or rediss`}},
		{"cluster fields required", "cluster: {}", []string{"cluster.redis_url: required", "cluster.advertise_url: required"}},
		{"rediss is fine", "cluster: {redis_url: 'rediss://r:6380/1', advertise_url: 'https://a'}", nil},

		{"every error, in file order", `
listen: 127.0.0.1:8418
backends:
  - {name: Weather, url: 'http://x'}
  - {name: b, url: '127.0.0.1:1'}
  - {name: b, command: [x], transport: sse}
tools: {name_format: x}
telemetry: {exporter: zipkin, sampler: {ratio: 2}}
`, []string{
			"listen and admin_listen must differ",
			`backends[0].name: "Weather" must match [a-z0-9_-]+`,
			"backends[1].url: missing scheme",
			"backends[2].name: duplicate of backends[1]",
			"backends[2].transport: sse needs url",
			"tools.name_format: must contain {tool}",
			"telemetry.exporter: must be otlp, stdout or none",
			"telemetry.sampler.ratio: must be within [0, 1]",
		}},
	}
	checkValidate(t, tests)
}

// TestValidateBuiltInGo covers values that YAML decoding cannot produce but
// Go code can.
func TestValidateBuiltInGo(t *testing.T) {
	t.Parallel()
	c := Default()
	c.ShutdownGrace = -1
	c.SessionIdleTimeout = -1
	c.Backends = []Backend{{Name: "a", URL: "http://x", Transport: TransportStreamable, Baggage: BaggagePolicy{Mode: "some"}}}
	c.Plugins = []Plugin{{Name: "p", Type: "deny", OnError: "fail"}}
	c.Telemetry.Sampler.Ratio = new(math.Inf(1))
	c.Telemetry.OTLP.Timeout = 0
	err := c.Validate()
	want := []string{
		"shutdown_grace: must not be negative",
		"session_idle_timeout: must not be negative",
		"backends[0].timeout: must be positive",
		"backends[0].baggage: must be all, none or a list of keys",
		"plugins[0].timeout: must be positive",
		"telemetry.otlp.timeout: must be positive",
		"telemetry.sampler.ratio: must be within [0, 1]",
	}
	if got := errLines(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("Validate:\ngot  %q\nwant %q", got, want)
	}

	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "shutdown_grace" || fe.Msg != "must not be negative" || fe.Line != 0 {
		t.Errorf("errors.As(*FieldError): got %+v, want the first error with its path", fe)
	}

	var zero Config
	if err := zero.Validate(); err == nil {
		t.Error("zero Config: got no error, want required fields reported")
	}
}
