package gateway_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tracegate/tracegate/internal/auth/authtest"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
	"github.com/tracegate/tracegate/internal/plugin"
	"github.com/tracegate/tracegate/internal/telemetry"
	"github.com/tracegate/tracegate/internal/tlsconf"
	"github.com/tracegate/tracegate/internal/tlsconf/tlstest"
)

// headerBackend is a real go-sdk MCP server over Streamable HTTP that keeps
// the headers of every HTTP request it gets.
type headerBackend struct {
	url string

	mu      sync.Mutex
	headers []http.Header
	methods []string // the JSON-RPC method of each POST, "" for others
}

func startHeaderBackend(t *testing.T) *headerBackend {
	t.Helper()
	hb := &headerBackend{}
	s := mcp.NewServer(&mcp.Implementation{Name: "rec", Version: "1"}, nil)
	for _, name := range []string{"echo", "delete"} {
		s.AddTool(&mcp.Tool{Name: name, InputSchema: json.RawMessage(`{"type":"object"}`)}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + " done"}}}, nil
		})
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct{ Method string }
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			json.Unmarshal(body, &msg)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		hb.mu.Lock()
		hb.headers = append(hb.headers, r.Header.Clone())
		hb.methods = append(hb.methods, msg.Method)
		hb.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	hb.url = srv.URL + "/mcp"
	return hb
}

func (hb *headerBackend) seen() []http.Header {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	return slices.Clone(hb.headers)
}

