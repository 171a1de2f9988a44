package auth_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tracegate/tracegate/internal/auth"
	"github.com/tracegate/tracegate/internal/auth/authtest"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/tlsconf/tlstest"
)

// tlsBackend is an https server with its own CA that keeps the
// Authorization header of every request.
type tlsBackend struct {
	url    string
	caFile string
	mu     sync.Mutex
	authz  []string
}

func startTLSBackend(t *testing.T) *tlsBackend {
	t.Helper()
	ca := tlstest.NewCA(t, "backend CA")
	leaf := ca.Server(t, "backend.test")
	pair, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	b := &tlsBackend{caFile: tlstest.Write(t, t.TempDir(), "ca.pem", ca.CertPEM)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.authz = append(b.authz, r.Header.Get("Authorization"))
		b.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pair}}))
	t.Cleanup(func() { srv.Close() })
	b.url = "https://" + ln.Addr().String() + "/mcp"
	return b
}

func (b *tlsBackend) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.authz...)
}

func send(t *testing.T, rt http.RoundTripper, ctx context.Context, url string) error {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("{}"))
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// claimsOf reads a token's claims without checking it: the test only
// looks at what the issuer put in.
func claimsOf(t *testing.T, authz string) map[string]any {
	t.Helper()
	tok, err := jwt.ParseSigned(strings.TrimPrefix(authz, "Bearer "), []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("backend got %q, want a bearer JWT", authz)
	}
	var c map[string]any
	tok.UnsafeClaimsWithoutVerification(&c)
	return c
}

func TestBackendClientCredentials(t *testing.T) {
	t.Parallel()
	as := authtest.Start(t)
	as.AddClient("tracegate", "gw-secret")
	as.SetTokenTTL(11 * time.Second) // oauth2 renews 10s before expiry: valid for 1s
	be := startTLSBackend(t)
	b := config.Backend{Name: "b", URL: be.url,
		TLS:   &config.BackendTLS{CAFile: be.caFile, ServerName: "backend.test"},
		OAuth: &config.BackendOAuth{TokenURL: as.URL + "/token", ClientID: "tracegate", ClientSecret: "gw-secret", Scopes: []string{"tools.read"}, Audience: "https://backend.test/mcp"}}
	rt, err := auth.BackendTransport(http.DefaultTransport.(*http.Transport).Clone(), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := send(t, rt, context.Background(), be.url); err != nil {
			t.Fatal(err)
		}
	}
	if n := as.TokenRequests.Load(); n != 1 {
		t.Errorf("token requests for 3 calls: got %d, want 1 (cached)", n)
	}
	form := as.LastTokenRequest()
	if form.Get("grant_type") != "client_credentials" || form.Get("resource") != "https://backend.test/mcp" || form.Get("scope") != "tools.read" {
		t.Errorf("token request: %v", form)
	}
	seen := be.seen()
	c := claimsOf(t, seen[0])
	if c["sub"] != "tracegate" || c["aud"] != "https://backend.test/mcp" || seen[1] != seen[0] {
		t.Errorf("backend token: claims %v; same token each time: %v", c, seen[1] == seen[0])
	}
	time.Sleep(1100 * time.Millisecond)
	if err := send(t, rt, context.Background(), be.url); err != nil {
		t.Fatal(err)
	}
	if n := as.TokenRequests.Load(); n != 2 {
		t.Errorf("token requests after expiry: got %d, want 2 (refreshed)", n)
	}

	// The wrong CA: the call fails, no token is sent in clear.
	b.TLS.CAFile = ""
	rt, err = auth.BackendTransport(http.DefaultTransport.(*http.Transport).Clone(), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := send(t, rt, context.Background(), be.url); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("backend with an unknown CA: got %v, want a certificate error", err)
	}
}

func TestBackendTokenExchange(t *testing.T) {
	t.Parallel()
	as := authtest.Start(t)
	as.AddClient("tracegate", "gw-secret")
	be := startTLSBackend(t)
	b := config.Backend{Name: "b", URL: be.url,
		TLS:   &config.BackendTLS{CAFile: be.caFile, ServerName: "backend.test"},
		OAuth: &config.BackendOAuth{TokenURL: as.URL + "/token", ClientID: "tracegate", ClientSecret: "gw-secret", Audience: "https://backend.test/mcp", TokenExchange: true}}
	rt, err := auth.BackendTransport(http.DefaultTransport.(*http.Transport).Clone(), b, nil)
	if err != nil {
		t.Fatal(err)
	}

	// The caller's context, as the gateway's middleware makes it.
	a, err := auth.New(config.Auth{
		BearerTokens: []config.BearerToken{{Name: "ci", Token: "static"}},
		OAuth:        &config.OAuth{Issuer: as.URL, Audience: resource}}, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	callerCtx := func(token string) context.Context {
		var ctx context.Context
		a.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { ctx = r.Context() })).ServeHTTP(nil, func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, "/mcp", nil)
			r.Header.Set("Authorization", "Bearer "+token)
			return r
		}())
		if ctx == nil {
			t.Fatal("the token was refused")
		}
		return ctx
	}
	alice := as.Issue(authtest.Token{Subject: "alice", Audience: resource})
	ctx := callerCtx(alice)
	for range 2 {
		if err := send(t, rt, ctx, be.url); err != nil {
			t.Fatal(err)
		}
	}
	seen := be.seen()
	if strings.Contains(seen[0], alice) {
		t.Fatal("the backend got the caller's own token")
	}
	c := claimsOf(t, seen[0])
	act, _ := c["act"].(map[string]any)
	if c["sub"] != "alice" || c["aud"] != "https://backend.test/mcp" || act["sub"] != "tracegate" {
		t.Errorf("exchanged token claims: %v, want sub alice, aud the backend, act tracegate", c)
	}
	if n := as.TokenRequests.Load(); n != 1 {
		t.Errorf("token requests for 2 calls: got %d, want 1 (cached)", n)
	}
	if f := as.LastTokenRequest(); f.Get("subject_token") != alice || f.Get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" {
		t.Errorf("exchange request: %v", f)
	}

	if err := send(t, rt, callerCtx("static"), be.url); !errors.Is(err, auth.ErrNoCallerToken) {
		t.Errorf("a static-token caller: got %v, want ErrNoCallerToken", err)
	}
	if n := len(be.seen()); n != 2 {
		t.Errorf("the backend got %d requests, want 2: none for a caller without a token to exchange", n)
	}
	// The gateway's own requests (no caller) carry its own token.
	if err := send(t, rt, context.Background(), be.url); err != nil {
		t.Fatal(err)
	}
	seen = be.seen()
	if c := claimsOf(t, seen[2]); c["sub"] != "tracegate" || c["act"] != nil || as.LastTokenRequest().Get("grant_type") != "client_credentials" {
		t.Errorf("the gateway's own request: claims %v, want its client-credentials token", c)
	}
}
