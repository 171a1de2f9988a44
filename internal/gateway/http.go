package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/auth"
)

const defaultMaxRequestBytes = 4 << 20

func (g *Gateway) buildHandler() http.Handler {
	opts := &mcp.StreamableHTTPOptions{
		Logger: slog.New(quietHandler{g.log.Handler(), slog.LevelWarn}),
		// No SessionTimeout: the SDK never sees forwarded calls, so the
		// gateway keeps idle clocks itself (sessions.go).
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", g.withForwarding(g.all, bothGenerations(g.all.server, opts)))
	singles := make(map[string]http.Handler, len(g.single))
	for name, f := range g.single {
		singles[name] = g.withForwarding(f, bothGenerations(f.server, opts))
	}
	mux.HandleFunc("/mcp/{backend}", func(w http.ResponseWriter, r *http.Request) {
		h, ok := singles[r.PathValue("backend")]
		if !ok {
			http.Error(w, "unknown backend "+strconv.Quote(r.PathValue("backend")), http.StatusNotFound)
			return
		}
		h.ServeHTTP(w, r)
	})
	var h http.Handler = mux
	if g.opts.WrapHTTP != nil {
		h = g.opts.WrapHTTP(h)
	}
	limit := g.cfg.MaxRequestBytes
	if limit <= 0 {
		limit = defaultMaxRequestBytes
	}
	h = limitBody(h, limit)
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

// bothGenerations serves the stateful protocol revisions (initialize,
// Mcp-Session-Id) and the stateless 2026-07-28 revision on one endpoint.
// The SDK serves them with two handlers over the same server; a request
// belongs to the stateless one when it carries no session and declares the
// new revision in its MCP-Protocol-Version header, which 2026-07-28 clients
// send on every request, server/discover included.
func bothGenerations(s *mcp.Server, opts *mcp.StreamableHTTPOptions) http.Handler {
	get := func(*http.Request) *mcp.Server { return s }
	stateful := mcp.NewStreamableHTTPHandler(get, opts)
	sopts := *opts
	sopts.Stateless = true
	// A 2026-07-28 client cancels by abandoning its POST (SEP-2575); tie
	// the handler to it so the backend call is cancelled too.
	sopts.PropagateRequestCancellation = true
	stateless := mcp.NewStreamableHTTPHandler(get, &sopts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Session-Id") == "" && r.Header.Get("Mcp-Protocol-Version") >= statelessRevision {
			stateless.ServeHTTP(w, r)
			return
		}
		stateful.ServeHTTP(w, r)
	})
}

// statelessRevision is the first protocol revision without sessions.
const statelessRevision = "2026-07-28"

// limitBody answers 413 for bodies over limit. The body is read here, once,
// so the answer is a clean 413 rather than a decode error halfway through.
func limitBody(next http.Handler, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > limit {
			tooLarge(w, limit)
			return
		}
		size := r.ContentLength
		if size < 0 || size > limit {
			size = 512
		}
		buf := bytes.NewBuffer(make([]byte, 0, size+1))
		n, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
		r.Body.Close()
		if err != nil {
			http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if n > limit {
			tooLarge(w, limit)
			return
		}
		if !json.Valid(buf.Bytes()) {
			// JSON-RPC 2.0 section 5.1: invalid JSON is -32700 with a null
			// id; the SDK would answer in plain text.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error: the request body is not valid JSON"}}`)
			return
		}
		r.Body = &bufferedBody{Reader: bytes.NewReader(buf.Bytes()), data: buf.Bytes()}
		r.ContentLength = n
		next.ServeHTTP(w, r)
	})
}

// bufferedBody is a request body limitBody has read; the forwarding path
// takes its bytes as they are.
type bufferedBody struct {
	*bytes.Reader
	data []byte
}

func (*bufferedBody) Close() error { return nil }

// bodyOf returns the bytes of a body limitBody read, or nil.
func bodyOf(r *http.Request) []byte {
	if b, ok := r.Body.(*bufferedBody); ok {
		return b.data
	}
	return nil
}

func tooLarge(w http.ResponseWriter, limit int64) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"request body exceeds `+strconv.FormatInt(limit, 10)+` bytes"}}`)
}
