package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/auth"
	"github.com/tracegate/tracegate/internal/backend"
)

// The forwarding path.
//
// A tools/call is most of an agent's traffic, and the gateway has nothing to
// change in it but the id, the tool's name and the trace fields of _meta.
// Decoding it into SDK types and encoding it again, twice (once as the
// server, once as the backend's client), costs more than every other part
// of the gateway together. So when a call is on a stateful session, goes to
// a ready Streamable HTTP backend, and needs nothing the decoding path
// provides (plugins, content capture, progress token mapping), the gateway
// forwards its bytes: the client's arguments and _meta keys reach the
// backend exactly as sent, and the backend's answer reaches the client with
// only its id changed.
//
// Everything else about the call is unchanged. The tracing middleware runs
// around it as it runs around every SDK request (the same SERVER and CLIENT
// spans, attributes and metrics), the trace context goes into the copy of
// _meta and into the HTTP headers, and server-to-client messages the backend
// sends on the call's stream (logging, sampling, elicitation) are passed to
// the client on the call's own stream, their answers back to the backend.

// maxBackendMessage bounds one message read from a backend.
const maxBackendMessage = 64 << 20

// Internal headers through which the HTTP layer hands the request's facts
// to the tracing middleware; anything a client sends under these names is
// removed first.
const (
	headerRequestID     = "Tracegate-Jsonrpc-Request-Id"
	headerClientAddress = "Tracegate-Client-Address"
)

// envelope is the top level of one JSON-RPC message.
type envelope struct {
	id       []byte // raw; nil when absent
	idStart  int
	idEnd    int
	method   string
	params   []byte // raw object; nil when absent
	paramsAt int    // offset of params in the message
	result   []byte
	rpcError []byte
}

func (e *envelope) isResponse() bool {
	return e.method == "" && e.id != nil && (e.result != nil || e.rpcError != nil)
}

// parseEnvelope reads the top level of a single JSON-RPC message. It
// reports false for batches, for anything but JSON-RPC 2.0, and for keys
// with escapes (the decoding path handles those).
func parseEnvelope(data []byte) (envelope, bool) {
	var e envelope
	version := false
	ok := true
	var seen uint8
	end, err := eachMember(data, 0, func(m member) bool {
		if m.escapedKey {
			ok = false
			return false
		}
		v := data[m.valStart:m.valEnd]
		key := string(data[m.keyStart+1 : m.keyEnd-1])
		if seen&envelopeBit(key) != 0 {
			ok = false // a repeated member: the SDK's decoder decides
			return false
		}
		seen |= envelopeBit(key)
		switch key {
		case "jsonrpc":
			version = string(v) == `"2.0"`
		case "id":
			e.id, e.idStart, e.idEnd = v, m.valStart, m.valEnd
		case "method":
			s, good := unquote(v)
			if !good || v[0] != '"' {
				ok = false
				return false
			}
			e.method = s
		case "params":
			e.params, e.paramsAt = v, m.valStart
		case "result":
			e.result = v
		case "error":
			e.rpcError = v
		}
		return true
	})
	if err != nil || !ok || !version || skipSpace(data, end) != len(data) {
		return envelope{}, false
	}
	if e.id != nil && e.id[0] != '"' && e.id[0] != '-' && (e.id[0] < '0' || e.id[0] > '9') {
		return envelope{}, false // null or structured ids: the decoding path answers
	}
	return e, true
}

// envelopeBit gives each member name the forwarding path reads a bit, to
// notice one that is repeated; other names get none.
func envelopeBit(key string) uint8 {
	switch key {
	case "jsonrpc", "name":
		return 1
	case "id", "arguments":
		return 2
	case "method", "_meta":
		return 4
	case "params":
		return 8
	case "result":
		return 16
	case "error":
		return 32
	}
	return 0
}

// callParams are the parts of tools/call params the forwarding path reads.
type callParams struct {
	name    string
	nameSet bool
	meta    []byte // raw _meta object; nil when absent
	args    []byte
}

