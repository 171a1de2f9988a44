package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
)

// rawInlineProxy is rawHTTPProxy with another HTTP client under the same
// httputil.ReverseProxy: inlineTransport, which makes each exchange on
// the calling goroutine. It measures what net/http's Transport costs
// besides the exchange itself (its read and write loops, two goroutines
// per connection, and a hand-off to each for every request), the part of
// the hop a gateway could only avoid with an HTTP client of its own. Like
// rawHTTPProxy it is a measurement, not a design option: its client has
// no cancellation, timeouts, TLS or proxy support.
func rawInlineProxy(ctx context.Context, up upstream) (*path, error) {
	u, err := url.Parse(up.BackendURL)
	if err != nil {
		return nil, err
	}
	tr := &inlineTransport{addr: u.Host}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.URL.Path = u.Path
		},
		Transport:     tr,
		FlushInterval: -1,
	}
	srv, base, err := serveHTTP(ctx, rp)
	if err != nil {
		return nil, err
	}
	return &path{endpoint: base + "/mcp", tool: "echo", close: func() {
		srv.Close()
		tr.closeIdle()
	}}, nil
}

// inlineTransport is an HTTP/1.1 client over a pool of keep-alive
// connections. RoundTrip writes the request and reads the response head
// on its caller's goroutine with net/http's own request writer and
// response parser; the connection goes back to the pool when its body was
// read to the end, and is closed otherwise.
type inlineTransport struct {
	addr string
	mu   sync.Mutex
	idle []*inlineConn
}

type inlineConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func (t *inlineTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ic, err := t.get()
	if err != nil {
		return nil, err
	}
	if err := req.Write(ic.bw); err != nil {
		ic.c.Close()
		return nil, err
	}
	if err := ic.bw.Flush(); err != nil {
		ic.c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(ic.br, req)
	if err != nil {
		ic.c.Close()
		return nil, err
	}
	resp.Body = &inlineBody{rc: resp.Body, t: t, ic: ic, keep: !resp.Close}
	return resp, nil
}

func (t *inlineTransport) get() (*inlineConn, error) {
	t.mu.Lock()
	if n := len(t.idle); n > 0 {
		ic := t.idle[n-1]
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		return ic, nil
	}
	t.mu.Unlock()
	c, err := net.Dial("tcp", t.addr)
	if err != nil {
		return nil, err
	}
	return &inlineConn{c: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)}, nil
}

func (t *inlineTransport) put(ic *inlineConn) {
	t.mu.Lock()
	t.idle = append(t.idle, ic)
	t.mu.Unlock()
}

func (t *inlineTransport) closeIdle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ic := range t.idle {
		ic.c.Close()
	}
	t.idle = nil
}

// inlineBody gives its connection back once the body was read to its end.
type inlineBody struct {
	rc        io.ReadCloser
	t         *inlineTransport
	ic        *inlineConn
	keep, eof bool
	closed    bool
}

func (b *inlineBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *inlineBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if b.eof && b.keep {
		b.t.put(b.ic)
		return nil
	}
	return b.ic.c.Close()
}
