package h1

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzResponse has a server answer a request with arbitrary bytes, then
// a second request go out on the same Transport: every exchange ends,
// with a response or an error, no read goes on past its context, and a
// connection whose answer was not clean is not used again (the second
// request would read what is left of the first answer).
func FuzzResponse(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n5\r\ndata:\r\n0\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"garbage",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, answer string) {
		u := serveRaw(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				if req.Header.Get("X-Second") != "" {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")
					continue
				}
				// The connection stays open: whether it may carry the
				// next request is for the Transport to tell.
				io.WriteString(c, answer)
			}
		})
		tr := newTransport()
		defer tr.CloseIdleConnections()
		// An answer cut short is waited for until this context ends.
		first, cancelFirst := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancelFirst()
		req, _ := http.NewRequestWithContext(first, http.MethodPost, u, strings.NewReader("{}"))
		if resp, err := tr.RoundTrip(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// The second request gets its own answer, whatever the first left.
		req, _ = http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader("{}"))
		req.Header.Set("X-Second", "1")
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("the request after the fuzzed answer failed: %v", err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != "second" {
			t.Fatalf("the request after the fuzzed answer got %q, %v", b, err)
		}
	})
}
