package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/cluster"
	"github.com/tracegate/tracegate/internal/otlptest"
	"github.com/tracegate/tracegate/internal/redistest"
)

// Three `tracegate serve` processes share sessions through a real
// redis-server, behind a round robin without stickiness, and export their
// spans to one OTLP receiver.

type servedCluster struct {
	redis    *redistest.Server
	recv     *otlptest.Receiver
	replicas []*servedProcess
	front    string // the round robin's MCP URL
	inits    atomic.Int64
}

func startServedCluster(t *testing.T, n int) *servedCluster {
	t.Helper()
	sc := &servedCluster{redis: redistest.Start(t), recv: otlptest.NewReceiver(t)}
	backend := weatherServer(t)
	var targets []*url.URL
	for range n {
		addr := freeAddr(t)
		p := startServe(t, fmt.Sprintf(`
listen: %s
admin_listen: "off"
backends:
  - {name: weather, url: %s}
telemetry:
  exporter: otlp
  otlp: {endpoint: %s}
  viewer: {enabled: false}
cluster:
  redis_url: %s
  advertise_url: http://%s
`, addr, backend, sc.recv.URL(), sc.redis.URL(), addr))
		sc.replicas = append(sc.replicas, p)
		u, _ := url.Parse("http://" + addr)
		targets = append(targets, u)
	}
	rr := cluster.NewRoundRobin(targets, nil)
	front := httptest.NewServer(countInits(rr, &sc.inits))
	t.Cleanup(front.Close)
	sc.front = front.URL + "/mcp"
	// Wait for the backend to be routed on every replica.
	for range 2 * n {
		cs, err := agent(t, sc.front, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		callUntilReady(t, cs, "weather_get_weather", map[string]any{"city": "Oslo"})
		cs.Close()
	}
	return sc
}

func (sc *servedCluster) kill(i int) {
	sc.replicas[i].cmd.Process.Kill()
	<-sc.replicas[i].exited
}

func TestReplicasTraceCrossesTheHop(t *testing.T) {
	sc := startServedCluster(t, 3)
	cs, err := agent(t, sc.front, "", &mcp.ClientOptions{
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: "m", Role: "assistant", Content: &mcp.TextContent{Text: "mild"}}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// With three replicas in turn, the client's answer to the sampling
	// request lands on a replica other than the one whose backend asked,
	// which forwards it.
	for range 3 {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "weather_ask_assistant", Arguments: map[string]any{"city": "Oslo"}})
		if err != nil || res.IsError {
			t.Fatalf("sampling through the replicas: %v %+v", err, res)
		}
	}
	var client, server otlptest.Span
	deadline := time.Now().Add(15 * time.Second)
	for {
		clients := sc.recv.FindSpans(func(s otlptest.Span) bool { return s.Name == "tracegate.forward" && s.Kind == "client" })
		for _, c := range clients {
			if s, ok := sc.recv.FindSpan(func(s otlptest.Span) bool {
				return s.Name == "tracegate.forward" && s.Kind == "server" && s.ParentSpanID == c.SpanID
			}); ok {
				client, server = c, s
			}
		}
		if server.SpanID != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if server.SpanID == "" {
		t.Fatalf("no tracegate.forward SERVER span whose parent is a tracegate.forward CLIENT span; spans:\n%v", spanNames(sc.recv.Spans()))
	}
	if client.TraceID != server.TraceID {
		t.Errorf("the forward left trace %s and arrived in trace %s", client.TraceID, server.TraceID)
	}
	if client.Attrs["tracegate.replica.target"] == nil || client.Attrs["tracegate.replica.target"] != server.Attrs["tracegate.replica.target"] && server.Attrs["tracegate.replica.source"] == nil {
		t.Errorf("forward attributes: client %v, server %v", client.Attrs, server.Attrs)
	}
	// The answer carries no trace context, so the forward begins a trace
	// of its own; the receiving span links to the call it answers.
	if len(server.Links) != 1 {
		t.Fatalf("the forward's SERVER span has %d links, want one to the call", len(server.Links))
	}
	var call otlptest.Span
	var found bool
	for end := time.Now().Add(10 * time.Second); !found && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		call, found = sc.recv.FindSpan(func(s otlptest.Span) bool {
			return s.SpanID == server.Links[0].SpanID && s.Name == "tools/call weather_ask_assistant"
		})
	}
	if !found || call.Kind != "server" {
		t.Errorf("the forward links to %+v, want the tools/call SERVER span", server.Links[0])
	}
	if client.Attrs["tracegate.forward.operation"] != "answer" {
		t.Errorf("forwarded operation %v, want answer", client.Attrs["tracegate.forward.operation"])
	}
}

