package backend

import (
	"context"
	"errors"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// JSON-RPC error codes tracegate answers with for its own failures, in the
// range JSON-RPC 2.0 (section 5.1) reserves for implementation-defined
// server errors. A backend's own JSON-RPC errors pass through unchanged.
const (
	// CodeUnavailable: the backend is down, not yet connected, or the call
	// failed below the protocol (connection refused, child died).
	CodeUnavailable = -32010
	// CodeTimeout: the backend did not answer within its timeout.
	CodeTimeout = -32011
)

// Do runs fn on the backend's session under the backend's timeout and maps
// failures to JSON-RPC errors that name the backend. A transport failure
// also schedules a health check, so a dead backend is noticed at once.
func (b *Backend) Do(ctx context.Context, fn func(context.Context, *mcp.ClientSession) error) error {
	cs, err := b.Session()
	if err != nil {
		return &jsonrpc.Error{Code: CodeUnavailable, Message: fmt.Sprintf("backend %q is unavailable: %v", b.cfg.Name, err)}
	}
	timeout := b.Timeout()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err = fn(cctx, cs)
	if err == nil {
		return nil
	}
	var rpcErr *jsonrpc.Error
	if errors.As(err, &rpcErr) {
		return rpcErr
	}
	if ctx.Err() != nil {
		// The client went away or cancelled; the SDK already told the backend.
		return ctx.Err()
	}
	if errors.Is(cctx.Err(), context.DeadlineExceeded) {
		return &jsonrpc.Error{Code: CodeTimeout, Message: fmt.Sprintf("backend %q did not answer within %s", b.cfg.Name, timeout)}
	}
	b.Check()
	return &jsonrpc.Error{Code: CodeUnavailable, Message: fmt.Sprintf("backend %q failed: %v", b.cfg.Name, err)}
}
