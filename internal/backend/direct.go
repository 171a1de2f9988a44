package backend

import (
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/config"
)

// Direct is what it takes to send a request on a ready Streamable HTTP
// backend's session without the SDK client: the gateway forwards the bytes
// of a tools/call itself rather than decoding and re-encoding them.
type Direct struct {
	// Session is the SDK client session the request shares. Its sending
	// middleware describes the call (the CLIENT span).
	Session *mcp.ClientSession
	URL     string
	// SessionID is the backend's Mcp-Session-Id; empty for a stateless
	// backend.
	SessionID string
	// Version is the protocol revision negotiated with the backend, sent as
	// MCP-Protocol-Version.
	Version string
	// Client carries the configured headers and the trace context headers.
	Client *http.Client
}

// Direct returns the backend's direct route, when the backend is ready and
// speaks Streamable HTTP.
func (b *Backend) Direct() (*Direct, bool) {
	b.mu.Lock()
	d := b.direct
	b.mu.Unlock()
	return d, d != nil
}

// publishDirect records the direct route of a session that just turned
// ready. Called with b.mu held.
func (b *Backend) publishDirect(cs *mcp.ClientSession) {
	b.direct = nil
	if cs == nil || (b.cfg.Transport != config.TransportStreamable && b.cfg.Transport != "") {
		return
	}
	ir := cs.InitializeResult()
	// A 2026-07-28 session wants per-request _meta and headers the SDK
	// client adds; only stateful sessions are forwarded to.
	if ir == nil || ir.ProtocolVersion >= "2026-07-28" {
		return
	}
	b.direct = &Direct{Session: cs, URL: b.cfg.URL, SessionID: cs.ID(), Version: ir.ProtocolVersion, Client: b.httpc}
}
