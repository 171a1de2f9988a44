// Package config holds tracegate's configuration: the YAML file of
// DESIGN.md section 6, decoded strictly, given defaults, then validated.
package config

import "time"

// Config is the whole tracegate.yaml.
type Config struct {
	// Listen is the MCP listener: /mcp and /mcp/{backend}. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// AdminListen serves /healthz, /readyz, /metrics, /api/traces, /ui/ and
	// OTLP ingest at /v1/traces. Never the same address as Listen.
	// Default 127.0.0.1:8418 (9090, the old default, is Prometheus's);
	// "off" disables it.
	AdminListen string `yaml:"admin_listen"`
	// MaxRequestBytes caps an MCP request body; larger ones get HTTP 413.
	// Default 4 MiB.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// ShutdownGrace bounds how long in-flight requests may run after a
	// shutdown signal. Default 10s.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	// SessionIdleTimeout closes a client session after this long with no
	// request and no open stream. Default 30m.
	SessionIdleTimeout Duration `yaml:"session_idle_timeout"`

	// TLS, when set, serves the MCP listener over TLS.
	TLS       *ServerTLS `yaml:"tls"`
	Admin     Admin      `yaml:"admin"`
	Limits    Limits     `yaml:"limits"`
	Auth      Auth       `yaml:"auth"`
	Backends  []Backend  `yaml:"backends"`
	Tools     Tools      `yaml:"tools"`
	Plugins   []Plugin   `yaml:"plugins"`
	Telemetry Telemetry  `yaml:"telemetry"`
	Log       Log        `yaml:"log"`
	Cluster   *Cluster   `yaml:"cluster"`
}

// Limits bound what clients may hold on the MCP listener at once. Past a
// limit a request gets HTTP 503 with Retry-After (or a JSON-RPC error when
// it was already accepted), and the refusal is counted in
// tracegate.limit.refusals. The defaults suit a small machine.
type Limits struct {
	// MaxSessions bounds open client sessions. Default 1000.
	MaxSessions int `yaml:"max_sessions"`
	// MaxConcurrentRequests bounds MCP requests in progress, long-lived GET
	// streams excluded. Each may hold a body of up to MaxRequestBytes, so
	// their product bounds the memory of request bodies. Default 128.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// MaxStreams bounds open long-lived GET (server-sent events) streams.
	// Default 256.
	MaxStreams int `yaml:"max_streams"`
	// BodyReadTimeout bounds how long a client may take to send a request
	// body; a slower one gets HTTP 408. Default 10s.
	BodyReadTimeout Duration `yaml:"body_read_timeout"`
}

// Auth protects the MCP listener. With neither BearerTokens nor OAuth set,
// the listener is open.
type Auth struct {
	// BearerTokens are accepted "Authorization: Bearer" values, each a
	// string or {name, token}; the name identifies the caller (plugins,
	// and logs and spans with telemetry.capture_identity). Compared in
	// constant time. An empty token (such as an unset ${TRACEGATE_TOKEN})
	// is a validation error.
	BearerTokens []BearerToken `yaml:"bearer_tokens"`
	// OAuth makes the listener an OAuth 2.1 resource server, as the MCP
	// authorization specification describes: JWT access tokens from one
	// issuer, checked against its JWKS. Static BearerTokens keep working
	// beside it.
	OAuth *OAuth `yaml:"oauth"`
}

// BearerToken is one static token. In YAML it is the token alone, or a
// mapping {name, token}.
type BearerToken struct {
	Name  string `yaml:"name"`
	Token string `yaml:"token"`
}