func parseCallParams(params []byte) (callParams, bool) {
	var p callParams
	ok := true
	var seen uint8
	_, err := eachMember(params, 0, func(m member) bool {
		if m.escapedKey {
			ok = false
			return false
		}
		v := params[m.valStart:m.valEnd]
		key := string(params[m.keyStart+1 : m.keyEnd-1])
		if seen&envelopeBit(key) != 0 {
			ok = false
			return false
		}
		seen |= envelopeBit(key)
		switch key {
		case "name":
			s, good := unquote(v)
			if !good {
				ok = false
				return false
			}
			p.name, p.nameSet = s, true
		case "_meta":
			if v[0] != '{' {
				ok = false
				return false
			}
			p.meta = v
		case "arguments":
			p.args = v
		}
		return true
	})
	return p, err == nil && ok && p.nameSet
}

// metaView decodes _meta for the tracing middleware: string values as
// strings, everything else as raw JSON. It reports a progress token, which
// sends the call down the decoding path (tokens may need mapping).
func metaView(raw []byte) (map[string]any, bool, bool) {
	if raw == nil {
		return nil, false, true
	}
	meta := map[string]any{}
	progress := false
	ok := true
	_, err := eachMember(raw, 0, func(m member) bool {
		k := m.key(raw)
		v := raw[m.valStart:m.valEnd]
		if _, dup := meta[k]; dup {
			// Which of two values counts is up to each decoder; leave
			// such a message to the SDK's.
			ok = false
			return false
		}
		if k == "progressToken" {
			progress = true
		}
		if v[0] == '"' {
			s, good := unquote(v)
			if !good {
				ok = false
				return false
			}
			meta[k] = s
		} else {
			meta[k] = json.RawMessage(v)
		}
		return true
	})
	return meta, progress, err == nil && ok
}

// fastPath serves the forwarding path of one front server in front of the
// SDK's handler, which serves everything else.
type fastPath struct {
	g        *Gateway
	f        *front
	next     http.Handler
	serve    mcp.MethodHandler // the server middleware around g.forward
	sessions *sessionTable

	mu      sync.Mutex
	calls   map[callKey]*fastCall  // in flight, for notifications/cancelled
	pending map[string]*pendingAsk // server-to-client requests relayed on a call's stream
	seq     atomic.Uint64
}

type callKey struct {
	session string
	id      string // raw JSON of the client's id
}

// pendingAsk is a request a backend sent on a forwarded call's stream,
// relayed to the client under an id of the gateway's.
type pendingAsk struct {
	session   string
	call      *fastCall
	backendID []byte
}

// fastCall is one forwarded tools/call.
type fastCall struct {
	fp        *fastPath
	w         http.ResponseWriter
	r         *http.Request
	session   string
	ss        *mcp.ServerSession
	clientID  []byte
	body      []byte
	rawParams []byte
	name      string // the tool as the client named it
	// args are the arguments to forward: the client's bytes, or what a
	// tool_pre_invoke plugin rewrote them to (argsRewritten).
	args          []byte
	argsRewritten bool
	// post: a tool_post_invoke plugin applies, so the backend's result is
	// held (held) until the chain has seen it.
	post bool
	held []byte
	// logLevel is what the client asked for (logging/setLevel, or the
	// 2026-07-28 per-request key); log messages below it are not relayed.
	logLevel mcp.LoggingLevel
	route    *toolRoute
	direct   *backend.Direct
	cancel   context.CancelFunc
	asks     []string

	started bool // headers written
	sse     bool
	done    bool // the response was written
	// backendID is the id the call has on the backend session.
	backendID []byte
	// serverCtx holds the SERVER span, whose context goes into the _meta
	// of what the backend sends the client on the call's stream.
	serverCtx context.Context
}

type fastCallKey struct{}

func newFastPath(g *Gateway, f *front, next http.Handler) *fastPath {
	fp := &fastPath{
		g:        g,
		f:        f,
		next:     next,
		sessions: f.sessions,
		calls:    map[callKey]*fastCall{},
		pending:  map[string]*pendingAsk{},
	}
	fp.serve = chain(g.opts.ServerMiddleware, g.forward)
	return fp
}

