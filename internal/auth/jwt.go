package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// jwtVerifier checks JWT access tokens from one issuer.
type jwtVerifier struct {
	issuer   string
	audience string
	algs     []jose.SignatureAlgorithm
	skew     time.Duration
	now      func() time.Time
	keys     *keySet

	// verified remembers tokens that passed, by SHA-256, for at most
	// verifiedTTL and never past their exp: a client sends the same token
	// on every request, and a signature check costs far more than the
	// rest of the gateway's work on a request (BenchmarkMiddleware).
	mu       sync.Mutex
	verified map[[32]byte]verifiedToken
}

type verifiedToken struct {
	id    Identity
	until time.Time
}

const (
	verifiedTTL = time.Minute
	maxVerified = 10_000
)

// check returns the identity of raw, from the cache or by verify.
func (v *jwtVerifier) check(ctx context.Context, raw string) (Identity, error) {
	key := sha256.Sum256([]byte(raw))
	now := v.now()
	v.mu.Lock()
	hit, ok := v.verified[key]
	v.mu.Unlock()
	if ok && now.Before(hit.until) {
		return hit.id, nil
	}
	id, exp, err := v.verify(ctx, raw)
	if err != nil {
		return id, err
	}
	until := now.Add(verifiedTTL)
	if e := exp.Add(v.skew); e.Before(until) {
		until = e
	}
	v.mu.Lock()
	if v.verified == nil || len(v.verified) >= maxVerified {
		v.verified = make(map[[32]byte]verifiedToken)
	}
	v.verified[key] = verifiedToken{id: id, until: until}
	v.mu.Unlock()
	return id, nil
}

// errInvalid is a token refused for what it is (401 invalid_token), as
// opposed to a failure to check it (the issuer unreachable).
type errInvalid struct{ msg string }

func (e *errInvalid) Error() string { return e.msg }

func invalid(format string, args ...any) error { return &errInvalid{fmt.Sprintf(format, args...)} }

// looksLikeJWT reports whether tok has the three dot-separated parts of a
// JWS in compact serialization.
func looksLikeJWT(tok string) bool { return strings.Count(tok, ".") == 2 }

// verify returns the identity a JWT access token proves, or an error: an
// *errInvalid when the token itself is at fault. Error messages name what
// was wrong, never the token or its claims' values.
func (v *jwtVerifier) verify(ctx context.Context, raw string) (_ Identity, exp time.Time, _ error) {
	// The allow-list is checked against the header before anything else:
	// "none" and HMAC can never verify.
	tok, err := jwt.ParseSigned(raw, v.algs)
	if err != nil {
		return Identity{}, exp, invalid("malformed token or algorithm not allowed")
	}
	if len(tok.Headers) != 1 {
		return Identity{}, exp, invalid("want one signature")
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "" && !isAccessTokenType(typ) {
		// RFC 9068 section 4: an ID token is not an access token.
		return Identity{}, exp, invalid("token type %q is not an access token", typ)
	}
	keys, err := v.keys.lookup(ctx, h.KeyID)
	if err != nil {
		if errors.Is(err, errUnknownKey) {
			return Identity{}, exp, invalid("signing key not in the issuer's JWKS")
		}
		return Identity{}, exp, err
	}
	var std jwt.Claims
	var all map[string]any
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if tok.Claims(k.Key, &std, &all) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return Identity{}, exp, invalid("bad signature")
	}
	if std.Expiry == nil {
		return Identity{}, exp, invalid("token has no exp")
	}
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: v.issuer, AnyAudience: jwt.Audience{v.audience}, Time: v.now()}, v.skew)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrExpired):
		return Identity{}, exp, invalid("token expired")
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return Identity{}, exp, invalid("token not valid yet")
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return Identity{}, exp, invalid("wrong issuer")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return Identity{}, exp, invalid("token not issued for this resource (aud)")
	default:
		return Identity{}, exp, invalid("invalid claims")
	}
	id := Identity{
		Method:  MethodOAuth,
		Subject: std.Subject,
		Issuer:  std.Issuer,
		Scopes:  scopesOf(all),
		Claims:  all,
		token:   &secret{raw},
	}
	id.ClientID, _ = all["client_id"].(string)
	if id.ClientID == "" {
		id.ClientID, _ = all["azp"].(string)
	}
	return id, std.Expiry.Time(), nil
}

func isAccessTokenType(typ string) bool {
	t := strings.ToLower(typ)
	return t == "jwt" || t == "at+jwt" || t == "application/at+jwt"
}

// scopesOf reads the scope claim (RFC 8693 section 4.2: space-separated),
// else scp (a list, or a string, as some issuers send).
func scopesOf(claims map[string]any) []string {
	switch v := claims["scope"].(type) {
	case string:
		return strings.Fields(v)
	}
	switch v := claims["scp"].(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
