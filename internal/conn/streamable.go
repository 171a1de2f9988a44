package conn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracegate/tracegate/internal/sse"
	"github.com/tracegate/tracegate/internal/wire"
)

// Streamable HTTP headers (MCP basic/transports).
const (
	headerSessionID   = "Mcp-Session-Id"
	headerProtocol    = "Mcp-Protocol-Version"
	headerLastEventID = "Last-Event-ID"
)

// Bounds of reconnection, for resumed POST streams and the GET stream.
const (
	// maxRetryWait bounds the wait a server asks for with "retry".
	maxRetryWait = 10 * time.Second
	minBackoff   = 250 * time.Millisecond
	maxBackoff   = 30 * time.Second
	// maxResumeFailures bounds attempts in a row to resume a POST stream
	// that bring no new event.
	maxResumeFailures = 5
	// closeTimeout bounds the DELETE that Close sends.
	closeTimeout = 5 * time.Second
	// maxErrorBody bounds the body read from an HTTP error.
	maxErrorBody = 64 << 10
	// drainWait and maxDrainEvents bound the wait, after a response, for
	// the server to end the POST's event stream (see finishStream), and
	// lingerAfter such waits in a row that end in a timeout stop them.
	drainWait      = 50 * time.Millisecond
	maxDrainEvents = 16
	lingerAfter    = 3
)

// streamable is a session over MCP's Streamable HTTP transport: each
// message is a POST, answered with JSON or with an event stream that ends
// with the response; a GET stream carries what the server sends unasked.
type streamable struct {
	*session
	url     string
	safeURL string // url without credentials or query, for errors
	client  *http.Client

	hmu       sync.Mutex
	sessionID string
	protocol  string
	// sidHeader and protoHeader are the header values of sessionID and
	// protocol, made once.
	sidHeader, protoHeader []string

	// unended counts the POST streams in a row that outlived their
	// response by drainWait. From lingerAfter on, the server is taken to
	// keep its streams open, and no call of this session waits for their
	// end again; a stream that ends in time sets it back to 0 before that.
	unended atomic.Int32

	getOnce   sync.Once
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup // goroutines that read POST and GET streams
}

func dialStreamable(ctx context.Context, ep Endpoint, opts Options) (Conn, error) {
	safe, err := checkURL(ep.URL)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &streamable{session: newSession(opts), url: ep.URL, safeURL: safe, client: opts.HTTPClient}, nil
}

func (s *streamable) SessionID() string {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	return s.sessionID
}

// Established records the protocol version for the MCP-Protocol-Version
// header and opens the GET stream.
func (s *streamable) Established(protocolVersion string) {
	s.hmu.Lock()
	s.protocol = protocolVersion
	if protocolVersion != "" {
		s.protoHeader = []string{protocolVersion}
	}
	s.hmu.Unlock()
	s.getOnce.Do(func() {
		s.wg.Add(1)
		go s.getLoop()
	})
}

// do sends one HTTP request of the session. It reports whether the
// request carried a session id, for the 404 rule.
func (s *streamable) do(ctx context.Context, method string, body []byte, lastEventID string) (*http.Response, bool, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.url, r)
	if err != nil {
		return nil, false, fmt.Errorf("%s %s: %w", method, s.safeURL, err)
	}
	req.Header = make(http.Header, len(s.opts.Header)+5)
	for k, v := range s.opts.Header {
		req.Header[k] = slices.Clone(v)
	}
	// The fixed values are shared slices, set under canonical names: a
	// call allocates none of them (net/http only reads request headers).
	switch method {
	case http.MethodPost:
		req.Header["Content-Type"] = contentTypeJSON
		req.Header["Accept"] = acceptBoth
	case http.MethodGet:
		req.Header["Accept"] = acceptStream
	}
	s.hmu.Lock()
	sid, proto := s.sidHeader, s.protoHeader
	s.hmu.Unlock()
	if sid != nil {
		req.Header[headerSessionID] = sid
	}
	if proto != nil {
		req.Header[headerProtocol] = proto
	}
	if lastEventID != "" {
		req.Header.Set(headerLastEventID, lastEventID)
	}
	resp, err := s.send(req)
	if err != nil {
		return nil, false, s.transportError(ctx, method, err)
	}
	if id := resp.Header.Get(headerSessionID); id != "" {
		s.hmu.Lock()
		if s.sessionID == "" {
			s.sessionID = id // assigned in the response to initialize
			s.sidHeader = []string{id}
		}
		s.hmu.Unlock()
	}
	return resp, sid != nil, nil
}

