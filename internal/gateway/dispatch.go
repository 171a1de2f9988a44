package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/backend"
)

var errNotRouted = &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "tracegate: request was not routed"}

// dispatch is the receiving middleware that routes the four routed methods
// to their backend. Everything else (initialize, the list methods, ping,
// logging/setLevel) is answered by the SDK server from what sync registered.
func (g *Gateway) dispatch(f *front) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			switch method {
			case "tools/call":
				return g.callTool(ctx, f.routes(), req.(*mcp.CallToolRequest))
			case "prompts/get":
				return g.getPrompt(ctx, f.routes(), req.(*mcp.GetPromptRequest))
			case "resources/read":
				return g.readResource(ctx, f.routes(), req.(*mcp.ReadResourceRequest))
			case "completion/complete":
				return g.complete(ctx, f, req.(*mcp.CompleteRequest))
			}
			return next(ctx, method, req)
		}
	}
}

func (g *Gateway) callTool(ctx context.Context, rt *routes, req *mcp.CallToolRequest) (mcp.Result, error) {
	p := req.Params
	route := rt.tools[p.Name]
	if route == nil {
		if b := rt.gone["tool:"+p.Name]; b != nil {
			return nil, unavailable(b)
		}
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown tool %q", p.Name)}
	}
	args := p.Arguments
	hooks := g.hooks(ctx, req.Session, route.backend, p.Name, route.original, route.schema)
	args, err := hooks.pre(ToolPre, args)
	if err != nil {
		return nil, err
	}
	params := &mcp.CallToolParams{Name: route.original}
	if len(args) > 0 {
		// Raw bytes: the client's arguments reach the backend as sent.
		params.Arguments = args
	}
	ctx, done := g.relay.begin(ctx, req.Session, route.backend, p.Meta, params)
	defer done()
	var res *mcp.CallToolResult
	err = route.backend.Do(ctx, func(ctx context.Context, cs *mcp.ClientSession) error {
		var err error
		res, err = cs.CallTool(ctx, params)
		return err
	})
	if err != nil {
		return nil, err
	}
	return postHook(hooks, ToolPost, args, res)
}

func (g *Gateway) getPrompt(ctx context.Context, rt *routes, req *mcp.GetPromptRequest) (mcp.Result, error) {
	p := req.Params
	route := rt.prompts[p.Name]
	if route == nil {
		if b := rt.gone["prompt:"+p.Name]; b != nil {
			return nil, unavailable(b)
		}
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown prompt %q", p.Name)}
	}
	hooks := g.hooks(ctx, req.Session, route.backend, p.Name, route.original, nil)
	arguments := p.Arguments
	if hooks.active(PromptPre) {
		raw, err := marshalRaw(p.Arguments)
		if err != nil {
			return nil, err
		}
		raw, err = hooks.pre(PromptPre, raw)
		if err != nil {
			return nil, err
		}
		if arguments, err = unmarshalArgs(raw); err != nil {
			return nil, err
		}
	}
	params := &mcp.GetPromptParams{Name: route.original, Arguments: arguments}
	ctx, done := g.relay.begin(ctx, req.Session, route.backend, p.Meta, params)
	defer done()
	var res *mcp.GetPromptResult
	err := route.backend.Do(ctx, func(ctx context.Context, cs *mcp.ClientSession) error {
		var err error
		res, err = cs.GetPrompt(ctx, params)
		return err
	})
	if err != nil {
		return nil, err
	}
	var sent json.RawMessage
	if hooks.active(PromptPost) {
		// Post hooks see the arguments that were sent.
		if sent, err = marshalRaw(arguments); err != nil {
			return nil, err
		}
	}
	return postHook(hooks, PromptPost, sent, res)
}

func (g *Gateway) readResource(ctx context.Context, rt *routes, req *mcp.ReadResourceRequest) (mcp.Result, error) {
	p := req.Params
	b := rt.resource(p.URI)
	if b == nil {
		if b := rt.gone["resource:"+p.URI]; b != nil {
			return nil, unavailable(b)
		}
		return nil, mcp.ResourceNotFoundError(p.URI)
	}
	hooks := g.hooks(ctx, req.Session, b, p.URI, p.URI, nil)
	if _, err := hooks.pre(ResourcePre, nil); err != nil {
		return nil, err
	}
	params := &mcp.ReadResourceParams{URI: p.URI}
	ctx, done := g.relay.begin(ctx, req.Session, b, p.Meta, params)
	defer done()
	var res *mcp.ReadResourceResult
	err := b.Do(ctx, func(ctx context.Context, cs *mcp.ClientSession) error {
		var err error
		res, err = cs.ReadResource(ctx, params)
		return err
	})
	if err != nil {
		return nil, err
	}
	return postHook(hooks, ResourcePost, nil, res)
}

func (g *Gateway) complete(ctx context.Context, f *front, req *mcp.CompleteRequest) (mcp.Result, error) {
	p := req.Params
	if p == nil || p.Ref == nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "completion/complete: missing ref"}
	}
	rt := f.routes()
	ref := *p.Ref
	var b *backend.Backend
	switch ref.Type {
	case "ref/prompt":
		route := rt.prompts[ref.Name]
		if route == nil {
			if gb := rt.gone["prompt:"+ref.Name]; gb != nil {
				return nil, unavailable(gb)
			}
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown prompt %q", ref.Name)}
		}
		b = route.backend
		ref.Name = route.original
	case "ref/resource":
		for _, t := range rt.templates {
			if t.resource.URITemplate == ref.URI {
				b = t.backend
				break
			}
		}
		if b == nil {
			b = rt.resource(ref.URI)
		}
		if b == nil {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown resource %q", ref.URI)}
		}
	default:
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("completion/complete: unknown ref type %q", ref.Type)}
	}
	if !b.Catalog().Completions {
		// Completion is optional: a backend without it completes nothing.
		return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{}}}, nil
	}
	params := &mcp.CompleteParams{Argument: p.Argument, Context: p.Context, Ref: &ref}
	ctx, done := g.relay.begin(ctx, req.Session, b, p.Meta, params)
	defer done()
	var res *mcp.CompleteResult
	err := b.Do(ctx, func(ctx context.Context, cs *mcp.ClientSession) error {
		var err error
		res, err = cs.Complete(ctx, params)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func unavailable(b *backend.Backend) error {
	_, err := b.Session()
	if err == nil {
		err = errors.New("reconnecting")
	}
	return &jsonrpc.Error{Code: backend.CodeUnavailable, Message: fmt.Sprintf("backend %q is unavailable: %v", b.Name(), err)}
}
