package probe

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"github.com/tracegate/tracegate/internal/redact"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tracegate/tracegate/mcptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Step is the outcome of one probe step.
type Step struct {
	// Name is the span name: "initialize", "tools/call get_weather", ...
	Name    string
	OK      bool
	Latency time.Duration
	// Detail is a short result for the operator, such as "7 tools".
	Detail string
	// Error is a one-line diagnosis when the step failed.
	Error string
	// ErrorType is the error.type recorded on the span.
	ErrorType string
}

// Report is the outcome of one probe run.
type Report struct {
	Start     time.Time
	URL       string // with the password and query values redacted
	Transport string
	Protocol  string // the negotiated revision, once known
	Server    string // "name version" from the server, once known
	SessionID string
	TraceID   string // 32 hex digits
	Steps     []Step
	// Warnings are problems that did not fail the run, such as a session
	// DELETE that the server refused.
	Warnings []string
	OK       bool
}

const instrumentationName = "github.com/tracegate/tracegate/internal/probe"

// Run probes the server once. It returns an error only when opts are
// invalid; every failure of the server is in the Report, and so is a URL
// that cannot be used, as the failure of the first step.
func Run(ctx context.Context, opts Options) (Report, error) {
	if err := opts.Validate(); err != nil {
		return Report{}, err
	}
	endpoint, urlErr := parseEndpoint(opts.URL)
	r := &runner{opts: opts, endpoint: endpoint, urlErr: urlErr}
	r.defaults()
	if opts.TracerProvider == nil {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
		defer func() { _ = tp.Shutdown(context.WithoutCancel(ctx)) }()
		r.tracer = tp.Tracer(instrumentationName)
	}
	if opts.HTTPClient == nil {
		defer r.client.CloseIdleConnections()
	}
	return r.run(ctx), nil
}

// runner holds the state of one run. Steps run one after another.
type runner struct {
	opts     Options
	endpoint *url.URL // nil when urlErr is set
	urlErr   error
	client   *http.Client
	tracer   trace.Tracer
	prop     *mcptrace.Propagation
	conn     conn
	sse      *legacySSE // set when conn is the SSE transport

	runCtx    context.Context // outlives steps: the SSE stream lives in it
	report    Report
	stateless bool
	fellBack  bool                       // server/discover was refused; initialize follows
	protocol  string                     // the negotiated revision
	schemas   map[string]json.RawMessage // tool name to inputSchema, from tools/list
}

func (r *runner) defaults() {
	if r.opts.Timeout == 0 {
		r.opts.Timeout = DefaultTimeout
	}
	if r.opts.Protocol == "" {
		r.opts.Protocol = DefaultProtocol
	}
	r.client = r.opts.HTTPClient
	if r.client == nil {
		r.client = NewHTTPClient(r.opts.Insecure)
	}
	if r.opts.TracerProvider != nil {
		r.tracer = r.opts.TracerProvider.Tracer(instrumentationName)
	}
	prop := r.opts.Propagator
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	// The probe injects through the same code path as the gateway; it
	// counts nothing, so its meter is a no-op rather than the global one.
	r.prop = mcptrace.NewPropagation(mcptrace.WithPropagators(prop), mcptrace.WithMeterProvider(noop.NewMeterProvider()))
}

// NewHTTPClient returns a client with its own transport (never the shared
// default one), optionally skipping TLS verification.
func NewHTTPClient(insecure bool) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if insecure {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the operator asked for -insecure
	}
	return &http.Client{Transport: t}
}

func (r *runner) run(ctx context.Context) Report {
	r.report = Report{Start: time.Now(), Transport: r.opts.resolvedTransport()}
	if r.endpoint != nil {
		r.report.URL = redactURL(r.endpoint)
	} else {
		r.report.URL = redactRawURL(r.opts.URL)
	}
	ctx, root := r.tracer.Start(ctx, "probe",
		trace.WithNewRoot(),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(r.serverAttrs()...))
	r.report.TraceID = root.SpanContext().TraceID().String()
	r.runCtx = ctx

	switch {
	case r.urlErr != nil:
		r.conn = unusableURL{err: failf(errInvalidURL, "%v", r.urlErr)}
	case r.report.Transport == TransportSSE:
		r.sse = newLegacySSE(r.client, r.endpoint, r.opts.Header, r.opts.Timeout)
		r.conn = r.sse
	default:
		r.conn = newStreamable(r.client, r.endpoint, r.opts.Header, r.opts.Timeout)
	}

	if r.handshake(ctx) {
		r.listTools(ctx)
		if r.opts.Tool != "" {
			r.callTool(ctx)
		}
		if r.opts.Resource != "" {
			r.readResource(ctx)
		}
		if r.opts.Prompt != "" {
			r.getPrompt(ctx)
		}
	}
	r.close(ctx)

	r.report.SessionID = r.conn.session()
	r.report.OK = len(r.report.Steps) > 0
	for _, s := range r.report.Steps {
		r.report.OK = r.report.OK && s.OK
	}
	root.SetAttributes(attribute.Bool("tracegate.probe.ok", r.report.OK))
	if !r.report.OK {
		root.SetStatus(codes.Error, "probe failed")
	}
	root.End()
	return r.report
}

