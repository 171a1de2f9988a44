package gateway

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/plugin"
	"github.com/tracegate/tracegate/internal/wire"
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
	session  string
	backend  *backend.Backend
	name     string // as the client sees it; the URI for resources
	original string // the backend's own name
	schema   json.RawMessage
}

func (g *Gateway) hooks(ctx context.Context, s *session, b *backend.Backend, name, original string, schema []byte) callHooks {
	sid := ""
	if s != nil {
		sid = s.id
	}
	return callHooks{g: g, chain: g.live.Load().plugins, ctx: ctx, session: sid, backend: b, name: name, original: original, schema: schema}
}

// active reports whether any plugin applies to hook k of this call.
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

func (h callHooks) call(k hookKind, args, result json.RawMessage) *plugin.Call {
	c := &plugin.Call{
		Hook:      hookNames[k],
		Backend:   h.backend.Name(),
		Name:      h.policyName(k),
		Original:  h.original,
		SessionID: h.session,
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

// post runs a post hook on a result and returns the result to send and
// whether a plugin rewrote it. args are the arguments that were sent.
func (h callHooks) post(k hookKind, args, result json.RawMessage) (json.RawMessage, bool, error) {
	out, err := h.chain.Run(h.ctx, h.call(k, args, result))
	if err != nil {
		return nil, false, refusal(err)
	}
	if out.Modified && (len(out.Result) == 0 || out.Result[0] != '{') {
		return nil, false, notA(k, "result")
	}
	return out.Result, out.Modified, nil
}

// notA is the error for a rewrite the gateway cannot send on.
func notA(k hookKind, what string) error {
	return &wire.Error{Code: plugin.CodePluginFailed, Message: fmt.Sprintf("a plugin on %s rewrote the %s into JSON that is not valid %s %s", hookNames[k], what, hookNames[k].Kind(), what)}
}

// refusal maps the chain's error to what the client receives: a denial or
// a failed plugin is a JSON-RPC error with tracegate's codes; anything
// else (the request was cancelled) is returned as is.
func refusal(err error) error {
	if rpc := plugin.RPCError(err); rpc != nil {
		return &wire.Error{Code: rpc.Code, Message: rpc.Message, Data: rpc.Data}
	}
	return err
}

// preArgs runs pre hook k, if active, on the arguments a client sent, and
// returns the arguments to send and sets with the rewrite added when a
// plugin changed them.
func (h callHooks) preArgs(k hookKind, args []byte, sets []wire.Set) ([]byte, []wire.Set, error) {
	if !h.active(k) {
		return args, sets, nil
	}
	next, err := h.pre(k, args)
	if err != nil {
		return nil, nil, err
	}
	if string(next) != string(args) {
		args = next
		sets = append(sets, wire.Set{Key: "arguments", Value: args})
	}
	return args, sets, nil
}

// postResult runs post hook k, if active, on a backend's result and
// returns the result to send.
func (h callHooks) postResult(k hookKind, args, result []byte) ([]byte, error) {
	if !h.active(k) {
		return result, nil
	}
	out, _, err := h.post(k, args, result)
	return out, err
}
