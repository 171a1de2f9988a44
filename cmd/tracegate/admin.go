package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
)

// adminHandler serves the admin listener: /healthz and /readyz for
// probes, /metrics, /admin/config, POST /admin/reload and, with the viewer
// on, the trace API, the UI and OTLP/HTTP ingest at /v1/traces. extra, if
// not nil, adds to the mux (the demo's hook).
//
// When the configuration has admin tokens (admin.bearer_tokens, else
// auth.bearer_tokens), every path but /healthz and /readyz needs one, and
// /readyz gives its backend details only to a caller that sends one. The
// tokens are those in force: a reload changes them.
func (rt *runtime) adminHandler(extra func(*http.ServeMux)) http.Handler {
	auth := &rt.adminAuth
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		rd := rt.gateway.Readiness()
		var body any = rd
		if !auth.Load().ok(r) {
			// Backend errors can name hosts, paths and users.
			body = struct {
				Status string `json:"status"`
			}{rd.Status}
		}
		w.Header().Set("Content-Type", "application/json")
		if rd.Status == "unavailable" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(body)
	})

	protected := http.NewServeMux()
	protected.Handle("GET /metrics", rt.tel.MetricsHandler())
	protected.HandleFunc("GET /admin/config", rt.serveConfig)
	protected.HandleFunc("POST /admin/reload", rt.serveReload)
	if rt.store != nil {
		protected.Handle("POST /v1/traces", rt.store.OTLPHandler())
		protected.Handle("/api/", rt.store.Handler())
		protected.Handle("/ui/", rt.store.Handler())
		protected.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	}
	if extra != nil {
		extra(protected)
	}
	mux.Handle("/", requireBearer(auth, protected))
	return mux
}

// effectiveConfig is what /admin/config serves and serve logs at start:
// the configuration with defaults applied and secrets redacted, and where
// telemetry goes once the OTEL_* variables have had their say.
type effectiveConfig struct {
	Config    map[string]any `json:"config"`
	Exporters []string       `json:"exporters"`
	Version   string         `json:"version"`
}

func (rt *runtime) effectiveConfig() (effectiveConfig, error) {
	m, err := rt.config().Redacted().Map()
	return effectiveConfig{Config: m, Exporters: *rt.exporters.Load(), Version: currentBuild.Version}, err
}

func (rt *runtime) serveConfig(w http.ResponseWriter, r *http.Request) {
	ec, err := rt.effectiveConfig()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(ec)
}

// bearerCheck matches "Authorization: Bearer" against a set of tokens in
// constant time. With no tokens every request passes.
type bearerCheck struct {
	digests [][32]byte
}

func newBearerCheck(tokens []string) *bearerCheck {
	b := &bearerCheck{digests: make([][32]byte, len(tokens))}
	for i, t := range tokens {
		b.digests[i] = sha256.Sum256([]byte(t))
	}
	return b
}

func (b *bearerCheck) ok(r *http.Request) bool {
	if len(b.digests) == 0 {
		return true
	}
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "bearer") {
		return false
	}
	// Hashing first makes every comparison the same length (RFC 6750
	// leaves the token format open).
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := 0
	for i := range b.digests {
		match |= subtle.ConstantTimeCompare(got[:], b.digests[i][:])
	}
	return match == 1
}

// requireBearer serves next to callers with one of the tokens in check.
func requireBearer(check *atomic.Pointer[bearerCheck], next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if check.Load().ok(r) {
			next.ServeHTTP(w, r)
			return
		}
		// RFC 6750 section 3.
		w.Header().Set("WWW-Authenticate", `Bearer realm="tracegate-admin"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"unauthorized: a valid admin bearer token is required"}`+"\n")
	})
}