// bearerTransport adds a client's token to every request, as an MCP client
// with OAuth does.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func connectAs(t *testing.T, endpoint, token, revision string) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	cs, err := c.Connect(ctxT(t), &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: bearerTransport{token}}},
		&mcp.ClientSessionOptions{ProtocolVersion: revision})
	if err != nil {
		t.Fatalf("connect as %s: %v", endpoint, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// TestOAuthThroughGateway runs the whole path: an OAuth client, the
// gateway as resource server, plugins that decide by identity, spans that
// name the caller, and a backend that must never see the client's token.
func TestOAuthThroughGateway(t *testing.T) {
	t.Parallel()
	as := authtest.Start(t)
	be := startHeaderBackend(t)
	const audience = "http://127.0.0.1:8080/mcp"
	const static = "static-ci-token"

	cfg := baseConfig(config.Backend{Name: "rec", URL: be.url, Transport: config.TransportStreamable, Timeout: config.Duration(5 * time.Second),
		Headers: map[string]string{"X-Backend-Key": "gateway-own-key"}})
	cfg.Auth = config.Auth{
		BearerTokens: []config.BearerToken{{Name: "ci", Token: static}},
		OAuth:        &config.OAuth{Issuer: as.URL, Audience: audience, RequiredScopes: []string{"mcp"}},
	}
	cfg.Plugins = []config.Plugin{{Name: "no-bob-deletes", Type: "deny", Tools: []string{"rec_delete"}, OnError: "fail", Timeout: config.Duration(time.Second),
		Options: map[string]any{"subjects": []any{"bob"}}}}
	cfg.Telemetry = config.Default().Telemetry
	cfg.Telemetry.CaptureIdentity = true

	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(context.Background(), cfg.Telemetry, telemetry.Options{Getenv: func(string) string { return "" }, ExtraSpanProcessors: []sdktrace.SpanProcessor{rec}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	chain, err := plugin.New(cfg.Plugins, plugin.Options{TracerProvider: tel.TracerProvider})
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, cfg, gateway.TracingOptions(cfg, tel, chain))

	alice := as.Issue(authtest.Token{Subject: "alice", Audience: audience, Scope: "mcp", ClientID: "agent-1"})
	bob := as.Issue(authtest.Token{Subject: "bob", Audience: audience, Scope: "mcp"})
	tokens := []string{alice, bob, static}

	// Without a token: 401 pointing at the metadata, which needs none.
	resp, err := http.Post(gw.url+"/mcp", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if chal := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(chal, `resource_metadata="http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"`) {
		t.Fatalf("no token: got %d %q", resp.StatusCode, chal)
	}
	for _, p := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		resp, err := http.Get(gw.url + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"authorization_servers":["`+as.URL+`"]`) {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, body)
		}
	}

	for _, tc := range []struct{ path, revision string }{{"/mcp", stateful}, {"/mcp/rec", stateful}, {"/mcp", stateless}} {
		path := tc.path
		name := func(tool string) string {
			if path == "/mcp" {
				return "rec_" + tool
			}
			return tool
		}
		a := connectAs(t, gw.url+path, alice, tc.revision)
		b := connectAs(t, gw.url+path, bob, tc.revision)
		ci := connectAs(t, gw.url+path, static, tc.revision)
		eventually(t, 10*time.Second, "rec's tools", func() bool { return slices.Contains(toolNames(t, a), name("echo")) })
		for who, cs := range map[string]*mcp.ClientSession{"alice": a, "ci": ci} {
			if res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: name("delete"), Arguments: map[string]any{}}); err != nil || res.IsError {
				t.Errorf("%s %s: %s delete: %v %v", path, who, who, err, res)
			}
		}
		if _, err := b.CallTool(ctxT(t), &mcp.CallToolParams{Name: name("delete"), Arguments: map[string]any{}}); err == nil || !strings.Contains(err.Error(), `no-bob-deletes`) {
			t.Errorf("%s: bob delete: got %v, want the deny plugin's refusal", path, err)
		}
		if res, err := b.CallTool(ctxT(t), &mcp.CallToolParams{Name: name("echo"), Arguments: map[string]any{}}); err != nil || res.IsError {
			t.Errorf("%s: bob echo: %v %v", path, err, res)
		}
	}

	// No token passthrough: the backend got the gateway's own header and
	// never a client's token, in any header.
	seen := be.seen()
	if len(seen) < 6 {
		t.Fatalf("the backend got %d requests, want at least 6", len(seen))
	}
	for i, h := range seen {
		if got := h.Get("X-Backend-Key"); got != "gateway-own-key" {
			t.Errorf("backend request %d: X-Backend-Key %q, want the configured one", i, got)
		}
		if v := h.Values("Authorization"); len(v) > 0 {
			t.Errorf("backend request %d carried Authorization %q", i, v)
		}
		for k, vs := range h {
			for _, v := range vs {
				for _, tok := range tokens {
					if strings.Contains(v, tok) {
						t.Errorf("backend request %d: header %s carries a client's token", i, k)
					}
				}
			}
		}
	}

	// SERVER spans name the caller (capture_identity is on); no span
	// holds a token.
	spans := rec.Ended()
	users := map[string]int{}
	for _, s := range spans {
		for _, kv := range s.Attributes() {
			for _, tok := range tokens {
				if strings.Contains(kv.Value.Emit(), tok) {
					t.Errorf("span %q attribute %s holds a token", s.Name(), kv.Key)
				}
			}
			if kv.Key == "enduser.id" {
				users[kv.Value.AsString()]++
				if s.SpanKind().String() != "server" {
					t.Errorf("enduser.id on a %s span %q", s.SpanKind(), s.Name())
				}
			}
		}
	}
	for _, who := range []string{"alice", "bob", "token:ci"} {
		if users[who] == 0 {
			t.Errorf("no SERVER span with enduser.id=%s; got %v", who, users)
		}
	}
}

// TestSessionBelongsToItsCaller: a session opened with one caller's token
// cannot be used with another's: the session records the identity that
// opened it.
func TestSessionBelongsToItsCaller(t *testing.T) {
	t.Parallel()
	as := authtest.Start(t)
	be := startHeaderBackend(t)
	const audience = "http://127.0.0.1:8080/mcp"
	cfg := baseConfig(config.Backend{Name: "rec", URL: be.url, Transport: config.TransportStreamable, Timeout: config.Duration(5 * time.Second)})
	cfg.Auth = config.Auth{OAuth: &config.OAuth{Issuer: as.URL, Audience: audience}}
	gw := startGateway(t, cfg, gateway.Options{})
	alice := as.Issue(authtest.Token{Subject: "alice", Audience: audience})
	mallory := as.Issue(authtest.Token{Subject: "mallory", Audience: audience})
	cs := connectAs(t, gw.url+"/mcp", alice, stateful)
	eventually(t, 10*time.Second, "rec's tools", func() bool { return slices.Contains(toolNames(t, cs), "rec_echo") })
	if _, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "rec_echo", Arguments: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"rec_echo","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":8,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}`,
		`{"jsonrpc":"2.0","id":9,"result":{}}`,
	} {
		req, _ := http.NewRequest(http.MethodPost, gw.url+"/mcp", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+mallory)
		req.Header.Set("Mcp-Session-Id", cs.ID())
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("another caller on alice's session: got %d %s, want 403", resp.StatusCode, out)
		}
	}
}

// TestTrustBoundary: with incoming_context link for everyone and trust for
// authenticated callers, an operator's service with a client certificate
// joins its own trace, and an anonymous caller on the same listener only
// links to the trace it claims, whose ID and sampling it cannot impose.
func TestTrustBoundary(t *testing.T) {
	t.Parallel()
	be := startHeaderBackend(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "gateway")
	services := tlstest.NewCA(t, "services")
	certFile, keyFile := ca.Server(t, "127.0.0.1").Files(t, dir)

	cfg := baseConfig(config.Backend{Name: "rec", URL: be.url, Transport: config.TransportStreamable, Timeout: config.Duration(5 * time.Second)})
	cfg.Telemetry = config.Default().Telemetry
	cfg.Telemetry.IncomingContext = config.IncomingLink
	cfg.Telemetry.IncomingContextAuthenticated = config.IncomingTrust
	cfg.Telemetry.CaptureIdentity = true
	cfg.Telemetry.HTTPSpans = new(true)
	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(context.Background(), cfg.Telemetry, telemetry.Options{Getenv: func(string) string { return "" }, ExtraSpanProcessors: []sdktrace.SpanProcessor{rec}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	gw := startGateway(t, cfg, gateway.TracingOptions(cfg, tel, nil))

	// The gateway's handler behind a TLS listener that verifies client
	// certificates when given, as serve builds it.
	tc, err := tlsconf.Server(&config.ServerTLS{CertFile: certFile, KeyFile: keyFile, MinVersion: "1.2",
		ClientCAFile: tlstest.Write(t, dir, "services.pem", services.CertPEM)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: gw.gw.Handler()}
	srv.TLSConfig = tc
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	endpoint := "https://" + ln.Addr().String() + "/mcp"

	svc := services.Client(t, "billing")
	svcPair, _ := tls.X509KeyPair(svc.CertPEM, svc.KeyPEM)
	for _, tt := range []struct {
		name     string
		certs    []tls.Certificate
		wantJoin bool
		wantUser string
	}{
		{"service with a certificate", []tls.Certificate{svcPair}, true, "billing"},
		{"anonymous", nil, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The caller's context in _meta and, for the POST /mcp span, in
			// the headers too.
			meta, traceID := traced()
			hc := &http.Client{Transport: headerTransport{
				base:   &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: tt.certs}},
				header: http.Header{"Traceparent": {meta["traceparent"].(string)}},
			}}
			c := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
			cs, err := c.Connect(ctxT(t), &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: stateful})
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			eventually(t, 10*time.Second, "rec's tools", func() bool { return slices.Contains(toolNames(t, cs), "rec_echo") })
			if _, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "rec_echo", Arguments: map[string]any{}, Meta: meta}); err != nil {
				t.Fatal(err)
			}
			var server sdktrace.ReadOnlySpan
			eventually(t, 5*time.Second, "the SERVER span", func() bool {
				for _, s := range rec.Ended() {
					if s.Name() == "tools/call rec_echo" && s.SpanKind().String() == "server" && (s.SpanContext().TraceID().String() == traceID || linksTo(s, traceID)) {
						server = s
						return true
					}
				}
				return false
			})
			joined := server.SpanContext().TraceID().String() == traceID
			if joined != tt.wantJoin {
				t.Errorf("joined the caller's trace: got %v, want %v", joined, tt.wantJoin)
			}
			attrs := map[string]string{}
			for _, kv := range server.Attributes() {
				attrs[string(kv.Key)] = kv.Value.Emit()
			}
			if attrs["enduser.id"] != tt.wantUser {
				t.Errorf("enduser.id: got %q, want %q", attrs["enduser.id"], tt.wantUser)
			}
			var inTrace []string
			for _, s := range rec.Ended() {
				if s.SpanContext().TraceID().String() == traceID {
					inTrace = append(inTrace, s.Name())
				}
			}
			if !tt.wantJoin && len(inTrace) > 0 {
				t.Errorf("spans in the anonymous caller's trace: %q, want none (POST /mcp included)", inTrace)
			}
			if tt.wantJoin && !slices.Contains(inTrace, "POST /mcp") {
				t.Errorf("spans in the service's trace: %q, want POST /mcp among them", inTrace)
			}
			if !tt.wantJoin {
				if !server.Parent().IsValid() && attrs["tracegate.trace_context.incoming"] == "link" && linksTo(server, traceID) {
					return
				}
				t.Errorf("anonymous caller: parent %v, attributes %v, links %v; want a root that links the caller's trace", server.Parent(), attrs, server.Links())
			}
		})
	}
}

