package gateway

import (
	"encoding/json"
	"github.com/tracegate/tracegate/internal/httplimit"
	"github.com/tracegate/tracegate/internal/sse"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tracegate/tracegate/internal/auth"
	"github.com/tracegate/tracegate/internal/cluster"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/wire"
)

// The client-facing transport: Streamable HTTP for every protocol
// revision. Every request passes the same checks, whatever its method.

const defaultMaxRequestBytes = 4 << 20

// Revisions the gateway serves to clients. 2026-07-28 and later are
// stateless: no initialize, no session, each request carries its own _meta.
var clientVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

const (
	latestStateful    = "2025-11-25"
	statelessRevision = "2026-07-28"
)

func supportedVersion(v string) bool {
	if v >= statelessRevision {
		return v == statelessRevision
	}
	for _, s := range clientVersions {
		if s == v {
			return true
		}
	}
	return false
}

// buildHandlerWith is the MCP handler of cfg: the mux, inside wrap, the
// body limits and authn.
func (g *Gateway) buildHandlerWith(cfg *config.Config, wrap func(http.Handler) http.Handler, authn *auth.Authenticator) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/mcp", g.endpoint(func(*http.Request) *front { return g.all }))
	mux.Handle("/mcp/{backend}", g.endpoint(func(r *http.Request) *front { return g.singleFront(r.PathValue("backend")) }))
	var h http.Handler = mux
	if wrap != nil {
		h = wrap(h)
	}
	limit := cfg.MaxRequestBytes
	if limit <= 0 {
		limit = defaultMaxRequestBytes
	}
	// The body is read here, once, incrementally and within its deadline,
	// so the pipeline gets its bytes and a slow or oversized body is
	// refused before anything else is done.
	h = (&httplimit.Body{MaxBytes: limit, ReadTimeout: cfg.Limits.BodyReadTimeout.D(), Refusals: g.opts.Refusals}).Wrap(h)
	// Authentication comes first, so that no body is read and no span is
	// started for a request without a valid token. The metadata that
	// tells clients where to get one (RFC 9728) needs none.
	h = authn.Middleware(auth.ClientCertificates(h))
	paths := authn.MetadataPaths()
	if len(paths) > 0 || g.replicas != nil {
		outer := http.NewServeMux()
		for _, p := range paths {
			outer.Handle(p, authn.MetadataHandler())
		}
		if g.replicas != nil {
			// Forwards between replicas carry the cluster's key, not a
			// client's token.
			outer.Handle(cluster.ForwardPath, g.replicas.c.Handler(g.replicas.serveForward))
		}
		outer.Handle("/", h)
		h = outer
	}
	return h
}

// crossOrigin refuses browser requests from another origin
// (Sec-Fetch-Site, then Origin against Host).
var crossOrigin = http.NewCrossOriginProtection()

// endpoint serves one front.
func (g *Gateway) endpoint(pick func(*http.Request) *front) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := pick(r)
		if f == nil {
			http.Error(w, "unknown backend "+strconv.Quote(r.PathValue("backend")), http.StatusNotFound)
			return
		}
		// DNS rebinding (MCP security best practices): a request that
		// reached a loopback listener must name a loopback host.
		if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && isLoopback(local.String()) && !isLoopback(r.Host) {
			http.Error(w, "Forbidden: invalid Host header "+strconv.Quote(r.Host), http.StatusForbidden)
			return
		}
		if err := crossOrigin.Check(r); err != nil {
			http.Error(w, "Forbidden: "+err.Error(), http.StatusForbidden)
			return
		}
		if v := r.Header.Get("Mcp-Protocol-Version"); v != "" && !supportedVersion(v) {
			http.Error(w, "Bad Request: unsupported protocol version "+strconv.Quote(v)+" (supported: "+strings.Join(clientVersions, ", ")+", "+statelessRevision+")", http.StatusBadRequest)
			return
		}
		switch r.Method {
		case http.MethodPost:
			g.servePost(w, r, f)
		case http.MethodGet:
			g.serveGet(w, r, f)
		case http.MethodDelete:
			g.serveDelete(w, r, f)
		default:
			w.Header().Set("Allow", "GET, POST, DELETE")
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		}
	})
}

