package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawMCP speaks MCP over Streamable HTTP with plain net/http, so tests can
// send what a real client would not: broken JSON, bad headers, odd _meta.
type rawMCP struct {
	t        testing.TB
	endpoint string
	header   http.Header // added to every request
	session  string      // Mcp-Session-Id after initialize
	version  string      // MCP-Protocol-Version after initialize
}

// rawAnswer is one HTTP exchange: the status, the headers, the raw body,
// and the JSON-RPC response in it (from a JSON body or from the SSE event
// that carries it), nil when there is none.
type rawAnswer struct {
	status int
	header http.Header
	body   []byte
	msg    map[string]any
}

// rawInitialize opens a stateful session: initialize, then the initialized
// notification, as the 2025-11-25 lifecycle requires.
func rawInitialize(t testing.TB, endpoint string, header http.Header) *rawMCP {
	t.Helper()
	return rawInitializeAt(t, endpoint, header, "2025-11-25")
}

// rawInitializeAt opens a stateful session of the given revision.
func rawInitializeAt(t testing.TB, endpoint string, header http.Header, version string) *rawMCP {
	t.Helper()
	c := &rawMCP{t: t, endpoint: endpoint, header: header}
	a := c.post(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"`+version+`","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`, nil)
	if a.status != http.StatusOK || a.msg == nil || a.msg["result"] == nil {
		t.Fatalf("initialize: got HTTP %d %s", a.status, a.body)
	}
	if got, _ := a.msg["result"].(map[string]any)["protocolVersion"].(string); got != version {
		t.Fatalf("initialize: got protocolVersion %q, want %q", got, version)
	}
	c.session = a.header.Get("Mcp-Session-Id")
	if c.session == "" {
		t.Fatal("initialize: no Mcp-Session-Id")
	}
	c.version = version
	if a := c.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil); a.status != http.StatusAccepted {
		t.Fatalf("notifications/initialized: got HTTP %d %s, want 202", a.status, a.body)
	}
	return c
}

// post sends body with the session's headers, then extra.
func (c *rawMCP) post(body string, extra http.Header) rawAnswer {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
	}
	if c.version != "" {
		req.Header.Set("MCP-Protocol-Version", c.version)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	return doRaw(c.t, req)
}

func doRaw(t testing.TB, req *http.Request) rawAnswer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading answer: %v", err)
	}
	a := rawAnswer{status: resp.StatusCode, header: resp.Header, body: body}
	switch ct := resp.Header.Get("Content-Type"); {
	case strings.HasPrefix(ct, "text/event-stream"):
		a.msg = sseResponse(body)
	case strings.HasPrefix(ct, "application/json"):
		var m map[string]any
		if json.Unmarshal(body, &m) == nil {
			a.msg = m
		}
	}
	return a
}

// sseResponse returns the first JSON-RPC response (not a notification or
// a request) among the SSE events of body.
func sseResponse(body []byte) map[string]any {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var data strings.Builder
	flush := func() map[string]any {
		defer data.Reset()
		var m map[string]any
		if data.Len() == 0 || json.Unmarshal([]byte(data.String()), &m) != nil {
			return nil
		}
		if _, isCall := m["method"]; isCall {
			return nil
		}
		return m
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if m := flush(); m != nil {
				return m
			}
			continue
		}
		if v, ok := strings.CutPrefix(line, "data:"); ok {
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(v, " "))
		}
	}
	return flush()
}

// rpcError returns the code and message of a JSON-RPC error answer.
func (a rawAnswer) rpcError() (code int64, message string, ok bool) {
	e, ok := a.msg["error"].(map[string]any)
	if !ok {
		return 0, "", false
	}
	c, _ := e["code"].(float64)
	m, _ := e["message"].(string)
	return int64(c), m, true
}
