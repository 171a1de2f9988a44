package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/h1"
	"github.com/tracegate/tracegate/internal/tlsconf"
)

// BackendTransport returns the round tripper for HTTP and SSE backend b:
// base with b's TLS settings (backends[].tls), and, with backends[].oauth,
// the gateway's own access token for b in the Authorization header, fetched,
// cached and refreshed before it expires. The client's token is never what
// is sent: with token_exchange, the backend gets a token the issuer made
// for b's audience from it (RFC 8693), and nothing when the caller has no
// OAuth token. base is not modified. log may be nil; it gets a warning when
// certificate checks are off.
func BackendTransport(base *http.Transport, b config.Backend, log *slog.Logger) (http.RoundTripper, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := base
	if b.TLS != nil {
		tc, err := tlsconf.Client(b.TLS, log)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		if b.TLS.InsecureSkipVerify {
			log.Warn("backend TLS certificate checks are off (insecure_skip_verify); anyone on the path can read and change its traffic", "backend", b.Name)
		}
		t = base.Clone()
		t.TLSClientConfig = tc
	}
	// Plain-HTTP exchanges on the caller's goroutine; HTTPS and proxied
	// requests through t.
	var rt http.RoundTripper = h1.New(t)
	o := b.OAuth
	if o == nil {
		return rt, nil
	}
	// Token requests have their own client and timeout: a slow issuer must
	// not hold a call forever. They go over base, not the backend's TLS
	// settings: the issuer is not the backend.
	tokenClient := &http.Client{Transport: base, Timeout: 10 * time.Second}
	cc := &clientcredentials.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret, TokenURL: o.TokenURL, Scopes: o.Scopes}
	if o.Audience != "" {
		// RFC 8707 section 2: the resource the token is for.
		cc.EndpointParams = url.Values{"resource": {o.Audience}}
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, tokenClient)
	own := &oauth2.Transport{Source: cc.TokenSource(ctx), Base: rt}
	if o.TokenExchange {
		return &exchangeTransport{base: rt, own: own, cfg: o, client: tokenClient, cache: map[[32]byte]*oauth2.Token{}}, nil
	}
	return own, nil
}

// exchangeTransport sends each request made for a caller with a token
// exchanged for the caller's own (RFC 8693), cached per caller token until
// shortly before it expires. The gateway's own requests, made for no caller
// (opening the backend's session, listing its tools, keepalive pings), go
// with the gateway's client-credentials token (own).
type exchangeTransport struct {
	base   http.RoundTripper
	own    http.RoundTripper
	cfg    *config.BackendOAuth
	client *http.Client

	mu    sync.Mutex
	cache map[[32]byte]*oauth2.Token // by SHA-256 of the caller's token
}

// maxExchanged bounds the cache; past it, the cache starts afresh.
const maxExchanged = 10_000

// ErrNoCallerToken is returned for a backend request under token exchange
// whose caller authenticated otherwise than with an OAuth access token (a
// static token, a client certificate): the gateway's own token would give
// it the gateway's rights.
var ErrNoCallerToken = errors.New("token exchange needs the caller's OAuth access token; this caller has none")

func (t *exchangeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	id, ok := FromContext(r.Context())
	if !ok {
		return t.own.RoundTrip(r)
	}
	if id.token == nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, ErrNoCallerToken
	}
	tok, err := t.token(r.Context(), id.token.value)
	if err != nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, err
	}
	r2 := r.Clone(r.Context())
	tok.SetAuthHeader(r2)
	return t.base.RoundTrip(r2)
}

func (t *exchangeTransport) token(ctx context.Context, subject string) (*oauth2.Token, error) {
	key := sha256.Sum256([]byte(subject))
	t.mu.Lock()
	tok := t.cache[key]
	t.mu.Unlock()
	if tok.Valid() { // Valid allows for a little clock skew before expiry
		return tok, nil
	}
	var scopes []string
	scopes = append(scopes, t.cfg.Scopes...)
	tok, err := oauthex.ExchangeToken(ctx, t.cfg.TokenURL, &oauthex.TokenExchangeRequest{
		RequestedTokenType: "urn:ietf:params:oauth:token-type:access_token",
		Audience:           t.cfg.Audience,
		Resource:           t.cfg.Audience,
		Scope:              scopes,
		SubjectToken:       subject,
		SubjectTokenType:   "urn:ietf:params:oauth:token-type:access_token",
	}, &oauthex.ClientCredentials{ClientID: t.cfg.ClientID, ClientSecretAuth: secretAuth(t.cfg.ClientSecret)}, t.client)
	if err != nil {
		// The error may quote the issuer's response, never the tokens.
		return nil, fmt.Errorf("token exchange for the backend: %w", err)
	}
	t.mu.Lock()
	if len(t.cache) >= maxExchanged {
		t.cache = map[[32]byte]*oauth2.Token{}
	}
	t.cache[key] = tok
	t.mu.Unlock()
	return tok, nil
}

func secretAuth(secret string) *oauthex.ClientSecretAuth {
	if secret == "" {
		return nil
	}
	return &oauthex.ClientSecretAuth{ClientSecret: secret}
}
