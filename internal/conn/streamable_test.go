package conn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/conn/internal/peer"
)

// seen records the HTTP requests a server received: the test's eyes on
// the wire, in front of the real go-sdk handler.
type seen struct {
	mu   sync.Mutex
	reqs []seenReq
}

type seenReq struct {
	method string
	header http.Header
}

func (s *seen) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, seenReq{r.Method, r.Header.Clone()})
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (s *seen) all() []seenReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenReq(nil), s.reqs...)
}

// find returns the last request for which f holds.
func (s *seen) find(f func(seenReq) bool) (seenReq, bool) {
	all := s.all()
	for i := len(all) - 1; i >= 0; i-- {
		if f(all[i]) {
			return all[i], true
		}
	}
	return seenReq{}, false
}

type goServer struct {
	url    string
	server *mcp.Server
	seen   *seen
}

func startGoServer(t *testing.T, opts *mcp.StreamableHTTPOptions) *goServer {
	t.Helper()
	srv := peer.New()
	g := &goServer{server: srv, seen: &seen{}}
	ts := httptest.NewServer(g.seen.wrap(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, opts)))
	t.Cleanup(ts.Close)
	g.url = ts.URL + "/mcp"
	return g
}

func dialHTTP(t *testing.T, transport, url string, opts Options) (Conn, *inbox) {
	t.Helper()
	in := &inbox{}
	opts.Unsolicited = in.add
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, Endpoint{Transport: transport, URL: url}, opts)
	if err != nil {
		t.Fatal(err)
	}
	in.conn = c
	t.Cleanup(func() { c.Close(); in.wg.Wait() })
	return c, in
}

