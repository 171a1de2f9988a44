package backend

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tracegate/tracegate/internal/conn"
	"github.com/tracegate/tracegate/internal/wire"
	"github.com/tracegate/tracegate/mcptrace"
)

// ProtocolVersion is the revision the gateway asks backends for. A server
// that answers with an older one it supports is accepted.
const ProtocolVersion = "2025-11-25"

// supported are the revisions the gateway speaks with backends.
var supported = map[string]bool{"2024-11-05": true, "2025-03-26": true, "2025-06-18": true, "2025-11-25": true}

// Session is one initialized MCP session with the backend's server.
type Session struct {
	b      *Backend
	conn   conn.Conn
	client string // the client key of a per-client session, "" for the control session
	start  time.Time
	seq    atomic.Uint64
	init   Init
}

// Init is what a server said in its initialize result.
type Init struct {
	ProtocolVersion string
	// Capabilities is the raw capabilities object.
	Capabilities []byte
	Caps         Caps
	// ServerInfo is the raw serverInfo object.
	ServerInfo   []byte
	Instructions string
}

// Caps are the server capabilities the gateway acts on.
type Caps struct {
	Tools, Prompts, Resources, Logging, Completions bool
	Subscribe                                       bool
}

// Backend is the session's backend.
func (s *Session) Backend() *Backend { return s.b }

// Client is the client key of a per-client session, "" for a session
// shared by every client.
func (s *Session) Client() string { return s.client }

// ID is the server's session id, "" when it has none.
func (s *Session) ID() string { return s.conn.SessionID() }

// Init is the server's initialize result.
func (s *Session) Init() Init { return s.init }

// Done is closed when the session is lost.
func (s *Session) Done() <-chan struct{} { return s.conn.Done() }

// Close ends the session.
func (s *Session) Close() error {
	err := s.conn.Close()
	if t := s.b.tracer.Load(); t != nil {
		t.SessionDone(s.start, s.init.ProtocolVersion)
	}
	return err
}

// NextID returns a fresh request id for this session (raw JSON).
func (s *Session) NextID() []byte {
	return strconv.AppendUint(nil, s.seq.Add(1), 10)
}

// Request is one request or notification the gateway sends a server.
type Request struct {
	// ID is the request's id on this session (NextID), nil for a
	// notification.
	ID     []byte
	Method string
	// Params are sent as they are, but for the members Sets replaces and
	// for _meta, which carries the CLIENT span's context. Meta is the
	// view of Params' _meta (wire.MetaView), nil when it has none.
	Params []byte
	Sets   []wire.Set
	Meta   map[string]any
	// Tool, Prompt and URI name the span's target, as the server knows it.
	Tool, Prompt, URI string
	// Arguments are recorded on the span when content capture is on.
	Arguments []byte
	// Related receives what the server sends on the request's own stream
	// before its response.
	Related func(msg []byte)
	// Untraced sends without a span (keepalive pings).
	Untraced bool
}

// Send sends r and, for a request, returns the server's response, whose
// id is r.ID. A JSON-RPC error response is a response, not an error: err
// is a failure to get any answer (the transport failed, ctx ended).
func (s *Session) Send(ctx context.Context, r Request) (wire.Message, error) {
	var span *mcptrace.ClientSpan
	meta := r.Meta
	tracer := s.b.tracer.Load()
	if tracer != nil && !r.Untraced {
		var injected map[string]any
		ctx, span, injected = tracer.Start(ctx, mcptrace.Message{
			Method: r.Method, RequestID: wire.IDString(r.ID), Tool: r.Tool, Prompt: r.Prompt, URI: r.URI,
			Meta: r.Meta, SessionID: s.ID(), ProtocolVersion: s.init.ProtocolVersion, Arguments: r.Arguments,
		})
		if injected != nil {
			meta = injected
		}
	}
	if r.Untraced && tracer != nil {
		meta = unsampled(meta)
	}
	var msg []byte
	if r.Params != nil || len(r.Sets) > 0 || len(meta) > 0 {
		msg = wire.AppendRequestParams(make([]byte, 0, len(r.Params)+320), r.ID, r.Method, r.Params, r.Sets, meta)
	} else {
		msg = wire.AppendRequest(make([]byte, 0, 64), r.ID, r.Method, nil)
	}
	if r.ID == nil {
		err := s.conn.Send(ctx, msg)
		if span != nil {
			span.End(ctx, mcptrace.Outcome{Err: err})
		}
		return wire.Message{}, err
	}
	raw, err := s.conn.Request(ctx, r.ID, msg, r.Related)
	var resp wire.Message
	if err == nil {
		resp, err = wire.Parse(raw)
		if err == nil && !resp.IsResponse() {
			err = errors.New("the server's answer is not a response")
		}
	}
	if span != nil {
		o := mcptrace.Outcome{Err: err}
		if err == nil {
			o = Outcome(resp)
		}
		if r.Method == "initialize" {
			span.SetSessionID(s.ID())
		}
		span.End(ctx, o)
	}
	return resp, err
}