// withForwarding puts the forwarding path in front of a front server's
// SDK handler. With DecodeAllCalls it forwards nothing, and still keeps
// the sessions' idle clocks and the request facts for the spans.
func (g *Gateway) withForwarding(f *front, next http.Handler) http.Handler {
	return newFastPath(g, f, next)
}

func chain(mws []mcp.Middleware, h mcp.MethodHandler) mcp.MethodHandler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

func (fp *fastPath) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The request's facts are for the tracing middleware; without any,
	// nothing reads them.
	facts := len(fp.g.opts.ServerMiddleware) > 0
	if facts {
		r.Header.Del(headerRequestID)
		r.Header.Del(headerClientAddress)
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			r.Header[headerClientAddress] = []string{host}
		}
	}
	sid := r.Header.Get("Mcp-Session-Id")
	var s *sessionEntry
	if sid != "" {
		if s = fp.sessions.get(sid); s != nil {
			if s.owner != auth.SessionOwner(r.Context()) {
				// Another caller's session: the SDK refuses it (403), and
				// nothing here may answer, cancel or forward on it.
				fp.next.ServeHTTP(w, r)
				return
			}
			s.touch()
			if r.Method == http.MethodGet {
				s.streams.Add(1)
				defer func() { s.touch(); s.streams.Add(-1) }()
			}
		}
	}
	body := bodyOf(r)
	if r.Method != http.MethodPost || body == nil {
		fp.next.ServeHTTP(w, r)
		return
	}
	env, ok := parseEnvelope(body)
	if !ok {
		fp.next.ServeHTTP(w, r)
		return
	}
	if facts && env.id != nil && env.method != "" {
		r.Header[headerRequestID] = []string{requestIDAttr(env.id)}
	}
	if sid != "" {
		switch {
		case env.method == "notifications/initialized":
			// The SDK handles notifications after answering their POST;
			// mark the session here so that a call right behind it is
			// forwarded too.
			fp.next.ServeHTTP(w, r)
			if s := fp.sessions.get(sid); s != nil {
				s.initialized.Store(true) // added by the initialize just before
			}
			return
		case env.isResponse():
			if fp.answer(w, sid, env, body) {
				return
			}
		case env.method == "notifications/cancelled":
			if fp.cancelled(w, sid, env.params) {
				return
			}
		case env.method == "tools/call" && env.id != nil && env.params != nil && !fp.g.opts.DecodeAllCalls:
			if s != nil && s.initialized.Load() && fp.call(w, r, s, env, body) {
				return
			}
		}
	} else if env.method == "tools/call" && env.id != nil && env.params != nil && !fp.g.opts.DecodeAllCalls &&
		r.Header.Get("Mcp-Protocol-Version") >= statelessRevision {
		if fp.call(w, r, nil, env, body) {
			return
		}
	}
	fp.next.ServeHTTP(w, r)
}

// requestIDAttr renders a JSON-RPC id for jsonrpc.request.id: a string's
// value, or a number's digits.
func requestIDAttr(raw []byte) string {
	if raw[0] == '"' {
		s, _ := unquote(raw)
		return s
	}
	return string(raw)
}