// close ends a stateful session, even after a failed step or a cancelled
// run, within one step timeout.
func (r *runner) close(ctx context.Context) {
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.Timeout)
	defer cancel()
	hdr := http.Header{}
	r.prop.InjectHeader(ctx, hdr)
	if err := r.conn.close(closeCtx, hdr); err != nil {
		r.report.Warnings = append(r.report.Warnings, "ending the session (DELETE): "+asFailure(err, r.opts.Timeout).Error())
	}
}

// stepSpec names a step and its span.
type stepSpec struct {
	name   string // span and report name
	method string // mcp.method.name
	target string // Mcp-Name header for the stateless revision: tool, prompt or URI
	attrs  []attribute.KeyValue
}

// stepFunc does the work of a step within ctx, which carries the step
// timeout. meta is the params._meta to send and hdr the per-request headers,
// both already carrying the step's trace context.
type stepFunc func(ctx context.Context, meta map[string]any, hdr http.Header) (detail string, err error)

// step runs fn inside a CLIENT span and records the outcome.
func (r *runner) step(ctx context.Context, spec stepSpec, fn stepFunc) bool {
	attrs := append(r.serverAttrs(), attrMethodName.String(spec.method))
	ctx, span := r.tracer.Start(ctx, spec.name,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(append(attrs, spec.attrs...)...))
	defer span.End()

	meta := map[string]any{}
	if r.stateless {
		// SEP-2575: every request of the stateless revision carries the
		// protocol version, client info and capabilities in _meta.
		meta[metaProtocolVersion] = r.protocol
		meta[metaClientInfo] = clientInfo()
		meta[metaClientCapabilities] = map[string]any{}
	}
	hdr := http.Header{}
	r.prop.InjectHeader(ctx, hdr)
	meta = r.prop.InjectMeta(ctx, meta) // SEP-414: unprefixed traceparent in _meta
	if r.stateless {
		// SEP-2243: the method and its target travel as headers too, so
		// that intermediaries can route without parsing the body.
		hdr.Set(headerMethod, spec.method)
		if spec.target != "" {
			hdr.Set(headerName, spec.target)
		}
	}

	stepCtx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	start := time.Now()
	detail, err := fn(stepCtx, meta, hdr)
	st := Step{Name: spec.name, OK: err == nil, Latency: time.Since(start), Detail: detail}
	cctx, cancelCtx := context.WithTimeout(context.WithoutCancel(ctx), min(r.opts.Timeout, cancelTimeout))
	if err := r.conn.cancelAbandoned(cctx, hdr); err != nil {
		r.report.Warnings = append(r.report.Warnings, "telling the server to cancel "+spec.name+": "+asFailure(err, r.opts.Timeout).Error())
	}
	cancelCtx()

	if r.protocol != "" {
		span.SetAttributes(attrProtocolVersion.String(r.protocol))
	}
	if sid := r.conn.session(); sid != "" {
		span.SetAttributes(attrSessionID.String(sid))
	}
	if err != nil {
		f := asFailure(err, r.opts.Timeout)
		st.Error, st.ErrorType = f.msg, f.typ
		span.SetAttributes(attrErrorType.String(f.typ))
		if f.rpcCode != nil {
			span.SetAttributes(attrRPCStatusCode.String(strconv.FormatInt(*f.rpcCode, 10)))
		}
		span.SetStatus(codes.Error, f.msg)
	}
	r.report.Steps = append(r.report.Steps, st)
	return st.OK
}

// handshake runs initialize or server/discover; later steps need it.
func (r *runner) handshake(ctx context.Context) bool {
	switch {
	case r.opts.Protocol == ProtocolStateless:
		return r.discover(ctx, false)
	case r.opts.Protocol == ProtocolAuto && r.report.Transport == TransportSSE:
		return r.initialize(ctx, DefaultProtocol)
	case r.opts.Protocol == ProtocolAuto:
		if !r.discover(ctx, true) {
			return false
		}
		if r.fellBack {
			return r.initialize(ctx, DefaultProtocol)
		}
		return true
	default:
		return r.initialize(ctx, r.opts.Protocol)
	}
}

func (r *runner) discover(ctx context.Context, auto bool) bool {
	r.stateless, r.protocol = true, ProtocolStateless
	r.conn.setProtocol(ProtocolStateless)
	return r.step(ctx, stepSpec{name: "server/discover", method: "server/discover"}, func(ctx context.Context, meta map[string]any, hdr http.Header) (string, error) {
		return r.discoverCall(ctx, meta, hdr, auto)
	})
}

