package probe

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestOptionsResolvedTransport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url, transport, want string
	}{
		{"http://h/mcp", "", TransportStreamable},
		{"http://h/sse", "", TransportSSE},
		{"http://h/v1/sse/", TransportAuto, TransportSSE},
		{"http://h/sse", TransportStreamable, TransportStreamable},
		{"http://h/mcp", TransportSSE, TransportSSE},
		{"http://h/assets", "", TransportStreamable},
	}
	for _, tc := range tests {
		o := Options{URL: tc.url, Transport: tc.transport}
		if got := o.resolvedTransport(); got != tc.want {
			t.Errorf("%s with %q: got %s, want %s", tc.url, tc.transport, got, tc.want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{"minimal", Options{URL: "http://h/mcp"}, false},
		{"https", Options{URL: "https://h:8443/mcp", Protocol: ProtocolAuto, Timeout: time.Second}, false},
		{"missing URL", Options{}, true},
		// Run reports an unusable URL as a failed first step.
		{"unparseable URL", Options{URL: "http://[::1/mcp"}, false},
		{"negative timeout", Options{URL: "http://h/mcp", Timeout: -time.Second}, true},
		{"header name with colon", Options{URL: "http://h/mcp", Header: http.Header{"X:Y": {"v"}}}, true},
		{"header value with NUL", Options{URL: "http://h/mcp", Header: http.Header{"X": {"a\x00b"}}}, true},
		{"args with trailing data", Options{URL: "http://h/mcp", Tool: "t", Args: []byte(`{} {}`)}, true},
		{"stateless over sse path", Options{URL: "http://h/sse", Protocol: ProtocolStateless}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.opts.Validate()
			if (err != nil) != tc.wantErr {
				t.Errorf("got %v, want error: %v", err, tc.wantErr)
			}
		})
	}
}

func TestFormatLatency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{420 * time.Microsecond, "0.42ms"},
		{3100 * time.Microsecond, "3.1ms"},
		{2 * time.Second, "2.0s"},
	}
	for _, tc := range tests {
		if got := formatLatency(tc.d); got != tc.want {
			t.Errorf("formatLatency(%v): got %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestTracesURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"},
		{"http://127.0.0.1:9090/", "http://127.0.0.1:9090/v1/traces"},
		{"https://otel.example/v1/traces", "https://otel.example/v1/traces"},
	}
	for _, tc := range tests {
		if got := tracesURL(tc.in); got != tc.want {
			t.Errorf("tracesURL(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactRawURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"http://[::1/mcp", "http://[::1/mcp"},
		{"http://user:pw@[::1/mcp?api_key=secret#frag", "http://xxxxx@[::1/mcp?xxxxx"},
		{"user:pw@h:99999", "xxxxx@h:99999"},
		{"http://h/a@b", "http://h/a@b"},
	}
	for _, tc := range tests {
		if got := redactRawURL(tc.in); got != tc.want {
			t.Errorf("redactRawURL(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseEndpointErrorsHideTheURL(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"http://u:s3cret@[::1/mcp", "ftp://u:s3cret@h/mcp", "s3cret:1/mcp", "http://u:s3cret@h:99999/mcp"} {
		_, err := parseEndpoint(raw)
		if err == nil {
			t.Errorf("parseEndpoint(%q): got nil error, want one", raw)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("parseEndpoint(%q): error %q repeats the secret", raw, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"http://h:1/mcp", "http://h:1/mcp"},
		{"https://user:pw@h/mcp?api_key=secret&x=1", "https://REDACTED@h/mcp?api_key=REDACTED&x=1"},
	}
	for _, tc := range tests {
		u, err := parseEndpoint(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := redactURL(u); got != tc.want {
			t.Errorf("redactURL(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}
