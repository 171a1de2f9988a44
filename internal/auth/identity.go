package auth

import (
	"context"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Method names how a caller authenticated.
type Method string

const (
	MethodStatic Method = "static" // a configured bearer token
	MethodOAuth  Method = "oauth"  // a JWT access token
	// MethodCertificate is a TLS client certificate verified against
	// tls.client_ca_file, on a listener that requires no token.
	MethodCertificate Method = "certificate"
)

// Identity is who made a request, as its credential says. It never holds
// the credential itself in a form that prints.
type Identity struct {
	Method Method
	// Subject is the token's sub claim, or a client certificate's first
	// URI SAN (a SPIFFE ID, say), else its common name; empty for static
	// tokens.
	Subject string
	// ClientID is the OAuth client the token was issued to (client_id,
	// RFC 9068, else azp); empty for static tokens.
	ClientID string
	// Issuer is the token's iss claim; empty for static tokens.
	Issuer string
	// Scopes are the token's scopes (scope, else scp); none for static
	// tokens.
	Scopes []string
	// Claims are all the claims of a JWT, as decoded from JSON; nil for
	// static tokens. Treat as read-only.
	Claims map[string]any
	// TokenName is the configured name of a static token; empty for
	// unnamed ones and for JWTs.
	TokenName string

	// token is the caller's JWT, for RFC 8693 token exchange only. Behind
	// a pointer, fmt prints an address, never the token.
	token *secret
}

type secret struct{ value string }

// ID names the caller in one string, for enduser.id, logs and per-caller
// rate limits: the subject, else the client ID, else "token:" and the
// static token's name, else "token" for an unnamed static token.
func (id Identity) ID() string {
	switch {
	case id.Subject != "":
		return id.Subject
	case id.ClientID != "":
		return id.ClientID
	case id.TokenName != "":
		return "token:" + id.TokenName
	}
	return "token"
}

// HasScope reports whether the identity holds scope s.
func (id Identity) HasScope(s string) bool {
	for _, have := range id.Scopes {
		if have == s {
			return true
		}
	}
	return false
}

// ClaimValues returns the values of the claim named name, as strings: a
// string claim gives one, a list of strings several, a boolean "true" or
// "false". sub, client_id, iss, scope and token_name read the identity's
// own fields, so they work for static tokens too. Other types give none.
func (id Identity) ClaimValues(name string) []string {
	switch name {
	case "sub":
		return nonEmpty(id.Subject)
	case "client_id":
		return nonEmpty(id.ClientID)
	case "token_name":
		return nonEmpty(id.TokenName)
	case "iss":
		return nonEmpty(id.Issuer)
	case "scope":
		return id.Scopes
	}
	switch v := id.Claims[name].(type) {
	case string:
		return []string{v}
	case bool:
		if v {
			return []string{"true"}
		}
		return []string{"false"}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

type identityKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, &id)
}

// FromContext returns the identity of the caller whose request ctx belongs
// to, and whether there is one (false on an open listener).
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	if !ok {
		return Identity{}, false
	}
	return *id, true
}

// tokenInfoKey is where the identity rides in the go-sdk's TokenInfo.Extra.
const tokenInfoKey = "tracegate.identity"

// ServerMiddleware returns MCP server middleware that puts the caller's
// identity into the context of every request handler. It is needed because
// the go-sdk runs a stateful session's handlers under the session's context,
// not the HTTP request's; what it does carry over is the token information
// that [Authenticator.Middleware] left for it (RequestExtra.TokenInfo). Put
// it first, before tracing and plugins.
func ServerMiddleware() mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if _, ok := FromContext(ctx); !ok {
				if extra := req.GetExtra(); extra != nil && extra.TokenInfo != nil {
					if id, ok := extra.TokenInfo.Extra[tokenInfoKey].(*Identity); ok {
						ctx = context.WithValue(ctx, identityKey{}, id)
					}
				}
			}
			return next(ctx, method, req)
		}
	}
}