type headerTransport struct {
	base   http.RoundTripper
	header http.Header
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.header {
		r.Header[k] = v
	}
	return h.base.RoundTrip(r)
}

func linksTo(s sdktrace.ReadOnlySpan, traceID string) bool {
	for _, l := range s.Links() {
		if l.SpanContext.TraceID().String() == traceID {
			return true
		}
	}
	return false
}

// TestTokenExchangeThroughGateway: a backend configured for RFC 8693 gets,
// for each call, a token the issuer made from the caller's, with content
// capture off and on; the gateway's own requests
// carry its own token; the caller's token never arrives.
func TestTokenExchangeThroughGateway(t *testing.T) {
	t.Parallel()
	for _, decode := range []bool{false, true} {
		t.Run(map[bool]string{false: "capture off", true: "capture on"}[decode], func(t *testing.T) {
			t.Parallel()
			as := authtest.Start(t)
			as.AddClient("tracegate", "gw-secret")
			be := startHeaderBackend(t)
			const audience = "http://127.0.0.1:8080/mcp"
			cfg := baseConfig(config.Backend{Name: "rec", URL: be.url, Transport: config.TransportStreamable, Timeout: config.Duration(5 * time.Second),
				OAuth: &config.BackendOAuth{TokenURL: as.URL + "/token", ClientID: "tracegate", ClientSecret: "gw-secret", Audience: "http://rec.test/mcp", TokenExchange: true}})
			cfg.Auth = config.Auth{OAuth: &config.OAuth{Issuer: as.URL, Audience: audience}}
			cfg.Telemetry = config.Default().Telemetry
			cfg.Telemetry.CaptureArguments = decode // spans record arguments and results
			tel, err := telemetry.New(context.Background(), cfg.Telemetry, telemetry.Options{Getenv: func(string) string { return "" }})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tel.Shutdown(context.Background()) })
			gw := startGateway(t, cfg, gateway.TracingOptions(cfg, tel, nil))

			alice := as.Issue(authtest.Token{Subject: "alice", Audience: audience})
			cs := connectAs(t, gw.url+"/mcp", alice, stateful)
			eventually(t, 10*time.Second, "rec's tools", func() bool { return slices.Contains(toolNames(t, cs), "rec_echo") })
			if res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "rec_echo", Arguments: map[string]any{}}); err != nil || res.IsError {
				t.Fatalf("call: %v %v", err, res)
			}

			be.mu.Lock()
			headers, methods := slices.Clone(be.headers), slices.Clone(be.methods)
			be.mu.Unlock()
			calls := 0
			for i, h := range headers {
				authz := h.Get("Authorization")
				if strings.Contains(authz, alice) {
					t.Fatalf("backend request %d (%s) carried the caller's token", i, methods[i])
				}
				if methods[i] == "" {
					continue
				}
				claims := tokenClaims(t, authz)
				act, _ := claims["act"].(map[string]any)
				switch methods[i] {
				case "tools/call":
					calls++
					if claims["sub"] != "alice" || act["sub"] != "tracegate" || claims["aud"] != "http://rec.test/mcp" {
						t.Errorf("tools/call: token claims %v, want alice acted for by tracegate, for the backend", claims)
					}
				case "initialize":
					if claims["sub"] != "tracegate" || act != nil {
						t.Errorf("initialize: token claims %v, want the gateway's own", claims)
					}
				}
			}
			if calls != 1 {
				t.Errorf("the backend saw %d tools/call, want 1 (methods %q)", calls, methods)
			}
		})
	}
}

// tokenClaims reads the claims of a bearer JWT without checking it.
func tokenClaims(t *testing.T, authz string) map[string]any {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(authz, "Bearer "), ".")
	if len(parts) != 3 {
		t.Fatalf("got Authorization %.20q..., want a bearer JWT", authz)
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	json.Unmarshal(data, &c)
	return c
}
