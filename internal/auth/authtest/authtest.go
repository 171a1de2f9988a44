// Package authtest runs an OAuth 2.1 authorization server inside a test
// process, for testing tracegate's resource server and backend credentials
// against real HTTP, real keys and real JWTs.
//
// It has its own RSA and EC P-256 signing keys, serves RFC 8414 metadata and
// a JWKS, rotates keys on demand, and has a token endpoint for the client
// credentials grant, RFC 8693 token exchange, and the authorization code
// grant with PKCE (auto-approved, for headless clients). It is for tests
// only: it trusts every client it is told about and checks little else.
package authtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Server is a running authorization server. Its fields are read-only.
type Server struct {
	// URL is the issuer identifier and base URL, http://127.0.0.1:port.
	URL string
	// JWKSFetches counts GET /jwks.
	JWKSFetches atomic.Int64
	// TokenRequests counts POST /token.
	TokenRequests atomic.Int64

	srv *httptest.Server
	t   testing.TB

	mu      sync.Mutex
	keys    map[string]signer // by name: "rsa", "ec"
	retired []jose.JSONWebKey // still published after Rotate(keepOld)
	clients map[string]string // client_id -> secret
	codes   map[string]codeGrant
	// Audience, when set, is put in tokens from the token endpoint that
	// ask for no resource.
	audience string
	// TokenTTL is the lifetime of issued tokens.
	ttl time.Duration
	// lastForm is the last token request, for assertions.
	lastForm url.Values
	gen      int
}

type signer struct {
	key crypto.Signer
	kid string
	alg jose.SignatureAlgorithm
}

type codeGrant struct {
	clientID, challenge, redirect, resource, scope string
}

// Start runs a server until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, clients: map[string]string{}, codes: map[string]codeGrant{}, ttl: 5 * time.Minute}
	s.keys = map[string]signer{"rsa": s.newKey("rsa"), "ec": s.newKey("ec")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.metadata)
	mux.HandleFunc("GET /.well-known/openid-configuration", s.metadata)
	mux.HandleFunc("GET /jwks", s.jwks)
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /register", s.register)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

func (s *Server) newKey(kind string) signer {
	s.gen++
	kid := kind + "-" + strconv.Itoa(s.gen)
	switch kind {
	case "ec":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			s.t.Fatal(err)
		}
		return signer{key: k, kid: kid, alg: jose.ES256}
	default:
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			s.t.Fatal(err)
		}
		return signer{key: k, kid: kid, alg: jose.RS256}
	}
}

// Rotate replaces the signing key named kind ("rsa" or "ec") with a new one
// under a new key ID, and returns that ID. With keepOld, the old public key
// stays in the JWKS.
func (s *Server) Rotate(kind string, keepOld bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.keys[kind]
	if keepOld {
		s.retired = append(s.retired, publicJWK(old))
	}
	k := s.newKey(kind)
	s.keys[kind] = k
	return k.kid
}

// KeyID returns the current key ID of kind.
func (s *Server) KeyID(kind string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[kind].kid
}

// AddClient registers a confidential client for the token endpoint.
func (s *Server) AddClient(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = secret
}

// SetTokenTTL sets the lifetime of tokens from the token endpoint.
func (s *Server) SetTokenTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ttl = d
}

// LastTokenRequest returns the form of the last token request.
func (s *Server) LastTokenRequest() url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastForm
}

func publicJWK(k signer) jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.key.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.URL,
		"jwks_uri":                              s.URL + "/jwks",
		"token_endpoint":                        s.URL + "/token",
		"authorization_endpoint":                s.URL + "/authorize",
		"registration_endpoint":                 s.URL + "/register",
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code", "client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange", "refresh_token"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "none"},
		"scopes_supported":                      []string{"mcp", "tools.read"},
	})
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	s.JWKSFetches.Add(1)
	s.mu.Lock()
	set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey{publicJWK(s.keys["rsa"]), publicJWK(s.keys["ec"])}, s.retired...)}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

// Token describes a token for [Server.Issue]. Zero fields take defaults.
type Token struct {
	Key       string         // "rsa" (default) or "ec"
	KeyID     string         // overrides the key's ID in the header
	Issuer    string         // default s.URL
	Audience  string         // required unless Claims has aud
	Subject   string         // default "alice"
	Scope     string         // space-separated
	ClientID  string         // client_id claim
	Expiry    time.Time      // default now + 5m; see NoExpiry
	NoExpiry  bool           // leave exp out
	NotBefore time.Time      // nbf, if set
	Type      string         // typ header, e.g. "at+jwt"
	Claims    map[string]any // extra claims, overriding the above
}

// Issue signs a token with the server's key.
func (s *Server) Issue(tk Token) string {
	s.t.Helper()
	s.mu.Lock()
	k := s.keys[orDefault(tk.Key, "rsa")]
	s.mu.Unlock()
	kid := orDefault(tk.KeyID, k.kid)
	opts := (&jose.SignerOptions{}).WithHeader(jose.HeaderKey("kid"), kid)
	if tk.Type != "" {
		opts = opts.WithType(jose.ContentType(tk.Type))
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key}, opts)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.sign(sig, tk)
}

// IssueHMAC signs a token with HS256 under secret: a token a resource
// server must refuse, whatever the secret (for instance the issuer's
// public key bytes, in the classic algorithm confusion attack).
func (s *Server) IssueHMAC(tk Token, secret []byte) string {
	s.t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, (&jose.SignerOptions{}).WithHeader(jose.HeaderKey("kid"), s.KeyID("rsa")))
	if err != nil {
		s.t.Fatal(err)
	}
	return s.sign(sig, tk)
}

