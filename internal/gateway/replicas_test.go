package gateway_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/cluster"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
	"github.com/tracegate/tracegate/internal/plugin"
	"github.com/tracegate/tracegate/internal/redistest"
)

// Replicas share sessions through a real redis-server. Every test runs
// three replicas behind a round robin without stickiness, so consecutive
// requests of one session land on different replicas.

// replica is one gateway of a test cluster.
type replica struct {
	gw   *gateway.Gateway
	cl   *cluster.Cluster
	srv  *http.Server
	url  string
	hits atomic.Int64 // MCP requests served (forwards between replicas not counted)
	sid  atomic.Value // the last Mcp-Session-Id a request named
}

type testCluster struct {
	redis    *redistest.Server
	replicas []*replica
	front    string // the round robin's base URL
}

func startCluster(t *testing.T, n int, cfg func() *config.Config, opts func(c *cluster.Cluster) gateway.Options) *testCluster {
	t.Helper()
	tc := &testCluster{redis: redistest.Start(t)}
	var targets []*url.URL
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r := &replica{url: "http://" + ln.Addr().String()}
		c := cfg()
		c.Cluster = &config.Cluster{RedisURL: tc.redis.URL(), AdvertiseURL: r.url}
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		r.cl, err = cluster.New(*c.Cluster, cluster.Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		o := gateway.Options{}
		if opts != nil {
			o = opts(r.cl)
		}
		if o.Logger == nil {
			o.Logger = quiet
		}
		o.KeepAlive, o.MinBackoff = time.Second, 20*time.Millisecond
		r.cl.Start(context.Background())
		o.Cluster = r.cl
		if r.gw, err = gateway.New(c, o); err != nil {
			t.Fatal(err)
		}
		r.gw.Start(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = r.gw.WaitReady(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		h := r.gw.Handler()
		r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if strings.HasPrefix(req.URL.Path, "/mcp") {
				r.hits.Add(1)
				if id := req.Header.Get("Mcp-Session-Id"); id != "" {
					r.sid.Store(id)
				}
			}
			h.ServeHTTP(w, req)
		})}
		go r.srv.Serve(ln)
		t.Cleanup(func() {
			r.srv.Close()
			r.gw.Close()
			r.cl.Close()
		})
		tc.replicas = append(tc.replicas, r)
		u, _ := url.Parse(r.url)
		targets = append(targets, u)
	}
	// Every replica knows every other before the test begins.
	for _, r := range tc.replicas {
		if err := r.cl.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := len(r.cl.Members()); got != n {
			t.Fatalf("a replica knows %d members, want %d", got, n)
		}
	}
	front := httptest.NewServer(cluster.NewRoundRobin(targets, nil))
	t.Cleanup(front.Close)
	tc.front = front.URL
	return tc
}

// statefulSession makes the go-sdk client open a session (initialize)
// rather than speak the stateless revision.
var statefulSession = &mcp.ClientSessionOptions{ProtocolVersion: stateful}

// roundTrips is the Redis round trips of every replica so far.
func (tc *testCluster) roundTrips() int64 {
	var n int64
	for _, r := range tc.replicas {
		n += r.cl.RoundTrips()
	}
	return n
}

// clusterLab is a backend with what crosses replicas: sampling, a call
// that blocks until cancelled, and a resource clients subscribe to.
type clusterLab struct {
	url        string
	srv        *mcp.Server
	started    chan struct{}
	cancelled  chan error
	subscribed chan string
}

const labResource = "lab://counter"

