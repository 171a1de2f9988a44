package probe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Transports.
const (
	TransportAuto       = "auto"       // sse when the URL path ends in /sse, else streamable
	TransportStreamable = "streamable" // Streamable HTTP (2025-03-26 and later)
	TransportSSE        = "sse"        // HTTP+SSE (2024-11-05)
)

// Protocol revisions.
const (
	// ProtocolAuto tries the stateless server/discover and falls back to
	// initialize when the server does not support it, as SEP-2575 advises.
	ProtocolAuto = "auto"
	// ProtocolStateless is the first stateless revision (SEP-2575).
	ProtocolStateless = "2026-07-28"
	// DefaultProtocol is the newest stateful revision.
	DefaultProtocol = "2025-11-25"
	// DefaultTimeout bounds each step.
	DefaultTimeout = 10 * time.Second
)

// statefulProtocols are the revisions that begin with initialize, newest
// first. 2024-11-05 is accepted when a server negotiates down to it.
var statefulProtocols = []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

// Options configures one probe run. The zero value of every field but URL is
// usable.
type Options struct {
	// URL is the MCP endpoint, such as http://127.0.0.1:8080/mcp.
	URL string
	// Transport is TransportAuto, TransportStreamable or TransportSSE. If
	// empty, TransportAuto.
	Transport string
	// Protocol is a stateful revision such as "2025-11-25", ProtocolStateless
	// or ProtocolAuto. If empty, DefaultProtocol.
	Protocol string
	// Header is sent on every HTTP request, for example Authorization.
	Header http.Header
	// Timeout bounds each step. If zero, DefaultTimeout.
	Timeout time.Duration

	// Tool, if set, is called with Args (a JSON object; if nil, {}). If
	// Expect is set, the tool's text content must contain it.
	Tool   string
	Args   json.RawMessage
	Expect string
	// Resource, if set, is read with resources/read.
	Resource string
	// Prompt, if set, is fetched with prompts/get and PromptArgs.
	Prompt     string
	PromptArgs map[string]string

	// HTTPClient sends every request. If nil, a client with its own
	// transport is used, which skips TLS verification when Insecure is set.
	HTTPClient *http.Client
	Insecure   bool

	// TracerProvider makes the probe's spans; it should sample every span,
	// since the probe promises a sampled traceparent. If nil, spans are
	// made by a private always-sampling provider and not exported.
	TracerProvider trace.TracerProvider
	// Propagator injects the step's context into headers and _meta. If nil,
	// W3C Trace Context.
	Propagator propagation.TextMapPropagator
}

// Validate reports the first option that cannot work. A URL that is set
// but unusable is not an option error: Run reports it as the failure of the
// first step, as it does an address where nothing answers, so that a typo in
// a monitored URL shows up as a failed probe rather than as bad usage.
func (o *Options) Validate() error {
	if o.URL == "" {
		return errors.New("missing URL")
	}
	switch o.Transport {
	case "", TransportAuto, TransportStreamable, TransportSSE:
	default:
		return fmt.Errorf("transport %q: want auto, streamable or sse", o.Transport)
	}
	if o.Protocol != "" && o.Protocol != ProtocolAuto && o.Protocol != ProtocolStateless && !slices.Contains(statefulProtocols, o.Protocol) {
		return fmt.Errorf("protocol %q: want auto, %s or one of %s", o.Protocol, ProtocolStateless, strings.Join(statefulProtocols, ", "))
	}
	if o.Protocol == ProtocolStateless && o.resolvedTransport() == TransportSSE {
		return fmt.Errorf("protocol %s is stateless and needs Streamable HTTP, not the SSE transport", ProtocolStateless)
	}
	if o.Timeout < 0 {
		return fmt.Errorf("timeout %s: must be positive", o.Timeout)
	}
	if o.Args != nil {
		if err := checkObject(o.Args); err != nil {
			return fmt.Errorf("args: %w", err)
		}
	}
	if o.Tool == "" && (o.Args != nil || o.Expect != "") {
		return errors.New("args and expect need a tool")
	}
	if o.Prompt == "" && o.PromptArgs != nil {
		return errors.New("prompt args need a prompt")
	}
	for name, values := range o.Header {
		if err := checkHeader(name, values); err != nil {
			return err
		}
	}
	return nil
}

func (o *Options) resolvedTransport() string {
	if o.Transport == TransportStreamable || o.Transport == TransportSSE {
		return o.Transport
	}
	if u, err := url.Parse(o.URL); err == nil && strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), "/sse") {
		return TransportSSE
	}
	return TransportStreamable
}

// parseEndpoint accepts an absolute http or https URL with a host. Its
// errors never repeat the URL, whose password or query may be a secret.
func parseEndpoint(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("missing URL")
	}
	if !strings.Contains(raw, "://") {
		return nil, errors.New("invalid URL: no scheme (want http:// or https:// before the host)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error quotes the whole URL
		}
		return nil, fmt.Errorf("invalid URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid URL: scheme %q (want http or https)", oneLine(u.Scheme, 20))
	}
	if u.Hostname() == "" {
		return nil, errors.New("invalid URL: no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("invalid URL: port %s out of range", oneLine(p, 10))
		}
	}
	return u, nil
}

// redactRawURL hides what may be secret in a URL that did not parse: the
// user info, the query and the fragment.
func redactRawURL(raw string) string {
	raw, _, _ = strings.Cut(raw, "#")
	if before, _, ok := strings.Cut(raw, "?"); ok {
		raw = before + "?xxxxx"
	}
	start := 0
	if i := strings.Index(raw, "://"); i >= 0 {
		start = i + len("://")
	}
	end := strings.IndexAny(raw[start:], "/?")
	if end < 0 {
		end = len(raw) - start
	}
	if at := strings.LastIndex(raw[start:start+end], "@"); at >= 0 {
		raw = raw[:start] + "xxxxx" + raw[start+at:]
	}
	return oneLine(raw, 200)
}

func checkObject(raw json.RawMessage) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return errors.New("invalid JSON: trailing data")
	}
	if _, ok := v.(map[string]any); !ok {
		return errors.New("must be a JSON object")
	}
	return nil
}

// checkHeader rejects names that are not RFC 9110 tokens and values with
// CR, LF or NUL, which could smuggle headers (RFC 9110 section 5.5).
func checkHeader(name string, values []string) error {
	if name == "" {
		return errors.New("header: empty name")
	}
	for _, c := range name {
		if !isTokenChar(c) {
			return fmt.Errorf("header %q: invalid character %q in name", name, c)
		}
	}
	for _, v := range values {
		if strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("header %q: value contains CR, LF or NUL", name)
		}
	}
	return nil
}

func isTokenChar(c rune) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.ContainsRune("!#$%&'*+-.^_`|~", c)
}
