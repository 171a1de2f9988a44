package auth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/auth"
	"github.com/tracegate/tracegate/internal/auth/authtest"
	"github.com/tracegate/tracegate/internal/config"
)

const resource = "http://127.0.0.1:8080/mcp"

// seen is what the handler behind the middleware got.
type seen struct {
	authorization []string
	id            auth.Identity
	ok            bool
}

func newGate(t *testing.T, cfg config.Auth, opts auth.Options) (http.Handler, *seen) {
	t.Helper()
	a, err := auth.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := &seen{}
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.authorization = r.Header.Values("Authorization")
		got.id, got.ok = auth.FromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	return h, got
}

func oauthConfig(issuer string) config.Auth {
	return config.Auth{
		BearerTokens: []config.BearerToken{{Name: "ci", Token: "static-ci"}, {Token: "static-anon"}},
		OAuth:        &config.OAuth{Issuer: issuer, Audience: resource, RequiredScopes: []string{"mcp"}},
	}
}

func call(h http.Handler, authz string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader("{}"))
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestOAuthTokens(t *testing.T) {
	t.Parallel()
	as := authtest.Start(t)
	h, got := newGate(t, oauthConfig(as.URL), auth.Options{JWKSMinRefetch: -1})
	rsaPub := func() []byte {
		// The bytes an attacker would use as the HMAC secret.
		resp, err := http.Get(as.URL + "/jwks")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}()
	now := time.Now()
	good := authtest.Token{Audience: resource, Scope: "mcp tools.read", ClientID: "agent-1"}
	with := func(f func(*authtest.Token)) authtest.Token { tk := good; f(&tk); return tk }
	const metaURL = `resource_metadata="http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"`

	tests := []struct {
		name       string
		token      string
		wantStatus int
		wantChal   string // substring of WWW-Authenticate
		wantDesc   string // error_description in the body
	}{
		{"valid RSA", as.Issue(good), http.StatusNoContent, "", ""},
		{"valid EC", as.Issue(with(func(tk *authtest.Token) { tk.Key = "ec" })), http.StatusNoContent, "", ""},
		{"valid at+jwt", as.Issue(with(func(tk *authtest.Token) { tk.Type = "at+jwt" })), http.StatusNoContent, "", ""},
		{"audience in a list", as.Issue(with(func(tk *authtest.Token) { tk.Claims = map[string]any{"aud": []string{"https://other", resource}} })), http.StatusNoContent, "", ""},
		{"expired beyond skew", as.Issue(with(func(tk *authtest.Token) { tk.Expiry = now.Add(-time.Minute) })), http.StatusUnauthorized, `error="invalid_token"`, "token expired"},
		{"expired within skew", as.Issue(with(func(tk *authtest.Token) { tk.Expiry = now.Add(-10 * time.Second) })), http.StatusNoContent, "", ""},
		{"no exp", as.Issue(with(func(tk *authtest.Token) { tk.NoExpiry = true })), http.StatusUnauthorized, `error="invalid_token"`, "token has no exp"},
		{"not yet valid", as.Issue(with(func(tk *authtest.Token) { tk.NotBefore = now.Add(2 * time.Minute) })), http.StatusUnauthorized, `error="invalid_token"`, "token not valid yet"},
		{"wrong audience", as.Issue(with(func(tk *authtest.Token) { tk.Audience = "http://127.0.0.1:9999/mcp" })), http.StatusUnauthorized, `error="invalid_token"`, "token not issued for this resource (aud)"},
		{"no audience", as.Issue(with(func(tk *authtest.Token) { tk.Audience = "" })), http.StatusUnauthorized, `error="invalid_token"`, "token not issued for this resource (aud)"},
		{"wrong issuer", as.Issue(with(func(tk *authtest.Token) { tk.Issuer = "http://127.0.0.1:1" })), http.StatusUnauthorized, `error="invalid_token"`, "wrong issuer"},
		{"unknown kid", as.Issue(with(func(tk *authtest.Token) { tk.KeyID = "made-up" })), http.StatusUnauthorized, `error="invalid_token"`, "signing key not in the issuer's JWKS"},
		{"alg none", as.IssueNone(good), http.StatusUnauthorized, `error="invalid_token"`, "malformed token or algorithm not allowed"},
		{"HMAC with the public key", as.IssueHMAC(good, rsaPub), http.StatusUnauthorized, `error="invalid_token"`, "malformed token or algorithm not allowed"},
		{"ID token", as.Issue(with(func(tk *authtest.Token) { tk.Type = "id_token+jwt" })), http.StatusUnauthorized, `error="invalid_token"`, `token type "id_token+jwt" is not an access token`},
		{"tampered", tamper(as.Issue(good)), http.StatusUnauthorized, `error="invalid_token"`, "bad signature"},
		{"missing scope", as.Issue(with(func(tk *authtest.Token) { tk.Scope = "tools.read" })), http.StatusForbidden, `error="insufficient_scope"`, "the token lacks a required scope"},
		{"scp list", as.Issue(with(func(tk *authtest.Token) { tk.Scope = ""; tk.Claims = map[string]any{"scp": []string{"mcp"}} })), http.StatusNoContent, "", ""},
		{"not a JWT, not static", "opaque-token", http.StatusUnauthorized, `error="invalid_token"`, "unknown token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := call(h, "Bearer "+tt.token)
			if w.Code != tt.wantStatus {
				t.Fatalf("status: got %d, want %d (body %s)", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantStatus == http.StatusNoContent {
				if got.id.Subject != "alice" || got.id.Method != auth.MethodOAuth || !got.id.HasScope("mcp") {
					t.Errorf("identity: got %+v, want alice by oauth with scope mcp", got.id)
				}
				return
			}
			chal := w.Header().Get("WWW-Authenticate")
			for _, want := range []string{"Bearer ", metaURL, `scope="mcp"`, tt.wantChal} {
				if !strings.Contains(chal, want) {
					t.Errorf("WWW-Authenticate: got %q, want it to contain %q", chal, want)
				}
			}
			var body struct {
				ErrorDescription string `json:"error_description"`
			}
			json.Unmarshal(w.Body.Bytes(), &body)
			if body.ErrorDescription != tt.wantDesc {
				t.Errorf("error_description: got %q, want %q", body.ErrorDescription, tt.wantDesc)
			}
			if strings.Contains(w.Body.String(), tt.token) || strings.Contains(chal, tt.token) {
				t.Error("the refusal quotes the token")
			}
		})
	}
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	// Change the payload: the signature no longer matches.
	parts[1] = parts[1][:len(parts[1])-2] + "AA"
	return strings.Join(parts, ".")
}

func TestNoTokenChallenge(t *testing.T) {
	t.Parallel()
	as := authtest.Start(t)
	h, got := newGate(t, oauthConfig(as.URL), auth.Options{})
	for _, authz := range []string{"", "Basic dXNlcjpwYXNz", "Bearer", "Bearer "} {
		w := call(h, authz)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%q: status %d, want 401", authz, w.Code)
		}
		chal := w.Header().Get("WWW-Authenticate")
		if !strings.HasPrefix(chal, `Bearer resource_metadata="http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"`) || strings.Contains(chal, "error=") {
			t.Errorf("%q: WWW-Authenticate %q, want a bare challenge with resource_metadata (RFC 6750 section 3.1)", authz, chal)
		}
	}
	if got.ok {
		t.Error("the handler ran for a refused request")
	}
	if n := as.JWKSFetches.Load(); n != 0 {
		t.Errorf("requests without a JWT fetched the JWKS %d times", n)
	}
}