// unsampled returns a copy of meta with a trace context whose sampled flag
// is off. An instrumented server that gets a request with no context of
// its own takes the one its session kept from initialize, so the
// gateway's keepalive pings would pile into the connect trace; one that
// gets an unsampled context records nothing.
func unsampled(meta map[string]any) map[string]any {
	if _, ok := meta["traceparent"]; ok {
		return meta
	}
	out := make(map[string]any, len(meta)+1)
	for k, v := range meta {
		out[k] = v
	}
	var id [24]byte
	for i := 0; i < len(id); i += 8 {
		binary.LittleEndian.PutUint64(id[i:], rand.Uint64())
	}
	out["traceparent"] = "00-" + hex.EncodeToString(id[:16]) + "-" + hex.EncodeToString(id[16:]) + "-00"
	return out
}

// Outcome describes a response for its span.
func Outcome(resp wire.Message) mcptrace.Outcome {
	if resp.Error != nil {
		e := wire.DecodeError(resp.Error)
		return mcptrace.Outcome{Code: e.Code, Message: e.Message}
	}
	return mcptrace.Outcome{ToolError: IsToolError(resp.Result)}
}

// IsToolError reports result.isError == true.
func IsToolError(result []byte) bool {
	return string(wire.Get(result, "isError")) == "true"
}

// Call sends a request of the gateway's own with params (raw JSON, or nil)
// and returns its result; a JSON-RPC error is returned as a *wire.Error.
func (s *Session) Call(ctx context.Context, method string, params []byte, untraced bool) ([]byte, error) {
	resp, err := s.Send(ctx, Request{ID: s.NextID(), Method: method, Params: params, Untraced: untraced})
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return nil, wire.DecodeError(resp.Error)
	}
	return resp.Result, nil
}

// Notify sends a notification of the gateway's own.
func (s *Session) Notify(ctx context.Context, method string, params []byte) error {
	_, err := s.Send(ctx, Request{Method: method, Params: params})
	return err
}

// Forward passes a message that needs no span and no answer to the
// server as it is: a client's answer to the server's request.
func (s *Session) Forward(ctx context.Context, msg []byte) error {
	return s.conn.Send(ctx, msg)
}

// clientCapabilities are what the gateway declares to servers: it relays
// sampling, elicitation and roots to its clients, whose answers it passes
// back (a client that lacks one gets an error).
const clientCapabilities = `{"roots":{"listChanged":true},"sampling":{},"elicitation":{"form":{},"url":{}}}`

func (s *Session) handshake(ctx context.Context) error {
	info, _ := json.Marshal(map[string]string{"name": s.b.opts.ClientName, "version": s.b.opts.ClientVersion})
	params := []byte(`{"protocolVersion":"` + ProtocolVersion + `","capabilities":` + clientCapabilities + `,"clientInfo":` + string(info) + `}`)
	result, err := s.Call(ctx, "initialize", params, false)
	if err != nil {
		return err
	}
	var ir struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ServerInfo      json.RawMessage `json:"serverInfo"`
		Instructions    string          `json:"instructions"`
	}
	if err := json.Unmarshal(result, &ir); err != nil {
		return fmt.Errorf("decoding the initialize result: %w", err)
	}
	if !supported[ir.ProtocolVersion] {
		return fmt.Errorf("the server answered with protocol version %q, which the gateway does not speak", ir.ProtocolVersion)
	}
	s.init = Init{ProtocolVersion: ir.ProtocolVersion, Capabilities: ir.Capabilities, ServerInfo: ir.ServerInfo, Instructions: ir.Instructions}
	if len(ir.Capabilities) == 0 {
		s.init.Capabilities = []byte("{}")
	}
	c := s.init.Capabilities
	s.init.Caps = Caps{
		Tools:       wire.Get(c, "tools") != nil,
		Prompts:     wire.Get(c, "prompts") != nil,
		Resources:   wire.Get(c, "resources") != nil,
		Logging:     wire.Get(c, "logging") != nil,
		Completions: wire.Get(c, "completions") != nil,
		Subscribe:   string(wire.Get(wire.Get(c, "resources"), "subscribe")) == "true",
	}
	s.conn.Established(ir.ProtocolVersion)
	return s.Notify(ctx, "notifications/initialized", nil)
}

// unsolicited passes what the server sends outside any request's stream
// to the gateway.
func (s *Session) unsolicited(msg []byte) {
	if s.b.opts.OnMessage != nil {
		s.b.opts.OnMessage(s, msg)
	}
}