func spanNames(spans []otlptest.Span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "%s %s %s parent=%s\n", s.Kind, s.Name, s.SpanID, s.ParentSpanID)
	}
	return b.String()
}

// A replica killed with SIGKILL under load loses no session: every client
// carries on with the session it has, without initializing again. Only
// calls in flight on the dead replica fail, with an error, not a hang.
func TestReplicasKillLosesNoSession(t *testing.T) {
	sc := startServedCluster(t, 3)
	const clients = 6
	var sessions []*mcp.ClientSession
	for range clients {
		cs, err := agent(t, sc.front, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, cs)
	}
	initsBefore := sc.inits.Load()
	var (
		killed    atomic.Bool
		ok, after atomic.Int64
		mu        sync.Mutex
		failures  []string
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, cs := range sessions {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				wasKilled := killed.Load()
				_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "weather_get_weather", Arguments: map[string]any{"city": "Oslo"}})
				cancel()
				switch {
				case err == nil:
					ok.Add(1)
					if wasKilled {
						after.Add(1)
					}
				default:
					mu.Lock()
					failures = append(failures, fmt.Sprintf("killed=%v: %v", wasKilled, err))
					mu.Unlock()
					if errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("a call hung until its deadline: %v", err)
					}
				}
			}
		})
	}
	time.Sleep(time.Second)
	sc.kill(1)
	killed.Store(true)
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()

	if after.Load() < clients*5 {
		t.Errorf("%d calls succeeded after the kill, want every client to carry on", after.Load())
	}
	// A failure is allowed only for a call in flight on the killed
	// replica: at most one per client, and none once it was gone.
	if len(failures) > clients {
		t.Errorf("%d calls failed, want at most one per client (those in flight on the dead replica):\n%s", len(failures), strings.Join(failures, "\n"))
	}
	if got := sc.inits.Load() - initsBefore; got != 0 {
		t.Errorf("clients initialized %d new sessions after the kill, want none", got)
	}
	t.Logf("%d calls succeeded (%d after the kill), %d failed", ok.Load(), after.Load(), len(failures))
}

// Redis stopped: sessions carry on where they are held, and new ones work;
// Redis back (empty, as after a crash without persistence): sessions are
// written back, and a replica that never saw a session serves it.
func TestReplicasRedisDownAndBack(t *testing.T) {
	sc := startServedCluster(t, 3)
	cs, err := agent(t, sc.front, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	call := func(cs *mcp.ClientSession) error {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "weather_get_weather", Arguments: map[string]any{"city": "Oslo"}})
		return err
	}
	// Warm: every replica has served the session.
	for range 6 {
		if err := call(cs); err != nil {
			t.Fatal(err)
		}
	}
	sc.redis.Stop()
	for i := range 9 {
		start := time.Now()
		if err := call(cs); err != nil {
			t.Fatalf("call %d with Redis down: %v", i, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("call %d with Redis down took %v", i, d)
		}
	}
	// A new session works on the replica that takes it.
	alone, err := agent(t, sc.replicas[0].mcpURL, "", nil)
	if err != nil {
		t.Fatalf("a new session with Redis down: %v", err)
	}
	for i := range 3 {
		if err := call(alone); err != nil {
			t.Fatalf("call %d of a session opened with Redis down: %v", i, err)
		}
	}
	// Redis comes back empty, as after a crash without persistence. Once
	// the replicas notice (health pings every 500ms), each writes back
	// the sessions it holds, and the session only one replica knew is
	// served by all of them.
	sc.redis.Restart()
	time.Sleep(2 * time.Second)
	moved, err := agent(t, sc.front, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	moved.Close()
	for i := range 6 {
		if err := call(cs); err != nil {
			t.Fatalf("call %d of the old session after Redis came back: %v", i, err)
		}
	}
	// The session opened during the outage, now through the round robin.
	sid := alone.ID()
	for i, p := range sc.replicas {
		if code := postToolsList(t, p.mcpURL, sid); code != http.StatusOK {
			t.Errorf("replica %d answered %d for the session opened while Redis was down, want 200", i, code)
		}
	}
}

// postToolsList sends tools/list on session sid to url and returns the
// HTTP status.
func postToolsList(t *testing.T, url, sid string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// countInits counts the POSTs that open a session (those without a
// session id: initialize).
func countInits(h http.Handler, n *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Header.Get("Mcp-Session-Id") == "" {
			n.Add(1)
		}
		h.ServeHTTP(w, r)
	})
}