func startClusterLab(t *testing.T) *clusterLab {
	t.Helper()
	l := &clusterLab{started: make(chan struct{}, 16), cancelled: make(chan error, 16), subscribed: make(chan string, 16)}
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s := mcp.NewServer(&mcp.Implementation{Name: "lab", Version: "1.0.0"}, &mcp.ServerOptions{
		SubscribeHandler: func(_ context.Context, r *mcp.SubscribeRequest) error {
			l.subscribed <- r.Params.URI
			return nil
		},
		UnsubscribeHandler: func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
	})
	mcp.AddTool(s, &mcp.Tool{Name: "block"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		l.started <- struct{}{}
		select {
		case <-ctx.Done():
			l.cancelled <- ctx.Err()
			return nil, nil, ctx.Err()
		case <-release:
			return nil, nil, nil
		}
	})
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in struct{ Text string }) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "sample"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
			MaxTokens: 10, Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "hello"}}}})
		if err != nil {
			return nil, nil, err
		}
		return &mcp.CallToolResult{Content: []mcp.Content{res.Content}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "bump"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{}}, nil, s.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: labResource})
	})
	s.AddResource(&mcp.Resource{URI: labResource, Name: "counter"}, func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: labResource, Text: "1"}}}, nil
	})
	l.srv = s
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	l.url = srv.URL
	return l
}

func clusterLabCfg(l *clusterLab) func() *config.Config {
	return func() *config.Config {
		return baseConfig(config.Backend{Name: "lab", URL: l.url, Transport: config.TransportStreamable, Timeout: config.Duration(time.Minute)})
	}
}

func TestReplicasServeOneSessionAcrossReplicas(t *testing.T) {
	lab := startClusterLab(t)
	tc := startCluster(t, 3, clusterLabCfg(lab), nil)
	cs := connect(t, tc.front+"/mcp", nil, statefulSession)
	ctx := ctxT(t)
	for i := range 12 {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "lab_echo", Arguments: map[string]any{"Text": "hi"}})
		if err != nil {
			t.Fatalf("call %d through the round robin: %v", i, err)
		}
		if got := text(res); got != "hi" {
			t.Fatalf("call %d: got %q", i, got)
		}
	}
	for i, r := range tc.replicas {
		if r.hits.Load() < 4 {
			t.Errorf("replica %d served %d requests; the round robin should spread them", i, r.hits.Load())
		}
	}
	// Once each replica has read the session, calls cost no Redis round
	// trip.
	before := tc.roundTrips()
	for range 30 {
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "lab_echo", Arguments: map[string]any{"Text": "x"}}); err != nil {
			t.Fatal(err)
		}
	}
	// Heartbeats (one per replica every 5s) may fall in the window.
	if got := tc.roundTrips() - before; got > 6 {
		t.Errorf("30 calls on a warm session made %d Redis round trips, want about none", got)
	}
	// The session ends everywhere: DELETE on one replica, then no
	// replica serves it.
	id, _ := tc.replicas[0].sid.Load().(string)
	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}
	for i, r := range tc.replicas {
		req, _ := http.NewRequest(http.MethodPost, r.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("replica %d answered %d for a deleted session, want 404: %s", i, resp.StatusCode, body)
		}
	}
}

func TestReplicasSamplingAnswerOnAnotherReplica(t *testing.T) {
	lab := startClusterLab(t)
	tc := startCluster(t, 3, clusterLabCfg(lab), nil)
	var samples atomic.Int64
	cs := connect(t, tc.front+"/mcp", &mcp.ClientOptions{
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			samples.Add(1)
			return &mcp.CreateMessageResult{Model: "m", Role: "assistant", Content: &mcp.TextContent{Text: "sunny"}}, nil
		},
	}, statefulSession)
	ctx := ctxT(t)
	// Three calls in a row: with three replicas in turn, the answers
	// land on a replica other than the one whose backend asked.
	for i := range 3 {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "lab_sample"})
		if err != nil {
			t.Fatalf("sampling call %d: %v", i, err)
		}
		if res.IsError || text(res) != "sunny" {
			t.Fatalf("sampling call %d: got %+v", i, res)
		}
	}
	if samples.Load() != 3 {
		t.Fatalf("the client sampled %d times, want 3", samples.Load())
	}
}

