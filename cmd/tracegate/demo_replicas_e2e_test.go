//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var bannerReplica = regexp.MustCompile(`(?m)^  (?:replicas)?\s+([0-9a-f]{8})   (http://\S+)/mcp$`)

// instanceOf returns the service.instance.id of the process that made s.
func instanceOf(s apiSpan, resources []map[string]any) string {
	if s.Resource < 0 || s.Resource >= len(resources) {
		return ""
	}
	id, _ := resources[s.Resource]["service.instance.id"].(string)
	return id
}

// TestDemoReplicas runs `tracegate demo -replicas 3` as a user would, and
// talks to it as an agent does: one stateful session through the printed
// MCP endpoint, a round robin without stickiness. The calls are spread
// over the three replicas, a sampling answer that lands on another replica
// than the one whose backend asked is forwarded to it, and the one viewer
// shows every replica's spans, told apart by service.instance.id. Ctrl-C
// then stops everything, Redis included.
func TestDemoReplicas(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not on PATH")
	}
	d := startDemo(t, "-replicas", "3")

	var ids []string
	for _, m := range bannerReplica.FindAllStringSubmatch(d.banner, -1) {
		ids = append(ids, m[1])
	}
	if len(ids) != 3 || ids[0] == ids[1] || ids[1] == ids[2] || ids[0] == ids[2] {
		t.Fatalf("banner: got replica ids %q, want three distinct:\n%s", ids, d.banner)
	}
	if !strings.Contains(d.banner, "round robin over 3 replicas") || !regexp.MustCompile(`(?m)^  redis          redis://127\.0\.0\.1:\d+/0 `).MatchString(d.banner) {
		t.Errorf("banner does not name the round robin and Redis:\n%s", d.banner)
	}
	res, err := http.Get(d.adminURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: got %d, want 200", res.StatusCode)
	}
	var ready struct {
		Cluster struct {
			Replica, Redis string
			Replicas       int
		}
	}
	if code, err := getJSON(d.adminURL+"/readyz", &ready); code != http.StatusOK || err != nil ||
		ready.Cluster.Replica != ids[0] || ready.Cluster.Redis != "up" || ready.Cluster.Replicas != 3 {
		t.Errorf("/readyz: got %d %v %+v, want replica %s's, with Redis up and 3 replicas", code, err, ready.Cluster, ids[0])
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var sampled atomic.Int64
	c := mcp.NewClient(&mcp.Implementation{Name: "replicas-test", Version: "1"}, &mcp.ClientOptions{
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			sampled.Add(1)
			return &mcp.CreateMessageResult{Model: "m", Role: "assistant", Content: &mcp.TextContent{Text: "sunny"}}, nil
		},
	})
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: d.mcpURL}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("connecting through the round robin: %v\nstderr:\n%s", err, d.stderr.String())
	}
	defer cs.Close()

	// Six calls in a row, each with a trace of its own, so the viewer
	// says which replica served it.
	var traces []string
	for i := range 6 {
		tp := randomTraceparent()
		r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "weather_get_weather", Arguments: map[string]any{"city": "Oslo"}, Meta: mcp.Meta{"traceparent": tp}})
		if err != nil || r.IsError {
			t.Fatalf("call %d through the round robin: %v %+v\nstderr:\n%s", i, err, r, d.stderr.String())
		}
		traces = append(traces, tp[3:35])
	}
	served := map[string]int{}
	for _, id := range traces {
		var body struct {
			Spans     []apiSpan
			Resources []map[string]any
		}
		poll(t, 20*time.Second, func() bool {
			code, err := getJSON(d.adminURL+"/api/traces/"+id, &body)
			return code == http.StatusOK && err == nil && findSpan(body.Spans, gwServer) != nil
		}, func() string { return "no gateway span in trace " + id })
		served[instanceOf(*findSpan(body.Spans, gwServer), body.Resources)]++
	}
	for _, id := range ids {
		if served[id] == 0 {
			t.Errorf("replica %s served none of 6 calls in a row; served: %v", id, served)
		}
	}
	if len(served) != 3 {
		t.Errorf("the calls were served by %v, want only the three printed replicas %v", served, ids)
	}

	// The answer to a sampling request goes out on the next replica in
	// turn, never the one whose backend asked: it is forwarded there.
	for i := range 3 {
		r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "weather_ask_assistant", Arguments: map[string]any{"city": "Lima"}})
		if err != nil || r.IsError || len(r.Content) != 1 {
			t.Fatalf("sampling call %d: %v %+v\nstderr:\n%s", i, err, r, d.stderr.String())
		}
		if tc, ok := r.Content[0].(*mcp.TextContent); !ok || tc.Text != "assistant says: sunny" {
			t.Fatalf("sampling call %d: got %#v, want the client's answer", i, r.Content[0])
		}
	}
	if n := sampled.Load(); n != 3 {
		t.Errorf("the client sampled %d times, want 3", n)
	}
	var list struct {
		Traces []struct {
			TraceID string `json:"trace_id"`
		}
	}
	poll(t, 20*time.Second, func() bool {
		code, err := getJSON(d.adminURL+"/api/traces?attr=tracegate.forward.operation%3Danswer", &list)
		return code == http.StatusOK && err == nil && len(list.Traces) > 0
	}, func() string { return "no trace with a forwarded answer\nstderr:\n" + d.stderr.String() })
	var fwd struct {
		Spans     []apiSpan
		Resources []map[string]any
	}
	var client, server *apiSpan
	poll(t, 20*time.Second, func() bool {
		getJSON(d.adminURL+"/api/traces/"+list.Traces[0].TraceID, &fwd)
		client = findSpan(fwd.Spans, viewHop{"tracegate.forward", "client", "tracegate"})
		server = findSpan(fwd.Spans, viewHop{"tracegate.forward", "server", "tracegate"})
		return client != nil && server != nil
	}, func() string {
		return fmt.Sprintf("forward trace %s lacks a client or server span: %+v", list.Traces[0].TraceID, fwd.Spans)
	})
	from, to := instanceOf(*client, fwd.Resources), instanceOf(*server, fwd.Resources)
	if from == to || !slices.Contains(ids, from) || !slices.Contains(ids, to) {
		t.Errorf("forward from replica %q to %q: want two of the printed replicas %v", from, to, ids)
	}
	if server.ParentSpanID != client.SpanID || client.Attributes["tracegate.replica.target"] != to {
		t.Errorf("forward: server span's parent %s, client span %s targeting %v; want the client span the parent, targeting %s",
			server.ParentSpanID, client.SpanID, client.Attributes["tracegate.replica.target"], to)
	}
	cs.Close()

	// Ctrl-C: every child stops, the stdio backends and Redis alike.
	kids := descendants(d.pid)
	var redis []proc
	for _, k := range kids {
		if len(k.cmdline) > 0 && strings.Contains(k.cmdline[0], "redis-server") {
			redis = append(redis, k)
		}
	}
	if len(redis) != 1 {
		t.Fatalf("want one redis-server child of the demo, got %+v", redis)
	}
	d.interrupt(t, 30*time.Second, kids)
}

// TestDemoReplicasWithoutRedis: with no redis-server on PATH, the demo
// says so and how to install it, and starts nothing.
func TestDemoReplicasWithoutRedis(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(selfBin, "demo", "-replicas", "3", "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	cmd.Env = []string{"PATH=" + t.TempDir(), "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitFail {
		t.Fatalf("got %v, want exit status %d\n%s", err, exitFail, out)
	}
	for _, want := range []string{"tracegate demo: -replicas 3: redis-server not found on PATH", "apt-get install redis-server", "brew install redis"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "tracegate demo is running") {
		t.Errorf("the demo started without Redis:\n%s", out)
	}
}
