package config

import (
	"reflect"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	t.Parallel()
	want := &Config{
		Listen:             "127.0.0.1:8080",
		AdminListen:        "127.0.0.1:8418",
		MaxRequestBytes:    4 << 20,
		ShutdownGrace:      Duration(10 * time.Second),
		SessionIdleTimeout: Duration(30 * time.Minute),
		Limits:             Limits{MaxSessions: 1000, MaxConcurrentRequests: 128, MaxStreams: 256, BodyReadTimeout: Duration(10 * time.Second)},
		Tools:              Tools{NameFormat: "{backend}_{tool}"},
		Telemetry: Telemetry{
			ServiceName:  "tracegate",
			Exporter:     "none",
			OTLP:         OTLP{Protocol: "http/protobuf", Timeout: Duration(10 * time.Second)},
			FlushTimeout: Duration(5 * time.Second),
			Sampler:      Sampler{Ratio: new(1.0)},
			Viewer:       Viewer{Enabled: new(true), MaxSpans: 100000, MaxBytes: 256 << 20},
			Propagators:  []string{"tracecontext", "baggage"},
			HTTPSpans:    new(false),

			IncomingContext:              "trust",
			IncomingContextAuthenticated: "trust",
		},
		Log: Log{Format: "json", Level: "info"},
	}
	got := Default()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Default():\ngot  %+v\nwant %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Default().Validate(): %v", err)
	}
}

func TestApplyDefaultsPerEntry(t *testing.T) {
	t.Parallel()
	c := &Config{
		Backends: []Backend{
			{Name: "h", URL: "http://x"},
			{Name: "c", Command: []string{"x"}},
			{Name: "s", URL: "http://x", Transport: TransportSSE, Timeout: Duration(time.Second), Baggage: BaggagePolicy{Mode: BaggageAll}},
		},
		Plugins: []Plugin{
			{Name: "p", Type: "deny"},
			{Name: "q", Type: "deny", OnError: "ignore", Timeout: Duration(time.Minute)},
		},
		Telemetry: Telemetry{Propagators: []string{}, HTTPSpans: new(true), Viewer: Viewer{Enabled: new(false)}},
	}
	c.ApplyDefaults()
	c.ApplyDefaults() // idempotent
	tests := []struct {
		name      string
		got, want any
	}{
		{"url transport", c.Backends[0].Transport, TransportStreamable},
		{"command transport", c.Backends[1].Transport, TransportStdio},
		{"set transport kept", c.Backends[2].Transport, TransportSSE},
		{"backend timeout", c.Backends[0].Timeout, Duration(30 * time.Second)},
		{"set timeout kept", c.Backends[2].Timeout, Duration(time.Second)},
		{"baggage", c.Backends[0].Baggage, BaggagePolicy{Mode: BaggageNone}},
		{"set baggage kept", c.Backends[2].Baggage, BaggagePolicy{Mode: BaggageAll}},
		{"plugin on_error", c.Plugins[0].OnError, "fail"},
		{"plugin timeout", c.Plugins[0].Timeout, Duration(time.Second)},
		{"set on_error kept", c.Plugins[1].OnError, "ignore"},
		{"set plugin timeout kept", c.Plugins[1].Timeout, Duration(time.Minute)},
		{"empty propagator list kept", c.Telemetry.Propagators, []string{}},
		{"http_spans true kept", *c.Telemetry.HTTPSpans, true},
		{"viewer disabled kept", *c.Telemetry.Viewer.Enabled, false},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
