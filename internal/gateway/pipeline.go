package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tracegate/tracegate/internal/httplimit"
	"net"
	"net/http"

	"github.com/tracegate/tracegate/internal/wire"
	"github.com/tracegate/tracegate/mcptrace"
)

// JSON-RPC error codes (JSON-RPC 2.0 section 5.1, and MCP's).
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
	codeInternalError  = -32603
	// codeRequestCancelled answers a call the client cancelled, should it
	// still be listening.
	codeRequestCancelled = -32800
)

// Bounds on what a client names: longer values are refused before they
// reach telemetry (span names, metric attributes, logs).
const (
	maxMethodLen = 128
	maxNameLen   = 256
	maxIDLen     = 256
)

// request is one client request on its way through the pipeline.
type request struct {
	g    *Gateway
	f    *front
	s    *session
	m    *wire.Message
	http *http.Request
	rp   *reply
	// meta is the view of params._meta, nil when absent.
	meta map[string]any
	// ctx carries the SERVER span; what the gateway relays to the client
	// for this request carries its context.
	ctx context.Context
	// outcome is what the span records.
	outcome mcptrace.Outcome
	// facts are what RequestAttributes reads from ctx.
	facts requestFacts
	// name is params.name of tools/call and prompts/get (see paramName).
	name           string
	nameOK, nameIn bool
}

// paramName returns params.name, read from the bytes once for the span
// and the route.
func (rq *request) paramName() (string, bool) {
	if !rq.nameIn {
		rq.name, rq.nameOK = wire.GetString(rq.m.Params, "name")
		rq.nameIn = true
	}
	return rq.name, rq.nameOK
}

// requestFacts are what the HTTP layer knows of a request, for span
// attributes. They travel in the context, never in headers a client could
// also send.
type requestFacts struct {
	clientAddress string
	requestID     string
	client        clientInfo
}

type factsKey struct{}

// RequestAttributes is the mcptrace request hook that records the facts
// of a client request on its SERVER span: jsonrpc.request.id is set by the
// tracer; this adds client.address and the client's name and version.
func factsFrom(ctx context.Context) (requestFacts, bool) {
	f, ok := ctx.Value(factsKey{}).(*requestFacts)
	if !ok {
		return requestFacts{}, false
	}
	return *f, true
}

// request runs one client request through the pipeline and answers it.
func (g *Gateway) request(w http.ResponseWriter, r *http.Request, f *front, s *session, m *wire.Message) {
	rq := &request{g: g, f: f, s: s, m: m, http: r, rp: &reply{w: w, s: s}}
	if err := rq.check(); err != nil {
		rq.rp.finish(wire.AppendError(nil, m.ID, err.Code, err.Message, err.Data), http.StatusOK)
		return
	}
	facts := &rq.facts
	facts.requestID = wire.IDString(m.ID)
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		facts.clientAddress = host
	}
	if s != nil {
		facts.client = s.client
	}
	ctx := context.WithValue(r.Context(), factsKey{}, facts)

	if limit := g.config().Limits.MaxSessions; m.Method == "initialize" && s == nil && limit > 0 && g.sessions.len() >= limit {
		// limits.max_sessions: refused before anything is allocated for
		// the session, with a hint to come back.
		g.opts.Refusals.Add(r.Context(), httplimit.LimitSessions)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, wire.AppendError(nil, m.ID, codeInternalError,
			fmt.Sprintf("tracegate: %d client sessions are open, the limit; try again later", limit), nil))
		return
	}
	tool, prompt, uri := rq.target()
	var sp *mcptrace.ServerSpan
	if t := g.server(); t != nil {
		msg := mcptrace.Message{Method: m.Method, RequestID: facts.requestID, Tool: tool, Prompt: prompt, URI: uri,
			Meta: rq.meta, Header: r.Header}
		if s != nil {
			msg.SessionID, msg.ProtocolVersion, msg.Session = s.id, s.version, s.trace
		}
		if tool != "" {
			msg.Arguments = wire.Get(m.Params, "arguments")
		}
		ctx, sp = t.Start(ctx, msg)
	}
	rq.ctx = ctx

	result, err := rq.serve()
	var out []byte
	if err != nil {
		e := rq.mapError(err)
		rq.outcome.Code, rq.outcome.Message, rq.outcome.Err = e.Code, e.Message, nil
		out = wire.AppendError(make([]byte, 0, 128), m.ID, e.Code, e.Message, e.Data)
	} else {
		if rq.s != nil && rq.s.modern {
			result = g.decorateStateless(result)
		}
		out = wire.AppendResponse(make([]byte, 0, len(result)+len(m.ID)+32), m.ID, result)
	}
	if m.Method == "initialize" && err == nil && rq.s != nil {
		// The session is complete before the client learns its id: the
		// context it keeps, and, with replicas, its record in Redis.
		if sp != nil {
			rq.outcome.ProtocolVersion = rq.s.version
			rq.s.trace = sp.SessionContext()
		}
		if g.replicas != nil {
			g.replicas.save(ctx, rq.s)
		}
	}
	rq.rp.finish(out, http.StatusOK)
	if sp != nil {
		sp.End(ctx, rq.outcome)
	}
}