func TestReplicasCancelOnAnotherReplica(t *testing.T) {
	lab := startClusterLab(t)
	tc := startCluster(t, 3, clusterLabCfg(lab), nil)
	// By hand, so that the call's own connection stays open: the
	// cancellation can only reach the backend through replica 2.
	sid := openRaw(t, tc.replicas[0].url+"/mcp")
	done := make(chan string, 1)
	go func() {
		_, body := postRaw(t, tc.replicas[1].url+"/mcp", sid, `{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"lab_block"}}`)
		done <- body
	}()
	select {
	case <-lab.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the call never reached the backend")
	}
	if code, body := postRaw(t, tc.replicas[2].url+"/mcp", sid,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"c1","reason":"user stopped it"}}`); code != http.StatusAccepted {
		t.Fatalf("notifications/cancelled: %d %s", code, body)
	}
	select {
	case err := <-lab.cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the backend's call ended with %v, want cancelled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cancellation sent to another replica never reached the backend")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled call's request never ended")
	}
}

// openRaw opens a session on url by hand and returns its id.
func openRaw(t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(
		`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	sid := resp.Header.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatalf("initialize answered %d with no session", resp.StatusCode)
	}
	postRaw(t, url, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return sid
}

// postRaw posts msg on session sid and returns the status and body.
func postRaw(t *testing.T, url, sid, msg string) (int, string) {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(msg))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", stateful)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestReplicasResourceUpdateReachesStreamOnAnotherReplica(t *testing.T) {
	lab := startClusterLab(t)
	tc := startCluster(t, 3, clusterLabCfg(lab), nil)
	updates := make(chan string, 16)
	cs := connect(t, tc.front+"/mcp", &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, r *mcp.ResourceUpdatedNotificationRequest) {
			updates <- r.Params.URI
		},
	}, statefulSession)
	ctx := ctxT(t)
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: labResource}); err != nil {
		t.Fatal(err)
	}
	// The update is sent by the backend session of whichever replica
	// runs the bump, and must reach the stream wherever it is held.
	for i := range 3 {
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "lab_bump"}); err != nil {
			t.Fatal(err)
		}
		select {
		case uri := <-updates:
			if uri != labResource {
				t.Fatalf("update for %q", uri)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: resources/updated never reached the client", i)
		}
	}
	select {
	case uri := <-updates:
		t.Fatalf("a duplicate update for %q", uri)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestReplicasStatelessTrafficNeverTouchesRedis(t *testing.T) {
	lab := startClusterLab(t)
	tc := startCluster(t, 3, clusterLabCfg(lab), nil)
	cs := connect(t, tc.front+"/mcp", nil, &mcp.ClientSessionOptions{ProtocolVersion: "2026-07-28"})
	ctx := ctxT(t)
	before := tc.roundTrips()
	for range 30 {
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "lab_echo", Arguments: map[string]any{"Text": "x"}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := tc.roundTrips() - before; got > 6 {
		t.Errorf("30 stateless calls made %d Redis round trips, want none but heartbeats", got)
	}
	// And they work with Redis gone.
	tc.redis.Stop()
	for range 6 {
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "lab_echo", Arguments: map[string]any{"Text": "x"}}); err != nil {
			t.Fatalf("a stateless call with Redis stopped: %v", err)
		}
	}
}

func TestReplicasRateLimitHoldsAcrossReplicas(t *testing.T) {
	lab := startClusterLab(t)
	limit := []config.Plugin{{Name: "fleet", Type: "ratelimit", Tools: []string{"lab_echo"}, Options: map[string]any{"rate": "1/m", "burst": 4, "per": "session"}}}
	tc := startCluster(t, 3, clusterLabCfg(lab), func(c *cluster.Cluster) gateway.Options {
		chain, err := plugin.New(limit, plugin.Options{SharedLimiter: cluster.NewRateLimiter(c.Redis()), SharedLimiterTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return gateway.Options{Plugins: chain}
	})
	cs := connect(t, tc.front+"/mcp", nil, statefulSession)
	ctx := ctxT(t)
	allowed := 0
	for range 9 {
		// Nine calls over three replicas: three each. Per replica, a
		// burst of 4 would let all of them through.
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "lab_echo", Arguments: map[string]any{"Text": "x"}}); err == nil {
			allowed++
		} else if !strings.Contains(err.Error(), "rate limit") {
			t.Fatalf("a call failed for another reason: %v", err)
		}
	}
	if allowed != 4 {
		t.Fatalf("%d of 9 calls allowed across three replicas, want the one burst of 4", allowed)
	}
}