// send sends req. A client with nothing of its own to add (no cookie jar,
// redirect policy or timeout) is bypassed for its transport: MCP follows
// no redirects, and http.Client would copy every request's headers to
// prepare for them.
func (s *streamable) send(req *http.Request) (*http.Response, error) {
	c := s.client
	if c.Jar != nil || c.CheckRedirect != nil || c.Timeout != 0 {
		return c.Do(req)
	}
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, &url.Error{Op: req.Method[:1] + strings.ToLower(req.Method[1:]), URL: req.URL.String(), Err: err}
	}
	return resp, nil
}

// transportError names what failed without the URL's credentials.
func (s *streamable) transportError(ctx context.Context, method string, err error) error {
	if ctx.Err() != nil {
		if e := s.Err(); e != nil {
			return e
		}
		return ctx.Err()
	}
	return fmt.Errorf("%s %s: %w", method, s.safeURL, unwrapURLError(err))
}

// expired ends the session when the server answers 404 to a request that
// carried its id: it has forgotten the session (basic/transports,
// "Session Management").
func (s *streamable) expired(resp *http.Response, hadSession bool) bool {
	if resp.StatusCode != http.StatusNotFound || !hadSession {
		return false
	}
	s.fail(ErrSessionExpired)
	return true
}

// Request POSTs msg and returns the response, from a JSON body or from
// the event stream, resuming the stream if it ends early.
func (s *streamable) Request(ctx context.Context, id, msg []byte, related func([]byte)) ([]byte, error) {
	key, ch, err := s.expect(id)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	rel := &relay{fn: related}
	defer rel.stop()
	// The exchange runs on the caller's goroutine: the response comes on
	// the POST's own answer, and ctx (or the session's end, through
	// rctx) aborts the HTTP exchange at once.
	err = s.exchange(rctx, cancel, id, msg, rel)
	select {
	case resp := <-ch:
		return resp, nil
	default:
	}
	s.forget(key) // a late response is dropped
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if e := s.Err(); e != nil {
		return nil, e
	}
	if err == nil {
		err = errors.New("the server sent no response")
	}
	return nil, err
}

// relay calls a Request's related function, and never after the Request
// returned.
type relay struct {
	mu      sync.Mutex
	fn      func([]byte)
	stopped bool
}

func (r *relay) call(msg []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopped && r.fn != nil {
		r.fn(bytes.Clone(msg))
	}
}

func (r *relay) stop() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
}