// call forwards a tools/call, or reports false to leave it to the decoding
// path, having written nothing. s is the client's session; nil for a
// stateless (2026-07-28) request.
func (fp *fastPath) call(w http.ResponseWriter, r *http.Request, s *sessionEntry, env envelope, body []byte) bool {
	var ss *mcp.ServerSession
	sid := ""
	if s != nil {
		ss, sid = s.ss, s.ss.ID()
	}
	p, ok := parseCallParams(env.params)
	if !ok {
		return false
	}
	route := fp.f.routes().tools[p.name]
	if route == nil {
		return false
	}
	if s == nil && (r.Header.Get("Mcp-Method") != "tools/call" || r.Header.Get("Mcp-Name") != p.name || route.paramHeaders) {
		// The SDK checks a 2026-07-28 request's headers against its body,
		// and answers a mismatch with the error it defines.
		return false
	}
	d, ok := route.backend.Direct()
	if !ok {
		return false
	}
	meta, progress, ok := metaView(p.meta)
	if !ok || progress {
		return false
	}
	fc := &fastCall{fp: fp, w: w, r: r, session: sid, ss: ss, clientID: env.id, body: body, rawParams: env.params,
		name: p.name, args: p.args, route: route, direct: d, logLevel: fp.g.logs.levelOf(ss)}
	if ss == nil {
		if v, ok := meta[mcp.MetaKeyLogLevel].(string); ok {
			fc.logLevel = mcp.LoggingLevel(v)
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	fc.cancel = cancel
	defer cancel()
	// A stateless client cancels by abandoning its request; a stateful
	// one by notifications/cancelled, which needs the call found by id.
	key := callKey{sid, string(env.id)}
	if ss != nil {
		fp.mu.Lock()
		fp.calls[key] = fc
		fp.mu.Unlock()
	}
	defer func() {
		fp.mu.Lock()
		if ss != nil && fp.calls[key] == fc {
			delete(fp.calls, key)
		}
		for _, id := range fc.asks {
			delete(fp.pending, id)
		}
		fp.mu.Unlock()
	}()

	req := &mcp.CallToolRequest{
		Session: ss,
		Params:  &mcp.CallToolParamsRaw{Meta: meta, Name: p.name, Arguments: p.args},
		Extra:   &mcp.RequestExtra{Header: r.Header},
	}
	_, err := fp.serve(context.WithValue(ctx, fastCallKey{}, fc), "tools/call", req)
	if !fc.done {
		fc.writeError(err)
	}
	return true
}

// forward is the innermost server handler of a forwarded call: it runs the
// backend's sending middleware (the CLIENT span) around the HTTP exchange.
func (g *Gateway) forward(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
	fc, _ := ctx.Value(fastCallKey{}).(*fastCall)
	if fc == nil {
		return nil, errNotRouted
	}
	b := fc.route.backend
	fc.serverCtx = ctx
	// Plugins run here, inside the SERVER span, as on the decoding path:
	// the pre hook before the backend's CLIENT span, the post hook after.
	hooks := g.hooks(ctx, fc.ss, b, fc.name, fc.route.original, fc.route.schema)
	if hooks.active(ToolPre) {
		args, err := hooks.pre(ToolPre, fc.args)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(args, fc.args) {
			fc.args, fc.argsRewritten = args, true
		}
	}
	fc.post = hooks.active(ToolPost)
	if fc.ss != nil {
		done := g.relay.track(ctx, fc.ss, b)
		defer done()
	}
	cctx, cancel := context.WithTimeout(ctx, b.Timeout())
	defer cancel()
	out := &mcp.ClientRequest[*mcp.CallToolParams]{
		Session: fc.direct.Session,
		Params:  &mcp.CallToolParams{Meta: stripHopMeta(req.GetParams().GetMeta()), Name: fc.route.original},
	}
	res, err := g.senders[b](cctx, method, out)
	if err == nil && fc.held != nil {
		result, _, err := hooks.postRaw(ToolPost, fc.args, fc.held)
		if err != nil {
			return nil, err
		}
		msg := append([]byte(`{"jsonrpc":"2.0","id":`), fc.clientID...)
		msg = append(msg, `,"result":`...)
		msg = append(msg, result...)
		fc.write(append(msg, '}'), true)
		return &mcp.CallToolResult{IsError: isToolError(result)}, nil
	}
	if err == nil || fc.done {
		return res, err
	}
	if ctx.Err() != nil || errors.Is(cctx.Err(), context.DeadlineExceeded) {
		fc.abandon()
	}
	return nil, b.Failed(ctx, cctx, err)
}

// sendDirect posts a forwarded call to its backend and relays the answer.
// Its result describes the outcome to the middleware; the bytes have been
// written to the client by then.
func sendDirect(ctx context.Context, _ string, req mcp.Request) (mcp.Result, error) {
	fc, _ := ctx.Value(fastCallKey{}).(*fastCall)
	if fc == nil {
		return nil, errNotRouted
	}
	fc.backendID = strconv.AppendUint(append(make([]byte, 0, 24), `"tg-`...), fc.fp.g.seq.Add(1), 10)
	fc.backendID = append(fc.backendID, '"')
	body, err := fc.backendBody(req.GetParams().GetMeta())
	if err != nil {
		return nil, err
	}
	resp, err := postDirect(ctx, fc.direct, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	switch mediaType(resp.Header.Get("Content-Type")) {
	case "application/json":
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxBackendMessage+1))
		if err != nil {
			return nil, err
		}
		if len(data) > maxBackendMessage {
			return nil, errEventTooLarge
		}
		res, err, ok := fc.relay(data)
		if !ok {
			return nil, errors.New("the backend's answer is not the call's response")
		}
		return res, err
	case "text/event-stream":
		sr := newSSEReader(resp.Body, maxBackendMessage)
		for {
			data, err := sr.next()
			if err != nil {
				if err == io.EOF || err == io.ErrUnexpectedEOF {
					err = errors.New("the backend's stream ended before the response")
				}
				return nil, err
			}
			if res, err, ok := fc.relay(data); ok {
				// The backend ends the stream after the response; reading
				// to its end lets the connection be reused.
				io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				return res, err
			}
		}
	}
	return nil, fmt.Errorf("unexpected content type %q", resp.Header.Get("Content-Type"))
}

// mediaType returns the media type of a Content-Type value, lower-cased,
// without parameters.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	for i := 0; i < len(ct); i++ {
		if 'A' <= ct[i] && ct[i] <= 'Z' {
			return strings.ToLower(ct)
		}
	}
	return ct
}

