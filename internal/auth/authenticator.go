package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/tracegate/tracegate/internal/config"
)

// Options are an Authenticator's dependencies. Every field is optional.
type Options struct {
	// HTTPClient fetches the issuer's metadata and JWKS. If nil, a client
	// with a 10s timeout.
	HTTPClient *http.Client
	// Logger gets warnings (an unreachable issuer). If nil, nothing is
	// logged.
	Logger *slog.Logger
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// JWKSMinRefetch is the least time between two JWKS fetches caused by
	// tokens with an unknown key ID. If zero, 10s; negative means none.
	JWKSMinRefetch time.Duration
	// JWKSMaxAge is how long fetched keys are used before they are fetched
	// again. If zero, 1h.
	JWKSMaxAge time.Duration
}

// Authenticator checks the bearer tokens of the MCP listener's clients.
// Build it with [New]; it is safe for concurrent use.
type Authenticator struct {
	static   []staticToken
	jwt      *jwtVerifier // nil without auth.oauth
	oauth    *config.OAuth
	metaURL  string // absolute URL of the protected resource metadata
	metaPath string // its path, e.g. /.well-known/oauth-protected-resource/mcp
	log      *slog.Logger
}

type staticToken struct {
	digest [32]byte
	name   string
}

// New returns an Authenticator for cfg, or nil when cfg protects nothing
// (no bearer tokens and no OAuth), in which case the listener is open.
// cfg is assumed valid (config.Validate). It does no I/O: the issuer is
// contacted when the first token arrives.
func New(cfg config.Auth, opts Options) (*Authenticator, error) {
	if len(cfg.BearerTokens) == 0 && cfg.OAuth == nil {
		return nil, nil
	}
	a := &Authenticator{log: opts.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	for _, t := range cfg.BearerTokens {
		a.static = append(a.static, staticToken{digest: sha256.Sum256([]byte(t.Token)), name: t.Name})
	}
	o := cfg.OAuth
	if o == nil {
		return a, nil
	}
	aud, err := url.Parse(o.Audience)
	if err != nil || aud.Host == "" {
		return nil, errors.New("auth.oauth.audience: not an absolute URL")
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	minRefetch := opts.JWKSMinRefetch
	switch {
	case minRefetch == 0:
		minRefetch = 10 * time.Second
	case minRefetch < 0:
		minRefetch = 0
	}
	maxAge := opts.JWKSMaxAge
	if maxAge <= 0 {
		maxAge = time.Hour
	}
	algNames := o.Algorithms
	if len(algNames) == 0 {
		algNames = config.DefaultJWTAlgorithms
	}
	algs := make([]jose.SignatureAlgorithm, 0, len(algNames))
	for _, n := range algNames {
		switch alg := jose.SignatureAlgorithm(n); alg {
		case jose.HS256, jose.HS384, jose.HS512, "none", "":
			return nil, errors.New("auth.oauth.algorithms: " + strconv.Quote(n) + " is not allowed")
		default:
			algs = append(algs, alg)
		}
	}
	skew := o.ClockSkew.D()
	if skew == 0 {
		skew = config.DefaultOAuthClockSkew
	}
	a.oauth = o
	a.jwt = &jwtVerifier{
		issuer: o.Issuer, audience: o.Audience, algs: algs, skew: skew, now: now,
		keys: &keySet{client: client, issuer: o.Issuer, url: o.JWKSURL, now: now, minRefetch: minRefetch, maxAge: maxAge},
	}
	// RFC 9728 section 3.1: the metadata of resource https://h/p is at
	// https://h/.well-known/oauth-protected-resource/p.
	a.metaPath = wellKnownPRM + strings.TrimSuffix(aud.Path, "/")
	a.metaURL = (&url.URL{Scheme: aud.Scheme, Host: aud.Host, Path: a.metaPath}).String()
	return a, nil
}

const wellKnownPRM = "/.well-known/oauth-protected-resource"

// Middleware admits requests that carry a valid bearer token, puts the
// caller's [Identity] in their context (see [FromContext]) and removes the
// Authorization header before calling next, so that the client's token goes
// no further. Other requests get 401, or 403 when an OAuth token lacks a
// required scope, with a WWW-Authenticate challenge (RFC 6750 section 3)
// that names the protected resource metadata (RFC 9728 section 5.1).
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	if a == nil {
		return next
	}
	inner := withTokenInfo(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r.Header)
		if !ok {
			a.refuse(w, http.StatusUnauthorized, "", "a bearer token is required")
			return
		}
		id, err := a.authenticate(r.Context(), tok)
		if err != nil {
			var bad *errInvalid
			if errors.As(err, &bad) {
				a.refuse(w, http.StatusUnauthorized, "invalid_token", bad.msg)
				return
			}
			// The issuer could not be reached: not the client's fault,
			// and retrying may help.
			a.log.WarnContext(r.Context(), "cannot check an access token", "error", err)
			w.Header().Set("Retry-After", "5")
			writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the access token cannot be checked now")
			return
		}
		if a.oauth != nil && id.Method == MethodOAuth {
			for _, s := range a.oauth.RequiredScopes {
				if !id.HasScope(s) {
					a.refuse(w, http.StatusForbidden, "insufficient_scope", "the token lacks a required scope")
					return
				}
			}
		}
		inner.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

// SessionOwner names the caller of ctx for session ownership: a session
// opened by one caller must not be used by another. It is the go-sdk's
// TokenInfo.UserID, which the SDK checks on every request it handles; a
// path that bypasses the SDK must compare it itself. "" when ctx has no
// identity (an open listener).
func SessionOwner(ctx context.Context) string {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	if !ok {
		return ""
	}
	return id.userKey()
}

// userKey names the caller for the go-sdk's session ownership check: a
// session opened with one token cannot be used with another caller's.
func (id *Identity) userKey() string {
	switch id.Method {
	case MethodStatic:
		return "static:" + id.TokenName
	case MethodCertificate:
		return "cert:" + id.Subject
	}
	return "oauth:" + id.Issuer + "|" + id.ID()
}

// withTokenInfo hands the identity in a request's context to the go-sdk,
// then removes the Authorization header and calls next. The go-sdk carries
// TokenInfo from the HTTP request into each MCP request
// (RequestExtra.TokenInfo) and ties a session to the user who opened it. Its
// own middleware is the only way to set TokenInfo, and it reads a bearer
// header, so a caller identified by its certificate is given a placeholder
// one for it.
func withTokenInfo(next http.Handler) http.Handler {
	sdk := sdkauth.RequireBearerToken(func(ctx context.Context, _ string, _ *http.Request) (*sdkauth.TokenInfo, error) {
		id, ok := ctx.Value(identityKey{}).(*Identity)
		if !ok {
			return nil, sdkauth.ErrInvalidToken
		}
		return &sdkauth.TokenInfo{Scopes: id.Scopes, UserID: id.userKey(), Extra: map[string]any{tokenInfoKey: id}}, nil
	}, &sdkauth.RequireBearerTokenOptions{AllowMissingExpiration: true})
	inner := sdk(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := *r
		r2.Header = r.Header.Clone()
		r2.Header.Del("Authorization")
		next.ServeHTTP(w, &r2)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := bearer(r.Header); !ok {
			r2 := *r
			r2.Header = r.Header.Clone()
			r2.Header.Set("Authorization", "Bearer -")
			r = &r2
		}
		inner.ServeHTTP(w, r)
	})
}

// authenticate checks tok: a static token, else a JWT.
func (a *Authenticator) authenticate(ctx context.Context, tok string) (Identity, error) {
	got := sha256.Sum256([]byte(tok))
	match, name := 0, ""
	for i := range a.static {
		// Every digest is compared, so timing says nothing of which
		// matched.
		eq := subtle.ConstantTimeCompare(got[:], a.static[i].digest[:])
		if eq == 1 && match == 0 {
			name = a.static[i].name
		}
		match |= eq
	}
	if match == 1 {
		return Identity{Method: MethodStatic, TokenName: name}, nil
	}
	if a.jwt != nil && looksLikeJWT(tok) {
		return a.jwt.check(ctx, tok)
	}
	return Identity{}, invalid("unknown token")
}

// bearer returns the token of an "Authorization: Bearer" header
// (RFC 6750 section 2.1; the scheme is case-insensitive).
func bearer(h http.Header) (string, bool) {
	v := h.Values("Authorization")
	if len(v) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(v[0], " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}

// refuse answers 401 or 403 with its challenge. Without OAuth, the
// challenge names the realm, as tracegate always did.
func (a *Authenticator) refuse(w http.ResponseWriter, status int, code, desc string) {
	var params []string
	if a.oauth != nil {
		params = append(params, `resource_metadata="`+a.metaURL+`"`)
		if len(a.oauth.RequiredScopes) > 0 {
			params = append(params, `scope="`+strings.Join(a.oauth.RequiredScopes, " ")+`"`)
		}
	} else {
		params = append(params, `realm="tracegate"`)
	}
	if code != "" {
		params = append(params, `error="`+code+`"`)
		if a.oauth != nil {
			// desc is ours, never client input: no escaping needed.
			params = append(params, `error_description="`+desc+`"`)
		}
	}
	w.Header().Set("WWW-Authenticate", "Bearer "+strings.Join(params, ", "))
	if code == "" {
		code = "unauthorized"
	}
	writeError(w, status, code, desc)
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
	w.Write(body)
}

// MetadataPaths are the paths at which [Authenticator.MetadataHandler]
// should be mounted: the RFC 9728 well-known path for the configured
// resource (e.g. /.well-known/oauth-protected-resource/mcp) and the bare
// one, which clients of older MCP revisions try. None without OAuth.
func (a *Authenticator) MetadataPaths() []string {
	if a == nil || a.oauth == nil {
		return nil
	}
	if a.metaPath == wellKnownPRM {
		return []string{wellKnownPRM}
	}
	return []string{a.metaPath, wellKnownPRM}
}

// MetadataHandler serves the protected resource metadata (RFC 9728 section
// 3.2): the resource identifier, its authorization server, and the scopes
// it requires. The document is public and served without a token.
func (a *Authenticator) MetadataHandler() http.Handler {
	md := map[string]any{
		"resource":                 a.oauth.Audience,
		"authorization_servers":    []string{a.oauth.Issuer},
		"bearer_methods_supported": []string{"header"},
	}
	if len(a.oauth.RequiredScopes) > 0 {
		md["scopes_supported"] = a.oauth.RequiredScopes
	}
	if a.oauth.ResourceDocumentation != "" {
		md["resource_documentation"] = a.oauth.ResourceDocumentation
	}
	body, _ := json.Marshal(md)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Public metadata, fetched by browser-based clients too.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodOptions:
			w.Header().Set("Access-Control-Allow-Methods", "GET, OPTIONS")
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			w.Header().Set("Allow", "GET, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		io.WriteString(w, string(body))
	})
}
