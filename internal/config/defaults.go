package config

import "time"

// Default values, applied by ApplyDefaults to every field left empty.
const (
	// DefaultBackendMaxSessions bounds a per_client backend's sessions.
	DefaultBackendMaxSessions = 64
	DefaultListen             = "127.0.0.1:8080"
	// DefaultAdminListen's port is one that no common tool claims by
	// default (9090 is Prometheus's, 9464 the OTel Prometheus exporter's).
	DefaultAdminListen     = "127.0.0.1:8418"
	DefaultMaxRequestBytes = 4 << 20 // 4 MiB
	DefaultShutdownGrace   = 10 * time.Second
	// DefaultSessionIdleTimeout is how long a silent client session lives.
	DefaultSessionIdleTimeout = 30 * time.Minute
	DefaultBackendTimeout     = 30 * time.Second
	DefaultNameFormat         = "{backend}_{tool}"
	DefaultServiceName        = "tracegate"
	DefaultOTLPTimeout        = 10 * time.Second
	DefaultViewerMaxSpans     = 100_000
	DefaultViewerMaxBytes     = 256 << 20
	// MinViewerMaxBytes is the smallest telemetry.viewer.max_bytes
	// accepted: below it the store would hold only a few large traces.
	MinViewerMaxBytes    = 1 << 20
	DefaultPluginTimeout = time.Second
	DefaultFlushTimeout  = 5 * time.Second

	DefaultMaxSessions           = 1000
	DefaultMaxConcurrentRequests = 128
	DefaultMaxStreams            = 256
	DefaultBodyReadTimeout       = 10 * time.Second
	DefaultOAuthClockSkew        = 30 * time.Second
)

// Default returns a configuration with every default applied and no
// backends. It is valid as it is.
func Default() *Config {
	c := &Config{}
	c.ApplyDefaults()
	return c
}

// ApplyDefaults fills every empty field with its default, as documented on
// the field. It does not validate, and it leaves set fields alone, so it is
// safe to call more than once.
func (c *Config) ApplyDefaults() {
	setString(&c.Listen, DefaultListen)
	setString(&c.AdminListen, DefaultAdminListen)
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	setDuration(&c.ShutdownGrace, DefaultShutdownGrace)
	setDuration(&c.SessionIdleTimeout, DefaultSessionIdleTimeout)
	setInt(&c.Limits.MaxSessions, DefaultMaxSessions)
	setInt(&c.Limits.MaxConcurrentRequests, DefaultMaxConcurrentRequests)
	setInt(&c.Limits.MaxStreams, DefaultMaxStreams)
	setDuration(&c.Limits.BodyReadTimeout, DefaultBodyReadTimeout)
	for i := range c.Backends {
		b := &c.Backends[i]
		setDuration(&b.Timeout, DefaultBackendTimeout)
		if b.Transport == "" {
			switch {
			case b.URL != "":
				b.Transport = TransportStreamable
			case len(b.Command) > 0:
				b.Transport = TransportStdio
			}
		}
		if b.Baggage.Mode == "" {
			b.Baggage.Mode = BaggageNone
		}
		if b.Sessions == "" {
			b.Sessions = SessionsShared
		}
		if b.MaxSessions == 0 {
			b.MaxSessions = DefaultBackendMaxSessions
		}
	}
	for _, t := range []*ServerTLS{c.TLS, c.Admin.TLS} {
		if t != nil {
			setString(&t.MinVersion, "1.2")
		}
	}
	if o := c.Auth.OAuth; o != nil {
		setDuration(&o.ClockSkew, DefaultOAuthClockSkew)
		if o.Algorithms == nil {
			o.Algorithms = append([]string(nil), DefaultJWTAlgorithms...)
		}
	}
	setString(&c.Tools.NameFormat, DefaultNameFormat)
	for i := range c.Plugins {
		p := &c.Plugins[i]
		setString(&p.OnError, "fail")
		setDuration(&p.Timeout, DefaultPluginTimeout)
	}

	t := &c.Telemetry
	setString(&t.ServiceName, DefaultServiceName)
	setString(&t.Exporter, "none")
	setString(&t.OTLP.Protocol, "http/protobuf")
	setDuration(&t.OTLP.Timeout, DefaultOTLPTimeout)
	setDuration(&t.FlushTimeout, DefaultFlushTimeout)
	if t.Sampler.Ratio == nil {
		t.Sampler.Ratio = new(1.0)
	}
	if t.Viewer.Enabled == nil {
		t.Viewer.Enabled = new(true)
	}
	if t.Viewer.MaxSpans == 0 {
		t.Viewer.MaxSpans = DefaultViewerMaxSpans
	}
	if t.Viewer.MaxBytes == 0 {
		t.Viewer.MaxBytes = DefaultViewerMaxBytes
	}
	if t.Propagators == nil {
		t.Propagators = []string{"tracecontext", "baggage"}
	}
	if t.HTTPSpans == nil {
		t.HTTPSpans = new(false)
	}
	setString(&t.IncomingContext, IncomingTrust)
	setString(&t.IncomingContextAuthenticated, t.IncomingContext)

	setString(&c.Log.Format, "json")
	setString(&c.Log.Level, "info")
}

func setString(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

func setDuration(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

func setInt(n *int, def int) {
	if *n == 0 {
		*n = def
	}
}