// sessionOf finds the session a GET or DELETE names, or answers 404 (no
// such session on this endpoint) or 403 (another caller's) and returns
// nil.
func (g *Gateway) sessionOf(w http.ResponseWriter, r *http.Request, f *front) *session {
	s, err := g.lookup(r, r.Header.Get("Mcp-Session-Id"))
	if err != nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return nil
	}
	if s == nil || s.front != f {
		http.Error(w, "session not found", http.StatusNotFound)
		return nil
	}
	if !ownedBy(s, r) {
		http.Error(w, "the session belongs to another caller", http.StatusForbidden)
		return nil
	}
	return s
}

// lookup finds a stateful session: here, or, with replicas, in Redis. It
// returns nil, nil when there is no such session, and an error when it
// can't tell.
func (g *Gateway) lookup(r *http.Request, id string) (*session, error) {
	s := g.sessions.get(id)
	if s == nil && g.replicas != nil && id != "" {
		return g.replicas.restore(r.Context(), id)
	}
	return s, nil
}

// ownedBy reports whether r comes from the caller that opened s: a
// session id alone, which travels in a header, must not let another
// caller call tools, cancel calls or answer requests on it.
func ownedBy(s *session, r *http.Request) bool {
	return s.owner == auth.SessionOwner(r.Context())
}

// isLoopback reports whether host (with or without a port) is a loopback
// name or address.
func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// acceptsBoth reads the Accept header: whether it admits JSON and event
// streams. It runs on every request, so it scans without allocating.
func acceptsBoth(r *http.Request) (jsonOK, streamOK bool) {
	for _, v := range r.Header["Accept"] {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ",")
			switch mediaType(part) {
			case "application/json":
				jsonOK = true
			case "text/event-stream":
				streamOK = true
			case "*/*":
				jsonOK, streamOK = true, true
			}
		}
	}
	return
}

// mediaType returns a Content-Type or Accept member's media type without
// parameters, lower-cased only when it has upper case.
func mediaType(v string) string {
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	v = strings.TrimSpace(v)
	for i := 0; i < len(v); i++ {
		if 'A' <= v[i] && v[i] <= 'Z' {
			return strings.ToLower(v)
		}
	}
	return v
}

func (g *Gateway) servePost(w http.ResponseWriter, r *http.Request, f *front) {
	if mediaType(r.Header.Get("Content-Type")) != "application/json" {
		http.Error(w, "Content-Type must be 'application/json'", http.StatusUnsupportedMediaType)
		return
	}
	if jsonOK, streamOK := acceptsBoth(r); !jsonOK || !streamOK {
		http.Error(w, "Accept must contain both 'application/json' and 'text/event-stream'", http.StatusBadRequest)
		return
	}
	body, ok := httplimit.Bytes(r)
	if !ok {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	m, err := wire.Parse(body)
	if err == wire.ErrBatch {
		g.serveBatch(w, r, f, body)
		return
	}
	if err == nil && !json.Valid(body) {
		// The scanner checks structure; strings and numbers are checked
		// here, once, so a backend never gets what it cannot decode.
		err = wire.ErrSyntax
	}
	if err != nil {
		code, id := int64(codeInvalidRequest), m.ID
		if err == wire.ErrSyntax {
			// JSON-RPC 2.0 section 5.1: a parse error has a null id.
			code, id = codeParseError, nil
		}
		writeJSON(w, http.StatusBadRequest, wire.AppendError(nil, id, code, "invalid JSON-RPC message: "+err.Error(), nil))
		return
	}
	var s *session
	switch {
	case r.Header.Get("Mcp-Session-Id") != "":
		var ok bool
		if s, ok = g.namedSession(w, r, f, m.ID); !ok {
			return
		}
	case m.Method == "initialize":
		// The session is made by the initialize itself.
	default:
		if s, err = g.statelessSession(r, f, &m); err != nil {
			e, ok := err.(*wire.Error)
			if !ok {
				e = &wire.Error{Code: codeInvalidRequest, Message: err.Error()}
			}
			writeJSON(w, http.StatusBadRequest, wire.AppendError(nil, m.ID, e.Code, e.Message, nil))
			return
		}
	}
	switch {
	case m.IsResponse():
		g.answer(w, r, s, &m)
	case m.IsNotification():
		g.notification(r, s, &m)
		w.WriteHeader(http.StatusAccepted)
	default:
		g.request(w, r, f, s, &m)
	}
}

// namedSession finds the session a POST names in Mcp-Session-Id. When
// the session is not there or not the caller's, it answers the client
// (with id, the request's) and returns false.
func (g *Gateway) namedSession(w http.ResponseWriter, r *http.Request, f *front, id []byte) (*session, bool) {
	s, err := g.lookup(r, r.Header.Get("Mcp-Session-Id"))
	if err != nil {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, wire.AppendError(nil, id, codeInternalError, "tracegate: "+err.Error()+"; try again", nil))
		return nil, false
	}
	if s == nil || s.front != f {
		writeJSON(w, http.StatusNotFound, wire.AppendError(nil, id, codeInvalidRequest, "session not found", nil))
		return nil, false
	}
	if !ownedBy(s, r) {
		writeJSON(w, http.StatusForbidden, wire.AppendError(nil, id, codeInvalidRequest, "the session belongs to another caller", nil))
		return nil, false
	}
	s.touch()
	return s, true
}

