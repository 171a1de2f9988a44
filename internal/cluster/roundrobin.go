package cluster

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// RoundRobin is a load balancer without stickiness: each request goes to
// the next replica in turn, whatever session it belongs to. tracegate demo
// -replicas runs one in front of its replicas, and the tests and the bench
// run theirs through it, so that no request finds its session where the
// last one left it by luck.
//
// Like any load balancer worth the name, it stops sending to a replica
// that refuses connections (for a few seconds, then tries it again), and
// a request that could not be delivered at all goes to the next replica.
// A request a replica took and then lost (it died mid-answer) is not
// retried: the client gets the error.
type RoundRobin struct {
	targets []*url.URL
	next    atomic.Uint64
	proxy   *httputil.ReverseProxy

	mu   sync.Mutex
	down map[int]time.Time // target index -> refused connections until
}

// downFor is how long a replica that refused a connection is skipped.
const downFor = 3 * time.Second

// maxBalancedBody bounds the body kept to resend a request elsewhere.
const maxBalancedBody = 8 << 20

type attemptKey struct{}

type attempt struct {
	body   []byte
	target int
	tries  int
}

// NewRoundRobin balances over the replicas' base URLs. Transport, if not
// nil, is the proxy's round tripper.
func NewRoundRobin(targets []*url.URL, transport http.RoundTripper) *RoundRobin {
	rr := &RoundRobin{targets: targets, down: map[int]time.Time{}}
	rr.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			a := r.In.Context().Value(attemptKey{}).(*attempt)
			r.SetURL(rr.targets[a.target])
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
		// Event streams go out as they come.
		FlushInterval: -1,
		Transport:     transport,
		ErrorHandler:  rr.failed,
		BufferPool:    copyBuffers{},
	}
	return rr
}

// copyBuffers lends the proxy its copy buffers, rather than it making a
// fresh 32 KiB one for every response.
type copyBuffers struct{}

var copyPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (copyBuffers) Get() []byte  { return *copyPool.Get().(*[]byte) }
func (copyBuffers) Put(b []byte) { copyPool.Put(&b) }

func (rr *RoundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := &attempt{}
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		if a.body, err = io.ReadAll(io.LimitReader(r.Body, maxBalancedBody+1)); err != nil {
			http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(a.body) > maxBalancedBody {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), attemptKey{}, a))
	rr.send(w, r, a)
}

func (rr *RoundRobin) send(w http.ResponseWriter, r *http.Request, a *attempt) {
	a.target = rr.pick()
	a.tries++
	if a.body != nil {
		r.Body = io.NopCloser(bytes.NewReader(a.body))
		r.ContentLength = int64(len(a.body))
	}
	rr.proxy.ServeHTTP(w, r)
}

// pick returns the next target in turn that is not known to be down.
func (rr *RoundRobin) pick() int {
	n := len(rr.targets)
	now := time.Now()
	rr.mu.Lock()
	defer rr.mu.Unlock()
	for range n {
		i := int((rr.next.Add(1) - 1) % uint64(n))
		if until, ok := rr.down[i]; !ok || now.After(until) {
			delete(rr.down, i)
			return i
		}
	}
	return int((rr.next.Add(1) - 1) % uint64(n))
}

// failed handles a request the proxy could not complete: one that never
// reached its replica goes to the next; any other gets 502.
func (rr *RoundRobin) failed(w http.ResponseWriter, r *http.Request, err error) {
	a := r.Context().Value(attemptKey{}).(*attempt)
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		rr.mu.Lock()
		rr.down[a.target] = time.Now().Add(downFor)
		rr.mu.Unlock()
		if a.tries < len(rr.targets) {
			rr.send(w, r, a)
			return
		}
	}
	http.Error(w, "tracegate round robin: the replica did not answer: "+err.Error(), http.StatusBadGateway)
}