// OAuth configures JWT access-token validation.
type OAuth struct {
	// Issuer is the authorization server's issuer identifier (the iss
	// claim). Its metadata (RFC 8414, else OpenID Connect discovery) gives
	// the JWKS, unless JWKSURL is set. https, or http on a loopback host.
	Issuer string `yaml:"issuer"`
	// Audience is this gateway's resource identifier (RFC 8707), required
	// in the aud claim, e.g. https://mcp.example.com/mcp.
	Audience string `yaml:"audience"`
	// JWKSURL overrides discovery. https, or http on a loopback host.
	JWKSURL string `yaml:"jwks_url"`
	// RequiredScopes must all be in the token's scope (or scp) claim;
	// otherwise the request gets 403 insufficient_scope.
	RequiredScopes []string `yaml:"required_scopes"`
	// Algorithms allowed in the JWS header. Default: RS256, RS384, RS512,
	// PS256, PS384, PS512, ES256, ES384, ES512, EdDSA. "none" and the HMAC
	// algorithms are refused.
	Algorithms []string `yaml:"algorithms"`
	// ClockSkew is the leeway on exp, nbf and iat. Default 30s.
	ClockSkew Duration `yaml:"clock_skew"`
	// ResourceDocumentation is an optional URL published in the
	// protected resource metadata (RFC 9728 resource_documentation).
	ResourceDocumentation string `yaml:"resource_documentation"`
}

