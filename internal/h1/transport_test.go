package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// server is a real net/http server that counts the connections it
// accepted and the requests it served.
type server struct {
	*httptest.Server
	conns, reqs atomic.Int64
}

func startServer(t *testing.T, h http.HandlerFunc, tweak func(*http.Server)) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.reqs.Add(1)
		h(w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	if tweak != nil {
		tweak(s.Config)
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func newTransport() *Transport {
	f := http.DefaultTransport.(*http.Transport).Clone()
	f.MaxIdleConnsPerHost = 64
	return New(f)
}

func post(t *testing.T, tr http.RoundTripper, ctx context.Context, u, body string) (string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return string(b), nil
}

// echo answers with the body it got: as JSON of a known length, or as an
// event stream (chunked), the two shapes MCP servers answer a POST with.
func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if r.URL.Query().Get("stream") != "" {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "id: 1\ndata: \n\n")
		w.(http.Flusher).Flush()
		fmt.Fprintf(w, "event: message\ndata: %s\n\n", b)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func TestReusesConnections(t *testing.T) {
	t.Parallel()
	s := startServer(t, echo, nil)
	tr := newTransport()
	ctx := context.Background()
	for i := range 50 {
		u := s.URL + "/mcp"
		want := fmt.Sprintf(`{"n":%d}`, i)
		if i%2 == 1 {
			u += "?stream=1"
		}
		got, err := post(t, tr, ctx, u, want)
		if err != nil || !strings.Contains(got, want) {
			t.Fatalf("request %d: got %q, %v", i, got, err)
		}
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("50 sequential requests used %d connections, want 1", n)
	}

	// Concurrent callers each take their own connection, and give it back.
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				want := fmt.Sprintf(`{"g":%d,"i":%d}`, g, i)
				if got, err := post(t, tr, ctx, s.URL+"/mcp?stream=1", want); err != nil || !strings.Contains(got, want) {
					t.Errorf("caller %d, request %d: got %q, %v", g, i, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := s.conns.Load(); n > 17 {
		t.Errorf("16 concurrent callers used %d connections, want at most 17", n)
	}
}

// A connection the server closed while it sat idle is not used: the
// request goes out on a new one and succeeds, POST included.
func TestServerClosedIdleConnection(t *testing.T) {
	t.Parallel()
	s := startServer(t, echo, func(srv *http.Server) { srv.IdleTimeout = 100 * time.Millisecond })
	tr := newTransport()
	ctx := context.Background()
	for i := range 3 {
		if got, err := post(t, tr, ctx, s.URL, "x"); err != nil || got != "x" {
			t.Fatalf("request %d: got %q, %v", i, got, err)
		}
		time.Sleep(250 * time.Millisecond) // past the server's idle timeout
	}
	if n, reqs := s.conns.Load(), s.reqs.Load(); n != 3 || reqs != 3 {
		t.Errorf("got %d connections and %d requests served, want 3 and 3", n, reqs)
	}
}

// A POST whose connection dies after the server read it is not sent
// again: the server may have acted on it. A GET is.
func TestNoRetryOfPOSTTheServerMayHaveRead(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	s := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		if n.Add(1) == 2 {
			// The second request: read, then the connection dies.
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
			return
		}
		w.Write([]byte("ok"))
	}, nil)
	tr := newTransport()
	ctx := context.Background()
	if _, err := post(t, tr, ctx, s.URL, "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := post(t, tr, ctx, s.URL, "2"); err == nil {
		t.Error("a POST on a connection that died after the server read it succeeded: it was sent twice")
	}
	if got := n.Load(); got != 2 {
		t.Errorf("the server got %d requests, want 2 (the failed POST must not be sent again)", got)
	}

	n.Store(0)
	get := func() error {
		req, _ := http.NewRequest(http.MethodGet, s.URL, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	if err := get(); err != nil {
		t.Errorf("a GET was not sent again on a new connection: %v", err)
	}
	if got := n.Load(); got != 3 {
		t.Errorf("the server got %d GETs, want 3 (one of them sent twice)", got)
	}
}

// Cancellation ends a read that waits for the server, at once, and the
// connection is not reused; so does closing the body from another
// goroutine.
func TestCancelAndCloseEndBlockedReads(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}, nil)
	tr := newTransport()
	for _, how := range []string{"cancel", "close"} {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, strings.NewReader("{}"))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := io.ReadAll(resp.Body)
			done <- err
		}()
		time.Sleep(50 * time.Millisecond)
		if how == "cancel" {
			cancel()
		} else {
			resp.Body.Close()
		}
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s: the read ended without an error", how)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the read did not end", how)
		}
		resp.Body.Close()
		cancel()
	}
	tr.mu.Lock()
	idle := len(tr.idle[s.Listener.Addr().String()])
	tr.mu.Unlock()
	if idle != 0 {
		t.Errorf("%d connections with a cut-off response went back to the pool", idle)
	}

	// A request canceled before it is sent fails with the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := post(t, tr, ctx, s.URL, "{}"); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

// Informational answers before the response are skipped (RFC 9110
// section 15.2), and a body-less response gives its connection back.
func TestInformationalAndEmptyResponses(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		if r.URL.Path == "/empty" {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Write([]byte("after hints"))
	}, nil)
	tr := newTransport()
	ctx := context.Background()
	for range 3 {
		if got, err := post(t, tr, ctx, s.URL, "{}"); err != nil || got != "after hints" {
			t.Fatalf("got %q, %v", got, err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/empty", strings.NewReader("{}"))
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("got %v, %v", resp, err)
		}
		resp.Body.Close() // not read: there is nothing to read
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("used %d connections, want 1", n)
	}
}

// What Transport does not make itself goes to its fallback: HTTPS, and
// requests the fallback's Proxy sends to a proxy.
func TestFallback(t *testing.T) {
	t.Parallel()
	tls := httptest.NewTLSServer(http.HandlerFunc(echo))
	t.Cleanup(tls.Close)
	tr := New(tls.Client().Transport.(*http.Transport))
	if got, err := post(t, tr, context.Background(), tls.URL, "over tls"); err != nil || got != "over tls" {
		t.Errorf("https: got %q, %v", got, err)
	}

	// A "proxy" that answers for any host: the request reaches it only if
	// the fallback sent it.
	proxy := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("via proxy " + r.URL.Host))
	}, nil)
	f := http.DefaultTransport.(*http.Transport).Clone()
	pu, _ := url.Parse(proxy.URL)
	f.Proxy = http.ProxyURL(pu)
	if got, err := post(t, New(f), context.Background(), "http://backend.invalid/mcp", "{}"); err != nil || got != "via proxy backend.invalid" {
		t.Errorf("proxy: got %q, %v", got, err)
	}
}

// A server that answers with something unasked on an idle connection
// leaves it unusable: the next request takes a new one.
func TestUnaskedBytesOnIdleConnection(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	u := serveRaw(t, func(c net.Conn) {
		conns.Add(1)
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		// A response, then a stray second one nobody asked for.
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray")
		io.Copy(io.Discard, br)
	})
	tr := newTransport()
	for i := range 2 {
		if got, err := post(t, tr, context.Background(), u, "{}"); err != nil || got != "ok" {
			t.Fatalf("request %d: got %q, %v (a stray answer was taken for the response)", i, got, err)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("used %d connections, want 2", n)
	}
}

// serveRaw accepts connections on a loopback listener until the test
// ends, each handled by handle, which the connection is closed after; it
// returns the listener's URL.
func serveRaw(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}