func TestStreamable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts mcp.StreamableHTTPOptions
	}{
		{"event stream", mcp.StreamableHTTPOptions{}},
		{"event stream with an event store", mcp.StreamableHTTPOptions{EventStore: mcp.NewMemoryEventStore(nil)}},
		{"JSON responses", mcp.StreamableHTTPOptions{JSONResponse: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := startGoServer(t, &tc.opts)
			c, unsolicited := dialHTTP(t, TransportStreamable, g.url, Options{Header: http.Header{"X-Backend-Token": {"tok"}}})
			initialize(t, c)
			sid := c.SessionID()
			if sid == "" {
				t.Fatal("no session id after initialize")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			if got, err := callTool(ctx, c, 1, "echo", `{"text":"hi"}`, nil); err != nil || got != "hi" {
				t.Errorf("echo: got %q, %v", got, err)
			}
			related := &inbox{conn: c}
			base := 0 // progress notifications already on the GET stream
			if tc.opts.JSONResponse {
				waitGETStream(t, ctx, g, c, sid)
				settle(5*time.Second, func() bool { return unsolicited.count("notifications/progress") == 1 })
				base = unsolicited.count("notifications/progress")
			}
			got, err := callTool(ctx, c, 2, "progress", `{"count":3}`, related.add)
			if err != nil || got != "sent 3" {
				t.Errorf("progress: got %q, %v", got, err)
			}
			// Notifications on the call's stream reach related before
			// Request returns (JSON responses carry none).
			if want := map[bool]int{false: 3, true: 0}[tc.opts.JSONResponse]; related.count("notifications/progress") != want {
				t.Errorf("got %d progress notifications through related, want %d (all: %v)", related.count("notifications/progress"), want, related.methods())
			}
			// With JSON responses the server sends them on the GET stream.
			if tc.opts.JSONResponse {
				settle(5*time.Second, func() bool { return unsolicited.count("notifications/progress") == base+3 })
			}
			if want := base + map[bool]int{false: 0, true: 3}[tc.opts.JSONResponse]; unsolicited.count("notifications/progress") != want {
				t.Errorf("got %d progress notifications through Unsolicited, want %d: %v", unsolicited.count("notifications/progress"), want, unsolicited.methods())
			}
			if !tc.opts.JSONResponse {
				related := &inbox{conn: c}
				got, err := callTool(ctx, c, 3, "sample", `{"text":"q"}`, related.add)
				if err != nil || got != "sampled: hello from the client" {
					t.Errorf("sample: got %q, %v", got, err)
				}
				if related.count("sampling/createMessage") != 1 {
					t.Errorf("the sampling request did not come through related: %v", related.methods())
				}
				related.wg.Wait()
			}

			// Headers: the session, the protocol version after
			// Established, the configured ones, Accept and Content-Type.
			r, ok := g.seen.find(func(r seenReq) bool {
				return r.method == "POST" && strings.Contains(r.header.Get("Mcp-Session-Id"), sid)
			})
			if !ok {
				t.Fatal("no POST carried the session id")
			}
			for k, want := range map[string]string{
				"Mcp-Protocol-Version": testProtocol,
				"X-Backend-Token":      "tok",
				"Accept":               "application/json, text/event-stream",
				"Content-Type":         "application/json",
			} {
				if got := r.header.Get(k); got != want {
					t.Errorf("header %s: got %q, want %q", k, got, want)
				}
			}

			// The GET stream carries what the server sends outside a call.
			if !settle(5*time.Second, func() bool {
				_, ok := g.seen.find(func(r seenReq) bool { return r.method == "GET" })
				return ok
			}) {
				t.Fatal("no GET stream after Established")
			}
			time.Sleep(100 * time.Millisecond) // the GET is seen before the server attaches it
			g.server.AddTool(&mcp.Tool{Name: "late", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return &mcp.CallToolResult{}, nil
			})
			if !settle(5*time.Second, func() bool { return unsolicited.count("notifications/tools/list_changed") > 0 }) {
				t.Errorf("list_changed did not reach Unsolicited: %v", unsolicited.methods())
			}

			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if _, ok := g.seen.find(func(r seenReq) bool { return r.method == "DELETE" && r.header.Get("Mcp-Session-Id") == sid }); !ok {
				t.Error("Close sent no DELETE with the session id")
			}
			// The server has forgotten the session.
			req, _ := http.NewRequest("POST", g.url, strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"ping"}`))
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("after DELETE the server answers %d, want 404", resp.StatusCode)
				}
			}
			if _, err := callTool(ctx, c, 4, "echo", `{"text":"x"}`, nil); !errors.Is(err, ErrClosed) {
				t.Errorf("after Close: got %v, want ErrClosed", err)
			}
		})
	}
}

// A server that closes the call's stream early (SEP-1699) is resumed with
// GET and Last-Event-ID, and the call completes.
func TestStreamableResume(t *testing.T) {
	t.Parallel()
	g := startGoServer(t, &mcp.StreamableHTTPOptions{EventStore: mcp.NewMemoryEventStore(nil)})
	c, _ := dialHTTP(t, TransportStreamable, g.url, Options{})
	initialize(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	related := &inbox{}
	got, err := callTool(ctx, c, 1, "cut", `{"ms":100}`, related.add)
	if err != nil || got != "after the cut" {
		t.Fatalf("got %q, %v", got, err)
	}
	if n := related.count("notifications/progress"); n != 2 {
		t.Errorf("got %d progress notifications across the cut, want 2 (once each): %v", n, related.msgs)
	}
	r, ok := g.seen.find(func(r seenReq) bool { return r.method == "GET" && r.header.Get("Last-Event-ID") != "" })
	if !ok {
		t.Fatal("no GET with Last-Event-ID")
	}
	if r.header.Get("Mcp-Session-Id") != c.SessionID() {
		t.Errorf("the resuming GET carried session %q", r.header.Get("Mcp-Session-Id"))
	}
}

// Without an event store the server's events have no ids: a cut stream
// cannot be resumed, and Request says so instead of hanging.
func TestStreamableCutWithoutIDs(t *testing.T) {
	t.Parallel()
	g := startGoServer(t, &mcp.StreamableHTTPOptions{})
	c, _ := dialHTTP(t, TransportStreamable, g.url, Options{})
	initialize(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := callTool(ctx, c, 1, "cut", `{"ms":100}`, nil)
	if err == nil || !strings.Contains(err.Error(), "no ids") {
		t.Errorf("got %v, want an error saying the stream cannot be resumed", err)
	}
	if ctx.Err() != nil {
		t.Error("Request waited for its context")
	}
}

func TestStreamableSessionExpired(t *testing.T) {
	t.Parallel()
	g := startGoServer(t, &mcp.StreamableHTTPOptions{SessionTimeout: 200 * time.Millisecond})
	c, _ := dialHTTP(t, TransportStreamable, g.url, Options{})
	initialize(t, c)
	time.Sleep(600 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := callTool(ctx, c, 1, "echo", `{"text":"x"}`, nil)
	if !errors.Is(err, ErrSessionExpired) || !errors.Is(c.Err(), ErrSessionExpired) {
		t.Errorf("got %v (Err %v), want ErrSessionExpired", err, c.Err())
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done not closed after the session expired")
	}
}

func TestStreamableTooLarge(t *testing.T) {
	t.Parallel()
	for _, json := range []bool{false, true} {
		g := startGoServer(t, &mcp.StreamableHTTPOptions{JSONResponse: json})
		c, _ := dialHTTP(t, TransportStreamable, g.url, Options{MaxMessage: 4096})
		initialize(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := callTool(ctx, c, 1, "big", `{"bytes":1000}`, nil); err != nil {
			t.Fatalf("json=%v: under the limit: %v", json, err)
		}
		if _, err := callTool(ctx, c, 2, "big", `{"bytes":100000}`, nil); !errors.Is(err, ErrTooLarge) || !errors.Is(c.Err(), ErrTooLarge) {
			t.Errorf("json=%v: got %v (Err %v), want ErrTooLarge", json, err, c.Err())
		}
	}
}

func TestStreamableContext(t *testing.T) {
	t.Parallel()
	g := startGoServer(t, nil)
	c, _ := dialHTTP(t, TransportStreamable, g.url, Options{})
	initialize(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := callTool(ctx, c, 1, "sleep", `{"ms":2000}`, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Request returned after %v", took)
	}
	done := make(chan error, 1)
	go func() {
		_, err := callTool(context.Background(), c, 2, "sleep", `{"ms":60000}`, nil)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	go c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("got %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Request in flight did not return on Close")
	}
}

// HTTP errors: a JSON-RPC error body is the response; anything else is an
// error that names the status, and never the URL's credentials.
func TestStreamableHTTPErrors(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case bytes.Contains(body, []byte(`"rpc"`)):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"bad request"}}`)
		default:
			http.Error(w, "upstream exploded", http.StatusBadGateway)
		}
	}))
	defer ts.Close()
	secretURL := strings.Replace(ts.URL, "http://", "http://user:hunter2@", 1) + "/mcp?api_key=s3cret"
	c, _ := dialHTTP(t, TransportStreamable, secretURL, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Request(ctx, []byte("5"), []byte(`{"jsonrpc":"2.0","id":5,"method":"rpc"}`), nil)
	if err != nil || !bytes.Contains(resp, []byte(`"id":5`)) || !bytes.Contains(resp, []byte(`-32600`)) {
		t.Errorf("JSON-RPC error body: got %s, %v; want it as the response, with the request's id", resp, err)
	}
	_, err = c.Request(ctx, []byte("6"), []byte(`{"jsonrpc":"2.0","id":6,"method":"other"}`), nil)
	if err == nil || !strings.Contains(err.Error(), "502") || !strings.Contains(err.Error(), "upstream exploded") {
		t.Errorf("got %v, want an error naming HTTP 502", err)
	}
	if err := c.Send(ctx, []byte(`{"jsonrpc":"2.0","method":"notifications/x"}`)); err == nil || !strings.Contains(err.Error(), "502") {
		t.Errorf("Send: got %v, want an error naming HTTP 502", err)
	}
	for _, e := range []error{err, c.Send(ctx, []byte(`{}`))} {
		if e != nil && (strings.Contains(e.Error(), "hunter2") || strings.Contains(e.Error(), "s3cret")) {
			t.Errorf("error %q shows credentials", e)
		}
	}
	// A server that is not there: the transport error shows no query.
	ts2 := httptest.NewServer(http.NotFoundHandler())
	dead := ts2.URL + "/mcp?api_key=s3cret"
	ts2.Close()
	c2, _ := dialHTTP(t, TransportStreamable, strings.Replace(dead, "http://", "http://u:hunter2@", 1), Options{})
	_, err = c2.Request(ctx, []byte("1"), []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize"}`), nil)
	if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "/mcp") {
		t.Errorf("got %v, want an error naming the URL without its credentials", err)
	}
	if _, err := Dial(ctx, Endpoint{Transport: TransportStreamable, URL: "ftp://x"}, Options{}); err == nil {
		t.Error("Dial accepted an ftp URL")
	}
}

