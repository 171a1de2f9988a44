package conn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/conn/internal/peer"
)

func startSSEServer(t *testing.T) (*httptest.Server, *seen) {
	t.Helper()
	srv := peer.New()
	sn := &seen{}
	ts := httptest.NewServer(sn.wrap(mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return srv }, nil)))
	t.Cleanup(ts.Close)
	return ts, sn
}

func TestSSE(t *testing.T) {
	t.Parallel()
	ts, sn := startSSEServer(t)
	c, in := dialHTTP(t, TransportSSE, ts.URL+"/sse", Options{Header: http.Header{"X-Backend-Token": {"tok"}}})
	initialize(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if got, err := callTool(ctx, c, 1, "echo", `{"text":"hi"}`, nil); err != nil || got != "hi" {
		t.Errorf("echo: got %q, %v", got, err)
	}
	// Everything of the server's but responses goes to Unsolicited, in
	// stream order: the notifications before the response.
	if got, err := callTool(ctx, c, 2, "progress", `{"count":3}`, nil); err != nil || got != "sent 3" {
		t.Errorf("progress: got %q, %v", got, err)
	}
	if n := in.count("notifications/progress"); n != 3 {
		t.Errorf("got %d progress notifications before the result, want 3", n)
	}
	if got, err := callTool(ctx, c, 3, "sample", `{"text":"q"}`, nil); err != nil || got != "sampled: hello from the client" {
		t.Errorf("sample: got %q, %v", got, err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text := fmt.Sprintf("m%d", i)
			if got, err := callTool(ctx, c, 100+i, "echo", `{"text":"`+text+`"}`, nil); err != nil || got != text {
				t.Errorf("concurrent echo %d: got %q, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	for _, r := range sn.all() {
		if r.header.Get("X-Backend-Token") != "tok" {
			t.Errorf("%s without the configured header", r.method)
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := callTool(ctx, c, 4, "echo", `{"text":"x"}`, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: got %v, want ErrClosed", err)
	}
}

// The stream's end ends the session, and the requests in flight.
func TestSSEStreamEnd(t *testing.T) {
	t.Parallel()
	ts, _ := startSSEServer(t)
	c, _ := dialHTTP(t, TransportSSE, ts.URL, Options{})
	initialize(t, c)
	done := make(chan error, 1)
	go func() {
		_, err := callTool(context.Background(), c, 1, "sleep", `{"ms":1500}`, nil) // the server waits for it on shutdown
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	ts.CloseClientConnections()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "ended") {
			t.Errorf("got %v, want the stream's end", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request in flight did not return when the stream ended")
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Error("Done not closed after the stream ended")
	}
}

// scripted serves one fixed event stream (HOST stands for the server's
// own host), for endpoint events that no well-behaved server sends.
func scripted(stream string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, strings.ReplaceAll(stream, "HOST", r.Host))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
}

func TestSSEEndpoint(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name, stream, wantErr string
	}{
		{"another origin", "event: endpoint\ndata: http://evil.example/messages\n\n", "another origin"},
		{"another scheme", "event: endpoint\ndata: https://HOST/messages\n\n", "another origin"},
		{"relative, with a priming comment", ": hi\n\nevent: endpoint\ndata: /messages?s=1\n\n", ""},
		{"absolute, same origin", "event: endpoint\ndata: http://HOST/m\n\n", ""},
	} {
		ts := scripted(tc.stream)
		c, err := Dial(ctx, Endpoint{Transport: TransportSSE, URL: ts.URL + "/sse?key=s3cret"}, Options{})
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: got %v, want an error with %q", tc.name, err, tc.wantErr)
		case err != nil && strings.Contains(err.Error(), "s3cret"):
			t.Errorf("%s: error %q shows the query", tc.name, err)
		}
		if c != nil {
			c.Close()
		}
		ts.CloseClientConnections()
		ts.Close()
	}
	// A Streamable HTTP endpoint, or none at all.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}))
	defer ts.Close()
	if _, err := Dial(ctx, Endpoint{Transport: TransportSSE, URL: ts.URL}, Options{}); err == nil || !strings.Contains(err.Error(), "405") {
		t.Errorf("got %v, want an error naming HTTP 405", err)
	}
	// No endpoint event within Dial's context.
	silent := scripted(": nothing\n\n")
	defer silent.Close()
	short, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	if _, err := Dial(short, Endpoint{Transport: TransportSSE, URL: silent.URL}, Options{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want DeadlineExceeded", err)
	}
	silent.CloseClientConnections()
}
