package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidateSecurity(t *testing.T) {
	t.Parallel()
	const oauthOK = "auth: {oauth: {issuer: 'https://idp.example.com', audience: 'https://mcp.example.com/mcp'}}\n"
	const tlsBackend = "backends: [{name: a, url: 'https://b.example.com/mcp', tls: {ca_file: ca.pem}}]\n"
	tests := []validateCase{
		{"named and plain tokens", "auth: {bearer_tokens: [plain, {name: ci, token: t2}]}", nil},
		{"duplicate token name", "auth: {bearer_tokens: [{name: ci, token: a}, {name: ci, token: b}]}", []string{"auth.bearer_tokens[1].name: duplicate of auth.bearer_tokens[0]"}},
		{"named token without token", "auth: {bearer_tokens: [{name: ci}]}", []string{"auth.bearer_tokens[0]: empty token"}},

		{"oauth", oauthOK, nil},
		{"oauth on loopback http", "auth: {oauth: {issuer: 'http://127.0.0.1:9000', jwks_url: 'http://localhost:9000/jwks', audience: 'http://127.0.0.1:8080/mcp'}}", nil},
		{"oauth http elsewhere", "auth: {oauth: {issuer: 'http://idp.example.com', jwks_url: 'http://10.0.0.1/jwks', audience: 'https://m/mcp'}}", []string{
			"auth.oauth.issuer: http is allowed only on a loopback host; use https",
			"auth.oauth.jwks_url: http is allowed only on a loopback host; use https",
		}},
		{"oauth required keys", "auth: {oauth: {required_scopes: ['a b', '']}}", []string{
			"auth.oauth.issuer: required",
			"auth.oauth.audience: required: this gateway's resource identifier, e.g. https://mcp.example.com/mcp",
			"auth.oauth.required_scopes[0]: not a valid scope",
			"auth.oauth.required_scopes[1]: not a valid scope",
		}},
		{"oauth hmac and none", "auth: {oauth: {issuer: 'https://i', audience: 'https://a', algorithms: [RS256, HS256, none]}}", []string{
			`auth.oauth.algorithms[1]: "HS256" not allowed; use asymmetric algorithms (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA)`,
			`auth.oauth.algorithms[2]: "none" not allowed; use asymmetric algorithms (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA)`,
		}},
		{"oauth skew", "auth: {oauth: {issuer: 'https://i', audience: 'https://a', clock_skew: 1h}}", []string{"auth.oauth.clock_skew: at most 5m"}},

		{"listener tls", "tls: {cert_file: c.pem, key_file: k.pem, client_ca_file: ca.pem, min_version: '1.3'}\nadmin: {tls: {cert_file: c.pem, key_file: k.pem}}", nil},
		{"listener tls incomplete", "tls: {min_version: '1.1', require_client_cert: true}", []string{
			"tls.cert_file: required",
			"tls.key_file: required",
			"tls.require_client_cert: needs client_ca_file",
			"tls.min_version: must be 1.2 or 1.3",
		}},
		{"admin tls with admin off", "admin_listen: off\nadmin: {tls: {cert_file: c, key_file: k}}", []string{"admin.tls: admin_listen is off"}},

		{"backend tls", tlsBackend, nil},
		{"backend tls over http", "backends: [{name: a, url: 'http://b/mcp', tls: {cert_file: c.pem}}]", []string{
			"backends[0].tls: only for https backends",
			"backends[0].tls: set both cert_file and key_file, or neither",
		}},
		{"backend tls on a command", "backends: [{name: a, command: [x], tls: {}}]", []string{"backends[0].tls: only for url backends"}},
		{"backend oauth", "backends: [{name: a, url: 'https://b/mcp', oauth: {token_url: 'https://idp/token', client_id: gw, client_secret: s, scopes: [x], audience: 'https://b/mcp'}}]", nil},
		{"backend oauth in the clear", "backends: [{name: a, url: 'http://b.example.com/mcp', oauth: {token_url: 'https://idp/token', client_id: gw}}]", []string{
			"backends[0].oauth: needs an https url (or http on a loopback host)",
		}},
		{"backend oauth on loopback http", "backends: [{name: a, url: 'http://127.0.0.1:9001/mcp', oauth: {token_url: 'http://127.0.0.1:9000/token', client_id: gw}}]", nil},
		{"backend oauth problems", "backends: [{name: a, url: 'https://b/mcp', headers: {authorization: x}, oauth: {token_url: 'http://idp/token', token_exchange: true}}]", []string{
			"backends[0].headers.authorization: conflicts with oauth, which sets Authorization",
			"backends[0].oauth.token_url: http is allowed only on a loopback host; use https",
			"backends[0].oauth.client_id: required",
			"backends[0].oauth.audience: required with token_exchange",
			"backends[0].oauth.token_exchange: needs auth.oauth: only OAuth callers have a token to exchange",
		}},
		{"token exchange with oauth", oauthOK + "backends: [{name: a, url: 'https://b/mcp', oauth: {token_url: 'https://idp/token', client_id: gw, audience: 'https://b/mcp', token_exchange: true}}]", nil},

		{"incoming context", "telemetry: {incoming_context: link, incoming_context_authenticated: trust, capture_identity: true}", nil},
		{"incoming context values", "telemetry: {incoming_context: drop, incoming_context_authenticated: yes}", []string{
			"telemetry.incoming_context: must be trust, link or ignore",
			"telemetry.incoming_context_authenticated: must be trust, link or ignore",
		}},
	}
	checkValidate(t, tests)
}

func TestSecurityDefaults(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(`
tls: {cert_file: c, key_file: k}
auth: {oauth: {issuer: 'https://i', audience: 'https://a'}}
telemetry: {incoming_context: link}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS.MinVersion != "1.2" {
		t.Errorf("tls.min_version: got %q, want 1.2", c.TLS.MinVersion)
	}
	if c.Auth.OAuth.ClockSkew.D() != 30*time.Second {
		t.Errorf("auth.oauth.clock_skew: got %v, want 30s", c.Auth.OAuth.ClockSkew)
	}
	if !reflect.DeepEqual(c.Auth.OAuth.Algorithms, DefaultJWTAlgorithms) {
		t.Errorf("auth.oauth.algorithms: got %v", c.Auth.OAuth.Algorithms)
	}
	if c.Telemetry.IncomingContextAuthenticated != "link" {
		t.Errorf("incoming_context_authenticated: got %q, want it to follow incoming_context (link)", c.Telemetry.IncomingContextAuthenticated)
	}
}

func TestBearerTokenDecodeNeverQuotesSecrets(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte("auth: {bearer_tokens: [{name: ci, tokn: hunter2}]}"), nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("got %v, want an error that does not quote the value", err)
	}
	c, err := Parse([]byte("auth: {bearer_tokens: [{name: ci, token: '${T}'}, '${T}']}"), env("T", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	want := []BearerToken{{Name: "ci", Token: "s3cret"}, {Token: "s3cret"}}
	if !reflect.DeepEqual(c.Auth.BearerTokens, want) {
		t.Errorf("got %+v, want %+v", c.Auth.BearerTokens, want)
	}
}