// Nothing of a session outlives Close, over either HTTP transport. Not
// parallel: it counts the whole process's goroutines.
func TestHTTPLeaks(t *testing.T) {
	g := startGoServer(t, &mcp.StreamableHTTPOptions{EventStore: mcp.NewMemoryEventStore(nil)})
	sseServer, _ := startSSEServer(t)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	before := goroutines()
	for i := 0; i < 3; i++ {
		c, err := Dial(context.Background(), Endpoint{Transport: TransportStreamable, URL: g.url}, Options{HTTPClient: client})
		if err != nil {
			t.Fatal(err)
		}
		initialize(t, c)
		if _, err := callTool(context.Background(), c, 1, "cut", `{"ms":50}`, nil); err != nil {
			t.Fatal(err)
		}
		c.Close()
		c, err = Dial(context.Background(), Endpoint{Transport: TransportSSE, URL: sseServer.URL}, Options{HTTPClient: client})
		if err != nil {
			t.Fatal(err)
		}
		initialize(t, c)
		c.Close()
	}
	// The servers' own goroutines for a session end a little later.
	if !settle(5*time.Second, func() bool { client.CloseIdleConnections(); return goroutines() <= before }) {
		t.Errorf("goroutines %d -> %d", before, goroutines())
	}
}

// TestSameID checks the id matching that pairs a response with its
// request: a string id by its value however it is escaped, a number by
// its digits, and never a string with a number.
func TestSameID(t *testing.T) {
	// Not parallel: it counts allocations.
	tests := []struct {
		a, b string
		want bool
	}{
		{`7`, `7`, true},
		{`7`, `8`, false},
		{`7`, `"7"`, false},
		{`"a"`, `"a"`, true},
		{`"a"`, `"\u0061"`, true},
		{`"é"`, `"\u00e9"`, true},
		{`"a"`, `"b"`, false},
		{`"a\"b"`, `"a\u0022b"`, true},
	}
	for _, tt := range tests {
		if got := sameID([]byte(tt.a), []byte(tt.b)); got != tt.want {
			t.Errorf("sameID(%s, %s): got %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := idKey([]byte(tt.a)) == idKey([]byte(tt.b)); got != tt.want {
			t.Errorf("idKey(%s) == idKey(%s): got %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
	a, b := []byte(`12345`), []byte(`12345`)
	if n := testing.AllocsPerRun(100, func() { sameID(a, b) }); n != 0 {
		t.Errorf("sameID of two numbers: got %v allocations, want 0", n)
	}
}

// A POST's event stream is read to its end after the response, so that
// the connection is reused: closing a chunked body before its last chunk
// would close the connection, and each call would dial a new one. The
// server here ends each stream a little after its response, as a busy
// server does; one that keeps its streams open is waited on for the first
// lingerAfter calls only.
func TestStreamableReusesConnections(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		endAfter  time.Duration // between the response and the stream's end
		thirdLate time.Duration // if set, the third call's stream ends this late
		lingering bool
	}{
		{"stream ends soon after the response", 5 * time.Millisecond, 0, false},
		{"one stream ends late", 5 * time.Millisecond, 300 * time.Millisecond, false},
		{"stream outlives the response", 2 * time.Second, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var dials, calls atomic.Int64
			h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return peer.New() }, nil)
			ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				post := r.Method == http.MethodPost
				body, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(body))
				h.ServeHTTP(w, r)
				if post && strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") {
					// The handler flushed its events; net/http writes the
					// stream's last chunk once this returns.
					wait := tc.endAfter
					if bytes.Contains(body, []byte(`"tools/call"`)) && calls.Add(1) == 3 && tc.thirdLate > 0 {
						wait = tc.thirdLate
					}
					time.Sleep(wait)
				}
			}))
			ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
				if st == http.StateNew {
					dials.Add(1)
				}
			}
			ts.Start()
			t.Cleanup(ts.Close)
			c, _ := dialHTTP(t, TransportStreamable, ts.URL+"/mcp", Options{})
			initialize(t, c)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			before := dials.Load()
			const n = 20
			for i := range n {
				start := time.Now()
				if got, err := callTool(ctx, c, i+1, "echo", `{"text":"hi"}`, nil); err != nil || got != "hi" {
					t.Fatalf("call %d: got %q, %v", i, got, err)
				}
				if took := time.Since(start); tc.lingering && took > tc.endAfter/2 {
					t.Fatalf("call %d took %v: it waited for a stream the server keeps open", i, took)
				}
			}
			dialed := dials.Load() - before
			if lingering := c.(*streamable).lingering(); lingering != tc.lingering {
				t.Errorf("lingering = %v, want %v", lingering, tc.lingering)
			}
			want := int64(2) // one for the GET stream, one spare
			if tc.thirdLate > 0 {
				want++ // the late stream's connection was closed
			}
			if !tc.lingering && dialed > want {
				t.Errorf("%d calls dialed %d new connections, want at most %d: connections are not reused", n, dialed, want)
			}
		})
	}
}

// waitGETStream returns once the server can deliver on the session's GET
// stream. The server refuses a message for a GET stream it has not yet
// registered ("stream not connected"), and the client opens that stream
// only after initialize, so a call made at once could race it. The probe
// is a progress call of one notification, repeated until delivered; that
// one notification reaches Unsolicited.
func waitGETStream(t *testing.T, ctx context.Context, g *goServer, c Conn, sid string) {
	t.Helper()
	if !settle(5*time.Second, func() bool {
		_, ok := g.seen.find(func(r seenReq) bool { return r.method == "GET" && r.header.Get("Mcp-Session-Id") == sid })
		return ok
	}) {
		t.Fatal("the client opened no GET stream")
	}
	for id := 100; ; id++ {
		_, err := callTool(ctx, c, id, "progress", `{"count":1}`, nil)
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "stream not connected") || ctx.Err() != nil {
			t.Fatalf("waiting for the GET stream: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
