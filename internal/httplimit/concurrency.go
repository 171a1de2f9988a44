package httplimit

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Concurrency bounds the requests in progress and the long-lived streams
// open at once. Past either bound a request gets HTTP 503 with Retry-After,
// before the next handler sees it. Streams (GET requests for server-sent
// events, which stay open for a session's life) have their own bound, so
// that open streams never starve calls, and calls never starve streams.
//
// Wrap reads MaxRequests and MaxStreams; SetLimits changes them on a
// running Concurrency. A Concurrency must not be copied after first use.
type Concurrency struct {
	// MaxRequests bounds requests in progress, streams excluded. Zero or
	// less means no bound.
	MaxRequests int
	// MaxStreams bounds open streams. Zero or less means no bound.
	MaxStreams int
	// RetryAfter is sent with each 503, rounded up to whole seconds. If
	// zero, 1s.
	RetryAfter time.Duration
	// IsStream says whether a request opens a long-lived stream. If nil,
	// IsEventStream.
	IsStream func(*http.Request) bool
	// Refusals counts each 503. If nil, they are not counted.
	Refusals *Refusals

	requests, streams atomic.Int64
	// maxRequests and maxStreams are the bounds in force: the fields as
	// Wrap read them, or what SetLimits set since.
	maxRequests, maxStreams atomic.Int64

	mu      sync.Mutex
	closing bool
	open    map[*http.Request]context.CancelFunc // streams in progress
}

// IsEventStream reports whether r is a GET that accepts
// text/event-stream: the standalone stream of the MCP Streamable HTTP
// transport, or a legacy SSE connection.
func IsEventStream(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// InFlight returns the requests and streams in progress now.
func (c *Concurrency) InFlight() (requests, streams int64) {
	return c.requests.Load(), c.streams.Load()
}

// SetLimits changes the bounds of a running Concurrency (a configuration
// reload). Requests and streams in progress are kept; past a lowered bound,
// new ones are refused until enough have ended.
func (c *Concurrency) SetLimits(maxRequests, maxStreams int) {
	c.maxRequests.Store(int64(maxRequests))
	c.maxStreams.Store(int64(maxStreams))
}

// Wrap returns next behind the bounds.
func (c *Concurrency) Wrap(next http.Handler) http.Handler {
	isStream := c.IsStream
	if isStream == nil {
		isStream = IsEventStream
	}
	c.SetLimits(c.MaxRequests, c.MaxStreams)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, max, limit := &c.requests, &c.maxRequests, LimitConcurrentRequests
		if isStream(r) {
			n, max, limit = &c.streams, &c.maxStreams, LimitStreams
		}
		if v, m := n.Add(1), max.Load(); m > 0 && v > m {
			n.Add(-1)
			c.refuse(w, r, limit)
			return
		}
		defer n.Add(-1)
		if n == &c.streams {
			c.serveStream(w, r, next)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// serveStream runs a stream with a context that CloseStreams cancels.
// Handlers of server-sent events return when their request's context ends.
func (c *Concurrency) serveStream(w http.ResponseWriter, r *http.Request, next http.Handler) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	r = r.WithContext(ctx)
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		http.Error(w, "tracegate is shutting down", http.StatusServiceUnavailable)
		return
	}
	if c.open == nil {
		c.open = map[*http.Request]context.CancelFunc{}
	}
	c.open[r] = cancel
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.open, r)
		c.mu.Unlock()
	}()
	next.ServeHTTP(w, r)
}

// CloseStreams ends every open stream, by cancelling its request's
// context, and refuses new ones with 503. A server calls it when its
// shutdown grace period starts: http.Server.Shutdown waits for handlers to
// return, and a stream's handler returns only when its client leaves.
// Requests other than streams are left to finish. A nil Concurrency has
// no streams.
func (c *Concurrency) CloseStreams() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closing = true
	for _, cancel := range c.open {
		cancel()
	}
}

func (c *Concurrency) refuse(w http.ResponseWriter, r *http.Request, limit string) {
	c.Refusals.Add(r.Context(), limit)
	after := c.RetryAfter
	if after <= 0 {
		after = time.Second
	}
	secs := int64((after + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	http.Error(w, "tracegate is at its "+limit+" limit; retry later", http.StatusServiceUnavailable)
}