func TestStaticTokens(t *testing.T) {
	t.Parallel()
	as := authtest.Start(t)
	h, got := newGate(t, oauthConfig(as.URL), auth.Options{})
	for _, tt := range []struct{ token, wantName, wantID string }{
		{"static-ci", "ci", "token:ci"},
		{"static-anon", "", "token"},
	} {
		w := call(h, "bearer "+tt.token) // the scheme is case-insensitive
		if w.Code != http.StatusNoContent {
			t.Fatalf("%s: status %d, want 204", tt.token, w.Code)
		}
		if !got.ok || got.id.Method != auth.MethodStatic || got.id.TokenName != tt.wantName || got.id.ID() != tt.wantID {
			t.Errorf("%s: identity %+v (ok %v), want static %q", tt.token, got.id, got.ok, tt.wantName)
		}
		if len(got.authorization) != 0 {
			t.Errorf("%s: the handler saw Authorization %q; it must be removed", tt.token, got.authorization)
		}
	}
	// Static tokens need no scope: the operator handed them out.
	if n := as.JWKSFetches.Load(); n != 0 {
		t.Errorf("static tokens fetched the JWKS %d times", n)
	}
}

func TestStaticOnlyKeepsRealmChallenge(t *testing.T) {
	t.Parallel()
	h, _ := newGate(t, config.Auth{BearerTokens: []config.BearerToken{{Token: "t"}}}, auth.Options{})
	if w := call(h, "Bearer nope"); w.Code != 401 || w.Header().Get("WWW-Authenticate") != `Bearer realm="tracegate", error="invalid_token"` {
		t.Errorf("got %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if a, _ := auth.New(config.Auth{}, auth.Options{}); a != nil {
		t.Error("New with nothing configured: got an Authenticator, want nil (open listener)")
	}
}

func TestOAuthIdentityReachesHandlerWithoutToken(t *testing.T) {
	t.Parallel()
	as := authtest.Start(t)
	h, got := newGate(t, oauthConfig(as.URL), auth.Options{})
	tok := as.Issue(authtest.Token{Audience: resource, Scope: "mcp", ClientID: "agent-7", Claims: map[string]any{"groups": []string{"sre", "oncall"}, "tenant": "acme"}})
	if w := call(h, "Bearer "+tok); w.Code != http.StatusNoContent {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if len(got.authorization) != 0 {
		t.Fatalf("the handler saw Authorization %q; it must be removed", got.authorization)
	}
	id := got.id
	if id.Subject != "alice" || id.ClientID != "agent-7" || id.Issuer != as.URL || id.ID() != "alice" {
		t.Errorf("identity: got %+v", id)
	}
	if v := id.ClaimValues("groups"); len(v) != 2 || v[1] != "oncall" {
		t.Errorf("groups: got %q", v)
	}
	if v := id.ClaimValues("tenant"); len(v) != 1 || v[0] != "acme" {
		t.Errorf("tenant: got %q", v)
	}
	for _, s := range []string{"%v", "%+v", "%#v"} {
		if out := sprintf(s, id); strings.Contains(out, tok) {
			t.Errorf("formatting the identity with %s prints the token", s)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	as := authtest.Start(t)
	h, _ := newGate(t, oauthConfig(as.URL), auth.Options{JWKSMinRefetch: time.Hour})
	tk := authtest.Token{Audience: resource, Scope: "mcp"}
	if w := call(h, "Bearer "+as.Issue(tk)); w.Code != http.StatusNoContent {
		t.Fatalf("before rotation: %d", w.Code)
	}
	if n := as.JWKSFetches.Load(); n != 1 {
		t.Fatalf("JWKS fetches: got %d, want 1", n)
	}
	// The issuer rotates: a token under the new kid makes the gateway
	// fetch the JWKS again, even within JWKSMinRefetch, since the set it
	// holds has never been refreshed for an unknown key.
	as.Rotate("rsa", false)
	if w := call(h, "Bearer "+as.Issue(tk)); w.Code != http.StatusNoContent {
		t.Fatalf("after rotation: %d %s", w.Code, w.Body)
	}
	if n := as.JWKSFetches.Load(); n != 2 {
		t.Fatalf("JWKS fetches after rotation: got %d, want 2", n)
	}
	// Made-up key IDs cannot make it fetch again within JWKSMinRefetch.
	for range 5 {
		if w := call(h, "Bearer "+as.Issue(authtest.Token{Audience: resource, Scope: "mcp", KeyID: "nope"})); w.Code != http.StatusUnauthorized {
			t.Fatalf("unknown kid: %d", w.Code)
		}
	}
	if n := as.JWKSFetches.Load(); n != 2 {
		t.Errorf("JWKS fetches after unknown kids: got %d, want still 2", n)
	}
}

func TestJWKSURLAndUnreachableIssuer(t *testing.T) {
	t.Parallel()
	as := authtest.Start(t)
	cfg := oauthConfig(as.URL)
	cfg.OAuth.JWKSURL = as.URL + "/jwks"
	h, _ := newGate(t, cfg, auth.Options{})
	if w := call(h, "Bearer "+as.Issue(authtest.Token{Audience: resource, Scope: "mcp"})); w.Code != http.StatusNoContent {
		t.Fatalf("with jwks_url: %d %s", w.Code, w.Body)
	}

	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	cfg = oauthConfig(dead.URL)
	h, _ = newGate(t, cfg, auth.Options{})
	w := call(h, "Bearer "+as.Issue(authtest.Token{Issuer: dead.URL, Audience: resource, Scope: "mcp"}))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("issuer down: got %d (Retry-After %q), want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
}

func TestDiscoveryChecksIssuer(t *testing.T) {
	t.Parallel()
	as := authtest.Start(t)
	// A metadata document that names another issuer is refused (RFC 8414
	// section 3.3), so the JWKS it points to is never used.
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"issuer":"` + as.URL + `","jwks_uri":"` + as.URL + `/jwks"}`))
	})
	impostor := httptest.NewServer(mux)
	defer impostor.Close()
	h, _ := newGate(t, oauthConfig(impostor.URL), auth.Options{})
	w := call(h, "Bearer "+as.Issue(authtest.Token{Issuer: impostor.URL, Audience: resource, Scope: "mcp"}))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("got %d, want 503: discovery must fail", w.Code)
	}
	if as.JWKSFetches.Load() != 0 {
		t.Error("the JWKS named by a mismatched metadata document was fetched")
	}
}

func TestMetadataDocument(t *testing.T) {
	t.Parallel()
	a, err := auth.New(config.Auth{OAuth: &config.OAuth{Issuer: "https://idp.example.com", Audience: "https://mcp.example.com/mcp", RequiredScopes: []string{"mcp"}}}, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	paths := a.MetadataPaths()
	if len(paths) != 2 || paths[0] != "/.well-known/oauth-protected-resource/mcp" || paths[1] != "/.well-known/oauth-protected-resource" {
		t.Fatalf("MetadataPaths: got %q", paths)
	}
	w := httptest.NewRecorder()
	a.MetadataHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, paths[0], nil))
	var md struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		Scopes               []string `json:"scopes_supported"`
		Bearer               []string `json:"bearer_methods_supported"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &md); err != nil {
		t.Fatal(err)
	}
	if md.Resource != "https://mcp.example.com/mcp" || len(md.AuthorizationServers) != 1 || md.AuthorizationServers[0] != "https://idp.example.com" ||
		len(md.Scopes) != 1 || md.Bearer[0] != "header" {
		t.Errorf("metadata: got %s", w.Body)
	}
	if w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type: %q", w.Header().Get("Content-Type"))
	}
}

// TestIssuerDownIsNotHammered: while the issuer fails, concurrent requests
// share one attempt per second instead of each trying again.
func TestIssuerDownIsNotHammered(t *testing.T) {
	t.Parallel()
	as := authtest.Start(t)
	var hits atomic.Int64
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer broken.Close()
	cfg := oauthConfig(as.URL)
	cfg.OAuth.JWKSURL = broken.URL + "/jwks"
	h, _ := newGate(t, cfg, auth.Options{})
	tok := "Bearer " + as.Issue(authtest.Token{Audience: resource, Scope: "mcp"})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w := call(h, tok); w.Code != http.StatusServiceUnavailable {
				t.Errorf("issuer down: got %d, want 503", w.Code)
			}
		}()
	}
	wg.Wait()
	if n := hits.Load(); n != 1 {
		t.Errorf("JWKS fetches for 20 requests while it fails: got %d, want 1", n)
	}
}

// TestVerifiedTokenExpires: a token checked once is remembered, but not
// past its exp (with the skew).
func TestVerifiedTokenExpires(t *testing.T) {
	t.Parallel()
	as := authtest.Start(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h, _ := newGate(t, oauthConfig(as.URL), auth.Options{Now: clock})
	tok := "Bearer " + as.Issue(authtest.Token{Audience: resource, Scope: "mcp", Expiry: now.Add(20 * time.Second)})
	for _, step := range []struct {
		advance time.Duration
		want    int
	}{
		{0, http.StatusNoContent},
		{40 * time.Second, http.StatusNoContent},    // exp+10s: within the 30s skew
		{15 * time.Second, http.StatusUnauthorized}, // exp+35s: past it
	} {
		mu.Lock()
		now = now.Add(step.advance)
		mu.Unlock()
		if w := call(h, tok); w.Code != step.want {
			t.Errorf("after +%v: got %d, want %d", step.advance, w.Code, step.want)
		}
	}
}