// exchange POSTs one request and reads what answers it, delivering the
// response through resolve. A nil error means it was delivered. abort
// cancels ctx.
func (s *streamable) exchange(ctx context.Context, abort context.CancelFunc, id, msg []byte, rel *relay) error {
	resp, hadSession, err := s.do(ctx, http.MethodPost, msg, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if s.expired(resp, hadSession) {
		return ErrSessionExpired
	}
	if resp.StatusCode/100 != 2 {
		return s.errorResponse(http.MethodPost, resp, id)
	}
	if resp.StatusCode == http.StatusAccepted {
		return fmt.Errorf("POST %s: the server answered a request with 202 Accepted, and no response", s.safeURL)
	}
	switch mediaType(resp) {
	case "application/json":
		body, err := s.readBody(resp.Body)
		if err != nil {
			return err
		}
		m, err := wire.Parse(body)
		if err != nil || !m.IsResponse() {
			return fmt.Errorf("POST %s: the JSON body is not a JSON-RPC response: %s", s.safeURL, snippet(body))
		}
		if !s.resolve(&m) || !sameID(m.ID, id) {
			return fmt.Errorf("POST %s: the response's id %s is not the request's, %s", s.safeURL, m.ID, id)
		}
		return nil
	case "text/event-stream":
		return s.readCallStream(ctx, abort, resp.Body, id, rel)
	}
	return fmt.Errorf("POST %s: unexpected Content-Type %q", s.safeURL, resp.Header.Get("Content-Type"))
}

var (
	contentTypeJSON = []string{"application/json"}
	acceptBoth      = []string{"application/json, text/event-stream"}
	acceptStream    = []string{"text/event-stream"}
)

// readCallStream reads a POST's event stream until the response. When
// the stream ends first and its events had ids, it resumes the stream
// with GET and Last-Event-ID (MCP SEP-1699, basic/transports "Resumability
// and Redelivery"), waiting the retry the server asked for.
func (s *streamable) readCallStream(ctx context.Context, abort context.CancelFunc, body io.Reader, id []byte, rel *relay) error {
	lastID, retry, got, err := s.readEvents(body, abort, id, rel)
	failures := 0
	for !got {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrTooLarge) {
			return err
		}
		if lastID == "" {
			return fmt.Errorf("POST %s: the event stream ended before the response, and its events had no ids to resume from: %w", s.safeURL, streamEnd(err))
		}
		failures++
		if failures > maxResumeFailures {
			return fmt.Errorf("POST %s: gave up resuming the event stream after %d attempts: %w", s.safeURL, maxResumeFailures, streamEnd(err))
		}
		wait := min(retry, maxRetryWait)
		if retry == 0 {
			wait = backoff(failures)
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		resp, hadSession, rerr := s.do(ctx, http.MethodGet, nil, lastID)
		if rerr != nil {
			err = rerr
			continue
		}
		switch {
		case s.expired(resp, hadSession):
			resp.Body.Close()
			return ErrSessionExpired
		case resp.StatusCode == http.StatusMethodNotAllowed:
			resp.Body.Close()
			return fmt.Errorf("POST %s: the event stream ended before the response, and the server refuses GET to resume it (405)", s.safeURL)
		case resp.StatusCode/100 != 2 || mediaType(resp) != "text/event-stream":
			err = statusError(http.MethodGet, s.safeURL, resp)
			resp.Body.Close()
			continue
		}
		var newID string
		var newRetry time.Duration
		newID, newRetry, got, err = s.readEvents(resp.Body, abort, id, rel)
		resp.Body.Close()
		if newID != "" && newID != lastID {
			lastID, failures = newID, 0
		}
		if newRetry != 0 {
			retry = newRetry
		}
	}
	return nil
}

// readEvents reads one event stream of a request: messages before the
// response go to rel, the response to resolve. It returns the stream's
// last event id and retry, and whether the response came. abort cancels
// the HTTP request of body.
func (s *streamable) readEvents(body io.Reader, abort context.CancelFunc, id []byte, rel *relay) (lastID string, retry time.Duration, got bool, err error) {
	r := sse.NewReader(body, s.opts.MaxMessage)
	defer r.Release()
	for {
		ev, err := r.Next()
		if err != nil {
			if errors.Is(err, sse.ErrTooLarge) {
				err = fmt.Errorf("%w: an event of more than %d bytes", ErrTooLarge, s.opts.MaxMessage)
				s.fail(err)
			}
			return r.LastEventID(), r.Retry(), false, err
		}
		if ev.Type != "message" {
			continue
		}
		m, ok := s.parse(ev.Data)
		if !ok {
			continue
		}
		if m.IsResponse() {
			if s.resolve(&m) && sameID(m.ID, id) {
				s.finishStream(r, abort)
				return r.LastEventID(), r.Retry(), true, nil
			}
			continue
		}
		rel.call(ev.Data)
	}
}

// finishStream reads a POST's event stream on after its response, to its
// end, so that the connection goes back to the transport's pool: closing
// a chunked body before its last chunk closes the connection, and the
// next call then pays for a new one (and leaves a socket in TIME_WAIT).
// Most often the end came with the response and there is nothing to
// wait for. The server SHOULD end the stream after the response
// (basic/transports); the wait is bounded by drainWait and
// maxDrainEvents. After lingerAfter streams in a row outlived them, the
// session stops waiting: one late end on a busy machine does not. A
// message found there is handled as if it came on the GET stream.
func (s *streamable) finishStream(r *sse.Reader, abort context.CancelFunc) {
	if r.Ended() || s.lingering() {
		return
	}
	t := time.AfterFunc(drainWait, abort)
	defer t.Stop()
	for range maxDrainEvents {
		ev, err := r.Next()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				s.unended.Store(0)
			case !t.Stop():
				s.unendedStream()
			}
			return
		}
		if ev.Type == "message" {
			s.dispatch(ev.Data)
		}
	}
	s.unendedStream()
}

// lingering reports whether the server keeps its POST streams open after
// their response.
func (s *streamable) lingering() bool { return s.unended.Load() >= lingerAfter }

func (s *streamable) unendedStream() {
	if s.unended.Add(1) == lingerAfter {
		s.log.Debug("conn: the server keeps POST streams open after their response; their connections are not reused", "url", s.safeURL)
	}
}

