package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
)

// Every request passes the same HTTP checks, whatever its method: a
// forwarded tools/call gets exactly what tools/list gets.
func TestRequestChecksForEveryMethod(t *testing.T) {
	rb := startRecordingBackend(t, false)
	gw, _ := tracedGateway(t, rb.srv.URL, 5*time.Second)
	c := rawInitialize(t, gw.url+"/mcp", nil)
	bodies := map[string]string{
		"tools/call":               `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo_echo","arguments":{}}}`,
		"tools/list":               `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`,
		"prompts/get":              `{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"x"}}`,
		"resources/read":           `{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"x://y"}}`,
		"ping":                     `{"jsonrpc":"2.0","id":5,"method":"ping"}`,
		"logging/setLevel":         `{"jsonrpc":"2.0","id":6,"method":"logging/setLevel","params":{"level":"info"}}`,
		"notifications/cancelled":  `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
		"a response":               `{"jsonrpc":"2.0","id":"tgs-1","result":{}}`,
		"initialize (new session)": `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`,
	}
	checks := []struct {
		name   string
		header http.Header
		host   string
		want   int
	}{
		{"DNS rebinding: a foreign Host", nil, "evil.example", http.StatusForbidden},
		{"a cross-origin browser request", http.Header{"Origin": {"http://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}, "", http.StatusForbidden},
		{"a wrong Content-Type", http.Header{"Content-Type": {"text/plain"}}, "", http.StatusUnsupportedMediaType},
		{"no Accept", http.Header{"Accept": {""}}, "", http.StatusBadRequest},
		{"Accept without event streams", http.Header{"Accept": {"application/json"}}, "", http.StatusBadRequest},
		{"an unknown protocol version", http.Header{"Mcp-Protocol-Version": {"1999-01-01"}}, "", http.StatusBadRequest},
	}
	for method, body := range bodies {
		for _, ch := range checks {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Session-Id", c.session)
			for k, v := range ch.header {
				req.Header[k] = v
			}
			if ch.host != "" {
				req.Host = ch.host
			}
			a := doRaw(t, req)
			cancel()
			if a.status != ch.want {
				t.Errorf("%s with %s: HTTP %d %s, want %d", method, ch.name, a.status, a.body, ch.want)
			}
		}
	}
	rb.mu.Lock()
	n := len(rb.bodies)
	rb.mu.Unlock()
	if n != 0 {
		t.Errorf("the backend received %d calls that failed the checks", n)
	}
	// The same session still works: the refusals cost nothing.
	if a := c.post(bodies["tools/call"], nil); a.status != http.StatusOK || a.msg["result"] == nil {
		t.Errorf("a good call after the refusals: HTTP %d %s", a.status, a.body)
	}
}

// A header a client sends can never choose the parent of the gateway's
// span: only W3C trace context (in _meta, then headers) does, and the HTTP
// span's context travels in the request's context.
func TestClientHeaderIsNeverSpanParent(t *testing.T) {
	rb := startRecordingBackend(t, false)
	gw, rec := tracedGateway(t, rb.srv.URL, 5*time.Second)
	c := rawInitialize(t, gw.url+"/mcp", nil)
	forged := "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, h := range []string{"Tracegate-Http-Span", "Tracegate-Client-Address", "Tracegate-Jsonrpc-Request-Id"} {
		a := c.post(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo_echo","arguments":{}}}`, http.Header{h: {forged}})
		if a.status != http.StatusOK {
			t.Fatalf("HTTP %d %s", a.status, a.body)
		}
	}
	var servers []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "tools/call echo_echo" && s.SpanKind() == trace.SpanKindServer {
			servers = append(servers, s)
		}
	}
	if len(servers) != 3 {
		t.Fatalf("got %d SERVER spans, want 3", len(servers))
	}
	for _, s := range servers {
		if s.Parent().IsValid() || s.SpanContext().TraceID().String() == "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("the SERVER span's parent is %s (trace %s): a client header chose it", s.Parent().SpanID(), s.SpanContext().TraceID())
		}
		for _, kv := range s.Attributes() {
			if strings.Contains(kv.Value.Emit(), forged) {
				t.Errorf("attribute %s = %q comes from a client header", kv.Key, kv.Value.Emit())
			}
		}
	}
}

// limits.max_sessions: past the limit, initialize gets 503 with
// Retry-After, and the open sessions keep working.
func TestMaxSessions(t *testing.T) {
	rb := startRecordingBackend(t, false)
	cfg := baseConfig(config.Backend{Name: "echo", URL: rb.srv.URL, Transport: config.TransportStreamable, Timeout: config.Duration(5 * time.Second)})
	cfg.Limits.MaxSessions = 2
	gw := startGateway(t, cfg, gateway.Options{})
	a := rawInitialize(t, gw.url+"/mcp", nil)
	rawInitialize(t, gw.url+"/mcp", nil)
	third := &rawMCP{t: t, endpoint: gw.url + "/mcp"}
	ans := third.post(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`, nil)
	if ans.status != http.StatusServiceUnavailable || ans.header.Get("Retry-After") == "" {
		t.Errorf("a third session: HTTP %d (Retry-After %q) %s, want 503 with Retry-After", ans.status, ans.header.Get("Retry-After"), ans.body)
	}
	if r := a.post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, nil); r.status != http.StatusOK {
		t.Errorf("an open session after the refusal: HTTP %d %s", r.status, r.body)
	}
}