// postDirect sends one JSON-RPC message on the backend's session.
func postDirect(ctx context.Context, d *backend.Direct, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = http.Header{
		"Content-Type": {"application/json"},
		"Accept":       {"application/json, text/event-stream"},
	}
	if d.SessionID != "" {
		req.Header["Mcp-Session-Id"] = []string{d.SessionID}
	}
	if d.Version != "" {
		req.Header["Mcp-Protocol-Version"] = []string{d.Version}
	}
	return d.Client.Do(req)
}

// sendOneWay posts a message that gets no JSON-RPC answer (a
// notification, or the answer to a backend's request) and returns the HTTP
// status; the body is read to its end so the connection can be reused.
func sendOneWay(ctx context.Context, d *backend.Direct, msg []byte) (int, error) {
	resp, err := postDirect(ctx, d, msg)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// backendBody is the client's message with the backend's id, the tool's
// original name, and _meta as the middleware left it: trace fields
// injected, hop-by-hop keys gone, every other key as the client sent it.
func (fc *fastCall) backendBody(meta map[string]any) ([]byte, error) {
	out := make([]byte, 0, len(fc.body)+160)
	out = append(out, `{"jsonrpc":"2.0","id":`...)
	out = append(out, fc.backendID...)
	out = append(out, `,"method":"tools/call","params":{"name":`...)
	out = appendString(out, fc.route.original)
	p := fc.rawParams
	wroteMeta := false
	if fc.argsRewritten && len(fc.args) > 0 {
		out = append(append(out, `,"arguments":`...), fc.args...)
	}
	_, err := eachMember(p, 0, func(m member) bool {
		switch {
		case m.keyIs(p, "name"):
			return true
		case fc.argsRewritten && m.keyIs(p, "arguments"):
			return true
		case m.keyIs(p, "_meta"):
			out = appendMeta(append(out, `,"_meta":`...), p[m.valStart:m.valEnd], meta)
			wroteMeta = true
			return true
		}
		out = append(out, ',')
		out = append(out, p[m.keyStart:m.keyEnd]...)
		out = append(out, ':')
		out = append(out, p[m.valStart:m.valEnd]...)
		return true
	})
	if err != nil {
		return nil, err
	}
	if !wroteMeta && len(meta) > 0 {
		out = appendMeta(append(out, `,"_meta":`...), nil, meta)
	}
	return append(out, "}}"...), nil
}

// appendMeta writes the object meta describes: the members of orig in
// their order, with the value meta holds for each key (a member meta no
// longer has is dropped), then meta's new keys in sorted order. Values
// meta took from orig are copied as they were.
func appendMeta(out, orig []byte, meta map[string]any) []byte {
	out = append(out, '{')
	first := true
	sep := func() {
		if !first {
			out = append(out, ',')
		}
		first = false
	}
	seen := 0
	if orig != nil {
		eachMember(orig, 0, func(m member) bool {
			v, ok := m.lookup(orig, meta)
			if !ok {
				return true
			}
			seen++
			raw := orig[m.valStart:m.valEnd]
			sep()
			out = append(out, orig[m.keyStart:m.keyEnd]...)
			out = append(out, ':')
			switch v := v.(type) {
			case json.RawMessage:
				out = append(out, raw...)
			case string:
				if rawStringIs(raw, v) {
					out = append(out, raw...)
				} else {
					out = appendString(out, v)
				}
			default:
				out = appendAny(out, v)
			}
			return true
		})
	}
	if seen < len(meta) {
		var added []string
		for k := range meta {
			if orig == nil || !hasMember(orig, k) {
				added = append(added, k)
			}
		}
		slices.Sort(added)
		for _, k := range added {
			sep()
			out = appendString(out, k)
			out = append(out, ':')
			out = appendAny(out, meta[k])
		}
	}
	return append(out, '}')
}

func hasMember(obj []byte, k string) bool {
	found := false
	eachMember(obj, 0, func(m member) bool {
		found = m.keyIs(obj, k)
		return !found
	})
	return found
}

func appendAny(out []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return appendString(out, v)
	case json.RawMessage:
		return append(out, v...)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return append(out, "null"...)
	}
	return append(out, data...)
}

