// Package h1 is the HTTP/1.1 client under tracegate's calls to plain-HTTP
// backends. It makes each exchange on the calling goroutine: it writes
// the request and reads the response on a pooled keep-alive connection,
// with net/http's own request writer and response parser.
//
// net/http's Transport gives every connection a read loop and a write
// loop, and hands each request to both: three goroutines and their
// wake-ups per call. On a gateway that makes one backend call per client
// call, that is a quarter of what the hop costs (go run ./bench
// -scenarios raw-http-proxy,raw-inline-proxy). Everything else (TLS,
// proxies, HTTP/2, protocol upgrades) stays with net/http: Transport
// hands those requests to its Fallback.
//
// Unlike net/http's Transport it does not ask for gzip: a gateway's hop to
// a plain-HTTP backend is a loopback or a LAN, where compressing every
// response costs more than it saves.
package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Transport is an http.RoundTripper for http:// URLs reached without a
// proxy; every other request goes to Fallback. Its zero value is not
// usable: make one with New.
type Transport struct {
	// Fallback makes the requests Transport does not, and lends its
	// settings: Proxy, DialContext, MaxIdleConnsPerHost and
	// IdleConnTimeout. How long a response may take is the request
	// context's to say.
	Fallback *http.Transport

	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle     int
	idleTimeout time.Duration

	mu   sync.Mutex
	idle map[string][]*conn // by host:port, the most recently used last
}

// New returns a Transport over fallback, which it does not modify.
func New(fallback *http.Transport) *Transport {
	t := &Transport{Fallback: fallback, maxIdle: fallback.MaxIdleConnsPerHost, idleTimeout: fallback.IdleConnTimeout, idle: map[string][]*conn{}}
	if t.maxIdle <= 0 {
		t.maxIdle = http.DefaultMaxIdleConnsPerHost
	}
	t.dial = fallback.DialContext
	if t.dial == nil {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		t.dial = d.DialContext
	}
	return t
}

// conn is one keep-alive connection.
type conn struct {
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	probe  *prober
	reused bool
	idleAt time.Time
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.handles(req) {
		return t.Fallback.RoundTrip(req)
	}
	ctx := req.Context()
	addr := hostPort(req.URL)
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			closeBody(req)
			return nil, err
		}
		c, err := t.get(ctx, addr, attempt > 0)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, err := t.exchange(ctx, c, addr, req)
		if err == nil {
			return resp, nil
		}
		// A reused connection that fails before the response's first byte
		// was most likely closed by the server as it sat idle, just as the
		// request went out. The request is sent again on a new connection
		// when its body can be made again, and, if the server may have read
		// it, only when it is idempotent, as net/http's Transport does.
		var stale staleError
		if !errors.As(err, &stale) || attempt > 0 || ctx.Err() != nil || (stale.read && !idempotent(req)) {
			closeBody(req)
			return nil, err
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, err
			}
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			req = req.Clone(ctx)
			req.Body = body
		}
	}
}

// handles reports whether the request is one Transport makes itself.
func (t *Transport) handles(req *http.Request) bool {
	if req.URL == nil || req.URL.Scheme != "http" || req.Method == http.MethodConnect || req.Header.Get("Upgrade") != "" {
		return false
	}
	if t.Fallback.Proxy != nil {
		if u, err := t.Fallback.Proxy(req); err != nil || u != nil {
			return false
		}
	}
	return true
}

// staleError is a reused connection that failed before the response:
// while the request was written, or, with read, when its answer was
// awaited.
type staleError struct {
	err  error
	read bool
}

func (e staleError) Error() string { return e.err.Error() }
func (e staleError) Unwrap() error { return e.err }

