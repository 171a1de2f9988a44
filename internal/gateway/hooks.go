package gateway

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/plugin"
)

// hookKind is a point of a routed call where the plugin chain runs.
type hookKind int

const (
	ToolPre hookKind = iota
	ToolPost
	PromptPre
	PromptPost
	ResourcePre
	ResourcePost
)

// hookNames maps each hookKind to the chain's hook.
var hookNames = [...]plugin.Hook{
	ToolPre:      plugin.ToolPreInvoke,
	ToolPost:     plugin.ToolPostInvoke,
	PromptPre:    plugin.PromptPreFetch,
	PromptPost:   plugin.PromptPostFetch,
	ResourcePre:  plugin.ResourcePreFetch,
	ResourcePost: plugin.ResourcePostFetch,
}

// callHooks runs the plugin chain for one routed call. It is a value with
// no allocation of its own, so that asking whether a hook is active costs
// only the chain's filter match.
type callHooks struct {
	g        *Gateway
	chain    *plugin.Chain
	ctx      context.Context
	session  *mcp.ServerSession // nil when the caller has no SDK session
	backend  *backend.Backend
	name     string // as the client sees it; the URI for resources
	original string // the backend's own name
	schema   json.RawMessage
}

func (g *Gateway) hooks(ctx context.Context, ss *mcp.ServerSession, b *backend.Backend, name, original string, schema json.RawMessage) callHooks {
	return callHooks{g: g, chain: g.opts.Plugins, ctx: ctx, session: ss, backend: b, name: name, original: original, schema: schema}
}

// active reports whether any plugin applies to hook k of this call. Callers
// use it to skip encoding what no plugin would look at.
func (h callHooks) active(k hookKind) bool {
	return h.chain != nil && h.chain.Has(hookNames[k], h.backend.Name(), h.policyName(k))
}

// policyName is the name plugin filters match: the namespaced tool or
// prompt name even on /mcp/{backend}, where clients use the backend's own
// names, so that a policy written for /mcp cannot be sidestepped there.
// Resources are matched by URI, the same on every endpoint.
func (h callHooks) policyName(k hookKind) string {
	if h.name != h.original || k == ResourcePre || k == ResourcePost {
		return h.name
	}
	return h.g.names.get(h.g.all.namer, h.backend.Name(), h.original)
}

// call builds what the chain sees.
func (h callHooks) call(k hookKind, args, result json.RawMessage) *plugin.Call {
	sid := ""
	if h.session != nil {
		sid = h.session.ID()
	}
	c := &plugin.Call{
		Hook:      hookNames[k],
		Backend:   h.backend.Name(),
		Name:      h.policyName(k),
		Original:  h.original,
		SessionID: sid,
		Arguments: args,
		Result:    result,
	}
	if k == ToolPre {
		c.InputSchema = h.schema
	}
	return c
}

// pre runs a pre hook and returns the arguments to forward: args itself,
// or what the plugins rewrote it to. A refusal is the JSON-RPC error the
// client receives.
func (h callHooks) pre(k hookKind, args json.RawMessage) (json.RawMessage, error) {
	if !h.active(k) {
		return args, nil
	}
	res, err := h.chain.Run(h.ctx, h.call(k, args, nil))
	if err != nil {
		return nil, refusal(err)
	}
	if res.Modified && k == PromptPre {
		// Prompt arguments are strings; the client sent strings, so a
		// rewrite that is not is the plugin's fault, not invalid params.
		var m map[string]string
		if json.Unmarshal(res.Arguments, &m) != nil {
			return nil, notA(k, "arguments")
		}
	}
	return res.Arguments, nil
}

// postHook runs a post hook on the backend's result. Plugins see the
// result as JSON; when one rewrites it, the client gets the rewritten
// result decoded back into R. args are the arguments that were forwarded.
func postHook[T any, R interface {
	*T
	mcp.Result
}](h callHooks, k hookKind, args json.RawMessage, res R) (mcp.Result, error) {
	if !h.active(k) {
		return res, nil
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encoding the result for plugins: %w", err)
	}
	out, modified, err := h.postRaw(k, args, raw)
	if err != nil {
		return nil, err
	}
	if !modified {
		return res, nil
	}
	next := R(new(T))
	if err := json.Unmarshal(out, next); err != nil {
		// The chain checked the new result is JSON, not that it has the
		// result's shape: a plugin bug, never the backend's.
		return nil, notA(k, "result")
	}
	return next, nil
}

// notA is the error for a rewrite the gateway cannot send on.
func notA(k hookKind, what string) error {
	return &jsonrpc.Error{Code: plugin.CodePluginFailed, Message: fmt.Sprintf("a plugin on %s rewrote the %s into JSON that is not valid %s %s", hookNames[k], what, hookNames[k].Kind(), what)}
}

// postRaw runs a post hook on a result already encoded as JSON, as a path
// that forwards raw bytes has it, and returns the result to send and
// whether a plugin rewrote it. Callers check active(k) first.
func (h callHooks) postRaw(k hookKind, args, result json.RawMessage) (json.RawMessage, bool, error) {
	out, err := h.chain.Run(h.ctx, h.call(k, args, result))
	if err != nil {
		return nil, false, refusal(err)
	}
	return out.Result, out.Modified, nil
}

// refusal maps the chain's error to what the client receives: a denial or
// a failed plugin is a JSON-RPC error with tracegate's codes; anything
// else (the request was cancelled) is returned as is.
func refusal(err error) error {
	if rpc := plugin.RPCError(err); rpc != nil {
		return rpc
	}
	return err
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
