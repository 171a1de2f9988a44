package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// env returns a getenv over a fixed map, so tests never read the process
// environment.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// errLines splits an Errors into its lines, failing the test for any other
// error type.
func errLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("got error %T %q, want Errors", err, err)
	}
	return strings.Split(es.Error(), "\n")
}

// msgLines is errLines without the positions, for tests of what the
// messages say; TestCheckPositions tests where they point.
func msgLines(t *testing.T, err error) []string {
	t.Helper()
	lines := errLines(t, err)
	for i, l := range lines {
		lines[i] = linePrefix.ReplaceAllString(l, "")
	}
	return lines
}

var linePrefix = regexp.MustCompile(`^line [0-9]+: `)

func TestLoadFull(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, env("TRACEGATE_TOKEN", "s3cret", "WEATHER_TOKEN", "w-token"))
	if err != nil {
		t.Fatalf("Parse(full.yaml): %v", err)
	}
	want := &Config{
		Listen:             "127.0.0.1:8080",
		AdminListen:        "127.0.0.1:8418",
		MaxRequestBytes:    4 << 20,
		ShutdownGrace:      Duration(10 * time.Second),
		SessionIdleTimeout: Duration(30 * time.Minute),
		Limits:             Limits{MaxSessions: 500, MaxConcurrentRequests: 64, MaxStreams: 100, BodyReadTimeout: Duration(5 * time.Second)},
		Auth:               Auth{BearerTokens: []BearerToken{{Token: "s3cret"}}},
		Backends: []Backend{
			{
				Name: "weather", URL: "http://127.0.0.1:9001/mcp", Transport: TransportStreamable,
				Headers: map[string]string{"Authorization": "Bearer w-token"},
				Timeout: Duration(30 * time.Second), Baggage: BaggagePolicy{Mode: BaggageNone}, Sessions: SessionsShared, MaxSessions: DefaultBackendMaxSessions,
			},
			{
				Name: "legacy", URL: "http://127.0.0.1:9002/sse", Transport: TransportSSE,
				Timeout: Duration(30 * time.Second),
				Baggage: BaggagePolicy{Mode: BaggageKeys, Keys: []string{"tenant", "user.id"}}, Sessions: SessionsShared, MaxSessions: DefaultBackendMaxSessions,
			},
			{
				Name: "files", Command: []string{"./bin/files-server", "--root", "/data"}, Transport: TransportStdio,
				Env: map[string]string{"LOG_LEVEL": "info"}, Dir: "/srv/files",
				Timeout: Duration(90 * time.Second), Baggage: BaggagePolicy{Mode: BaggageAll}, Sessions: SessionsShared, MaxSessions: DefaultBackendMaxSessions,
			},
		},
		Tools: Tools{NameFormat: "{backend}_{tool}"},
		Plugins: []Plugin{
			{Name: "no-deletes", Type: "deny", Tools: []string{"files_delete*"}, OnError: "fail", Timeout: Duration(time.Second)},
			{
				Name: "per-session", Type: "ratelimit", OnError: "fail", Timeout: Duration(time.Second),
				Options: map[string]any{"rate": "20/s", "burst": 40},
			},
			{
				Name: "weather-only", Type: "max_size", Backends: []string{"weather"}, Priority: -1,
				OnError: "ignore", Timeout: Duration(250 * time.Millisecond),
				Options: map[string]any{"max_bytes": 65536},
			},
		},
		Telemetry: Telemetry{
			ServiceName: "tracegate",
			Exporter:    "otlp",
			OTLP: OTLP{
				Endpoint: "http://127.0.0.1:4318", Protocol: "http/protobuf",
				Headers: map[string]string{"X-Scope-OrgID": "demo"}, Timeout: Duration(5 * time.Second),
			},
			Sampler:      Sampler{Ratio: new(0.25)},
			Viewer:       Viewer{Enabled: new(true), MaxSpans: 100000, MaxBytes: 256 << 20},
			Propagators:  []string{"tracecontext", "baggage"},
			HTTPSpans:    new(true),
			FlushTimeout: Duration(3 * time.Second),

			IncomingContext:              "trust",
			IncomingContextAuthenticated: "trust",
		},
		Log:     Log{Format: "text", Level: "debug"},
		Cluster: &Cluster{RedisURL: "redis://127.0.0.1:6379/0", AdvertiseURL: "http://127.0.0.1:8081"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse(full.yaml):\ngot  %+v\nwant %+v", c, want)
	}
}

func TestLoadTestdata(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want []string // error lines; nil for a valid file
	}{
		{"full.yaml", nil},
		{"minimal.yaml", nil},
		{"anchors.yaml", nil},
		{"invalid.yaml", []string{
			"listen and admin_listen must differ",
			"auth.bearer_tokens[0]: empty token (${TRACEGATE_TOKEN} unset or empty)",
			`backends[0].name: "Weather" must match [a-z0-9_-]+`,
			"backends[0].url: missing scheme",
			"backends[1].transport: sse needs url",
			"backends[2].name: duplicate of backends[1]",
			`backends[2].url: scheme "ftp" not supported; use http or https`,
			`backends[2].headers["Bad Header"]: invalid header name`,
			"telemetry.exporter: must be otlp, stdout or none",
			"telemetry.sampler.ratio: must be within [0, 1]",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			getenv := env("TRACEGATE_TOKEN", "t", "WEATHER_TOKEN", "w")
			if tt.want != nil {
				getenv = env() // invalid.yaml also checks that an unset token is caught
			}
			_, err = Parse(data, getenv)
			if got := msgLines(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%s) errors:\ngot  %q\nwant %q", tt.file, got, tt.want)
			}
		})
	}
}

func TestLoadAnchors(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/anchors.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, env("LEGACY_TOKEN", "tok"))
	if err != nil {
		t.Fatalf("Parse(anchors.yaml): %v", err)
	}
	if got, want := c.Backends[1].URL, "http://127.0.0.1:9002/sse"; got != want {
		t.Errorf("legacy url: got %q, want the default %q", got, want)
	}
	if got, want := c.Backends[1].Baggage.Keys, []string{"tenant"}; !reflect.DeepEqual(got, want) {
		t.Errorf("aliased baggage: got %q, want %q", got, want)
	}
	wantHeaders := map[string]string{"Authorization": "Bearer tok", "X-Team": "search"}
	if got := c.Backends[2].Headers; !reflect.DeepEqual(got, wantHeaders) {
		t.Errorf("merged headers: got %q, want %q", got, wantHeaders)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/minimal.yaml")
	if err != nil {
		t.Fatalf("Load(minimal.yaml): %v", err)
	}
	if got, want := c.Backends[0].Transport, TransportStreamable; got != want {
		t.Errorf("transport: got %q, want %q", got, want)
	}

	_, err = Load("testdata/missing.yaml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing.yaml): got %v, want an error wrapping os.ErrNotExist", err)
	}
	if err == nil || !strings.Contains(err.Error(), "testdata/missing.yaml") {
		t.Errorf("Load(missing.yaml): got %v, want the path in the error", err)
	}
}
