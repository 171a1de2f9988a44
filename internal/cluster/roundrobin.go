package cluster

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
)

// RoundRobin is a load balancer without stickiness: each request goes to
// the next replica in turn, whatever session it belongs to. tracegate demo
// -replicas runs one in front of its replicas, and the tests and the bench
// run theirs through it, so that no request finds its session where the
// last one left it by luck.
type RoundRobin struct {
	targets []*url.URL
	next    atomic.Uint64
	proxy   *httputil.ReverseProxy
}

// NewRoundRobin balances over the replicas' base URLs. Transport, if not
// nil, is the proxy's round tripper.
func NewRoundRobin(targets []*url.URL, transport http.RoundTripper) *RoundRobin {
	rr := &RoundRobin{targets: targets}
	rr.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			t := rr.targets[(rr.next.Add(1)-1)%uint64(len(rr.targets))]
			r.SetURL(t)
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
		// Event streams go out as they come.
		FlushInterval: -1,
		Transport:     transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "tracegate round robin: the replica did not answer: "+err.Error(), http.StatusBadGateway)
		},
	}
	return rr
}

func (rr *RoundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) { rr.proxy.ServeHTTP(w, r) }