// discoverCall sends server/discover (SEP-2575). With auto, a server that
// rejects it or does not offer the stateless revision is not a failure: the
// caller falls back to initialize, as the SDKs do.
func (r *runner) discoverCall(ctx context.Context, meta map[string]any, hdr http.Header, auto bool) (string, error) {
	raw, err := r.conn.call(ctx, "server/discover", map[string]any{"_meta": meta}, hdr)
	var res struct {
		SupportedVersions []string       `json:"supportedVersions"`
		Meta              map[string]any `json:"_meta"`
	}
	if err == nil {
		if jerr := json.Unmarshal(raw, &res); jerr != nil {
			err = failf(errInvalidResponse, "server/discover result is malformed: %v", jerr)
		} else if !slices.Contains(res.SupportedVersions, ProtocolStateless) {
			err = failf(errProtocol, "server supports %s, not %s", strings.Join(res.SupportedVersions, ", "), ProtocolStateless)
		}
	}
	if err != nil {
		if auto && canFallBack(asFailure(err, r.opts.Timeout)) {
			r.stateless, r.protocol, r.fellBack = false, "", true
			r.conn.setProtocol("")
			return "stateless revision not offered (" + asFailure(err, r.opts.Timeout).msg + "); using initialize", nil
		}
		return "", err
	}
	if info, ok := res.Meta[metaServerInfo].(map[string]any); ok {
		name, _ := info["name"].(string)
		version, _ := info["version"].(string)
		r.report.Server = strings.TrimSpace(name + " " + version)
	}
	r.report.Protocol = ProtocolStateless
	return handshakeDetail(r.report.Server, ProtocolStateless), nil
}

// canFallBack reports whether a failed server/discover means "not
// supported" rather than "not reachable".
func canFallBack(f *failure) bool {
	if f.rpcCode != nil {
		return true
	}
	switch f.typ {
	case errProtocol, errInvalidResponse, "400", "404", "405", "406", "415":
		return true
	}
	return false
}

func (r *runner) initialize(ctx context.Context, version string) bool {
	return r.step(ctx, stepSpec{name: "initialize", method: "initialize"}, func(ctx context.Context, meta map[string]any, hdr http.Header) (string, error) {
		if r.sse != nil {
			if err := r.sse.open(r.runCtx, ctx, hdr); err != nil {
				return "", err
			}
		}
		params := map[string]any{
			"protocolVersion": version,
			"capabilities":    map[string]any{},
			"clientInfo":      clientInfo(),
			"_meta":           meta,
		}
		raw, err := r.conn.call(ctx, "initialize", params, hdr)
		if err != nil {
			return "", err
		}
		var res struct {
			ProtocolVersion string `json:"protocolVersion"`
			ServerInfo      struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			} `json:"serverInfo"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return "", failf(errInvalidResponse, "initialize result is malformed: %v", err)
		}
		if !slices.Contains(statefulProtocols, res.ProtocolVersion) {
			return "", failf(errProtocol, "server negotiated protocol %q, which the probe does not speak", res.ProtocolVersion)
		}
		r.protocol = res.ProtocolVersion
		r.report.Protocol = res.ProtocolVersion
		r.report.Server = strings.TrimSpace(res.ServerInfo.Name + " " + res.ServerInfo.Version)
		// After initialization every request names the revision
		// (basic/transports, "Protocol Version Header").
		r.conn.setProtocol(res.ProtocolVersion)
		if err := r.conn.notify(ctx, "notifications/initialized", map[string]any{"_meta": meta}, hdr); err != nil {
			return "", fmt.Errorf("notifications/initialized: %w", err)
		}
		return handshakeDetail(r.report.Server, res.ProtocolVersion), nil
	})
}

func handshakeDetail(server, protocol string) string {
	if server == "" {
		server = "(unnamed)"
	}
	return "server=" + server + " protocol=" + protocol
}

func (r *runner) listTools(ctx context.Context) bool {
	return r.step(ctx, stepSpec{name: "tools/list", method: "tools/list"}, func(ctx context.Context, meta map[string]any, hdr http.Header) (string, error) {
		raw, err := r.conn.call(ctx, "tools/list", map[string]any{"_meta": meta}, hdr)
		if err != nil {
			return "", err
		}
		var res struct {
			Tools []struct {
				Name        string          `json:"name"`
				InputSchema json.RawMessage `json:"inputSchema"`
			} `json:"tools"`
			NextCursor string `json:"nextCursor"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return "", failf(errInvalidResponse, "tools/list result is malformed: %v", err)
		}
		r.schemas = make(map[string]json.RawMessage, len(res.Tools))
		for _, t := range res.Tools {
			r.schemas[t.Name] = t.InputSchema
		}
		detail := plural(len(res.Tools), "tool")
		if res.NextCursor != "" {
			detail += " (first page)"
		}
		return detail, nil
	})
}