// IssueNone returns an unsigned token with alg "none" (RFC 7519 section 6).
func (s *Server) IssueNone(tk Token) string {
	s.t.Helper()
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	body, err := json.Marshal(s.claims(tk))
	if err != nil {
		s.t.Fatal(err)
	}
	return header + "." + base64.RawURLEncoding.EncodeToString(body) + "."
}

func (s *Server) claims(tk Token) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": orDefault(tk.Issuer, s.URL),
		"sub": orDefault(tk.Subject, "alice"),
		"iat": now.Unix(),
		"jti": strconv.FormatInt(now.UnixNano(), 36),
	}
	if tk.Audience != "" {
		c["aud"] = tk.Audience
	}
	if !tk.NoExpiry {
		exp := tk.Expiry
		if exp.IsZero() {
			exp = now.Add(5 * time.Minute)
		}
		c["exp"] = exp.Unix()
	}
	if !tk.NotBefore.IsZero() {
		c["nbf"] = tk.NotBefore.Unix()
	}
	if tk.Scope != "" {
		c["scope"] = tk.Scope
	}
	if tk.ClientID != "" {
		c["client_id"] = tk.ClientID
	}
	for k, v := range tk.Claims {
		c[k] = v
	}
	return c
}

func (s *Server) sign(sig jose.Signer, tk Token) string {
	tok, err := jwt.Signed(sig).Claims(s.claims(tk)).Serialize()
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// token serves the token endpoint (RFC 6749 section 3.2).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.TokenRequests.Add(1)
	if err := r.ParseForm(); err != nil {
		oauthError(w, "invalid_request")
		return
	}
	s.mu.Lock()
	s.lastForm = r.PostForm
	ttl := s.ttl
	s.mu.Unlock()
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	s.mu.Lock()
	want, known := s.clients[id]
	s.mu.Unlock()
	// Public clients (registered with no secret) authenticate with PKCE.
	if !known || want != secret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	tk := Token{ClientID: id, Subject: id, Expiry: time.Now().Add(ttl), Type: "at+jwt"}
	tk.Audience = r.PostForm.Get("resource")
	if tk.Audience == "" {
		tk.Audience = r.PostForm.Get("audience")
	}
	tk.Scope = r.PostForm.Get("scope")
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
	case "urn:ietf:params:oauth:grant-type:token-exchange":
		// RFC 8693 section 2.1: the new token acts for the subject of
		// the one given.
		sub, err := jwt.ParseSigned(r.PostForm.Get("subject_token"), []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
		var c jwt.Claims
		if err != nil || r.PostForm.Get("subject_token_type") != "urn:ietf:params:oauth:token-type:access_token" ||
			sub.Claims(s.publicKey(sub.Headers[0].KeyID), &c) != nil {
			oauthError(w, "invalid_grant")
			return
		}
		tk.Subject = c.Subject
		tk.Claims = map[string]any{"act": map[string]any{"sub": id}}
	case "authorization_code":
		s.mu.Lock()
		g, ok := s.codes[r.PostForm.Get("code")]
		delete(s.codes, r.PostForm.Get("code"))
		s.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if !ok || g.clientID != id || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			oauthError(w, "invalid_grant")
			return
		}
		tk.Subject = "alice"
		if tk.Audience == "" {
			tk.Audience = g.resource
		}
		if tk.Scope == "" {
			tk.Scope = g.scope
		}
	default:
		oauthError(w, "unsupported_grant_type")
		return
	}
	if tk.Audience == "" {
		s.mu.Lock()
		tk.Audience = s.audience
		s.mu.Unlock()
	}
	resp := map[string]any{
		"access_token": s.Issue(tk),
		"token_type":   "Bearer",
		"expires_in":   int(ttl.Seconds()),
	}
	if r.PostForm.Get("grant_type") == "urn:ietf:params:oauth:grant-type:token-exchange" {
		resp["issued_token_type"] = "urn:ietf:params:oauth:token-type:access_token"
	}
	if tk.Scope != "" {
		resp["scope"] = tk.Scope
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) publicKey(kid string) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.keys {
		if k.kid == kid {
			return k.key.Public()
		}
	}
	return nil
}

// authorize approves every request at once (RFC 6749 section 4.1.1, with
// PKCE, RFC 7636) and redirects back with a code.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	_, known := s.clients[q.Get("client_id")]
	s.mu.Unlock()
	if !known || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("redirect_uri") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	code := strconv.FormatInt(time.Now().UnixNano(), 36)
	s.mu.Lock()
	s.codes[code] = codeGrant{clientID: q.Get("client_id"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), resource: q.Get("resource"), scope: q.Get("scope")}
	s.mu.Unlock()
	u, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	rq := u.Query()
	rq.Set("code", code)
	if st := q.Get("state"); st != "" {
		rq.Set("state", st)
	}
	u.RawQuery = rq.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// register is dynamic client registration (RFC 7591), for public clients.
func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	var md map[string]any
	if err := json.NewDecoder(r.Body).Decode(&md); err != nil {
		oauthError(w, "invalid_client_metadata")
		return
	}
	s.mu.Lock()
	s.gen++
	id := "client-" + strconv.Itoa(s.gen)
	s.clients[id] = ""
	s.mu.Unlock()
	md["client_id"] = id
	md["client_id_issued_at"] = time.Now().Unix()
	md["token_endpoint_auth_method"] = "none"
	writeJSON(w, http.StatusCreated, md)
}

func oauthError(w http.ResponseWriter, code string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// SetDefaultAudience sets the audience of tokens from the token endpoint
// whose request names no resource.
func (s *Server) SetDefaultAudience(aud string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audience = aud
}