// relay handles one message the backend sent on the call's stream. It
// reports true, with the outcome, once the call's own response has been
// relayed.
func (fc *fastCall) relay(data []byte) (mcp.Result, error, bool) {
	env, ok := parseEnvelope(data)
	if !ok || !json.Valid(data) {
		return nil, errors.New("the backend sent a malformed message"), true
	}
	switch {
	case env.isResponse():
		if !bytes.Equal(env.id, fc.backendID) {
			return nil, nil, false
		}
		if fc.post && env.rpcError == nil {
			// The data is the reader's buffer: keep a copy.
			fc.held = bytes.Clone(env.result)
			return &mcp.CallToolResult{IsError: isToolError(env.result)}, nil, true
		}
		msg := make([]byte, 0, len(data)+len(fc.clientID))
		msg = append(msg, data[:env.idStart]...)
		msg = append(msg, fc.clientID...)
		msg = append(msg, data[env.idEnd:]...)
		fc.write(msg, true)
		if env.rpcError != nil {
			return nil, wireError(env.rpcError), true
		}
		return &mcp.CallToolResult{IsError: isToolError(env.result)}, nil, true
	case env.method != "" && env.id != nil && fc.ss == nil:
		// 2026-07-28 has no server-to-client requests (it returns
		// multi-round-trip results instead): refuse, so the backend
		// fails the call clearly rather than waiting.
		fc.refuse(env.id, env.method)
	case env.method != "" && env.id != nil:
		// A request of the backend's (sampling, elicitation, roots) on
		// the call's stream: the client gets it under an id of the
		// gateway's, and its answer goes back to the backend.
		ask := "tgs-" + strconv.FormatUint(fc.fp.seq.Add(1), 10)
		fc.fp.mu.Lock()
		fc.fp.pending[ask] = &pendingAsk{session: fc.session, call: fc, backendID: bytes.Clone(env.id)}
		fc.asks = append(fc.asks, ask)
		fc.fp.mu.Unlock()
		msg := make([]byte, 0, len(data)+len(ask)+2)
		msg = append(msg, data[:env.idStart]...)
		msg = appendString(msg, ask)
		msg = append(msg, data[env.idEnd:]...)
		fc.write(fc.traced(msg), false)
	case env.method == "notifications/message":
		// The backend logs at the most verbose level any client asked
		// for; this client gets what its own level lets through.
		if wants(fc.logLevel, logLevelOf(env.params)) {
			fc.write(fc.traced(data), false)
		}
	case env.method != "":
		fc.write(fc.traced(data), false)
	}
	return nil, nil, false
}

