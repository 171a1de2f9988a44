package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// pluginTypes are the built-in plugin implementations.
var pluginTypes = []string{"deny", "allow", "ratelimit", "redact", "max_size", "schema"}

// Validate checks a configuration whose defaults have been applied. It
// reports every problem, each named by its path, in the order of the file
// format (DESIGN.md section 6), as Errors; nil means the configuration can be
// served. Messages never quote tokens or header values.
func (c *Config) Validate() error {
	var errs Errors
	add := func(path, format string, args ...any) { errs.add(0, path, format, args...) }

	if msg := checkAddr(c.Listen); msg != "" {
		add("listen", "%s", msg)
	}
	if c.AdminListen != "off" {
		if msg := checkAddr(c.AdminListen); msg != "" {
			add("admin_listen", "%s", msg)
		} else if sameListener(c.Listen, c.AdminListen) {
			add("", "listen and admin_listen must differ")
		}
	}
	if c.MaxRequestBytes <= 0 {
		add("max_request_bytes", "must be positive")
	}
	if c.ShutdownGrace < 0 {
		add("shutdown_grace", "must not be negative")
	}
	if c.SessionIdleTimeout < 0 {
		add("session_idle_timeout", "must not be negative")
	}
	c.Limits.validate("limits", add)

	c.TLS.validate("tls", add)
	if c.Admin.TLS != nil && c.AdminListen == "off" {
		add("admin.tls", "admin_listen is off")
	}
	c.Admin.TLS.validate("admin.tls", add)
	c.Auth.validate(add)
	checkTokens("admin.bearer_tokens", c.Admin.BearerTokens, add)

	backends := make(map[string]int, len(c.Backends))
	for i := range c.Backends {
		c.Backends[i].validate(i, backends, c.Auth.OAuth != nil, add)
	}

	for _, msg := range checkNameFormat(c.Tools.NameFormat) {
		add("tools.name_format", "%s", msg)
	}

	plugins := make(map[string]int, len(c.Plugins))
	for i := range c.Plugins {
		c.Plugins[i].validate(i, plugins, backends, add)
	}

	c.Telemetry.validate("telemetry", add)

	switch c.Log.Format {
	case "json", "text":
	default:
		add("log.format", "must be json or text")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "must be debug, info, warn or error")
	}

	if cl := c.Cluster; cl != nil {
		if msg := checkURL(cl.RedisURL, "redis", "rediss"); msg != "" {
			add("cluster.redis_url", "%s", msg)
		}
		if msg := checkURL(cl.AdvertiseURL, "http", "https"); msg != "" {
			add("cluster.advertise_url", "%s", msg)
		}
	}

	if len(errs) == 0 {
		return nil
	}
	return errs
}

type addFunc func(path, format string, args ...any)

func checkTokens(p string, tokens []string, add addFunc) {
	for i, tok := range tokens {
		switch {
		case tok == "":
			add(indexPath(p, i), "empty token")
		case strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			add(indexPath(p, i), "token contains spaces or control characters")
		}
	}
}

func (l *Limits) validate(p string, add addFunc) {
	for _, f := range []struct {
		name string
		n    int
	}{
		{"max_sessions", l.MaxSessions},
		{"max_concurrent_requests", l.MaxConcurrentRequests},
		{"max_streams", l.MaxStreams},
	} {
		if f.n <= 0 {
			add(p+"."+f.name, "must be positive")
		}
	}
	if l.BodyReadTimeout <= 0 {
		add(p+".body_read_timeout", "must be positive")
	}
}

