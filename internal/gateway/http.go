package gateway

import (
	"encoding/json"
	"github.com/tracegate/tracegate/internal/httplimit"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tracegate/tracegate/internal/auth"
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

func (g *Gateway) buildHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/mcp", g.endpoint(func(*http.Request) *front { return g.all }))
	mux.Handle("/mcp/{backend}", g.endpoint(func(r *http.Request) *front { return g.single[r.PathValue("backend")] }))
	var h http.Handler = mux
	if g.opts.WrapHTTP != nil {
		h = g.opts.WrapHTTP(h)
	}
	limit := g.cfg.MaxRequestBytes
	if limit <= 0 {
		limit = defaultMaxRequestBytes
	}
	// The body is read here, once, incrementally and within its deadline,
	// so the pipeline gets its bytes and a slow or oversized body is
	// refused before anything else is done.
	h = (&httplimit.Body{MaxBytes: limit, ReadTimeout: g.cfg.Limits.BodyReadTimeout.D(), Refusals: g.opts.Refusals}).Wrap(h)
	// Authentication comes first, so that no body is read and no span is
	// started for a request without a valid token. The metadata that
	// tells clients where to get one (RFC 9728) needs none.
	authn, err := auth.New(g.cfg.Auth, auth.Options{Logger: g.log})
	if err != nil {
		g.log.Error("authentication misconfigured; refusing every request", "error", err)
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "authentication misconfigured", http.StatusInternalServerError)
		})
	}
	h = authn.Middleware(auth.ClientCertificates(h))
	if paths := authn.MetadataPaths(); len(paths) > 0 {
		outer := http.NewServeMux()
		for _, p := range paths {
			outer.Handle(p, authn.MetadataHandler())
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
	sid := r.Header.Get("Mcp-Session-Id")
	var s *session
	switch {
	case sid != "":
		if s = g.sessions.get(sid); s == nil || s.front != f {
			writeJSON(w, http.StatusNotFound, wire.AppendError(nil, m.ID, codeInvalidRequest, "session not found", nil))
			return
		}
		if !ownedBy(s, r) {
			writeJSON(w, http.StatusForbidden, wire.AppendError(nil, m.ID, codeInvalidRequest, "the session belongs to another caller", nil))
			return
		}
		s.touch()
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

func (g *Gateway) serveGet(w http.ResponseWriter, r *http.Request, f *front) {
	if _, streamOK := acceptsBoth(r); !streamOK {
		http.Error(w, "Accept must contain 'text/event-stream' for GET requests", http.StatusBadRequest)
		return
	}
	sid := r.Header.Get("Mcp-Session-Id")
	if sid == "" {
		w.Header().Set("Allow", "POST")
		http.Error(w, "Method Not Allowed: GET needs an Mcp-Session-Id header", http.StatusMethodNotAllowed)
		return
	}
	s := g.sessions.get(sid)
	if s == nil || s.front != f {
		http.Error(w, "session not found", http.StatusNotFound)
		return
	}
	if !ownedBy(s, r) {
		http.Error(w, "the session belongs to another caller", http.StatusForbidden)
		return
	}
	out, stop, ok := s.openStream()
	if !ok {
		http.Error(w, "a stream is already open for this session", http.StatusConflict)
		return
	}
	defer s.streamEnded(out)
	s.streams.Add(1)
	defer func() { s.touch(); s.streams.Add(-1) }()
	sw := newEventWriter(w)
	sw.start()
	keep := time.NewTicker(keepAliveEvery)
	defer keep.Stop()
	for {
		select {
		case msg := <-out:
			if err := sw.event(msg); err != nil {
				return
			}
		case <-keep.C:
			if err := sw.comment(); err != nil {
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
	sid := r.Header.Get("Mcp-Session-Id")
	if sid == "" {
		http.Error(w, "Bad Request: DELETE needs an Mcp-Session-Id header", http.StatusBadRequest)
		return
	}
	s := g.sessions.get(sid)
	if s == nil || s.front != f {
		http.Error(w, "session not found", http.StatusNotFound)
		return
	}
	if !ownedBy(s, r) {
		http.Error(w, "the session belongs to another caller", http.StatusForbidden)
		return
	}
	if !g.endSession(sid) {
		http.Error(w, "session not found", http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, msg []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(msg)
}

// eventWriter writes server-sent events to a client.
type eventWriter struct {
	w http.ResponseWriter
	f http.Flusher
}

func newEventWriter(w http.ResponseWriter) *eventWriter {
	f, _ := w.(http.Flusher)
	return &eventWriter{w: w, f: f}
}

func (e *eventWriter) start() {
	h := e.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-transform")
	e.w.WriteHeader(http.StatusOK)
	e.flush()
}

func (e *eventWriter) event(msg []byte) error {
	// A JSON message has no raw newline, so it is one data line.
	if _, err := io.WriteString(e.w, "event: message\ndata: "); err != nil {
		return err
	}
	if _, err := e.w.Write(msg); err != nil {
		return err
	}
	if _, err := io.WriteString(e.w, "\n\n"); err != nil {
		return err
	}
	e.flush()
	return nil
}

func (e *eventWriter) comment() error {
	_, err := io.WriteString(e.w, ": keep-alive\n\n")
	e.flush()
	return err
}

func (e *eventWriter) flush() {
	if e.f != nil {
		e.f.Flush()
	}
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
	ev      *eventWriter
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
		rp.ev = newEventWriter(rp.w)
		rp.ev.start()
		if rp.s != nil {
			rp.s.streams.Add(1)
		}
	}
	return rp.ev.event(msg) == nil
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
		rp.ev.event(msg)
		if rp.s != nil {
			rp.s.streams.Add(-1)
		}
		return
	}
	writeJSON(rp.w, status, msg)
}
