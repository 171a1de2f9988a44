package main

import (
	"context"
	"net/http"
	"net/http/httputil"
	"net/url"
)

// rawHTTPProxy forwards HTTP to the backend without reading MCP at all:
// no decoding, no routing, no re-encoding. It is not a design option (it
// cannot trace, route or aggregate); it measures what one more HTTP hop
// costs on this machine, the floor under any gateway's overhead.
func rawHTTPProxy(ctx context.Context, up upstream) (*path, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	return bareProxy(ctx, up, tr, tr.CloseIdleConnections)
}

// bareProxy serves an httputil.ReverseProxy to the backend over rt.
func bareProxy(ctx context.Context, up upstream, rt http.RoundTripper, closeIdle func()) (*path, error) {
	u, err := url.Parse(up.BackendURL)
	if err != nil {
		return nil, err
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.URL.Path = u.Path
		},
		Transport: rt,
		// Responses are server-sent event streams: pass each event on at once.
		FlushInterval: -1,
	}
	srv, base, err := serveHTTP(ctx, rp)
	if err != nil {
		return nil, err
	}
	return &path{endpoint: base + "/mcp", tool: "echo", close: func() {
		srv.Close()
		closeIdle()
	}}, nil
}