// check bounds what the client names and reads params._meta.
func (rq *request) check() *wire.Error {
	m := rq.m
	if len(m.Method) > maxMethodLen {
		return &wire.Error{Code: codeInvalidRequest, Message: fmt.Sprintf("method name longer than %d bytes", maxMethodLen)}
	}
	if len(m.ID) > maxIDLen {
		return &wire.Error{Code: codeInvalidRequest, Message: fmt.Sprintf("id longer than %d bytes", maxIDLen)}
	}
	if m.Params != nil && m.Params[0] != '{' {
		return &wire.Error{Code: codeInvalidParams, Message: "params must be an object"}
	}
	if raw := wire.Get(m.Params, "_meta"); raw != nil {
		if raw[0] != '{' {
			return &wire.Error{Code: codeInvalidParams, Message: "params._meta must be an object"}
		}
		meta, err := wire.MetaView(raw)
		if err != nil {
			return &wire.Error{Code: codeInvalidParams, Message: "params._meta: " + err.Error()}
		}
		rq.meta = meta
	}
	return nil
}

// target names what a request is about, for its span: a tool or prompt
// the front knows (a name it does not know is recorded as _OTHER, so a
// client cannot make span names and metric series without bound), or a
// resource URI.
func (rq *request) target() (tool, prompt, uri string) {
	switch rq.m.Method {
	case "tools/call":
		name, _ := rq.paramName()
		if rq.f.view().tools[name] != nil {
			return name, "", ""
		}
		return otherName, "", ""
	case "prompts/get":
		name, _ := rq.paramName()
		if rq.f.view().prompts[name] != nil {
			return "", name, ""
		}
		return "", otherName, ""
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		uri, _ = wire.GetString(rq.m.Params, "uri")
		if len(uri) > maxNameLen {
			uri = uri[:maxNameLen]
		}
		return "", "", uri
	}
	return "", "", ""
}

// otherName stands for a name outside the catalog, as the OpenTelemetry
// semantic conventions do for unknown HTTP methods.
const otherName = "_OTHER"

// serve dispatches by method: the gateway answers what it knows itself,
// and routes the rest to a backend.
func (rq *request) serve() ([]byte, error) {
	s := rq.s
	method := rq.m.Method
	if s == nil && method != "initialize" {
		return nil, &wire.Error{Code: codeInvalidRequest, Message: "missing Mcp-Session-Id: send initialize first, or use protocol revision " + statelessRevision}
	}
	if s != nil && s.stateless {
		switch method {
		case "initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe":
			return nil, &wire.Error{Code: codeMethodNotFound, Message: fmt.Sprintf("%q is not part of protocol revision %s", method, s.version)}
		}
	} else if s != nil && method != "initialize" && method != "ping" && !s.initialized.Load() {
		// The spec lets a client send pings before initialized; anything
		// else is out of order, but many clients send it right behind
		// initialize without waiting, and the session is usable then.
		s.initialized.Store(true)
	}
	switch method {
	case "initialize":
		return rq.initialize()
	case "ping":
		return []byte("{}"), nil
	case "server/discover":
		return rq.discover()
	case "tools/list":
		return rq.f.view().toolsList, nil
	case "prompts/list":
		return rq.f.view().promptsList, nil
	case "resources/list":
		return rq.f.view().resourcesList, nil
	case "resources/templates/list":
		return rq.f.view().templatesList, nil
	case "logging/setLevel":
		return rq.setLevel()
	case "tools/call":
		return rq.callTool()
	case "prompts/get":
		return rq.getPrompt()
	case "resources/read":
		return rq.readResource()
	case "resources/subscribe":
		return rq.subscribe(true)
	case "resources/unsubscribe":
		return rq.subscribe(false)
	case "completion/complete":
		return rq.complete()
	case "subscriptions/listen":
		return rq.listen()
	}
	return nil, &wire.Error{Code: codeMethodNotFound, Message: "method not found"}
}

// mapError is the one mapping from a failure to what the client gets. A
// backend's own JSON-RPC errors pass through unchanged.
func (rq *request) mapError(err error) *wire.Error {
	var e *wire.Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.Canceled) {
		return &wire.Error{Code: codeRequestCancelled, Message: "request cancelled"}
	}
	rq.g.log.WarnContext(rq.ctx, "request failed", "method", rq.m.Method, "error", err.Error())
	return &wire.Error{Code: codeInternalError, Message: "tracegate: the request failed"}
}