// traced gives a message the backend sent on the call's stream the trace
// context of the gateway's SERVER span in params._meta, as the decoding
// path's sending middleware does for what it relays, so the client sees it
// in the trace of its own call. Every other byte is kept.
func (fc *fastCall) traced(msg []byte) []byte {
	mws := fc.fp.g.opts.ServerSendingMiddleware
	if len(mws) == 0 || fc.serverCtx == nil {
		return msg
	}
	env, ok := parseEnvelope(msg)
	if !ok || env.params == nil && env.method == "" {
		return msg
	}
	var orig []byte
	if env.params != nil {
		eachMember(env.params, 0, func(m member) bool {
			if m.keyIs(env.params, "_meta") {
				orig = env.params[m.valStart:m.valEnd]
			}
			return true
		})
	}
	if orig != nil && orig[0] != '{' {
		return msg
	}
	meta, _, ok := metaView(orig)
	if !ok {
		return msg
	}
	var injected map[string]any
	capture := func(_ context.Context, _ string, req mcp.Request) (mcp.Result, error) {
		injected = req.GetParams().GetMeta()
		return nil, nil
	}
	req := &mcp.ServerRequest[*mcp.LoggingMessageParams]{Session: fc.ss, Params: &mcp.LoggingMessageParams{Meta: meta}}
	chain(mws, capture)(fc.serverCtx, env.method, req)
	if injected == nil {
		return msg
	}
	out := make([]byte, 0, len(msg)+128)
	if env.params == nil {
		// No params: add them, holding only _meta.
		end := bytes.LastIndexByte(msg, '}')
		out = append(out, msg[:end]...)
		out = appendMeta(append(out, `,"params":{"_meta":`...), nil, injected)
		return append(append(out, '}'), msg[end:]...)
	}
	out = append(out, msg[:env.paramsAt]...)
	out = append(out, '{')
	first := true
	eachMember(env.params, 0, func(m member) bool {
		if m.keyIs(env.params, "_meta") {
			return true
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, env.params[m.keyStart:m.valEnd]...)
		return true
	})
	if !first {
		out = append(out, ',')
	}
	out = appendMeta(append(out, `"_meta":`...), orig, injected)
	out = append(out, '}')
	return append(out, msg[env.paramsAt+len(env.params):]...)
}

// logLevelOf reads params.level of a notifications/message.
func logLevelOf(params []byte) mcp.LoggingLevel {
	var level mcp.LoggingLevel
	if params != nil {
		eachMember(params, 0, func(m member) bool {
			if m.keyIs(params, "level") {
				s, _ := unquote(params[m.valStart:m.valEnd])
				level = mcp.LoggingLevel(s)
				return false
			}
			return true
		})
	}
	return level
}

// write sends one message to the client: as the JSON body when it is the
// only one, else as an event of a stream.
func (fc *fastCall) write(msg []byte, final bool) {
	w := fc.w
	if !fc.started {
		fc.started = true
		fc.sse = !final
		if fc.sse {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache, no-transform")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(http.StatusOK)
	}
	if fc.sse {
		io.WriteString(w, "event: message\ndata: ")
		w.Write(msg)
		io.WriteString(w, "\n\n")
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	} else {
		w.Write(msg)
	}
	if final {
		fc.done = true
	}
}

// writeError answers the call with err as a JSON-RPC error.
func (fc *fastCall) writeError(err error) {
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) {
		code := int64(jsonrpc.CodeInternalError)
		msg := "tracegate: the call failed"
		if err != nil {
			msg = err.Error()
		}
		if errors.Is(err, context.Canceled) {
			code, msg = codeRequestCancelled, "request cancelled"
		}
		rpcErr = &jsonrpc.Error{Code: code, Message: msg}
	}
	msg := append([]byte(`{"jsonrpc":"2.0","id":`), fc.clientID...)
	msg = append(msg, `,"error":{"code":`...)
	msg = strconv.AppendInt(msg, rpcErr.Code, 10)
	msg = append(msg, `,"message":`...)
	msg = appendString(msg, rpcErr.Message)
	if len(rpcErr.Data) > 0 && json.Valid(rpcErr.Data) {
		msg = append(msg, `,"data":`...)
		msg = append(msg, rpcErr.Data...)
	}
	msg = append(msg, "}}"...)
	fc.write(msg, true)
}

