package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
)

// FuzzHandler sends arbitrary request bodies, on a live session and on
// none, into a real gateway in front of a real backend. Whatever arrives,
// the gateway answers with a status it defines and, for JSON, valid JSON,
// and the session then still serves a good call: bad input costs its
// sender an error and nobody else anything.
func FuzzHandler(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo_echo","arguments":{"a":1}}}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"reason":"x"}}`,
		`{"jsonrpc":"2.0","id":"tgs-1","result":{}}`,
		`{"jsonrpc":"2.0","id":3,"method":"resources/subscribe","params":{"uri":"x://y"}}`,
		`{"jsonrpc":"2.0","id":4,"method":"prompts/get","params":{"name":"p","_meta":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","progressToken":7}}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, `{`, ``, `null`, `{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	// One gateway for every input, as in production: what one input does
	// must not break the next.
	rb := startRecordingBackend(f, false)
	cfg := baseConfig(config.Backend{Name: "echo", URL: rb.srv.URL, Transport: config.TransportStreamable, Timeout: config.Duration(5 * time.Second)})
	gw := startGateway(f, cfg, gateway.Options{})
	good := rawInitialize(f, gw.url+"/mcp", nil)
	f.Fuzz(func(t *testing.T, body []byte, withSession bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, gw.url+"/mcp", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if withSession {
			req.Header.Set("Mcp-Session-Id", good.session)
		}
		a := doRaw(t, req)
		switch a.status {
		case http.StatusOK, http.StatusAccepted, http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("%q: HTTP %d %s", body, a.status, a.body)
		}
		if strings.HasPrefix(a.header.Get("Content-Type"), "application/json") && !json.Valid(a.body) {
			t.Fatalf("%q: invalid JSON answer %s", body, a.body)
		}
		c := *good
		c.t = t
		if r := c.post(`{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"echo_echo","arguments":{}}}`, nil); r.status != http.StatusOK || r.msg["result"] == nil {
			t.Fatalf("after %q the session no longer serves: HTTP %d %s", body, r.status, r.body)
		}
	})
}
