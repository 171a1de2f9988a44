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
	"strconv"
	"time"

	"github.com/tracegate/tracegate/internal/sse"
)

// Limits on what the probe reads, so that a hostile or broken server cannot
// exhaust its memory.
const (
	maxBodyBytes  = 16 << 20
	maxErrorBytes = 64 << 10
)

// Streamable HTTP headers (MCP 2025-03-26 and later, basic/transports).
const (
	headerSessionID       = "Mcp-Session-Id"
	headerProtocolVersion = "Mcp-Protocol-Version"
	headerMethod          = "Mcp-Method" // 2026-07-28, SEP-2243
	headerName            = "Mcp-Name"   // 2026-07-28, SEP-2243
)

// cancelTimeout bounds the notifications/cancelled sent after a timeout.
const cancelTimeout = 2 * time.Second

// abandoned lists requests the probe gave up on, so that it can tell the
// server to stop working on them (basic/utilities/cancellation): a hung
// handler would otherwise outlive the probe and hold its session open.
type abandoned []map[string]any

func (a *abandoned) add(ctx context.Context, id int64) {
	reason := "cancelled by the probe"
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		reason = "probe step timed out"
	}
	*a = append(*a, map[string]any{"requestId": id, "reason": reason})
}

// send notifies the server of each abandoned request and forgets them. It
// returns the first failure.
func (a *abandoned) send(ctx context.Context, c conn, hdr http.Header) error {
	var first error
	for _, params := range *a {
		if err := c.notify(ctx, "notifications/cancelled", params, hdr); err != nil && first == nil {
			first = err
		}
	}
	*a = nil
	return first
}

// rpcRequest is an outgoing JSON-RPC 2.0 request, or a notification when ID
// is nil.
type rpcRequest struct {
	JSONRPC string `json:"jsonrpc"`
	ID      *int64 `json:"id,omitempty"`
	Method  string `json:"method"`
	Params  any    `json:"params,omitempty"`
}

// rpcMessage is any incoming JSON-RPC 2.0 message.
type rpcMessage struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

type rpcError struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *rpcError) failure() *failure {
	code := e.Code
	return &failure{
		typ:     strconv.FormatInt(e.Code, 10),
		msg:     fmt.Sprintf("JSON-RPC error %d: %s", e.Code, oneLine(e.Message, 160)),
		rpcCode: &code,
	}
}

func (m *rpcMessage) isResponse() bool {
	return m.Method == "" && len(m.ID) > 0 && (m.Result != nil || m.Error != nil)
}

func (m *rpcMessage) isRequest() bool { return m.Method != "" && len(m.ID) > 0 }

func (m *rpcMessage) hasID(id int64) bool {
	return string(bytes.TrimSpace(m.ID)) == strconv.FormatInt(id, 10)
}

// result returns the response's result, or its error as a failure.
func (m *rpcMessage) result() (json.RawMessage, error) {
	if m.Error != nil {
		return nil, m.Error.failure()
	}
	return m.Result, nil
}

// conn is one MCP connection. Calls are sequential: a conn is not safe for
// concurrent use.
type conn interface {
	// call sends a request and waits for the response with its id. hdr holds
	// per-request headers such as traceparent.
	call(ctx context.Context, method string, params any, hdr http.Header) (json.RawMessage, error)
	// notify sends a notification.
	notify(ctx context.Context, method string, params any, hdr http.Header) error
	// setProtocol records the negotiated revision for later requests.
	setProtocol(version string)
	// session returns the session ID, if the server assigned one.
	session() string
	// cancelAbandoned sends notifications/cancelled for requests whose
	// step timed out or was cancelled.
	cancelAbandoned(ctx context.Context, hdr http.Header) error
	// close ends the session; it is safe to call more than once.
	close(ctx context.Context, hdr http.Header) error
}

// unusableURL is the conn for a URL that cannot be used: every request fails
// with the same diagnosis, so the first step names the problem.
type unusableURL struct{ err error }

func (u unusableURL) call(context.Context, string, any, http.Header) (json.RawMessage, error) {
	return nil, u.err
}
func (u unusableURL) notify(context.Context, string, any, http.Header) error { return u.err }
func (unusableURL) setProtocol(string)                                       {}
func (unusableURL) session() string                                          { return "" }
func (unusableURL) cancelAbandoned(context.Context, http.Header) error       { return nil }
func (unusableURL) close(context.Context, http.Header) error                 { return nil }

// streamable speaks the Streamable HTTP transport: every message is a POST,
// answered by application/json or by a text/event-stream that ends with the
// response.
type streamable struct {
	client    *http.Client
	endpoint  string
	header    http.Header // the operator's headers, sent on every request
	timeout   time.Duration
	protocol  string
	sessionID string
	nextID    int64
	closed    bool
	abandoned abandoned
}

func newStreamable(client *http.Client, endpoint *url.URL, header http.Header, timeout time.Duration) *streamable {
	return &streamable{client: client, endpoint: endpoint.String(), header: header, timeout: timeout}
}

func (s *streamable) setProtocol(v string) { s.protocol = v }
func (s *streamable) session() string      { return s.sessionID }

func (s *streamable) call(ctx context.Context, method string, params any, hdr http.Header) (json.RawMessage, error) {
	s.nextID++
	id := s.nextID
	msg, err := s.roundTrip(ctx, id, method, params, hdr)
	if err != nil {
		// initialize must not be cancelled; a stateless server learns of
		// it from the closed connection instead (SEP-2575).
		if ctx.Err() != nil && method != "initialize" && s.sessionID != "" {
			s.abandoned.add(ctx, id)
		}
		return nil, err
	}
	return msg.result()
}