// exchange writes req on c and reads the response's head. On an error, c
// is closed.
func (t *Transport) exchange(ctx context.Context, c *conn, addr string, req *http.Request) (*http.Response, error) {
	// Cancellation: a deadline in the past ends a blocked read or write at
	// once, and the connection is not reused afterwards.
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		c.nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if err := req.Write(c.bw); err != nil {
		return fail(err)
	}
	if err := c.bw.Flush(); err != nil {
		if c.reused {
			err = staleError{err: err}
		}
		return fail(err)
	}
	if _, err := c.br.Peek(1); err != nil {
		if c.reused && (errors.Is(err, io.EOF) || isReset(err)) {
			err = staleError{err: err, read: true}
		}
		return fail(err)
	}
	resp, err := http.ReadResponse(c.br, req)
	// 1xx answers other than 101 come before the response (RFC 9110
	// section 15.2).
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
		resp, err = http.ReadResponse(c.br, req)
	}
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return fail(errSwitched)
	}
	b := &body{t: t, c: c, addr: addr, stop: stop, keep: !resp.Close && !req.Close, rc: resp.Body}
	if resp.Body == http.NoBody { // a response that has none, such as 202 or 204
		b.finish(true)
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

var (
	aLongTimeAgo = time.Unix(1, 0)
	errSwitched  = errors.New("the server switched protocols (101), which a request without Upgrade does not allow")
)

// get returns an idle connection to addr that is still open, or dials a
// new one (always, with fresh).
func (t *Transport) get(ctx context.Context, addr string, fresh bool) (*conn, error) {
	for !fresh {
		t.mu.Lock()
		list := t.idle[addr]
		if len(list) == 0 {
			t.mu.Unlock()
			break
		}
		c := list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[addr] = list[:len(list)-1]
		t.mu.Unlock()
		if (t.idleTimeout > 0 && time.Since(c.idleAt) > t.idleTimeout) || !c.probe.open() {
			c.nc.Close()
			continue
		}
		c.reused = true
		return c, nil
	}
	nc, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &conn{nc: nc, br: bufio.NewReader(nc), bw: bufio.NewWriter(nc), probe: newProber(nc)}, nil
}

// put keeps c for the next request to addr, within the idle bound. The
// oldest idle connection goes when it is past the idle timeout: the list
// is used from its end, and would otherwise keep, to the bound, the
// connections of a busier moment that servers have since closed.
func (t *Transport) put(addr string, c *conn) {
	c.idleAt = time.Now()
	var old *conn
	t.mu.Lock()
	list := t.idle[addr]
	if len(list) > 0 && t.idleTimeout > 0 && c.idleAt.Sub(list[0].idleAt) > t.idleTimeout {
		old = list[0]
		list = append(list[:0], list[1:]...)
	}
	keep := len(list) < t.maxIdle
	if keep {
		list = append(list, c)
	}
	t.idle[addr] = list
	t.mu.Unlock()
	if old != nil {
		old.nc.Close()
	}
	if !keep {
		c.nc.Close()
	}
}

// CloseIdleConnections closes the idle connections, its own and
// Fallback's.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*conn{}
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.nc.Close()
		}
	}
	t.Fallback.CloseIdleConnections()
}

// body is a response body. Its connection goes back to the pool once the
// body was read to the end, and is closed if the body is closed before.
type body struct {
	t    *Transport
	c    *conn
	addr string
	stop func() bool
	keep bool

	rmu sync.Mutex // held by Read
	rc  io.ReadCloser

	mu   sync.Mutex
	done bool
	eof  bool
}

func (b *body) Read(p []byte) (int, error) {
	b.rmu.Lock()
	defer b.rmu.Unlock()
	b.mu.Lock()
	done, eof := b.done, b.eof
	b.mu.Unlock()
	switch {
	case eof:
		return 0, io.EOF
	case done:
		return 0, errBodyClosed
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
	}
	return n, err
}

var errBodyClosed = errors.New("h1: read on a closed response body")

// Close may be called while a Read is blocked, from another goroutine:
// closing the connection first ends that Read.
func (b *body) Close() error {
	b.finish(false)
	return nil
}

// finish settles the connection once: back to the pool after a clean end
// (unless the caller's context was canceled meanwhile), closed otherwise.
func (b *body) finish(eof bool) {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return
	}
	b.done, b.eof = true, eof
	b.mu.Unlock()
	// Bytes already read past the response are nothing a request asked
	// for: the connection is not in step with its requests any more.
	if b.stop() && eof && b.keep && b.c.br.Buffered() == 0 {
		b.t.put(b.addr, b.c)
		return
	}
	b.c.nc.Close()
}

// idempotent is net/http's rule for sending a request again (RFC 9110
// section 9.2.2, and the common Idempotency-Key header).
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// hostPort is u's host with its port, 80 when it has none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "80")
}
