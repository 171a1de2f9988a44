package gateway_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracegate/tracegate/examples/demo"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
)

// countingHandler counts log records by level and keeps their messages.
type countingHandler struct {
	mu   sync.Mutex
	n    map[slog.Level]int
	msgs []string
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = map[slog.Level]int{}
	}
	h.n[r.Level]++
	h.msgs = append(h.msgs, r.Level.String()+" "+r.Message)
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func (h *countingHandler) count(l slog.Level) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[l]
}

// Names and ids past their bounds are refused before they reach
// telemetry, and nothing a client sends writes an ERROR line.
func TestAbusiveInputIsBoundedAndQuiet(t *testing.T) {
	logs := &countingHandler{}
	rb := startRecordingBackend(t, false)
	cfg := baseConfig(config.Backend{Name: "echo", URL: rb.srv.URL, Transport: config.TransportStreamable, Timeout: config.Duration(5 * time.Second)})
	gw := startGateway(t, cfg, gateway.Options{Logger: slog.New(logs)})
	c := rawInitialize(t, gw.url+"/mcp", nil)

	long := strings.Repeat("x", 300)
	for _, tt := range []struct {
		name, body string
		code       int64
	}{
		{"a long method", `{"jsonrpc":"2.0","id":1,"method":"` + long + `"}`, -32600},
		{"a long id", `{"jsonrpc":"2.0","id":"` + long + `","method":"ping"}`, -32600},
		{"an unknown method", `{"jsonrpc":"2.0","id":1,"method":"tools/nope"}`, -32601},
		{"a long unknown tool", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + strings.Repeat("t", 1<<20) + `"}}`, -32602},
		{"params not an object", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]}`, -32602},
		{"a second initialize", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`, -32600},
	} {
		a := c.post(tt.body, nil)
		code, msg, ok := a.rpcError()
		if !ok || code != tt.code {
			t.Errorf("%s: HTTP %d, error %d %q, want JSON-RPC %d", tt.name, a.status, code, msg, tt.code)
		}
		if len(msg) > 512 {
			t.Errorf("%s: the error message is %d bytes: a client's name must not come back unbounded", tt.name, len(msg))
		}
	}
	// Requests without a session and broken JSON, too.
	none := &rawMCP{t: t, endpoint: gw.url + "/mcp"}
	none.post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
	none.post(`{"jsonrpc":`, nil)
	if n := logs.count(slog.LevelError); n != 0 {
		t.Errorf("client input wrote %d ERROR lines: %v", n, logs.msgs)
	}
}

// A backend going down and up with many idle sessions open is a few log
// lines, not one per session.
func TestBackendCycleLogsOnceNotPerSession(t *testing.T) {
	logs := &countingHandler{}
	w := startWeather(t, demo.WeatherOptions{})
	gw := startGateway(t, baseConfig(weatherCfg(w.url())), gateway.Options{Logger: slog.New(logs)})
	var opened atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				rawInitialize(t, gw.url+"/mcp", nil)
				opened.Add(1)
			}
		})
	}
	wg.Wait()
	before := len(logs.msgs)
	w.stop()
	eventually(t, 10*time.Second, "the backend down", func() bool { return gw.gw.Readiness().Status != "ready" })
	w.restart(t)
	eventually(t, 10*time.Second, "the backend back", func() bool { return gw.gw.Readiness().Status == "ready" })
	logs.mu.Lock()
	lines := logs.msgs[before:]
	logs.mu.Unlock()
	if len(lines) > 10 {
		t.Errorf("a down/up cycle with %d sessions wrote %d log lines: %v", opened.Load(), len(lines), lines)
	}
}
