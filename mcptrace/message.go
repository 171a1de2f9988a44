package mcptrace

import (
	"reflect"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// message holds the low-cardinality facts of one MCP request or
// notification that name its span and label its metrics.
type message struct {
	method     string
	toolName   string // tools/call
	promptName string // prompts/get
	uri        string // resources/read, subscribe, unsubscribe, updated
}

// describe reads method and params. Params of other methods carry nothing
// that names a span.
func describe(method string, params mcp.Params) message {
	m := message{method: method}
	switch p := params.(type) {
	case *mcp.CallToolParamsRaw: // as received by a server
		if p != nil {
			m.toolName = p.Name
		}
	case *mcp.CallToolParams: // as sent by a client
		if p != nil {
			m.toolName = p.Name
		}
	case *mcp.GetPromptParams:
		if p != nil {
			m.promptName = p.Name
		}
	case *mcp.ReadResourceParams:
		if p != nil {
			m.uri = p.URI
		}
	case *mcp.SubscribeParams:
		if p != nil {
			m.uri = p.URI
		}
	case *mcp.UnsubscribeParams:
		if p != nil {
			m.uri = p.URI
		}
	case *mcp.ResourceUpdatedNotificationParams:
		if p != nil {
			m.uri = p.URI
		}
	}
	return m
}

// spanName follows the MCP semantic conventions: "{mcp.method.name}
// {target}", where target is the tool or prompt name. Resource URIs stay out
// of the name: they are high in cardinality.
func (m message) spanName() string {
	switch {
	case m.toolName != "":
		return m.method + " " + m.toolName
	case m.promptName != "":
		return m.method + " " + m.promptName
	}
	return m.method
}

// isNilParams reports whether params holds no value, either as a nil
// interface or as a typed nil pointer, on which GetMeta would panic.
func isNilParams(params mcp.Params) bool {
	if params == nil {
		return true
	}
	v := reflect.ValueOf(params)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// metaOf returns params._meta, or nil.
func metaOf(params mcp.Params) map[string]any {
	if isNilParams(params) {
		return nil
	}
	return params.GetMeta()
}

// metaParams carries only _meta. It stands in for the params of a message
// sent without any (tools/list, ping, notifications), so that trace context
// can still travel in _meta.
type metaParams struct {
	mcp.ParamsBase
}

// withMeta returns a request that sends meta as params._meta, and a
// function that undoes any change to the caller's params. When params exist,
// their Meta field is swapped for meta during the send, since the go-sdk
// marshals params before the sending handler returns; the caller's map is
// never written. Without params, a new request with metaParams is made.
func withMeta(req mcp.Request, meta map[string]any) (mcp.Request, func()) {
	params := req.GetParams()
	if !isNilParams(params) {
		orig := params.GetMeta()
		params.SetMeta(meta)
		return req, func() { params.SetMeta(orig) }
	}
	p := &metaParams{}
	p.Meta = meta
	switch s := req.GetSession().(type) {
	case *mcp.ClientSession:
		return &mcp.ClientRequest[*metaParams]{Session: s, Params: p}, func() {}
	case *mcp.ServerSession:
		return &mcp.ServerRequest[*metaParams]{Session: s, Params: p, Extra: req.GetExtra()}, func() {}
	}
	return req, func() {}
}

// sessionID returns the session's ID, or "" for no session.
func sessionID(s mcp.Session) string {
	if !validSession(s) {
		return ""
	}
	return s.ID()
}