func (g *Gateway) serveGet(w http.ResponseWriter, r *http.Request, f *front) {
	if _, streamOK := acceptsBoth(r); !streamOK {
		http.Error(w, "Accept must contain 'text/event-stream' for GET requests", http.StatusBadRequest)
		return
	}
	if r.Header.Get("Mcp-Session-Id") == "" {
		w.Header().Set("Allow", "POST")
		http.Error(w, "Method Not Allowed: GET needs an Mcp-Session-Id header", http.StatusMethodNotAllowed)
		return
	}
	s := g.sessionOf(w, r, f)
	if s == nil {
		return
	}
	if g.closed.Load() {
		// Shutting down: streams were closed so that the grace period is
		// spent on calls, and none opens again.
		w.Header().Set("Retry-After", "1")
		http.Error(w, "the gateway is shutting down", http.StatusServiceUnavailable)
		return
	}
	out, stop, ok := s.openStream()
	if !ok {
		http.Error(w, "a stream is already open for this session", http.StatusConflict)
		return
	}
	defer s.streamEnded(out)
	if g.replicas != nil {
		g.replicas.streamOpened(s)
	}
	s.streams.Add(1)
	defer func() { s.touch(); s.streams.Add(-1) }()
	sw := startStream(w)
	keep := time.NewTicker(keepAliveEvery)
	defer keep.Stop()
	for {
		select {
		case msg := <-out:
			if err := sw.Event("message", "", msg); err != nil {
				return
			}
		case <-keep.C:
			if err := sw.Comment("keep-alive"); err != nil {
				return
			}
		case <-stop:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// keepAliveEvery spaces the comments that keep an idle stream open
// through proxies that close silent connections.
const keepAliveEvery = 25 * time.Second

func (g *Gateway) serveDelete(w http.ResponseWriter, r *http.Request, f *front) {
	if r.Header.Get("Mcp-Session-Id") == "" {
		http.Error(w, "Bad Request: DELETE needs an Mcp-Session-Id header", http.StatusBadRequest)
		return
	}
	s := g.sessionOf(w, r, f)
	if s == nil {
		return
	}
	if !g.endSession(s.id, true) {
		http.Error(w, "session not found", http.StatusNotFound)
		return
	}
	if g.replicas != nil {
		g.replicas.ended(r.Context(), s.id)
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, msg []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(msg)
}

// startStream answers with an event stream and returns its writer.
func startStream(w http.ResponseWriter) *sse.Writer {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-transform")
	w.WriteHeader(http.StatusOK)
	// The headers go out at once: the client knows the stream is open.
	http.NewResponseController(w).Flush()
	return sse.NewWriter(w)
}

// reply is the answer to one client request: a JSON body when the
// response is all there is, or an SSE stream when the backend sends
// messages for the client before it (progress, logs, its own requests).
// Messages may arrive from a backend's reading goroutine while the
// request's own goroutine finishes, so it locks.
type reply struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	s       *session
	ev      *sse.Writer
	started bool
	done    bool
}

// send writes an intermediate message, switching to a stream; false when
// the response was already written (the caller tries the session's GET
// stream).
func (rp *reply) send(msg []byte) bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.done {
		return false
	}
	if !rp.started {
		rp.started = true
		rp.ev = startStream(rp.w)
		if rp.s != nil {
			rp.s.streams.Add(1)
		}
	}
	return rp.ev.Event("message", "", msg) == nil
}

// finish writes the response and ends the reply.
func (rp *reply) finish(msg []byte, status int) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.done {
		return
	}
	rp.done = true
	if rp.started {
		rp.ev.Event("message", "", msg)
		if rp.s != nil {
			rp.s.streams.Add(-1)
		}
		return
	}
	writeJSON(rp.w, status, msg)
}