// ServerTLS serves a listener over TLS. The certificate and key files are
// read again when they change, so a renewed certificate needs no restart.
type ServerTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, verifies client certificates against these
	// CAs. Clients may still connect without one unless
	// RequireClientCert is set.
	ClientCAFile      string `yaml:"client_ca_file"`
	RequireClientCert bool   `yaml:"require_client_cert"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
}

// BackendTLS configures TLS toward an https backend.
type BackendTLS struct {
	// CAFile holds the CAs that sign the backend's certificate, in place
	// of the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate, for backends that
	// require one. Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the backend's certificate
	// (and sent as SNI).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify turns certificate checks off. For tests only;
	// tracegate logs a warning at start.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// BackendOAuth gets the gateway its own access token for a backend.
type BackendOAuth struct {
	// TokenURL is the authorization server's token endpoint. https, or
	// http on a loopback host.
	TokenURL     string   `yaml:"token_url"`
	ClientID     string   `yaml:"client_id"`
	ClientSecret string   `yaml:"client_secret"`
	Scopes       []string `yaml:"scopes"`
	// Audience names the backend (RFC 8707 resource) in the token request.
	Audience string `yaml:"audience"`
	// TokenExchange, when true, exchanges the caller's own access token
	// (RFC 8693) for one issued to Audience, instead of the client
	// credentials grant. Callers that came with a static token get 401
	// from the backend's point of view: no token is sent.
	TokenExchange bool `yaml:"token_exchange"`
}

// Admin configures and protects the admin listener (admin_listen).
type Admin struct {
	// TLS, when set, serves the admin listener over TLS.
	TLS *ServerTLS `yaml:"tls"`
	// BearerTokens, when non-empty, are the "Authorization: Bearer" values
	// that every admin endpoint but /healthz and /readyz requires. When
	// empty, Auth.BearerTokens are used; when both are, the admin listener
	// is open, which is safe only on loopback.
	BearerTokens []string `yaml:"bearer_tokens"`
}

// AdminTokens are the tokens that guard the admin listener: admin's own,
// else the MCP listener's. None means it is open.
func (c *Config) AdminTokens() []string {
	if len(c.Admin.BearerTokens) > 0 {
		return c.Admin.BearerTokens
	}
	tokens := make([]string, 0, len(c.Auth.BearerTokens))
	for _, t := range c.Auth.BearerTokens {
		tokens = append(tokens, t.Token)
	}
	return tokens
}

// Transport names how a backend is reached.
type Transport string

const (
	TransportStreamable Transport = "streamable" // Streamable HTTP (default for url)
	TransportSSE        Transport = "sse"        // legacy HTTP+SSE, protocol 2024-11-05
	TransportStdio      Transport = "stdio"      // child process (implied by command)
)

// Backend is one MCP server behind the gateway.
type Backend struct {
	// Name matches [a-z0-9_-]+ and is unique. It prefixes the backend's
	// tools and names /mcp/{name}.
	Name string `yaml:"name"`
	// URL of a Streamable HTTP or SSE endpoint. Exactly one of URL and
	// Command is set.
	URL string `yaml:"url"`
	// Transport is streamable (default with url), sse, or stdio (default
	// with command).
	Transport Transport `yaml:"transport"`
	// Headers are sent on every HTTP request to the backend (url only).
	// Names that tracegate sets per request (traceparent, tracestate,
	// baggage, Mcp-Session-Id, Mcp-Protocol-Version) are refused.
	Headers map[string]string `yaml:"headers"`
	// Command starts a stdio backend: argv[0] and its arguments.
	Command []string `yaml:"command"`
	// Env is added to the child's environment (command only).
	Env map[string]string `yaml:"env"`
	// Dir is the child's working directory (command only).
	Dir string `yaml:"dir"`
	// Timeout bounds each call to the backend. Default 30s.
	Timeout Duration `yaml:"timeout"`
	// Baggage says which W3C baggage members are forwarded to this backend.
	// Default: none.
	Baggage BaggagePolicy `yaml:"baggage"`
	// Sessions is shared (default: one session carries every client's
	// calls) or per_client (each client session gets its own, for stdio its
	// own child, so the server's requests reach their caller).
	Sessions Sessions `yaml:"sessions"`
	// MaxSessions bounds per_client sessions. Default 64.
	MaxSessions int `yaml:"max_sessions"`
	// TLS configures https toward the backend (url only).
	TLS *BackendTLS `yaml:"tls"`
	// OAuth gets an access token for the backend, sent as
	// "Authorization: Bearer" (url only). The client's own token never is.
	OAuth *BackendOAuth `yaml:"oauth"`
}

// Sessions is how a backend's sessions map to client sessions.
type Sessions string

const (
	SessionsShared    Sessions = "shared"
	SessionsPerClient Sessions = "per_client"
)

// BaggageMode is how much baggage a backend receives.
type BaggageMode string

const (
	BaggageNone BaggageMode = "none"
	BaggageAll  BaggageMode = "all"
	BaggageKeys BaggageMode = "keys" // only the members named in Keys
)

// BaggagePolicy is decoded from `all`, `none`, or a list of keys (Mode
// BaggageKeys). Each key must be an RFC 9110 token, as W3C Baggage requires.
type BaggagePolicy struct {
	Mode BaggageMode
	Keys []string
}

// Tools configures how backend tools are exposed.
type Tools struct {
	// NameFormat namespaces tool and prompt names; it must contain {tool}
	// and should contain {backend}. Default "{backend}_{tool}".
	NameFormat string `yaml:"name_format"`
}

// Plugin configures one plugin of the chain.
type Plugin struct {
	// Name is required and unique; it labels the plugin's spans.
	Name string `yaml:"name"`
	// Type selects the implementation: deny, allow, ratelimit, redact,
	// max_size, schema.
	Type string `yaml:"type"`
	// Backends and Tools restrict where the plugin applies (glob patterns;
	// empty means everywhere). Tools match namespaced names. Each Backends
	// pattern must match a configured backend, so a typo cannot silently
	// disable the plugin.
	Backends []string `yaml:"backends"`
	Tools    []string `yaml:"tools"`
	// Priority orders the chain: lower runs first; ties keep file order.
	Priority int `yaml:"priority"`
	// OnError is fail (default: the call is refused) or ignore (the call
	// goes on as if the plugin had said continue).
	OnError string `yaml:"on_error"`
	// Timeout bounds one plugin run. Default 1s.
	Timeout Duration `yaml:"timeout"`
	// Options holds every other key of the entry, the type-specific ones
	// (rate, burst, patterns, ...), with ${VAR} already expanded. Each
	// plugin type checks its own keys strictly.
	Options map[string]any `yaml:",inline"`
}

// Telemetry configures traces, metrics and the embedded viewer.
type Telemetry struct {
	// ServiceName is the resource service.name. Default "tracegate";
	// OTEL_SERVICE_NAME overrides.
	ServiceName string `yaml:"service_name"`
	// Exporter is otlp, stdout or none. Default none (the viewer still
	// works). OTEL_TRACES_EXPORTER overrides.
	Exporter string  `yaml:"exporter"`
	OTLP     OTLP    `yaml:"otlp"`
	Sampler  Sampler `yaml:"sampler"`
	Viewer   Viewer  `yaml:"viewer"`
	// Propagators: tracecontext, baggage or none. Default [tracecontext,
	// baggage] when the key is absent; an empty list, like [none],
	// propagates nothing. OTEL_PROPAGATORS overrides.
	Propagators []string `yaml:"propagators"`
	// CaptureArguments records tool arguments and results on spans
	// (gen_ai.tool.call.arguments / .result). Off by default.
	CaptureArguments bool `yaml:"capture_arguments"`
	// FlushTimeout bounds the final flush of telemetry at shutdown, after
	// in-flight requests have finished. Spans still queued then are lost,
	// logged with their count, and the process exits with code 1.
	// Default 5s.
	FlushTimeout Duration `yaml:"flush_timeout"`
	// HTTPSpans adds a `POST /mcp` SERVER span per HTTP request, linked
	// from the MCP span. Default false: the MCP span already covers the
	// request, and a client that sends context only in _meta would see a
	// second, one-span trace per request.
	HTTPSpans *bool `yaml:"http_spans"`
	// IncomingContext says what a caller's trace context (traceparent,
	// tracestate, baggage, in headers or _meta) may do: trust (default)
	// parents the SERVER span with it; link starts a new root and links
	// the caller's context; ignore drops it.
	IncomingContext string `yaml:"incoming_context"`
	// IncomingContextAuthenticated applies instead of IncomingContext to
	// callers that presented a valid token. Default: IncomingContext. With
	// incoming_context: link, set it to trust to join the traces of
	// authenticated agents while outside callers only link.
	IncomingContextAuthenticated string `yaml:"incoming_context_authenticated"`
	// CaptureIdentity records the caller's identity (enduser.id on SERVER
	// spans, and in logs). Off by default.
	CaptureIdentity bool `yaml:"capture_identity"`
}

// OTLP is the OTLP exporter's target.
type OTLP struct {
	// Endpoint is an http or https URL, e.g. http://127.0.0.1:4318
	// (http/protobuf) or http://127.0.0.1:4317 (grpc). For grpc, a bare
	// host:port uses TLS unless OTEL_EXPORTER_OTLP_INSECURE=true. Empty
	// leaves it to the OTEL_EXPORTER_OTLP_* variables and the exporter's
	// default.
	Endpoint string `yaml:"endpoint"`
	// Protocol is http/protobuf (default), http/json or grpc, as
	// OTEL_EXPORTER_OTLP_PROTOCOL takes.
	Protocol string            `yaml:"protocol"`
	Headers  map[string]string `yaml:"headers"`
	// Timeout bounds one export. Default 10s.
	Timeout Duration `yaml:"timeout"`
}

// Sampler is parent-based; Ratio applies to new roots. Default 1.0.
type Sampler struct {
	Ratio *float64 `yaml:"ratio"`
}

// Viewer is the embedded trace store and UI.
type Viewer struct {
	Enabled  *bool `yaml:"enabled"`   // default true
	MaxSpans int   `yaml:"max_spans"` // default 100000
	// MaxBytes bounds the store's estimate of the heap its spans hold,
	// whatever their size: oldest traces are evicted to stay under it.
	// Default 268435456 (256 MiB); at least 1 MiB.
	MaxBytes int64 `yaml:"max_bytes"`
}

// Log configures the process log.
type Log struct {
	Format string `yaml:"format"` // json (default) or text
	Level  string `yaml:"level"`  // debug, info (default), warn, error
}

// Cluster lets several replicas share session ownership through Redis.
type Cluster struct {
	// RedisURL is required: redis://host:port/db, or rediss:// for TLS.
	RedisURL string `yaml:"redis_url"`
	// AdvertiseURL is required: the http or https base URL at which the
	// other replicas reach this one's MCP listener.
	AdvertiseURL string `yaml:"advertise_url"`
	// Secret authenticates forwards between replicas. If empty, a key
	// derived from redis_url (with its password) is used: set one when
	// Redis has no password and the replicas' network is shared.
	Secret string `yaml:"secret"`
	// Timeout bounds each Redis operation (default 250ms): no request
	// waits on Redis longer.
	Timeout Duration `yaml:"timeout"`
}

// Duration is a time.Duration decoded from strings such as "30s" or
// "1m30s". Zero means "use the default"; negative values are refused.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
