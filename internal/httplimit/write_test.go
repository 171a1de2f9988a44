package httplimit_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/httplimit"
)

// TestWriteTimeoutCutsAStalledClient: a client that never reads fills the
// socket buffers; the handler's write fails soon after the timeout instead
// of blocking forever.
func TestWriteTimeoutCutsAStalledClient(t *testing.T) {
	t.Parallel()
	result := make(chan error, 1)
	wt := &httplimit.WriteTimeout{Timeout: 300 * time.Millisecond}
	srv := httptest.NewServer(wt.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for range 4096 { // 256 MB: more than any socket buffer
			if _, err := w.Write(chunk); err != nil {
				result <- err
				return
			}
		}
		result <- nil
	})))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	select {
	case err := <-result:
		if err == nil {
			t.Fatal("256 MB written to a client that reads nothing")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("write to a stalled client still blocked after 10s")
	}
}

// TestWriteTimeoutKeepsAReadingStream: a stream that writes an event every
// 200ms for 1.2s, four times the per-write timeout, reaches its client
// whole; then a handler that writes a short answer (buffered by the
// server) and returns after longer than the timeout still gets it out.
func TestWriteTimeoutKeepsAReadingStream(t *testing.T) {
	t.Parallel()
	wt := &httplimit.WriteTimeout{Timeout: 300 * time.Millisecond}
	srv := httptest.NewServer(wt.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/late" {
			io.WriteString(w, "late") // buffered: the server sends it after return
			time.Sleep(500 * time.Millisecond)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 6 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(200 * time.Millisecond)
		}
	})))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	fmt.Fprintf(conn, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || strings.Count(string(body), "data: ") != 6 {
		t.Fatalf("stream: got %q, %v; want 6 events", body, err)
	}
	fmt.Fprintf(conn, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("second request on the connection: %v", err)
	}
	late, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(late) != "late" || err != nil {
		t.Errorf("second request: got %d %q %v, want 200 late", resp.StatusCode, late, err)
	}
}
