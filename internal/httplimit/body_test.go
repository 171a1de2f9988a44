package httplimit_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/httplimit"
)

// echo answers with the length and a digest of the body it read, after
// checking that httplimit.Bytes gives the same bytes.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	direct, hasDirect := httplimit.Bytes(r)
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	if r.Method == http.MethodPost && (!hasDirect || string(direct) != string(b)) {
		http.Error(w, "httplimit.Bytes differs from the body", 500)
		return
	}
	fmt.Fprintf(w, "%d %d %q", len(b), r.ContentLength, b[:min(len(b), 16)])
})

func bodyServer(t *testing.T, b *httplimit.Body, next http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(b.Wrap(next))
	srv.Config.ReadHeaderTimeout = 5 * time.Second
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestBodyPassesAndRefuses(t *testing.T) {
	t.Parallel()
	refusals, count := refusalCounter(t)
	url := bodyServer(t, &httplimit.Body{MaxBytes: 1000, ReadTimeout: 5 * time.Second, Refusals: refusals}, echo)
	exact := strings.Repeat("a", 1000)
	tests := []struct {
		name    string
		body    io.Reader // a non-*strings.Reader is sent chunked, without Content-Length
		method  string
		code    int
		reply   string
		refusal string
	}{
		{"small", strings.NewReader(`{"jsonrpc":"2.0"}`), "POST", 200, `17 17 "{\"jsonrpc\":\"2.0\""`, ""},
		{"exactly the limit", strings.NewReader(exact), "POST", 200, `1000 1000 "aaaaaaaaaaaaaaaa"`, ""},
		{"exactly the limit, chunked", io.MultiReader(strings.NewReader(exact)), "POST", 200, `1000 1000 "aaaaaaaaaaaaaaaa"`, ""},
		{"empty", strings.NewReader(""), "POST", 200, `0 0 ""`, ""},
		{"announced over the limit", strings.NewReader(exact + "b"), "POST", 413, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"request body exceeds 1000 bytes"}}`, httplimit.LimitBodyBytes},
		{"chunked over the limit", io.MultiReader(strings.NewReader(exact + "b")), "POST", 413, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"request body exceeds 1000 bytes"}}`, httplimit.LimitBodyBytes},
		{"GET untouched", nil, "GET", 200, `0 0 ""`, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, url, tt.body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code || string(got) != tt.reply {
			t.Errorf("%s: got %d %q, want %d %q", tt.name, resp.StatusCode, got, tt.code, tt.reply)
		}
	}
	if got := count(httplimit.LimitBodyBytes); got != 2 {
		t.Errorf("refusals{limit=max_request_bytes}: got %d, want 2", got)
	}
}

// TestBodySlowClientIsCut sends a body one byte every 200ms with a read
// deadline of 1s: the client gets 408 soon after the deadline, not when
// it has finished sending.
func TestBodySlowClientIsCut(t *testing.T) {
	t.Parallel()
	refusals, count := refusalCounter(t)
	var reached atomic.Bool
	url := bodyServer(t, &httplimit.Body{MaxBytes: 1 << 20, ReadTimeout: time.Second, Refusals: refusals},
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Store(true) }))
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for range 100 {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	elapsed := time.Since(start)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status: got %d, want 408", resp.StatusCode)
	}
	if elapsed < 900*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("answered after %v, want soon after the 1s deadline", elapsed)
	}
	if reached.Load() {
		t.Error("the handler ran with a partial body")
	}
	if got := count(httplimit.LimitBodyReadTimeout); got != 1 {
		t.Errorf("refusals{limit=body_read_timeout}: got %d, want 1", got)
	}
}

// TestBodyDeadlineDoesNotOutliveTheBody: a handler that answers long after
// the read deadline (as a streamed response does), then a second request
// on the same connection, both work.
func TestBodyDeadlineDoesNotOutliveTheBody(t *testing.T) {
	t.Parallel()
	url := bodyServer(t, &httplimit.Body{MaxBytes: 1 << 20, ReadTimeout: 200 * time.Millisecond},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(400 * time.Millisecond)
			io.WriteString(w, "late")
		}))
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	for i := range 2 {
		resp, err := client.Post(url, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "late" {
			t.Errorf("request %d: got %d %q", i, resp.StatusCode, b)
		}
	}
}

// TestBodyHeadersOnlyDoNotAllocate opens 500 connections that each send
// the headers of a 4 MB POST and then nothing. A limiter that allocates
// Content-Length up front holds 2 GB; this one must stay far below.
func TestBodyHeadersOnlyDoNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1000 sockets")
	}
	const conns, announced = 500, 4 << 20
	var waiting atomic.Int64
	body := &httplimit.Body{MaxBytes: announced, ReadTimeout: time.Minute}
	limited := body.Wrap(echo)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		waiting.Add(1)
		defer waiting.Add(-1)
		limited.ServeHTTP(w, r)
	}))
	defer srv.Close()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	var wg sync.WaitGroup
	open := make([]net.Conn, 0, conns)
	var mu sync.Mutex
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", announced)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); waiting.Load() < conns; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d requests reached the handler", waiting.Load(), conns)
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("heap in use grew by %.1f MB for %d connections announcing %d MB each", float64(grown)/(1<<20), conns, announced>>20)
	// 500 x 4 MB would be 2000 MB; buffers, goroutines and connections
	// take about 10 MB.
	if grown > 100<<20 {
		t.Errorf("heap in use grew by %d MB, want under 100 MB", grown>>20)
	}
}