// Send POSTs a notification or a response; the server answers 202.
func (s *streamable) Send(ctx context.Context, msg []byte) error {
	if err := s.Err(); err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	resp, hadSession, err := s.do(rctx, http.MethodPost, msg, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if s.expired(resp, hadSession) {
		return ErrSessionExpired
	}
	if resp.StatusCode/100 != 2 {
		return statusError(http.MethodPost, s.safeURL, resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return nil
}

// getLoop keeps the GET stream open while the session lives, passing
// what arrives on it to dispatch, and reconnecting with Last-Event-ID and
// backoff. A server that answers 405 has no such stream.
func (s *streamable) getLoop() {
	defer s.wg.Done()
	var lastID string
	var retry time.Duration
	failures := 0
	for s.ctx.Err() == nil {
		resp, hadSession, err := s.do(s.ctx, http.MethodGet, nil, lastID)
		switch {
		case err != nil:
			s.log.Debug("conn: GET stream failed", "error", err)
		case s.expired(resp, hadSession):
			resp.Body.Close()
			return
		case resp.StatusCode == http.StatusMethodNotAllowed:
			resp.Body.Close()
			s.log.Debug("conn: the server offers no GET stream (405)", "url", s.safeURL)
			return
		case resp.StatusCode/100 != 2 || mediaType(resp) != "text/event-stream":
			s.log.Debug("conn: GET stream refused", "error", statusError(http.MethodGet, s.safeURL, resp))
			resp.Body.Close()
		default:
			r := sse.NewReader(resp.Body, s.opts.MaxMessage)
			n := 0
			for {
				ev, err := r.Next()
				if err != nil {
					if errors.Is(err, sse.ErrTooLarge) {
						s.fail(fmt.Errorf("%w: an event of more than %d bytes on the GET stream", ErrTooLarge, s.opts.MaxMessage))
					}
					break
				}
				n++
				if ev.Type == "message" {
					s.dispatch(ev.Data)
				}
			}
			resp.Body.Close()
			if id := r.LastEventID(); id != "" {
				lastID = id
			}
			if r.Retry() != 0 {
				retry = r.Retry()
			}
			if n > 0 {
				failures = 0
			}
			s.log.Debug("conn: GET stream ended; reconnecting", "url", s.safeURL)
		}
		failures++
		wait := backoff(failures)
		if retry != 0 {
			wait = min(retry, maxRetryWait)
		}
		if !sleep(s.ctx, wait) {
			return
		}
	}
}

// Close ends the session: requests in flight return ErrClosed, the GET
// stream closes, and a DELETE tells the server (bounded by closeTimeout;
// a server that does not allow it answers 405, which is fine).
func (s *streamable) Close() error {
	s.closeOnce.Do(func() {
		s.fail(ErrClosed)
		if s.SessionID() != "" {
			ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
			defer cancel()
			resp, _, err := s.do(ctx, http.MethodDelete, nil, "")
			switch {
			case err != nil:
				s.closeErr = err
			case resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound:
				s.closeErr = statusError(http.MethodDelete, s.safeURL, resp)
			}
			if resp != nil {
				resp.Body.Close()
			}
		}
		s.wg.Wait()
	})
	return s.closeErr
}

// readBody reads a JSON body, bounded by MaxMessage.
func (s *streamable) readBody(r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, int64(s.opts.MaxMessage)+1))
	if err != nil {
		return nil, fmt.Errorf("POST %s: reading the body: %w", s.safeURL, err)
	}
	if len(body) > s.opts.MaxMessage {
		err := fmt.Errorf("%w: a body of more than %d bytes", ErrTooLarge, s.opts.MaxMessage)
		s.fail(err)
		return nil, err
	}
	return body, nil
}

// errorResponse turns an HTTP error to a request into its response when
// the body is a JSON-RPC error (servers answer a bad request so, with a
// null id when they could not read one), else into an error naming the
// status.
func (s *streamable) errorResponse(method string, resp *http.Response, id []byte) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if mediaType(resp) == "application/json" && wire.Get(body, "error") != nil {
		e := wire.DecodeError(wire.Get(body, "error"))
		m, err := wire.Parse(body)
		if err != nil || !m.IsResponse() || !sameID(m.ID, id) {
			// Give it the request's id, so that it finds its Request.
			body = wire.AppendError(nil, id, e.Code, e.Message, e.Data)
			m, _ = wire.Parse(body)
		}
		if s.resolve(&m) {
			return nil
		}
	}
	return httpStatusError(method, s.safeURL, resp, body)
}

// statusError names an HTTP error status, with the start of its body.
func statusError(method, safeURL string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return httpStatusError(method, safeURL, resp, body)
}

func httpStatusError(method, safeURL string, resp *http.Response, body []byte) error {
	if msg := bytes.TrimSpace(body); len(msg) > 0 {
		return fmt.Errorf("%s %s: HTTP %s: %s", method, safeURL, resp.Status, snippet(msg))
	}
	return fmt.Errorf("%s %s: HTTP %s", method, safeURL, resp.Status)
}

// mediaType is the response's media type without parameters. The two
// values servers send on every call are matched as they are, since
// mime.ParseMediaType builds a map of parameters each time; anything else
// is parsed.
func mediaType(resp *http.Response) string {
	ct := resp.Header.Get("Content-Type")
	switch ct {
	case "application/json", "text/event-stream":
		return ct
	}
	mt, _, _ := mime.ParseMediaType(ct)
	return mt
}

// streamEnd names why a stream ended, io.EOF as a plain end.
func streamEnd(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// backoff is the wait before the nth reconnection attempt in a row.
func backoff(n int) time.Duration {
	d := minBackoff
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// sleep waits d, and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
