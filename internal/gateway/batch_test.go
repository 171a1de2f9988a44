package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tracegate/tracegate/examples/demo"
	"github.com/tracegate/tracegate/internal/gateway"
)

// A 2025-03-26 session may batch: each request goes through the pipeline
// on its own, and the answer is one array of their responses, in order.
func TestBatch20250326(t *testing.T) {
	w := startWeather(t, demo.WeatherOptions{})
	gw := startGateway(t, baseConfig(weatherCfg(w.url())), gateway.Options{})
	c := rawInitializeAt(t, gw.url+"/mcp", nil, "2025-03-26")

	a := c.post(`[
		{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"weather_get_weather","arguments":{"city":"Lisbon"}}},
		{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"x","progress":1}},
		{"jsonrpc":"2.0","id":"two","method":"ping"},
		{"jsonrpc":"2.0","id":3,"method":"no/such/method"},
		{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"nope","arguments":{}}},
		1,
		{"jsonrpc":"2.0","id":6,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}
	]`, nil)
	if a.status != http.StatusOK {
		t.Fatalf("got HTTP %d %s, want 200", a.status, a.body)
	}
	var got []map[string]any
	if err := json.Unmarshal(a.body, &got); err != nil {
		t.Fatalf("answer is not a JSON array: %v: %s", err, a.body)
	}
	want := []struct {
		id   any
		code float64 // 0: a result
	}{
		{float64(1), 0},
		{"two", 0},
		{float64(3), -32601},
		{float64(4), -32602},
		{nil, -32600},
		{float64(6), -32600}, // the session is already initialized
	}
	if len(got) != len(want) {
		t.Fatalf("got %d responses, want %d: %s", len(got), len(want), a.body)
	}
	for i, w := range want {
		if got[i]["id"] != w.id {
			t.Errorf("response %d: got id %v, want %v", i, got[i]["id"], w.id)
		}
		e, _ := got[i]["error"].(map[string]any)
		switch {
		case w.code == 0 && (e != nil || got[i]["result"] == nil):
			t.Errorf("response %d: got %v, want a result", i, got[i])
		case w.code != 0 && (e == nil || e["code"] != w.code):
			t.Errorf("response %d: got %v, want error %v", i, got[i], w.code)
		}
	}
	if res, _ := json.Marshal(got[0]["result"]); !strings.Contains(string(res), "Lisbon") {
		t.Errorf("tools/call result: got %s, want Lisbon's forecast", res)
	}

	// Only notifications and responses: accepted, with nothing to answer.
	a = c.post(`[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"tgs-99","result":{}}]`, nil)
	if a.status != http.StatusAccepted || len(a.body) != 0 {
		t.Errorf("notifications only: got HTTP %d %q, want 202 and no body", a.status, a.body)
	}

	// 2024-11-05 came before batching was removed: JSON-RPC 2.0's batches hold.
	a = rawInitializeAt(t, gw.url+"/mcp", nil, "2024-11-05").post(`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, nil)
	if a.status != http.StatusOK || string(a.body) != `[{"jsonrpc":"2.0","id":1,"result":{}}]` {
		t.Errorf("2024-11-05: got HTTP %d %s, want 200 and one ping result in an array", a.status, a.body)
	}
}

// A batch from a session of 2025-06-18 or later, or without a session,
// gets one -32600 that says why; so does a malformed, empty or oversized
// batch on a session that may batch.
func TestBatchRefused(t *testing.T) {
	w := startWeather(t, demo.WeatherOptions{})
	gw := startGateway(t, baseConfig(weatherCfg(w.url())), gateway.Options{})
	batch := `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]`
	big := "[" + strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"ping"},`, 64) + `{"jsonrpc":"2.0","id":1,"method":"ping"}]`
	old := rawInitializeAt(t, gw.url+"/mcp", nil, "2025-03-26")
	none := &rawMCP{t: t, endpoint: gw.url + "/mcp"}
	tests := []struct {
		name     string
		c        *rawMCP
		body     string
		code     int64
		contains string
	}{
		{"2025-11-25", rawInitializeAt(t, gw.url+"/mcp", nil, "2025-11-25"), batch, -32600, "removed in protocol revision 2025-06-18; this session uses 2025-11-25"},
		{"2025-06-18", rawInitializeAt(t, gw.url+"/mcp", nil, "2025-06-18"), batch, -32600, "removed in protocol revision 2025-06-18; this session uses 2025-06-18"},
		{"no session", none, `[{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}]`, -32600, "initialize must not be batched"},
		{"stateless 2026-07-28", none, batch, -32600, "need a session"},
		{"2025-03-26, malformed", old, `[{"jsonrpc":"2.0","id":1,"method":"ping"},`, -32700, "invalid JSON-RPC message"},
		{"2025-03-26, empty", old, `[]`, -32600, "an empty batch"},
		{"2025-03-26, over 64 messages", old, big, -32600, "more than 64 messages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := http.Header{}
			if tt.c == none && strings.Contains(tt.name, "2026") {
				extra.Set("Mcp-Protocol-Version", "2026-07-28")
			}
			a := tt.c.post(tt.body, extra)
			if a.status != http.StatusBadRequest {
				t.Errorf("got HTTP %d %s, want 400", a.status, a.body)
			}
			code, msg, ok := a.rpcError()
			if !ok || code != tt.code || !strings.Contains(msg, tt.contains) {
				t.Errorf("got %s, want error %d containing %q", a.body, tt.code, tt.contains)
			}
			if a.msg["id"] != nil {
				t.Errorf("got id %v, want null", a.msg["id"])
			}
		})
	}
}

// What a backend sends during a batched call (here, progress) reaches the
// client on the session's GET stream, while the batch's answer carries
// only the responses.
func TestBatchProgressOnStream(t *testing.T) {
	w := startWeather(t, demo.WeatherOptions{SlowDelay: 250 * time.Millisecond})
	gw := startGateway(t, baseConfig(weatherCfg(w.url())), gateway.Options{})
	c := rawInitializeAt(t, gw.url+"/mcp", nil, "2025-03-26")
	events := openStream(t, c)

	a := c.post(`[{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"weather_slow_forecast","arguments":{"city":"Oslo"},"_meta":{"progressToken":"p7"}}}]`, nil)
	if a.status != http.StatusOK || !strings.HasPrefix(strings.TrimSpace(string(a.body)), "[") {
		t.Fatalf("got HTTP %d %s, want 200 and an array", a.status, a.body)
	}
	var got []map[string]any
	if err := json.Unmarshal(a.body, &got); err != nil || len(got) != 1 || got[0]["result"] == nil {
		t.Fatalf("got %s, want one result", a.body)
	}
	progress := 0
	timeout := time.After(5 * time.Second)
	for progress < 5 {
		select {
		case ev := <-events:
			if strings.Contains(ev, `"notifications/progress"`) && strings.Contains(ev, `"p7"`) {
				progress++
			}
		case <-timeout:
			t.Fatalf("got %d progress notifications on the GET stream, want 5", progress)
		}
	}
}

// openStream opens the session's GET stream and returns its data lines.
func openStream(t *testing.T, c *rawMCP) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", c.session)
	req.Header.Set("MCP-Protocol-Version", c.version)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET stream: got HTTP %d, want 200", resp.StatusCode)
	}
	out := make(chan string, 64)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				select {
				case out <- v:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}