func (s *streamable) cancelAbandoned(ctx context.Context, hdr http.Header) error {
	return s.abandoned.send(ctx, s, hdr)
}

func (s *streamable) roundTrip(ctx context.Context, id int64, method string, params any, hdr http.Header) (*rpcMessage, error) {
	resp, err := s.post(ctx, rpcRequest{JSONRPC: "2.0", ID: &id, Method: method, Params: params}, hdr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	// The server assigns the session in its response to initialize.
	if sid := resp.Header.Get(headerSessionID); sid != "" && s.sessionID == "" && method == "initialize" {
		s.sessionID = sid
	}
	return s.readResponse(ctx, resp, id)
}

func (s *streamable) notify(ctx context.Context, method string, params any, hdr http.Header) error {
	resp, err := s.post(ctx, rpcRequest{JSONRPC: "2.0", Method: method, Params: params}, hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		return diagnoseStatus(resp, body, s.sessionID != "")
	}
	return nil
}

// post sends one JSON-RPC message with the headers the transport requires
// (basic/transports: Accept lists both media types; the session and
// protocol headers follow initialization).
func (s *streamable) post(ctx context.Context, msg any, hdr http.Header) (*http.Response, error) {
	body, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	s.setHeaders(req, hdr)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, diagnoseTransport(err, s.timeout)
	}
	return resp, nil
}

func (s *streamable) setHeaders(req *http.Request, hdr http.Header) {
	for k, vs := range s.header {
		req.Header[k] = append([]string(nil), vs...)
	}
	for k, vs := range hdr {
		req.Header[k] = append([]string(nil), vs...)
	}
	if s.protocol != "" {
		req.Header.Set(headerProtocolVersion, s.protocol)
	}
	if s.sessionID != "" {
		req.Header.Set(headerSessionID, s.sessionID)
	}
}

// readResponse returns the response with the given id from a POST's answer.
func (s *streamable) readResponse(ctx context.Context, resp *http.Response, id int64) (*rpcMessage, error) {
	if resp.StatusCode/100 != 2 {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		if err != nil {
			return nil, diagnoseTransport(err, s.timeout)
		}
		return nil, diagnoseStatus(resp, body, s.sessionID != "")
	}
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode == http.StatusAccepted || mediaType(ct) != "text/event-stream" {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
		if err != nil {
			return nil, diagnoseTransport(err, s.timeout)
		}
		if len(bytes.TrimSpace(body)) == 0 {
			return nil, failf(errInvalidResponse, "HTTP %d with an empty body: the server sent no JSON-RPC response", resp.StatusCode)
		}
		var msg rpcMessage
		if mediaType(ct) != "application/json" || json.Unmarshal(body, &msg) != nil || msg.JSONRPC != "2.0" || !msg.isResponse() {
			return nil, diagnoseBody(ct, body)
		}
		if !msg.hasID(id) {
			return nil, failf(errInvalidResponse, "response id %s does not match request id %d", oneLine(string(msg.ID), 40), id)
		}
		return &msg, nil
	}
	// An event stream may carry notifications and server requests before
	// the response; skip them (basic/transports, "Sending Messages").
	events := sse.NewReader(resp.Body, maxBodyBytes)
	for {
		ev, err := events.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, failf(errInvalidResponse, "event stream ended before the response arrived")
			}
			return nil, diagnoseTransport(err, s.timeout)
		}
		if ev.Type != "message" {
			continue
		}
		var msg rpcMessage
		if err := json.Unmarshal(ev.Data, &msg); err != nil || msg.JSONRPC != "2.0" {
			return nil, failf(errInvalidResponse, "event stream carried a message that is not JSON-RPC 2.0: %s", oneLine(string(ev.Data), 80))
		}
		switch {
		case msg.isResponse() && msg.hasID(id):
			return &msg, nil
		case msg.isRequest():
			s.reply(ctx, &msg)
		}
	}
}

// reply answers a server-to-client request so that the server does not wait
// on it: ping gets its empty result (basic/utilities/ping), anything else
// "method not found", since the probe declares no client capabilities.
func (s *streamable) reply(ctx context.Context, req *rpcMessage) {
	resp, err := s.post(ctx, replyTo(req), nil)
	if err == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBytes))
		resp.Body.Close()
	}
}

func replyTo(req *rpcMessage) any {
	type response struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  any             `json:"result,omitempty"`
		Error   *rpcError       `json:"error,omitempty"`
	}
	if req.Method == "ping" {
		return response{JSONRPC: "2.0", ID: req.ID, Result: struct{}{}}
	}
	return response{JSONRPC: "2.0", ID: req.ID, Error: &rpcError{Code: -32601, Message: "method not found: the probe has no client capabilities"}}
}

// close deletes the session (basic/transports, "Session Management"). A
// server that does not let clients end sessions answers 405, which is fine.
func (s *streamable) close(ctx context.Context, hdr http.Header) error {
	if s.closed || s.sessionID == "" {
		return nil
	}
	s.closed = true
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.endpoint, nil)
	if err != nil {
		return fmt.Errorf("building DELETE: %w", err)
	}
	s.setHeaders(req, hdr)
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("DELETE session: %w", diagnoseTransport(err, s.timeout))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusMethodNotAllowed {
		return nil
	}
	return fmt.Errorf("DELETE session: %w", diagnoseStatus(resp, body, false))
}