// validate checks backends[i]; names maps each valid name seen so far to
// its index.
func (b *Backend) validate(i int, names map[string]int, oauthClients bool, add addFunc) {
	p := indexPath("backends", i)
	switch {
	case b.Name == "":
		add(p+".name", "required")
	case !validBackendName(b.Name):
		add(p+".name", "%q must match [a-z0-9_-]+", b.Name)
	default:
		if j, dup := names[b.Name]; dup {
			add(p+".name", "duplicate of backends[%d]", j)
		} else {
			names[b.Name] = i
		}
	}

	hasURL, hasCmd := b.URL != "", len(b.Command) > 0
	if hasURL == hasCmd {
		add(p, "set exactly one of url and command")
	}
	if hasURL {
		if msg := checkURL(b.URL, "http", "https"); msg != "" {
			add(p+".url", "%s", msg)
		}
	}
	switch b.Transport {
	case "": // ApplyDefaults infers it from url or command
	case TransportStreamable, TransportSSE:
		if hasCmd && !hasURL {
			add(p+".transport", "%s needs url", b.Transport)
		}
	case TransportStdio:
		if hasURL && !hasCmd {
			add(p+".transport", "stdio needs command")
		}
	default:
		add(p+".transport", "must be streamable, sse or stdio")
	}
	if len(b.Headers) > 0 && hasCmd && !hasURL {
		add(p+".headers", "only for url backends")
	}
	checkHeaders(p+".headers", b.Headers, true, add)
	if hasCmd && b.Command[0] == "" {
		add(p+".command[0]", "empty program name")
	}
	if hasURL && !hasCmd {
		if len(b.Env) > 0 {
			add(p+".env", "only for command backends")
		}
		if b.Dir != "" {
			add(p+".dir", "only for command backends")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b.Env)) {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			add(keyPath(p+".env", k), "invalid variable name")
		} else if strings.ContainsRune(b.Env[k], 0) {
			add(keyPath(p+".env", k), "value contains NUL")
		}
	}
	if b.Timeout <= 0 {
		add(p+".timeout", "must be positive")
	}
	switch b.Sessions {
	case "", SessionsShared, SessionsPerClient:
	default:
		add(p+".sessions", "must be shared or per_client")
	}
	if b.MaxSessions < 0 {
		add(p+".max_sessions", "must be positive")
	}
	b.validateSecurity(p, hasURL, oauthClients, add)
	switch b.Baggage.Mode {
	case BaggageAll, BaggageNone:
	case BaggageKeys:
		for i, k := range b.Baggage.Keys {
			// W3C Baggage: a key is an RFC 9110 token.
			if !isToken(k) {
				add(indexPath(p+".baggage", i), "%q is not a valid baggage key", k)
			}
		}
	default:
		add(p+".baggage", "must be all, none or a list of keys")
	}
}

// validate checks plugins[i]; names is as for Backend.validate, and
// backends holds every valid backend name.
func (pl *Plugin) validate(i int, names, backends map[string]int, add addFunc) {
	p := indexPath("plugins", i)
	if pl.Name == "" {
		add(p+".name", "required")
	} else if j, dup := names[pl.Name]; dup {
		add(p+".name", "duplicate of plugins[%d]", j)
	} else {
		names[pl.Name] = i
	}
	switch {
	case pl.Type == "":
		add(p+".type", "required")
	case !slices.Contains(pluginTypes, pl.Type):
		add(p+".type", "unknown type %q", pl.Type)
	}
	for j, g := range pl.Backends {
		gp := indexPath(p+".backends", j)
		if _, err := path.Match(g, ""); err != nil {
			add(gp, "bad pattern %q", g)
			continue
		}
		// A misspelt backend would silently turn the plugin off.
		matched := false
		for name := range backends {
			if ok, _ := path.Match(g, name); ok {
				matched = true
				break
			}
		}
		if !matched {
			add(gp, "%q matches no backend", g)
		}
	}
	for j, g := range pl.Tools {
		if _, err := path.Match(g, ""); err != nil {
			add(indexPath(p+".tools", j), "bad pattern %q", g)
		}
	}
	switch pl.OnError {
	case "fail", "ignore":
	default:
		add(p+".on_error", "must be fail or ignore")
	}
	if pl.Timeout <= 0 {
		add(p+".timeout", "must be positive")
	}
}

