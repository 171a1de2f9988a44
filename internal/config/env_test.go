package config

import (
	"reflect"
	"testing"
)

func TestExpand(t *testing.T) {
	t.Parallel()
	getenv := env("HOST", "example.com", "EMPTY", "", "PORT", "8443")
	tests := []struct {
		in, want, err string
	}{
		{in: "plain", want: "plain"},
		{in: "${HOST}", want: "example.com"},
		{in: "https://${HOST}:${PORT}/mcp", want: "https://example.com:8443/mcp"},
		{in: "${UNSET}", want: ""},
		{in: "${UNSET:-fallback}", want: "fallback"},
		{in: "${EMPTY:-fallback}", want: "fallback"},
		{in: "${HOST:-fallback}", want: "example.com"},
		{in: "${UNSET:-}", want: ""},
		{in: "${UNSET:-a:-b}", want: "a:-b"},
		{in: "${UNSET:-$$}", want: "$$"}, // a default is literal text
		{in: "$${HOST}", want: "${HOST}"},
		{in: "$$$$", want: "$$"},
		{in: "cost: $5", want: "cost: $5"},
		{in: "trailing $", want: "trailing $"},
		{in: "$HOST", want: "$HOST"}, // only the braced form expands
		{in: "${HOST", err: `unterminated "${"`},
		{in: "${}", err: `invalid variable name "" in ${...}`},
		{in: "${9LIVES}", err: `invalid variable name "9LIVES" in ${...}`},
		{in: "${A-B}", err: `invalid variable name "A-B" in ${...}`},
		{in: "${A:=b}", err: `invalid variable name "A:=b" in ${...}`},
	}
	for _, tt := range tests {
		got, err := expand(tt.in, getenv)
		switch {
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("expand(%q): got error %v, want %q", tt.in, err, tt.err)
		case tt.err == "" && err != nil:
			t.Errorf("expand(%q): got error %v", tt.in, err)
		case got != tt.want:
			t.Errorf("expand(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestParseExpandStaysScalar checks that a variable's value can never add
// YAML structure: keys, list items, flow collections or anchors in it stay
// text.
func TestParseExpandStaysScalar(t *testing.T) {
	t.Parallel()
	values := []string{
		"a: b",
		"line1\nline2: x\n- item",
		"{listen: 0.0.0.0:80}",
		"[a, b]",
		"*alias",
		"\"quoted\"",
		"# not a comment",
		"null",
		"",
		"${NESTED}", // expansion is one pass
	}
	for _, v := range values {
		src := "plugins:\n  - name: p\n    type: deny\n    plain: ${V}\n    quoted: \"${V}\"\n" + okBackend
		c, err := Parse([]byte(src), env("V", v, "NESTED", "nested!"))
		if err != nil {
			t.Errorf("V=%q: Parse: %v", v, err)
			continue
		}
		opts := c.Plugins[0].Options
		if len(opts) != 2 {
			t.Errorf("V=%q: got options %q, want only plain and quoted", v, opts)
		}
		if got := opts["quoted"]; got != v {
			t.Errorf("V=%q: quoted: got %#v, want the value as a string", v, got)
		}
		if c.Listen != DefaultListen {
			t.Errorf("V=%q: listen: got %q, want the default", v, c.Listen)
		}
	}
}

func TestParseExpandTypes(t *testing.T) {
	t.Parallel()
	src := `
max_request_bytes: ${MAX}
shutdown_grace: ${GRACE:-3s}
auth: {bearer_tokens: ["${TOKEN}", "${NULLISH}"]}
telemetry:
  capture_arguments: ${CAPTURE}
  sampler:
    ratio: ${RATIO}
  http_spans: ${UNSET}
backends:
  - name: ${NAME}
    url: http://127.0.0.1:${PORT}/mcp
    timeout: ${UNSET}
`
	c, err := Parse([]byte(src), env("MAX", "1024", "CAPTURE", "true", "RATIO", "0.5", "TOKEN", "a:b#c",
		"NULLISH", "null", "NAME", "weather", "PORT", "9001"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"max_request_bytes", c.MaxRequestBytes, int64(1024)},
		{"shutdown_grace", c.ShutdownGrace.String(), "3s"},
		{"bearer_tokens", c.Auth.BearerTokens, []BearerToken{{Token: "a:b#c"}, {Token: "null"}}},
		{"capture_arguments", c.Telemetry.CaptureArguments, true},
		{"sampler.ratio", *c.Telemetry.Sampler.Ratio, 0.5},
		{"http_spans (unset, so default)", *c.Telemetry.HTTPSpans, false},
		{"backends[0].name", c.Backends[0].Name, "weather"},
		{"backends[0].url", c.Backends[0].URL, "http://127.0.0.1:9001/mcp"},
		{"backends[0].timeout (unset, so default)", c.Backends[0].Timeout.String(), "30s"},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s: got %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
}

func TestParseExpandSkipsKeys(t *testing.T) {
	t.Parallel()
	src := `backends: [{name: a, url: 'http://x', headers: {"${KEY}": "${VALUE}"}}]`
	_, err := Parse([]byte(src), env("KEY", "X-Api-Key", "VALUE", "k"))
	want := []string{`backends[0].headers["${KEY}"]: invalid header name`}
	if got := msgLines(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseExpandQuotedKeepsType(t *testing.T) {
	t.Parallel()
	// Quoting says "string", with or without a variable in it.
	_, err := Parse([]byte(`max_request_bytes: "${MAX}"`), env("MAX", "1024"))
	want := []string{"line 1: max_request_bytes: want an integer"}
	if got := errLines(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseSecretsStayOutOfErrors(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-secret"
	src := `
auth: {bearer_tokens: ["${S} x"]}
backends:
  - name: a
    url: http://127.0.0.1:1/mcp
    headers: {Authorization: "${S}\r\n"}
`
	_, err := Parse([]byte(src), env("S", secret))
	want := []string{
		"auth.bearer_tokens[0]: token contains spaces or control characters",
		"backends[0].headers.Authorization: value contains CR, LF or NUL",
	}
	if got := msgLines(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
