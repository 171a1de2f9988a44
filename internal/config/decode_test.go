package config

import (
	"fmt"
	"reflect"
	"testing"
)

const okBackend = "backends: [{name: a, url: 'http://127.0.0.1:1/mcp'}]\n"

func TestParseDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown top-level key", "listn: 127.0.0.1:1\n", []string{"line 1: listn: unknown key"}},
		{"unknown key in backend", "backends:\n  - name: a\n    urll: http://x\n", []string{"line 3: backends[0].urll: unknown key", "line 2: backends[0]: set exactly one of url and command"}},
		{"unknown key two deep", "telemetry:\n  otlp:\n    endpiont: http://x\n", []string{"line 3: telemetry.otlp.endpiont: unknown key"}},
		{"unknown key three deep", "telemetry: {sampler: {ratio: 1, rate: 2}}\n", []string{"line 1: telemetry.sampler.rate: unknown key"}},
		{"unknown key in pointer struct", "cluster: {redis: redis://x}\n", []string{"line 1: cluster.redis: unknown key", "line 1: cluster.redis_url: required", "line 1: cluster.advertise_url: required"}},
		{"unknown keys are all reported", "auth: {tokens: [a]}\nlog: {lvl: info}\n", []string{
			"line 1: auth.tokens: unknown key",
			"line 2: log.lvl: unknown key",
		}},
		{"odd key gets quoted path", "tools: {\"name format\": x}\n", []string{`line 1: tools["name format"]: unknown key`}},
		{"duplicate key", "listen: a:1\nlisten: b:2\n", []string{"line 2: listen: duplicate key (first at line 1)"}},
		{"duplicate header", "backends: [{name: a, url: 'http://x', headers: {A: b, A: c}}]\n", []string{
			"line 1: backends[0].headers.A: duplicate key (first at line 1)",
		}},
		{"list wanted", "backends: {name: a}\n", []string{"line 1: backends: want a list, got a mapping"}},
		{"mapping wanted", "telemetry: [a]\n", []string{"line 1: telemetry: want a mapping, got a list"}},
		{"string wanted", "listen: [a]\n", []string{"line 1: listen: want a string, got a list"}},
		{"integer wanted", "max_request_bytes: 4MiB\n", []string{"line 1: max_request_bytes: want an integer"}},
		{"bool wanted", "telemetry: {capture_arguments: maybe}\n", []string{"line 1: telemetry.capture_arguments: want true or false"}},
		{"number wanted", "telemetry: {sampler: {ratio: half}}\n", []string{"line 1: telemetry.sampler.ratio: want a number"}},
		{"map of strings wanted", "backends: [{name: a, url: 'http://x', headers: {A: [b]}}]\n", []string{
			"line 1: backends[0].headers.A: want a string, got a list",
		}},
		{"key not a string", "{[a]: b}\n", []string{"line 1: keys must be strings, got a list"}},
		{"top level not a mapping", "- a\n", []string{"line 1: want a mapping, got a list"}},
		{"syntax error", "listen: a\n  b: c\n", []string{"line 2: mapping values are not allowed in this context"}},
		{"two documents", "listen: a:1\n---\nlisten: b:2\n", []string{"line 2: want one YAML document, found another"}},
		{"bad duration", "shutdown_grace: 10\n", []string{`line 1: shutdown_grace: want a duration such as "30s" or "1m30s"`}},
		{"negative duration", "backends: [{name: a, url: 'http://x', timeout: -1s}]\n", []string{"line 1: backends[0].timeout: must not be negative"}},
		{"bad baggage", "backends: [{name: a, url: 'http://x', baggage: some}]\n", []string{"line 1: backends[0].baggage: want all, none or a list of keys"}},
		{"alias cycle", "backends: &x [*x]\n", []string{"line 1: backends[0]: anchor &x contains an alias to itself"}},
		{"merge cycle", "telemetry: &x {<<: *x}\n", []string{"line 1: telemetry: anchor &x contains an alias to itself"}},
		{"merge of a scalar", "telemetry: {<<: a}\n", []string{"line 1: telemetry: << wants a mapping or a list of mappings"}},
		{"unknown key through a merge", "telemetry: {<<: {bad: 1}}\n", []string{"line 1: telemetry.bad: unknown key"}},
		{"duplicate key in plugin options", "plugins: [{name: p, type: deny, opt: {a: 1, a: 2}}]\n", []string{
			`line 1: plugins[0].opt: mapping key "a" already defined at line 1`,
		}},
		{"alias cycle in plugin options", "plugins: [{name: p, type: deny, opt: &x [*x]}]\n", []string{
			"line 1: plugins[0].opt: anchor 'x' value contains itself",
		}},
		{"bad expansion", "listen: ${A\n", []string{`line 1: listen: unterminated "${"`}},
		{"bad variable name", "backends:\n  - name: ${1A}\n", []string{`line 2: backends[0].name: invalid variable name "1A" in ${...}`, "line 2: backends[0]: set exactly one of url and command"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(tt.yaml), nil)
			if got := errLines(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) errors:\ngot  %q\nwant %q", tt.yaml, got, tt.want)
			}
			if c != nil {
				t.Errorf("Parse(%q): got a config along with errors, want nil", tt.yaml)
			}
		})
	}
}