func (r *runner) callTool(ctx context.Context) bool {
	spec := stepSpec{
		name:   "tools/call " + r.opts.Tool,
		method: "tools/call",
		target: r.opts.Tool,
		attrs:  []attribute.KeyValue{attrToolName.String(r.opts.Tool), attrOperationName.String("execute_tool")},
	}
	return r.step(ctx, spec, func(ctx context.Context, meta map[string]any, hdr http.Header) (string, error) {
		args := r.opts.Args
		if args == nil {
			args = json.RawMessage("{}")
		}
		if r.stateless {
			for k, v := range paramHeaders(r.schemas[r.opts.Tool], args) {
				hdr.Set(k, v)
			}
		}
		params := map[string]any{"name": r.opts.Tool, "arguments": args, "_meta": meta}
		raw, err := r.conn.call(ctx, "tools/call", params, hdr)
		if err != nil {
			return "", err
		}
		var res struct {
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
			IsError bool `json:"isError"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return "", failf(errInvalidResponse, "tools/call result is malformed: %v", err)
		}
		var texts []string
		for _, c := range res.Content {
			if c.Type == "text" {
				texts = append(texts, c.Text)
			}
		}
		if res.IsError {
			msg := "tool reported an error (isError)"
			if len(texts) > 0 {
				msg += ": " + oneLine(texts[0], 120)
			}
			return "", failf(errTool, "%s", msg)
		}
		detail := plural(len(res.Content), "content block")
		if r.opts.Expect != "" {
			if !strings.Contains(strings.Join(texts, "\n"), r.opts.Expect) {
				return "", failf(errExpect, "result text does not contain %q", r.opts.Expect)
			}
			detail += fmt.Sprintf(", contains %q", r.opts.Expect)
		}
		return detail, nil
	})
}

func (r *runner) readResource(ctx context.Context) bool {
	spec := stepSpec{
		name:   "resources/read",
		method: "resources/read",
		target: r.opts.Resource,
		attrs:  []attribute.KeyValue{attrResourceURI.String(r.opts.Resource)},
	}
	return r.step(ctx, spec, func(ctx context.Context, meta map[string]any, hdr http.Header) (string, error) {
		raw, err := r.conn.call(ctx, "resources/read", map[string]any{"uri": r.opts.Resource, "_meta": meta}, hdr)
		if err != nil {
			return "", err
		}
		var res struct {
			Contents []json.RawMessage `json:"contents"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return "", failf(errInvalidResponse, "resources/read result is malformed: %v", err)
		}
		return plural(len(res.Contents), "content item") + " from " + oneLine(r.opts.Resource, 60), nil
	})
}

func (r *runner) getPrompt(ctx context.Context) bool {
	spec := stepSpec{
		name:   "prompts/get " + r.opts.Prompt,
		method: "prompts/get",
		target: r.opts.Prompt,
		attrs:  []attribute.KeyValue{attrPromptName.String(r.opts.Prompt)},
	}
	return r.step(ctx, spec, func(ctx context.Context, meta map[string]any, hdr http.Header) (string, error) {
		params := map[string]any{"name": r.opts.Prompt, "_meta": meta}
		if r.opts.PromptArgs != nil {
			params["arguments"] = r.opts.PromptArgs
		}
		raw, err := r.conn.call(ctx, "prompts/get", params, hdr)
		if err != nil {
			return "", err
		}
		var res struct {
			Messages []json.RawMessage `json:"messages"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return "", failf(errInvalidResponse, "prompts/get result is malformed: %v", err)
		}
		return plural(len(res.Messages), "message"), nil
	})
}

func (r *runner) serverAttrs() []attribute.KeyValue {
	if r.endpoint == nil {
		return []attribute.KeyValue{attrNetworkProtocol.String("http"), attrNetworkTransport.String("tcp")}
	}
	port := r.endpoint.Port()
	if port == "" {
		port = "80"
		if r.endpoint.Scheme == "https" {
			port = "443"
		}
	}
	p, _ := strconv.Atoi(port)
	return []attribute.KeyValue{
		attrServerAddress.String(r.endpoint.Hostname()),
		attrServerPort.Int(p),
		attrNetworkProtocol.String("http"),
		attrNetworkTransport.String("tcp"),
	}
}

// redactURL hides user info and credential-looking query values, so that
// reports can be logged: the one redaction of package redact.
func redactURL(u *url.URL) string { return redact.URL(u.String()) }

// clientInfo identifies the probe in initialize and in stateless _meta.
func clientInfo() map[string]any {
	version := "dev"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	return map[string]any{"name": "tracegate-probe", "version": version}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
