package gateway

import (
	"context"
	"encoding/json"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/backend"
)

type hookKind int

const (
	ToolPre hookKind = iota
	ToolPost
	PromptPre
	PromptPost
	ResourcePre
	ResourcePost
)

// callHooks runs the plugin chain for one routed call.
type callHooks struct {
	g        *Gateway
	ctx      context.Context
	session  *mcp.ServerSession
	backend  *backend.Backend
	name     string
	original string
	schema   json.RawMessage
}

func (g *Gateway) hooks(ctx context.Context, ss *mcp.ServerSession, b *backend.Backend, name, original string, schema json.RawMessage) callHooks {
	return callHooks{g: g, ctx: ctx, session: ss, backend: b, name: name, original: original, schema: schema}
}

func (h callHooks) active(k hookKind) bool { return false }

func (h callHooks) pre(k hookKind, args json.RawMessage) (json.RawMessage, error) {
	return args, nil
}

func postHook[R mcp.Result](h callHooks, k hookKind, args json.RawMessage, res R) (mcp.Result, error) {
	return res, nil
}

func marshalRaw(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	return json.Marshal(v)
}

func unmarshalArgs(raw json.RawMessage) (map[string]string, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "prompt arguments must be an object of strings"}
	}
	return m, nil
}
