package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/tracegate/tracegate/internal/sse"
)

// legacySSE speaks the HTTP+SSE transport of MCP 2024-11-05: a long GET
// streams server messages, its first event names the endpoint that takes the
// client's POSTs, and responses come back on the stream.
type legacySSE struct {
	client    *http.Client
	streamURL *url.URL
	header    http.Header
	timeout   time.Duration

	postURL   string
	nextID    int64
	abandoned abandoned

	cancel   context.CancelFunc
	msgs     chan rpcMessage
	done     chan struct{} // closed when the stream ends
	err      error         // why the stream ended; read after done
	closeOne sync.Once
}

func newLegacySSE(client *http.Client, streamURL *url.URL, header http.Header, timeout time.Duration) *legacySSE {
	return &legacySSE{client: client, streamURL: streamURL, header: header, timeout: timeout}
}

func (s *legacySSE) setProtocol(string) {} // the 2024-11-05 transport has no version header
func (s *legacySSE) session() string    { return "" }

// open starts the GET stream under runCtx, which outlives the step, and
// waits up to ctx for the endpoint event.
func (s *legacySSE) open(runCtx, ctx context.Context, hdr http.Header) error {
	streamCtx, cancel := context.WithCancel(runCtx)
	s.cancel = cancel
	s.msgs = make(chan rpcMessage, 16)
	s.done = make(chan struct{})
	endpoint := make(chan string, 1)
	req, err := http.NewRequestWithContext(streamCtx, http.MethodGet, s.streamURL.String(), nil)
	if err != nil {
		cancel()
		return fmt.Errorf("building GET: %w", err)
	}
	for k, vs := range s.header {
		req.Header[k] = append([]string(nil), vs...)
	}
	for k, vs := range hdr {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set("Accept", "text/event-stream")
	go s.readStream(req, endpoint)
	select {
	case ep := <-endpoint:
		u, err := s.streamURL.Parse(ep)
		if err != nil {
			s.shutdown()
			return failf(errInvalidResponse, "SSE endpoint event carries a bad URL: %s", oneLine(ep, 80))
		}
		s.postURL = u.String()
		return nil
	case <-s.done:
		return s.err
	case <-ctx.Done():
		s.shutdown()
		return diagnoseTransport(ctx.Err(), s.timeout)
	}
}

// readStream owns the GET: it reports the endpoint, then forwards messages
// until the stream ends, recording why in s.err before closing s.done.
func (s *legacySSE) readStream(req *http.Request, endpoint chan<- string) {
	defer close(s.done)
	resp, err := s.client.Do(req)
	if err != nil {
		s.err = diagnoseTransport(err, s.timeout)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		f := diagnoseStatus(resp, body, false)
		if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusMethodNotAllowed {
			f.msg += " (a Streamable HTTP endpoint? try -transport streamable)"
		}
		s.err = f
		return
	}
	if ct := resp.Header.Get("Content-Type"); mediaType(ct) != "text/event-stream" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		s.err = diagnoseBody(ct, body)
		if mediaType(ct) == "application/json" {
			s.err = failf(errInvalidResponse, "GET answered with JSON, not an event stream: is this a Streamable HTTP endpoint? (try -transport streamable)")
		}
		return
	}
	events := sse.NewReader(resp.Body, maxBodyBytes)
	first := true
	for {
		ev, err := events.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				s.err = failf(errInvalidResponse, "SSE stream closed by the server")
			} else {
				s.err = diagnoseTransport(err, s.timeout)
			}
			return
		}
		if first {
			first = false
			if ev.Type != "endpoint" {
				s.err = failf(errInvalidResponse, "first SSE event is %q, want \"endpoint\": not a 2024-11-05 SSE endpoint?", ev.Type)
				return
			}
			endpoint <- string(ev.Data)
			continue
		}
		if ev.Type != "message" {
			continue
		}
		var msg rpcMessage
		if err := json.Unmarshal(ev.Data, &msg); err != nil || msg.JSONRPC != "2.0" {
			s.err = failf(errInvalidResponse, "SSE stream carried a message that is not JSON-RPC 2.0: %s", oneLine(string(ev.Data), 80))
			return
		}
		select {
		case s.msgs <- msg:
		case <-req.Context().Done():
			s.err = diagnoseTransport(req.Context().Err(), s.timeout)
			return
		}
	}
}

func (s *legacySSE) call(ctx context.Context, method string, params any, hdr http.Header) (json.RawMessage, error) {
	s.nextID++
	id := s.nextID
	if err := s.post(ctx, rpcRequest{JSONRPC: "2.0", ID: &id, Method: method, Params: params}, hdr); err != nil {
		return nil, err
	}
	for {
		select {
		case msg := <-s.msgs:
			switch {
			case msg.isResponse() && msg.hasID(id):
				return msg.result()
			case msg.isRequest():
				_ = s.post(ctx, replyTo(&msg), nil)
			}
		case <-s.done:
			// The response may have arrived just before the stream ended.
			for {
				select {
				case msg := <-s.msgs:
					if msg.isResponse() && msg.hasID(id) {
						return msg.result()
					}
				default:
					return nil, fmt.Errorf("waiting for the response: %w", s.err)
				}
			}
		case <-ctx.Done():
			if method != "initialize" {
				s.abandoned.add(ctx, id)
			}
			return nil, diagnoseTransport(ctx.Err(), s.timeout)
		}
	}
}

func (s *legacySSE) cancelAbandoned(ctx context.Context, hdr http.Header) error {
	return s.abandoned.send(ctx, s, hdr)
}

func (s *legacySSE) notify(ctx context.Context, method string, params any, hdr http.Header) error {
	return s.post(ctx, rpcRequest{JSONRPC: "2.0", Method: method, Params: params}, hdr)
}

// post sends a message to the session endpoint, which answers 202 Accepted.
func (s *legacySSE) post(ctx context.Context, msg any, hdr http.Header) error {
	body, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encoding request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.postURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	for k, vs := range s.header {
		req.Header[k] = append([]string(nil), vs...)
	}
	for k, vs := range hdr {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return diagnoseTransport(err, s.timeout)
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	if resp.StatusCode/100 != 2 {
		return diagnoseStatus(resp, respBody, true)
	}
	return nil
}

// close ends the GET, which ends the session on the server.
func (s *legacySSE) close(context.Context, http.Header) error {
	s.shutdown()
	return nil
}

func (s *legacySSE) shutdown() {
	s.closeOne.Do(func() {
		if s.cancel != nil {
			s.cancel()
			<-s.done
		}
	})
}