// codeRequestCancelled answers a call the client cancelled, should it
// still be listening.
const codeRequestCancelled = -32800

// abandon tells the backend to stop working on a call the gateway gave up
// on (the client cancelled or went away, or the timeout passed).
func (fc *fastCall) abandon() {
	if fc.backendID == nil {
		return
	}
	msg := append([]byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":`), fc.backendID...)
	msg = append(msg, `,"reason":"cancelled by the client or timed out at the gateway"}}`...)
	d := fc.direct
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sendOneWay(ctx, d, msg)
	}()
}

// refuse answers a request the backend sent on the call's stream with an
// error, for a client that cannot receive it.
func (fc *fastCall) refuse(id []byte, method string) {
	msg := append([]byte(`{"jsonrpc":"2.0","id":`), id...)
	msg = append(msg, `,"error":{"code":-32601,"message":`...)
	msg = appendString(msg, "tracegate: "+method+" cannot be relayed to a 2026-07-28 client, which has no server-to-client requests")
	msg = append(msg, "}}"...)
	ctx, cancel := context.WithTimeout(fc.r.Context(), 5*time.Second)
	defer cancel()
	sendOneWay(ctx, fc.direct, msg)
}

// wireError decodes a JSON-RPC error object.
func wireError(raw []byte) *jsonrpc.Error {
	var e struct {
		Code    int64           `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "malformed error from backend"}
	}
	return &jsonrpc.Error{Code: e.Code, Message: e.Message, Data: e.Data}
}

// isToolError reports result.isError == true.
func isToolError(result []byte) bool {
	isErr := false
	eachMember(result, 0, func(m member) bool {
		if m.keyIs(result, "isError") {
			isErr = string(result[m.valStart:m.valEnd]) == "true"
		}
		return true
	})
	return isErr
}

// answer passes the client's answer to a request a backend sent on a
// forwarded call's stream back to that backend.
func (fp *fastPath) answer(w http.ResponseWriter, sid string, env envelope, body []byte) bool {
	if env.id[0] != '"' {
		return false
	}
	id, _ := unquote(env.id)
	fp.mu.Lock()
	p := fp.pending[id]
	if p != nil && p.session == sid {
		delete(fp.pending, id)
	}
	fp.mu.Unlock()
	if p == nil || p.session != sid {
		return false
	}
	msg := make([]byte, 0, len(body))
	msg = append(msg, body[:env.idStart]...)
	msg = append(msg, p.backendID...)
	msg = append(msg, body[env.idEnd:]...)
	ctx, cancel := context.WithTimeout(p.call.r.Context(), 30*time.Second)
	defer cancel()
	status, err := sendOneWay(ctx, p.call.direct, msg)
	if err != nil {
		http.Error(w, "relaying the answer to backend "+p.call.route.backend.Name()+": "+err.Error(), http.StatusBadGateway)
		return true
	}
	w.WriteHeader(status)
	return true
}

// cancelled cancels a forwarded call the client gave up on.
func (fp *fastPath) cancelled(w http.ResponseWriter, sid string, params []byte) bool {
	var id []byte
	if params != nil {
		eachMember(params, 0, func(m member) bool {
			if m.keyIs(params, "requestId") {
				id = params[m.valStart:m.valEnd]
			}
			return true
		})
	}
	if id == nil {
		return false
	}
	fp.mu.Lock()
	fc := fp.calls[callKey{sid, string(id)}]
	fp.mu.Unlock()
	if fc == nil {
		return false
	}
	fc.cancel()
	w.WriteHeader(http.StatusAccepted)
	return true
}
