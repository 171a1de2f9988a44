package mcptrace

import (
	"context"
	"errors"
	"strconv"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// outcome is how an MCP operation ended, in semantic convention terms.
type outcome struct {
	errorType  string // error.type; empty on success
	statusCode string // rpc.response.status_code; the JSON-RPC error code
	message    string // span status description
}

// classify maps a handler's result and error to an outcome. A JSON-RPC
// error gives its code as both error.type and rpc.response.status_code and
// its message as the status description; a tools/call result with isError
// gives error.type=tool_error (MCP semantic conventions, error.type note).
//
// The description is the message on the wire: a server sends the code of a
// wrapped JSON-RPC error with the outer message, and a client receives the
// JSON-RPC error wrapped in its own.
func classify(res mcp.Result, err error, client bool) outcome {
	if err != nil {
		var wire *jsonrpc.Error
		if errors.As(err, &wire) && wire.Code != 0 {
			code := strconv.FormatInt(wire.Code, 10)
			msg := err.Error()
			if client {
				msg = wire.Message
			}
			return outcome{errorType: code, statusCode: code, message: msg}
		}
		return outcome{errorType: errorType(err), message: err.Error()}
	}
	if r, ok := res.(*mcp.CallToolResult); ok && r != nil && r.IsError {
		return outcome{errorType: errToolError, message: errToolError}
	}
	return outcome{}
}

// errorType gives a low-cardinality error.type to errors without a JSON-RPC
// code.
func errorType(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, mcp.ErrConnectionClosed):
		return "connection_closed"
	}
	return errOther
}
