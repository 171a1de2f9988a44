package main

import (
	"context"
	"net/http"

	"github.com/tracegate/tracegate/internal/h1"
)

// rawInlineProxy is rawHTTPProxy with the gateway's own backend client
// under the same httputil.ReverseProxy: internal/h1, which makes each
// plain-HTTP exchange on the calling goroutine. The two measure what
// net/http's Transport costs besides the exchange itself (a read loop and
// a write loop per connection, and a hand-off to each for every request).
func rawInlineProxy(ctx context.Context, up upstream) (*path, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	rt := h1.New(tr)
	return bareProxy(ctx, up, rt, rt.CloseIdleConnections)
}
