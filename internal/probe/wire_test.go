package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptedServer answers JSON-RPC by method with fixed bodies, and records
// the responses the client posts back.
type scriptedServer struct {
	mu      sync.Mutex
	replies []map[string]any // client responses to server requests
}

func (s *scriptedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg map[string]any
	_ = json.NewDecoder(r.Body).Decode(&msg)
	if _, isResponse := msg["result"]; isResponse || msg["error"] != nil {
		s.mu.Lock()
		s.replies = append(s.replies, msg)
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		return
	}
	id, _ := json.Marshal(msg["id"])
	switch msg["method"] {
	case "initialize":
		// A stream with a notification, a server request, a response for
		// another id, then the response; CRLF line endings.
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": hello\r\n\r\n")
		fmt.Fprint(w, "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"hi\"}}\r\n\r\n")
		fmt.Fprint(w, "data: {\"jsonrpc\":\"2.0\",\"id\":\"srv-1\",\"method\":\"ping\"}\r\n\r\n")
		fmt.Fprint(w, "data: {\"jsonrpc\":\"2.0\",\"id\":\"srv-2\",\"method\":\"sampling/createMessage\",\"params\":{}}\r\n\r\n")
		fmt.Fprint(w, "data: {\"jsonrpc\":\"2.0\",\"id\":999,\"result\":{}}\r\n\r\n")
		fmt.Fprintf(w, "id: e1\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"protocolVersion\":\"2025-06-18\",\"serverInfo\":{\"name\":\"scripted\",\"version\":\"0.1\"},\"capabilities\":{}}}\r\n\r\n", id)
	case "notifications/initialized":
		w.WriteHeader(http.StatusAccepted)
	case "tools/list":
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"tools":[{"name":"a","inputSchema":{"type":"object"}}],"nextCursor":"p2"}}`, id)
	case "tools/call":
		// Stateless servers answer bad requests with HTTP 4xx and a
		// JSON-RPC error body.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32020,"message":"header mismatch"}}`, id)
	case "resources/read":
		// The stream ends without the response.
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n")
	case "prompts/get":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"jsonrpc":"2.0","id":12345,"result":{}}`)
	default:
		w.WriteHeader(http.StatusAccepted)
	}
}

func TestStreamableHandlesStreamsAndErrorBodies(t *testing.T) {
	t.Parallel()
	srv := &scriptedServer{}
	url := serve(t, srv)
	report, err := Run(context.Background(), Options{URL: url, Tool: "a", Resource: "file:///x", Prompt: "p", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name, detail, errSub string
		ok                   bool
	}{
		{"initialize", "server=scripted 0.1 protocol=2025-06-18", "", true},
		{"tools/list", "1 tool (first page)", "", true},
		{"tools/call a", "", "JSON-RPC error -32020: header mismatch (HTTP 400 Bad Request)", false},
		{"resources/read", "", "event stream ended before the response arrived", false},
		{"prompts/get p", "", "response id 12345 does not match request id", false},
	}
	if len(report.Steps) != len(want) {
		t.Fatalf("got steps %+v, want %d", report.Steps, len(want))
	}
	for i, w := range want {
		got := report.Steps[i]
		if got.Name != w.name || got.OK != w.ok || got.Detail != w.detail || !strings.Contains(got.Error, w.errSub) {
			t.Errorf("step %d: got %+v, want %+v", i, got, w)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.replies) != 2 {
		t.Fatalf("got %d replies to server requests, want 2: %v", len(srv.replies), srv.replies)
	}
	if srv.replies[0]["id"] != "srv-1" || srv.replies[0]["result"] == nil {
		t.Errorf("got ping reply %v, want an empty result for srv-1", srv.replies[0])
	}
	if srv.replies[1]["id"] != "srv-2" || srv.replies[1]["error"] == nil {
		t.Errorf("got sampling reply %v, want an error for srv-2", srv.replies[1])
	}
}

func TestLegacySSEDiagnosesBadStreams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr string
	}{
		{"json instead of a stream", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
		}, "try -transport streamable"},
		{"no endpoint event", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: message\ndata: {}\n\n")
		}, `first SSE event is "message", want "endpoint"`},
		{"stream closes after the endpoint", func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				w.WriteHeader(http.StatusAccepted)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: endpoint\ndata: /mcp?session=1\n\n")
		}, "SSE stream closed by the server"},
		{"post refused", func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				http.Error(w, "session not found", http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: endpoint\ndata: /mcp?session=1\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, "HTTP 404 Not Found: the server no longer knows the session"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := serve(t, tc.handler)
			report, err := Run(context.Background(), Options{URL: url, Transport: TransportSSE, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if report.OK || len(report.Steps) != 1 || report.Steps[0].Name != "initialize" || !strings.Contains(report.Steps[0].Error, tc.wantErr) {
				t.Errorf("got %+v, want a failed initialize containing %q", report.Steps, tc.wantErr)
			}
		})
	}
}
