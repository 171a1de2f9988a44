package httplimit_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/httplimit"
)

// TestConcurrency fills both bounds with requests that wait, then checks
// that one more of each kind gets 503 with Retry-After, that a full stream
// bound does not refuse calls, and that freed places serve again.
func TestConcurrency(t *testing.T) {
	t.Parallel()
	refusals, count := refusalCounter(t)
	lim := &httplimit.Concurrency{MaxRequests: 2, MaxStreams: 1, RetryAfter: 1500 * time.Millisecond, Refusals: refusals}
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	srv := httptest.NewServer(lim.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("wait") != "" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	})))
	defer srv.Close()

	do := func(method, query string, stream bool) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(context.Background(), method, srv.URL+"/mcp?"+query, nil)
		if stream {
			req.Header.Set("Accept", "text/event-stream")
		}
		return http.DefaultClient.Do(req)
	}
	held := make(chan *http.Response, 3)
	for _, stream := range []bool{false, false, true} {
		go func() {
			method := "POST"
			if stream {
				method = "GET"
			}
			resp, err := do(method, "wait=1", stream)
			if err != nil {
				t.Error(err)
				return
			}
			held <- resp
		}()
	}
	for range 3 {
		select {
		case <-entered:
		case <-time.After(5 * time.Second):
			t.Fatal("requests under the bounds did not reach the handler")
		}
	}
	if r, s := lim.InFlight(); r != 2 || s != 1 {
		t.Errorf("InFlight: got %d requests %d streams, want 2 and 1", r, s)
	}

	for _, tc := range []struct {
		name   string
		method string
		stream bool
		limit  string
	}{
		{"third call", "POST", false, httplimit.LimitConcurrentRequests},
		{"second stream", "GET", true, httplimit.LimitStreams},
	} {
		resp, err := do(tc.method, "", tc.stream)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" {
			t.Errorf("%s: got %d Retry-After %q, want 503 and 2", tc.name, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if got := count(tc.limit); got != 1 {
			t.Errorf("%s: refusals{limit=%s} = %d, want 1", tc.name, tc.limit, got)
		}
	}

	close(release)
	for range 3 {
		(<-held).Body.Close()
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if r, s := lim.InFlight(); r == 0 && s == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("places not freed after the requests ended")
		}
	}
	for _, stream := range []bool{false, true} {
		method := "POST"
		if stream {
			method = "GET"
		}
		resp, err := do(method, "", stream)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("after release, stream=%v: got %d, want 200", stream, resp.StatusCode)
		}
	}
}

// TestCloseStreams opens a stream whose handler waits for its request's
// context, as an SSE handler does, and a call in progress: CloseStreams
// ends the stream at once, leaves the call running, and refuses new
// streams.
func TestCloseStreams(t *testing.T) {
	t.Parallel()
	lim := &httplimit.Concurrency{MaxRequests: 10, MaxStreams: 10}
	callRelease := make(chan struct{})
	entered := make(chan string, 2)
	srv := httptest.NewServer(lim.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if httplimit.IsEventStream(r) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			entered <- "stream"
			<-r.Context().Done()
			return
		}
		entered <- "call"
		<-callRelease
		io.WriteString(w, "done")
	})))
	defer srv.Close()

	streamEnded := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			streamEnded <- err
			return
		}
		_, err = io.ReadAll(resp.Body) // returns when the server ends the stream
		resp.Body.Close()
		streamEnded <- err
	}()
	callDone := make(chan string, 1)
	go func() {
		resp, err := http.Post(srv.URL, "application/json", nil)
		if err != nil {
			callDone <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		callDone <- string(b)
	}()
	for range 2 {
		select {
		case <-entered:
		case <-time.After(5 * time.Second):
			t.Fatal("requests did not start")
		}
	}

	lim.CloseStreams()
	select {
	case err := <-streamEnded:
		if err != nil {
			t.Errorf("stream ended with %v, want a clean end", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("CloseStreams did not end the open stream")
	}
	select {
	case got := <-callDone:
		t.Fatalf("the call in progress ended with %q; CloseStreams must leave it", got)
	case <-time.After(100 * time.Millisecond):
	}

	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("new stream after CloseStreams: got %d, want 503", resp.StatusCode)
	}

	close(callRelease)
	if got := <-callDone; got != "done" {
		t.Errorf("call: got %q, want done", got)
	}
}

// TestConcurrencySetLimits changes the bounds of a running Concurrency:
// a request in progress is kept, a lowered bound refuses the next one,
// and a raised bound admits it.
func TestConcurrencySetLimits(t *testing.T) {
	t.Parallel()
	lim := &httplimit.Concurrency{MaxRequests: 2, MaxStreams: 1}
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	srv := httptest.NewServer(lim.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("wait") != "" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	})))
	defer srv.Close()
	status := func(query string) int {
		resp, err := http.Post(srv.URL+"/mcp?"+query, "application/json", nil)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	held := make(chan int, 1)
	go func() { held <- status("wait=1") }()
	<-entered

	lim.SetLimits(1, 1)
	if got := status(""); got != http.StatusServiceUnavailable {
		t.Errorf("a second request under a bound lowered to 1: HTTP %d, want 503", got)
	}
	lim.SetLimits(3, 1)
	if got := status(""); got != http.StatusOK {
		t.Errorf("a second request under a bound raised to 3: HTTP %d, want 200", got)
	}
	close(release)
	if got := <-held; got != http.StatusOK {
		t.Errorf("the request in progress across both changes: HTTP %d, want 200", got)
	}
}
