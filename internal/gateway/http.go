package gateway

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
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
	if len(g.cfg.Auth.BearerTokens) > 0 {
		tokens := make([]string, len(g.cfg.Auth.BearerTokens))
		for i, t := range g.cfg.Auth.BearerTokens {
			tokens[i] = t.Token
		}
		h = requireBearer(h, tokens)
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

// requireBearer admits requests whose Authorization header carries one of
// tokens. Tokens are compared as SHA-256 digests in constant time, so
// neither their content nor their length leaks through timing.
func requireBearer(next http.Handler, tokens []string) http.Handler {
	digests := make([][32]byte, len(tokens))
	for i, t := range tokens {
		digests[i] = sha256.Sum256([]byte(t))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		const prefix = "bearer "
		if len(auth) > len(prefix) && strings.EqualFold(auth[:len(prefix)], prefix) {
			got := sha256.Sum256([]byte(strings.TrimSpace(auth[len(prefix):])))
			match := 0
			for i := range digests {
				match |= subtle.ConstantTimeCompare(got[:], digests[i][:])
			}
			if match == 1 {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="tracegate", error="invalid_token"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tracegate"`)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"unauthorized: a valid bearer token is required"}`)
	})
}
