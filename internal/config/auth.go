package config

import (
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// UnmarshalYAML reads a token alone or a mapping {name, token}.
func (t *BearerToken) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*t = BearerToken{Token: n.Value}
		return nil
	case yaml.MappingNode:
		var out BearerToken
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind == yaml.AliasNode {
				v = v.Alias
			}
			if v.Kind != yaml.ScalarNode {
				return errors.New(k.Value + ": want a string")
			}
			switch k.Value {
			case "name":
				out.Name = v.Value
			case "token":
				out.Token = v.Value
			default:
				// Never quote the value: it may be the token.
				return errors.New("unknown key " + k.Value + "; want name and token")
			}
		}
		*t = out
		return nil
	}
	return errors.New("want a token or a mapping {name, token}")
}

func (*BearerToken) literalScalar() {}

// MarshalYAML writes the token alone when it has no name.
func (t BearerToken) MarshalYAML() (any, error) {
	if t.Name == "" {
		return t.Token, nil
	}
	return map[string]string{"name": t.Name, "token": t.Token}, nil
}

// DefaultJWTAlgorithms are the JWS algorithms accepted when
// auth.oauth.algorithms is not set: the asymmetric ones of RFC 7518 and
// RFC 8037. A resource server holds only public keys, so HMAC, which would
// need the issuer's secret, is never accepted; nor is "none".
var DefaultJWTAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Incoming trace context modes (telemetry.incoming_context).
const (
	IncomingTrust  = "trust"
	IncomingLink   = "link"
	IncomingIgnore = "ignore"
)

func (a *Auth) validate(add addFunc) {
	names := map[string]int{}
	for i, tok := range a.BearerTokens {
		p := indexPath("auth.bearer_tokens", i)
		switch {
		case tok.Token == "":
			add(p, "empty token")
		case strings.ContainsFunc(tok.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			add(p, "token contains spaces or control characters")
		}
		if tok.Name != "" {
			if j, dup := names[tok.Name]; dup {
				add(p+".name", "duplicate of auth.bearer_tokens[%d]", j)
			} else {
				names[tok.Name] = i
			}
		}
	}
	o := a.OAuth
	if o == nil {
		return
	}
	if msg := checkIdPURL(o.Issuer); msg != "" {
		add("auth.oauth.issuer", "%s", msg)
	}
	if o.Audience == "" {
		add("auth.oauth.audience", "required: this gateway's resource identifier, e.g. https://mcp.example.com/mcp")
	} else if msg := checkURL(o.Audience, "http", "https"); msg != "" {
		add("auth.oauth.audience", "%s", msg)
	}
	if o.JWKSURL != "" {
		if msg := checkIdPURL(o.JWKSURL); msg != "" {
			add("auth.oauth.jwks_url", "%s", msg)
		}
	}
	for i, s := range o.RequiredScopes {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r >= 0x7f }) {
			// RFC 6749 section 3.3: scope-token = 1*NQCHAR
			add(indexPath("auth.oauth.required_scopes", i), "not a valid scope")
		}
	}
	for i, alg := range o.Algorithms {
		if !slices.Contains(DefaultJWTAlgorithms, alg) {
			add(indexPath("auth.oauth.algorithms", i), "%q not allowed; use asymmetric algorithms (%s)", alg, strings.Join(DefaultJWTAlgorithms, ", "))
		}
	}
	if o.ClockSkew < 0 {
		add("auth.oauth.clock_skew", "must not be negative")
	} else if o.ClockSkew.D().Minutes() > 5 {
		add("auth.oauth.clock_skew", "at most 5m")
	}
	if o.ResourceDocumentation != "" {
		if msg := checkURL(o.ResourceDocumentation, "http", "https"); msg != "" {
			add("auth.oauth.resource_documentation", "%s", msg)
		}
	}
}

// checkIdPURL returns what is wrong with the URL of an identity provider
// endpoint, or "": https, or http only on a loopback host (tests and local
// identity providers), since keys and tokens fetched over plain http could be
// replaced on the way.
func checkIdPURL(s string) string {
	if msg := checkURL(s, "http", "https"); msg != "" {
		return msg
	}
	u, _ := url.Parse(s)
	if u.Scheme == "http" && !LoopbackHost(u.Hostname()) {
		return "http is allowed only on a loopback host; use https"
	}
	if u.User != nil {
		return "must not hold credentials"
	}
	return ""
}

// LoopbackHost reports whether h, a URL's host name, is localhost or a
// loopback address: the only hosts where plain http is accepted for an
// identity provider.
func LoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (t *ServerTLS) validate(p string, add addFunc) {
	if t == nil {
		return
	}
	if t.CertFile == "" {
		add(p+".cert_file", "required")
	}
	if t.KeyFile == "" {
		add(p+".key_file", "required")
	}
	if t.RequireClientCert && t.ClientCAFile == "" {
		add(p+".require_client_cert", "needs client_ca_file")
	}
	switch t.MinVersion {
	case "1.2", "1.3":
	default:
		add(p+".min_version", "must be 1.2 or 1.3")
	}
}

func (b *Backend) validateSecurity(p string, hasURL, oauthClients bool, add addFunc) {
	if t := b.TLS; t != nil {
		if !hasURL {
			add(p+".tls", "only for url backends")
		} else if u, err := url.Parse(b.URL); err == nil && u.Scheme != "https" {
			add(p+".tls", "only for https backends")
		}
		if (t.CertFile == "") != (t.KeyFile == "") {
			add(p+".tls", "set both cert_file and key_file, or neither")
		}
	}
	o := b.OAuth
	if o == nil {
		return
	}
	if !hasURL {
		add(p+".oauth", "only for url backends")
	} else if u, err := url.Parse(b.URL); err == nil && u.Scheme == "http" && !LoopbackHost(u.Hostname()) {
		// The token would cross the network in the clear.
		add(p+".oauth", "needs an https url (or http on a loopback host)")
	}
	for name := range b.Headers {
		if strings.EqualFold(name, "Authorization") {
			add(keyPath(p+".headers", name), "conflicts with oauth, which sets Authorization")
		}
	}
	if msg := checkIdPURL(o.TokenURL); msg != "" {
		add(p+".oauth.token_url", "%s", msg)
	}
	if o.ClientID == "" {
		add(p+".oauth.client_id", "required")
	}
	if o.TokenExchange && o.Audience == "" {
		add(p+".oauth.audience", "required with token_exchange")
	}
	if o.TokenExchange && !oauthClients {
		add(p+".oauth.token_exchange", "needs auth.oauth: only OAuth callers have a token to exchange")
	}
}

func checkIncoming(p, v string, add addFunc) {
	switch v {
	case IncomingTrust, IncomingLink, IncomingIgnore:
	default:
		add(p, "must be trust, link or ignore")
	}
}