func TestParseMergeKeys(t *testing.T) {
	t.Parallel()
	// Explicit keys override merged ones; among merged mappings the first
	// wins (https://yaml.org/type/merge.html).
	src := `
plugins:
  - &base {name: base, type: deny, timeout: 2s, tools: [a]}
  - <<: [{name: first, on_error: ignore}, *base]
    tools: [b]
`
	c, err := Parse([]byte(src), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	p := c.Plugins[1]
	got := fmt.Sprintf("%s %s %s %s %v", p.Name, p.Type, p.OnError, p.Timeout, p.Tools)
	if want := "first deny ignore 2s [b]"; got != want {
		t.Errorf("merged plugin: got %q, want %q", got, want)
	}
}

func TestParseAnchorsOnEveryKind(t *testing.T) {
	t.Parallel()
	src := `
cluster: &cluster {redis_url: 'redis://r:6379', advertise_url: 'http://a:1'}
telemetry:
  sampler: {ratio: &ratio 0.5}
  http_spans: &off false
  capture_arguments: *off
  propagators: &props [tracecontext]
backends:
  - &b {name: a, url: 'http://x', timeout: &t 5s, baggage: &bag [k]}
  - {name: b, url: 'http://x', timeout: *t, baggage: *bag}
`
	c, err := Parse([]byte(src), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got := fmt.Sprintf("%v %v %v %v %v %v %v", c.Cluster.RedisURL, *c.Telemetry.Sampler.Ratio, *c.Telemetry.HTTPSpans,
		c.Telemetry.CaptureArguments, c.Telemetry.Propagators, c.Backends[1].Timeout, c.Backends[1].Baggage.Keys)
	if want := "redis://r:6379 0.5 false false [tracecontext] 5s [k]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseAliasBudget(t *testing.T) {
	t.Parallel()
	// Each level merges the one below twice, so resolving it takes 2^25
	// steps: a "billion laughs" in a few hundred bytes.
	h := "&h0 {A: b}"
	for i := 1; i <= 25; i++ {
		h = fmt.Sprintf("&h%d {<<: [%s, *h%d]}", i, h, i-1)
	}
	src := "backends: [{name: a, url: 'http://x', headers: " + h + "}]\n"
	_, err := Parse([]byte(src), nil)
	want := []string{"line 1: more than 100000 values after alias expansion"}
	if got := errLines(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParsePluginOptions(t *testing.T) {
	t.Parallel()
	src := `
plugins:
  - name: r
    type: redact
    patterns: ['\d{16}', "${PATTERN}"]
    replacement: ${REPL:-[redacted]}
    nested: {deep: {keys: [1, true]}}
    burst: ${BURST}
`
	c, err := Parse([]byte(src+okBackend), env("PATTERN", "secret-.*", "BURST", "40"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := map[string]any{
		"patterns":    []any{`\d{16}`, "secret-.*"},
		"replacement": "[redacted]",
		"nested":      map[string]any{"deep": map[string]any{"keys": []any{1, true}}},
		"burst":       40, // a plain expanded value is typed from its text
	}
	if got := c.Plugins[0].Options; !reflect.DeepEqual(got, want) {
		t.Errorf("Options:\ngot  %#v\nwant %#v", got, want)
	}
}

// TestParseEmpty: a file with no settings is a mistake (a wrong path, a
// truncated write), not a request for the defaults.
func TestParseEmpty(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"", "# only a comment\n", "---\n", "~\n"} {
		c, err := Parse([]byte(src), nil)
		if got, want := msgLines(t, err), []string{"empty file: want a mapping of settings, such as backends"}; !reflect.DeepEqual(got, want) || c != nil {
			t.Errorf("Parse(%q): got %v, %q; want no config and %q", src, c, got, want)
		}
	}
}