// notification handles a client notification.
func (g *Gateway) notification(r *http.Request, s *session, m *wire.Message) {
	if s == nil {
		return
	}
	switch m.Method {
	case "notifications/initialized":
		s.initialized.Store(true)
	case "notifications/cancelled":
		id := wire.Get(m.Params, "requestId")
		reason, _ := wire.GetString(m.Params, "reason")
		if id != nil && !g.flight.cancel(s, id, reason) && g.replicas != nil {
			// Not running here: on another replica, perhaps.
			g.replicas.forwardCancel(r.Context(), s, id, reason)
		}
	case "notifications/roots/list_changed":
		g.rootsChanged(r.Context(), s)
	}
}

// statelessSession makes the session value of a 2026-07-28 request from
// its _meta, after checking the headers that revision requires.
func (g *Gateway) statelessSession(r *http.Request, f *front, m *wire.Message) (*session, error) {
	meta := wire.Get(m.Params, "_meta")
	version, _ := wire.GetString(meta, metaProtocolVersion)
	if version == "" {
		version = r.Header.Get("Mcp-Protocol-Version")
	}
	if version < statelessRevision {
		return nil, errors.New("missing Mcp-Session-Id: send initialize first, or use protocol revision " + statelessRevision)
	}
	if m.IsRequest() {
		if err := checkHeaders(r.Header, m); err != nil {
			return nil, err
		}
	}
	s := &session{front: f, version: version, stateless: true}
	// Results take the 2026-07-28 shape when the request declares that
	// revision in _meta (SEP-2575), as the SDKs do.
	_, s.modern = wire.GetString(meta, metaProtocolVersion)
	s.caps, s.client = parseClient(wire.Get(meta, metaClientCapabilities), wire.Get(meta, metaClientInfo))
	if lv, ok := wire.GetString(meta, metaLogLevel); ok {
		if sev, known := severity[lv]; known {
			s.level.Store(int32(sev) + 1)
		}
	}
	s.initialized.Store(true)
	return s, nil
}

// codeHeaderMismatch answers a 2026-07-28 request whose Mcp-Method or
// Mcp-Name header does not match its body.
const codeHeaderMismatch = -32020

// checkHeaders checks the headers 2026-07-28 requires to match the body,
// so that what a proxy routes on is what the server reads.
func checkHeaders(h http.Header, m *wire.Message) error {
	method := h.Get("Mcp-Method")
	if method == "" {
		return &wire.Error{Code: codeHeaderMismatch, Message: "missing required Mcp-Method header"}
	}
	if method != m.Method {
		return &wire.Error{Code: codeHeaderMismatch, Message: fmt.Sprintf("header mismatch: Mcp-Method %q does not match the body's method %q", truncated(method), truncated(m.Method))}
	}
	key := ""
	switch m.Method {
	case "tools/call", "prompts/get":
		key = "name"
	case "resources/read":
		key = "uri"
	default:
		return nil
	}
	name := h.Get("Mcp-Name")
	if name == "" {
		return &wire.Error{Code: codeHeaderMismatch, Message: fmt.Sprintf("missing required Mcp-Name header for method %q", m.Method)}
	}
	if body, _ := wire.GetString(m.Params, key); body != name {
		return &wire.Error{Code: codeHeaderMismatch, Message: fmt.Sprintf("header mismatch: Mcp-Name %q does not match the body's %s %q", truncated(name), key, truncated(body))}
	}
	return nil
}

// The _meta keys of 2026-07-28 (SEP-2575).
const (
	metaProtocolVersion    = "io.modelcontextprotocol/protocolVersion"
	metaClientInfo         = "io.modelcontextprotocol/clientInfo"
	metaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
	metaServerInfo         = "io.modelcontextprotocol/serverInfo"
	metaLogLevel           = "io.modelcontextprotocol/logLevel"
	metaSubscriptionID     = "io.modelcontextprotocol/subscriptionId"
)

// hopMeta are the _meta keys of a 2026-07-28 request that describe the
// client's connection to the gateway, not the call: the gateway's session
// with the backend has its own.
var hopMeta = []string{metaProtocolVersion, metaClientInfo, metaClientCapabilities, metaLogLevel}

// decorateStateless gives a result the shape 2026-07-28 defines, whatever
// the backend's transport: the server's identity in _meta (SEP-2575). A
// result without resultType is complete (SEP-2322), so none is added.
func (g *Gateway) decorateStateless(result []byte) []byte {
	if len(result) == 0 || result[0] != '{' {
		return result
	}
	meta := map[string]any{}
	if raw := wire.Get(result, "_meta"); raw != nil {
		if v, err := wire.MetaView(raw); err == nil {
			meta = v
		}
	}
	meta[metaServerInfo] = json.RawMessage(g.serverInfo())
	return wire.AppendParams(make([]byte, 0, len(result)+128), result, nil, meta)
}

func (g *Gateway) serverInfo() []byte {
	info, _ := json.Marshal(map[string]string{"name": "tracegate", "title": "tracegate MCP gateway", "version": g.opts.Version})
	return info
}
