package backend

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

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

// codeRejectedByTransport is the code the SDK's client gives a request its
// transport could not deliver (HTTP errors, a closed connection). It is not
// the backend's answer, so it is mapped like any other transport failure.
const codeRejectedByTransport = -32005

// Do runs fn on the backend's session under the backend's timeout and maps
// failures to JSON-RPC errors that name the backend. A transport failure
// also schedules a health check, so a dead backend is noticed at once.
func (b *Backend) Do(ctx context.Context, fn func(context.Context, *mcp.ClientSession) error) error {
	cs, err := b.Session()
	if err != nil {
		return &jsonrpc.Error{Code: CodeUnavailable, Message: fmt.Sprintf("backend %q is unavailable: %v", b.cfg.Name, err)}
	}
	cctx, cancel := context.WithTimeout(ctx, b.Timeout())
	defer cancel()
	return b.Failed(ctx, cctx, fn(cctx, cs))
}

// Failed maps the error of a call made under callCtx (ctx with the
// backend's timeout) to what the client gets: nil for nil, ctx's error when
// the caller gave up, a timeout or an unavailable error naming the backend,
// or the backend's own JSON-RPC error unchanged. A transport failure also
// schedules a health check. The gateway's own failures are logged with ctx,
// so the line carries the call's trace_id and span_id.
func (b *Backend) Failed(ctx, callCtx context.Context, err error) error {
	if err == nil {
		return nil
	}
	// Context errors first: a request that timed out before the backend
	// even answered the HTTP request also carries a transport rejection.
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(callCtx.Err(), context.DeadlineExceeded) {
		timeout := b.Timeout()
		b.log.WarnContext(ctx, "backend call timed out", "backend", b.cfg.Name, "timeout", timeout.String())
		return &jsonrpc.Error{Code: CodeTimeout, Message: fmt.Sprintf("backend %q did not answer within %s", b.cfg.Name, timeout)}
	}
	var rpcErr *jsonrpc.Error
	if errors.As(err, &rpcErr) && !rejectedByTransport(rpcErr) {
		return rpcErr
	}
	err = withoutURL(err)
	b.log.WarnContext(ctx, "backend call failed", "backend", b.cfg.Name, "error", err.Error())
	b.Check()
	return &jsonrpc.Error{Code: CodeUnavailable, Message: fmt.Sprintf("backend %q failed: %v", b.cfg.Name, err)}
}

// withoutURL removes the query and user info from the request URL an HTTP
// client error names: a backend URL may carry a credential there, and the
// message goes to clients, spans, logs and /readyz.
func withoutURL(err error) error {
	var u *url.Error
	if !errors.As(err, &u) {
		return err
	}
	safe := u.URL
	if p, perr := url.Parse(u.URL); perr == nil {
		p.User, p.RawQuery, p.Fragment = nil, "", ""
		safe = p.String()
	} else if i := strings.IndexAny(safe, "?#"); i >= 0 {
		safe = safe[:i]
	}
	if safe == u.URL {
		return err
	}
	return redactedError{msg: strings.ReplaceAll(err.Error(), u.URL, safe), err: err}
}

// redactedError keeps the chain of the error it redacts, for errors.Is.
type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

// rejectedByTransport reports the SDK's own error for a request that never
// got a JSON-RPC answer (connection refused, HTTP 502/503/504/429). It is a
// *jsonrpc.Error, but it comes from the gateway's side of the wire, so it
// must not pass through as if the backend had said it. A backend's JSON-RPC
// error in a non-2xx body is wrapped ahead of it, and errors.As finds that
// one first.
func rejectedByTransport(e *jsonrpc.Error) bool {
	return e.Code == codeRejected && e.Message == "rejected by transport"
}

// codeRejected is the SDK's jsonrpc2.ErrRejected code, which is internal
// to the SDK.
const codeRejected = -32005
