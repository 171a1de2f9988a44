// Package conn is one MCP session with a server, at the message level,
// over Streamable HTTP, legacy HTTP+SSE (2024-11-05), or stdio to a child
// process. It moves raw JSON-RPC messages (see package wire) and knows
// nothing of MCP methods: the handshake, catalogs, tracing and routing are
// the caller's, written once above the three transports.
package conn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Conn is one session with one server. Its methods are safe for
// concurrent use.
type Conn interface {
	// Request sends msg, a JSON-RPC request whose id (raw JSON) is unique
	// among the requests in flight on this Conn, and returns the server's
	// response to it. Every other message the server sends on the
	// request's own stream (a Streamable HTTP POST response) is passed to
	// related first, in order, from the goroutine that reads the stream;
	// related must not block for long, is never called after Request
	// returned, and may be nil (such messages are then dropped). On stdio
	// and SSE no message is tied to a request: they all go to
	// Options.Unsolicited. Messages passed to related are the callee's to
	// keep.
	//
	// An HTTP error whose body is a JSON-RPC error is returned as the
	// response (with the request's id when the server sent none); any
	// other HTTP status is an error that names it.
	//
	// When ctx is done, Request returns ctx's error at once and a late
	// response is dropped; telling the server (notifications/cancelled)
	// is the caller's. When the session ends, Request returns Err at once.
	Request(ctx context.Context, id, msg []byte, related func(msg []byte)) ([]byte, error)
	// Send sends a notification, or a response to a request of the
	// server's.
	Send(ctx context.Context, msg []byte) error
	// Established is called once, after the handshake (initialize, then
	// notifications/initialized), with the negotiated protocol version.
	// Streamable HTTP sends the version in the MCP-Protocol-Version
	// header from then on and opens its GET stream.
	Established(protocolVersion string)
	// SessionID is the server's Mcp-Session-Id, "" when it has none.
	SessionID() string
	// Done is closed when the session is lost: the child exited, the SSE
	// stream ended, the server forgot the session (HTTP 404), or Close.
	Done() <-chan struct{}
	// Err says why Done was closed: ErrClosed after Close,
	// ErrSessionExpired, ErrTooLarge, the end of the SSE stream, or for a
	// stdio child an error wrapping its *exec.ExitError (exit status) and
	// quoting its last stderr line.
	Err() error
	// Close ends the session: Streamable HTTP sends DELETE (bounded to 5s;
	// its failure is Close's error); stdio closes the child's stdin, then
	// stops it (SIGTERM, then SIGKILL, KillGrace apart) with its process
	// group, and reaps it. Requests in flight return ErrClosed. Close
	// waits for all that, leaves no goroutine behind, and is idempotent.
	Close() error
}

// Options configure Dial.
type Options struct {
	// HTTPClient sends every HTTP request of Streamable HTTP and SSE. Its
	// transport injects trace headers from each request's context. If nil,
	// a client with no timeout (streams are long-lived) is used.
	HTTPClient *http.Client
	// Header is sent on every HTTP request (configured backend headers).
	Header http.Header
	// Unsolicited receives, in order and from one goroutine, every message
	// the server sends that is neither a response to a Request nor on a
	// request's own stream: on stdio and SSE every request and
	// notification of the server's; on Streamable HTTP what arrives on
	// the GET stream. It must not block for long; the message is the
	// callee's to keep. If nil, such messages are dropped.
	//
	// A message that is not valid JSON-RPC is skipped and logged at debug
	// level on every transport: one bad message need not end a session
	// that many callers share, and a request it hid ends with its ctx.
	Unsolicited func(msg []byte)
	// MaxMessage bounds one message read from the server (a stdio line,
	// an SSE event, a JSON body); a larger one ends the session with
	// ErrTooLarge. Default 64 MiB.
	MaxMessage int
	// Logger gets the transport's own events (stream reconnects, a
	// child's stderr lines at debug level).
	Logger *slog.Logger
	// Stderr, when set, receives a stdio child's stderr instead of Logger.
	Stderr io.Writer
	// Env is added to a stdio child's environment; Dir is its working
	// directory.
	Env map[string]string
	Dir string
	// KillGrace is how long Close waits for a stdio child to exit after
	// closing its stdin, and again after SIGTERM, before SIGKILL.
	// Default 2s.
	KillGrace time.Duration
}

// Endpoint says where the server is: URL with Transport "streamable" or
// "sse", or Command with Transport "stdio".
type Endpoint struct {
	Transport string
	URL       string
	Command   []string
}

// Errors that end a session.
var (
	ErrSessionExpired = errors.New("the server no longer knows the session (HTTP 404)")
	ErrClosed         = errors.New("connection closed")
	ErrTooLarge       = errors.New("message from the server exceeds the size limit")
)

// Transports of Endpoint.
const (
	TransportStreamable = "streamable"
	TransportSSE        = "sse"
	TransportStdio      = "stdio"
)

// Defaults of Options.
const (
	DefaultMaxMessage = 64 << 20
	DefaultKillGrace  = 2 * time.Second
)

// Dial opens a session's transport. It sends nothing of MCP: the caller's
// first Request is initialize. ctx bounds Dial alone (for SSE, the wait
// for the endpoint event), not the session.
func Dial(ctx context.Context, ep Endpoint, opts Options) (Conn, error) {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = DefaultMaxMessage
	}
	if opts.KillGrace <= 0 {
		opts.KillGrace = DefaultKillGrace
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	switch ep.Transport {
	case TransportStdio:
		return dialStdio(ctx, ep, opts)
	case TransportStreamable:
		return dialStreamable(ctx, ep, opts)
	case TransportSSE:
		return dialSSE(ctx, ep, opts)
	}
	return nil, fmt.Errorf("unknown transport %q (want %q, %q or %q)", ep.Transport, TransportStreamable, TransportSSE, TransportStdio)
}
