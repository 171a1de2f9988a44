package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// JSON-RPC error codes the gateway answers with when the chain refuses a
// call. They sit in the range JSON-RPC 2.0 (section 5.1) reserves for
// implementation-defined server errors, clear of the codes the MCP SDK
// (-32001..-32005, -32020..-32022, -32042), MCP itself (-32002) and
// tracegate's backend errors (-32010, -32011) use.
const (
	// CodeDenied: a plugin denied the call. The message names the plugin
	// and its reason.
	CodeDenied = -32030
	// CodeRateLimited: a rate limit denied the call. The message says when
	// to retry; error data carries retryAfterMs.
	CodeRateLimited = -32031
	// CodePluginFailed: a plugin with on_error: fail panicked, returned an
	// error or ran out of time, so the call was refused.
	CodePluginFailed = -32032
)

// DenyError is returned by [Chain.Run] when a plugin denied the call.
type DenyError struct {
	Plugin     string        // the plugin's configured name
	Reason     string        // why, without argument or result values
	RetryAfter time.Duration // > 0 for rate limits
}

func (e *DenyError) Error() string {
	return fmt.Sprintf("denied by plugin %q: %s", e.Plugin, e.Reason)
}

// PluginError is returned by [Chain.Run] when a plugin with on_error: fail
// failed (error, panic or timeout).
type PluginError struct {
	Plugin string
	Err    error
}

func (e *PluginError) Error() string {
	return fmt.Sprintf("plugin %q failed: %v", e.Plugin, e.Err)
}

func (e *PluginError) Unwrap() error { return e.Err }

// errorData is the JSON-RPC error's data member for chain refusals, so
// clients can act on them without parsing the message.
type errorData struct {
	Plugin       string `json:"plugin"`
	RetryAfterMs int64  `json:"retryAfterMs,omitempty"`
}

// RPCError maps a refusal from [Chain.Run] to the JSON-RPC error the client
// receives: [CodeDenied], [CodeRateLimited] or [CodePluginFailed], with the
// error text as message. It returns nil for any other error.
func RPCError(err error) *jsonrpc.Error {
	var de *DenyError
	if errors.As(err, &de) {
		code := CodeDenied
		d := errorData{Plugin: de.Plugin}
		if de.RetryAfter > 0 {
			code = CodeRateLimited
			// Round up so a client that waits exactly this long is not
			// denied again.
			d.RetryAfterMs = int64((de.RetryAfter + time.Millisecond - 1) / time.Millisecond)
		}
		data, _ := json.Marshal(d)
		return &jsonrpc.Error{Code: int64(code), Message: de.Error(), Data: data}
	}
	var pe *PluginError
	if errors.As(err, &pe) {
		data, _ := json.Marshal(errorData{Plugin: pe.Plugin})
		return &jsonrpc.Error{Code: CodePluginFailed, Message: pe.Error(), Data: data}
	}
	return nil
}
