package conn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/tracegate/tracegate/internal/sse"
)

// legacy is a session over the HTTP+SSE transport of MCP 2024-11-05: a GET
// opens an event stream whose first "endpoint" event names the URL that
// takes the client's POSTs; every message of the server's, responses
// included, comes on the stream.
type legacy struct {
	*session
	safeURL  string
	client   *http.Client
	post     string // the endpoint
	safePost string

	wg        sync.WaitGroup
	closeOnce sync.Once
}

func dialSSE(ctx context.Context, ep Endpoint, opts Options) (Conn, error) {
	safe, err := checkURL(ep.URL)
	if err != nil {
		return nil, err
	}
	base, _ := url.Parse(ep.URL)
	s := &legacy{session: newSession(opts), safeURL: safe, client: opts.HTTPClient}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, ep.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", safe, err)
	}
	s.header(req)
	req.Header.Set("Accept", "text/event-stream")
	endpoint := make(chan string, 1)
	s.wg.Add(1)
	go s.readLoop(req, endpoint)
	select {
	case raw := <-endpoint:
		u, err := base.Parse(strings.TrimSpace(raw))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("the SSE stream of %s named an endpoint that does not parse", safe)
		}
		// The endpoint gets the configured headers, credentials included:
		// it must be the same server (2024-11-05 transports, "Security").
		if u.Scheme != base.Scheme || !strings.EqualFold(u.Host, base.Host) {
			s.Close()
			return nil, fmt.Errorf("the SSE stream of %s named an endpoint on another origin, %s://%s: refused", safe, u.Scheme, u.Host)
		}
		s.post, s.safePost = u.String(), redact(u)
		return s, nil
	case <-s.done:
		s.wg.Wait()
		return nil, s.Err()
	case <-ctx.Done():
		s.Close()
		return nil, fmt.Errorf("waiting for the endpoint event of %s: %w", safe, ctx.Err())
	}
}

func (s *legacy) header(req *http.Request) {
	for k, v := range s.opts.Header {
		req.Header[k] = slices.Clone(v)
	}
}

// readLoop owns the GET: it reports the first endpoint event, then
// dispatches every message until the stream ends, which ends the session.
func (s *legacy) readLoop(req *http.Request, endpoint chan<- string) {
	defer s.wg.Done()
	resp, err := s.client.Do(req)
	if err != nil {
		if s.ctx.Err() == nil {
			s.fail(fmt.Errorf("GET %s: %w", s.safeURL, unwrapURLError(err)))
		}
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		s.fail(statusError(http.MethodGet, s.safeURL, resp))
		return
	}
	if mt := mediaType(resp); mt != "text/event-stream" {
		s.fail(fmt.Errorf("GET %s: got %q, not an event stream: not a 2024-11-05 SSE endpoint?", s.safeURL, mt))
		return
	}
	r := sse.NewReader(resp.Body, s.opts.MaxMessage)
	first := true
	for {
		ev, err := r.Next()
		if err != nil {
			switch {
			case errors.Is(err, sse.ErrTooLarge):
				s.fail(fmt.Errorf("%w: an event of more than %d bytes", ErrTooLarge, s.opts.MaxMessage))
			case s.ctx.Err() == nil:
				s.fail(fmt.Errorf("the SSE stream of %s ended: %w", s.safeURL, streamEnd(err)))
			}
			return
		}
		switch ev.Type {
		case "endpoint":
			if first {
				first = false
				endpoint <- string(ev.Data)
			}
		case "message":
			s.dispatch(ev.Data)
		}
	}
}

// send POSTs one message to the endpoint, which answers 202 Accepted.
func (s *legacy) send(ctx context.Context, msg []byte) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.post, bytes.NewReader(msg))
	if err != nil {
		return fmt.Errorf("POST %s: %w", s.safePost, err)
	}
	s.header(req)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if e := s.Err(); e != nil {
			return e
		}
		return fmt.Errorf("POST %s: %w", s.safePost, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return statusError(http.MethodPost, s.safePost, resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return nil
}

func (s *legacy) Request(ctx context.Context, id, msg []byte, _ func([]byte)) ([]byte, error) {
	key, ch, err := s.expect(id)
	if err != nil {
		return nil, err
	}
	if err := s.send(ctx, msg); err != nil {
		s.forget(key)
		return nil, err
	}
	return s.await(ctx, key, ch)
}

func (s *legacy) Send(ctx context.Context, msg []byte) error {
	if err := s.Err(); err != nil {
		return err
	}
	return s.send(ctx, msg)
}

func (s *legacy) Established(string) {}

func (s *legacy) SessionID() string { return "" }

// Close ends the GET stream, which ends the session on the server.
func (s *legacy) Close() error {
	s.closeOnce.Do(func() {
		s.fail(ErrClosed)
		s.wg.Wait()
	})
	return nil
}