func (t *Telemetry) validate(p string, add addFunc) {
	if t.ServiceName == "" {
		add(p+".service_name", "required")
	}
	switch t.Exporter {
	case "otlp", "stdout", "none":
	default:
		add(p+".exporter", "must be otlp, stdout or none")
	}
	if e := t.OTLP.Endpoint; e != "" {
		// For gRPC, a bare host:port is how collectors write it; the
		// OTLP exporter spec lets OTEL_EXPORTER_OTLP_INSECURE pick TLS.
		if t.OTLP.Protocol == "grpc" && !strings.Contains(e, "://") {
			if host, _, err := net.SplitHostPort(e); err != nil || host == "" {
				add(p+".otlp.endpoint", "want a URL, or host:port for grpc")
			}
		} else if msg := checkURL(e, "http", "https"); msg != "" {
			add(p+".otlp.endpoint", "%s", msg)
		}
	}
	switch t.OTLP.Protocol {
	case "http/protobuf", "http/json", "grpc":
	default:
		add(p+".otlp.protocol", "must be http/protobuf, http/json or grpc")
	}
	checkHeaders(p+".otlp.headers", t.OTLP.Headers, false, add)
	if t.OTLP.Timeout <= 0 {
		add(p+".otlp.timeout", "must be positive")
	}
	if t.FlushTimeout <= 0 {
		add(p+".flush_timeout", "must be positive")
	}
	// The negated test also refuses NaN.
	if r := t.Sampler.Ratio; r != nil && !(*r >= 0 && *r <= 1) {
		add(p+".sampler.ratio", "must be within [0, 1]")
	}
	if t.Viewer.MaxSpans < 0 || t.Viewer.MaxSpans == 0 && (t.Viewer.Enabled == nil || *t.Viewer.Enabled) {
		add(p+".viewer.max_spans", "must be positive")
	}
	if t.Viewer.MaxBytes < MinViewerMaxBytes && (t.Viewer.MaxBytes != 0 || t.Viewer.Enabled == nil || *t.Viewer.Enabled) {
		add(p+".viewer.max_bytes", "must be at least %d (1 MiB)", MinViewerMaxBytes)
	}
	checkIncoming(p+".incoming_context", t.IncomingContext, add)
	checkIncoming(p+".incoming_context_authenticated", t.IncomingContextAuthenticated, add)
	for i, name := range t.Propagators {
		switch name {
		case "tracecontext", "baggage", "none":
		default:
			add(indexPath(p+".propagators", i), "unknown propagator %q; use tracecontext, baggage or none", name)
		}
	}
}

// checkAddr returns what is wrong with a listen address, or "".
func checkAddr(addr string) string {
	if addr == "" {
		return "required"
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "want host:port"
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "port must be a number from 0 to 65535"
	}
	return ""
}

// sameListener reports whether two valid listen addresses would collide:
// the same port on the same host, or on a wildcard host. Port 0 picks a
// free port each time, so it never collides.
func sameListener(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb || pa == "0" {
		return false
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wildcard(ha) || wildcard(hb)
}

// checkURL returns what is wrong with an absolute URL whose scheme must be
// one of schemes, or "". It never quotes the URL, which may hold a password.
func checkURL(s string, schemes ...string) string {
	if s == "" {
		return "required"
	}
	if !strings.Contains(s, "://") {
		return "missing scheme"
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "invalid URL: " + err.Error()
	}
	if !slices.Contains(schemes, u.Scheme) {
		return fmt.Sprintf("scheme %q not supported; use %s", u.Scheme, strings.Join(schemes, " or "))
	}
	if u.Host == "" {
		return "missing host"
	}
	return ""
}

// perRequestHeaders are set by tracegate on each request to a backend; a
// fixed value would break trace propagation (W3C Trace Context, W3C Baggage)
// or the MCP session (Streamable HTTP transport).
var perRequestHeaders = []string{"traceparent", "tracestate", "baggage", "mcp-session-id", "mcp-protocol-version"}

func checkHeaders(p string, h map[string]string, backend bool, add addFunc) {
	for _, name := range slices.Sorted(maps.Keys(h)) {
		hp := keyPath(p, name)
		switch {
		case !isToken(name):
			add(hp, "invalid header name")
		case backend && slices.Contains(perRequestHeaders, strings.ToLower(name)):
			add(hp, "set by tracegate on each request; remove it")
		case strings.ContainsAny(h[name], "\r\n\x00"):
			// RFC 9110 section 5.5: CR, LF and NUL are invalid in field values.
			add(hp, "value contains CR, LF or NUL")
		}
	}
}

// isToken reports whether s is an RFC 9110 section 5.6.2 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func validBackendName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
