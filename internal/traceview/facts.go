package traceview

import (
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys the MCP views read, beside those of the list filters.
const (
	keyProtocol      = attribute.Key("mcp.protocol.version")
	keyClientName    = attribute.Key("tracegate.client.name")
	keyClientVersion = attribute.Key("tracegate.client.version")
	keyClientAddress = attribute.Key("client.address")
	keyEndUser       = attribute.Key("enduser.id")
)

// facts is what the MCP views need of one trace, extracted once and
// cached on the trace like its summary.
type facts struct {
	spans    int       // len(spans) when built
	calls    []call    // the gateway's CLIENT spans toward a backend
	requests []request // the gateway's SERVER spans of MCP requests
	op       *backendOp
}

// call is one CLIENT span from the gateway to a backend.
type call struct {
	tool, backend string // tool is "" for methods other than tools/call
	method        string
	start, dur    int64
	failed        bool
}

// request is one SERVER span of an MCP request from a client.
type request struct {
	key                                                             string // sessionKey, made once
	session, protocol, clientName, clientVersion, identity, address string
	name                                                            string
	spanID                                                          trace.SpanID
	start, dur                                                      int64
	failed                                                          bool
}

// backendOp is a connect or relist trace of a backend: its root span.
type backendOp struct {
	kind, backend string // kind: connect or relist
	start, dur    int64
	failed        bool
}

// factsOf returns the trace's facts, from the cache when no span has
// arrived since they were built.
func factsOf(sn snapshot) *facts {
	if c := sn.entry.facts.Load(); c != nil && c.spans == len(sn.spans) {
		return c
	}
	f := &facts{spans: len(sn.spans)}
	// A backend's own SERVER span is the child of the gateway's CLIENT
	// span; it is not a client's request. Children end, and so arrive,
	// before their parents: find the CLIENT spans first.
	var backendCalls map[trace.SpanID]bool
	for _, sp := range sn.spans {
		if sp.kind != trace.SpanKindClient {
			continue
		}
		var c call
		for _, kv := range sp.attrs {
			switch kv.Key {
			case keyBackend:
				c.backend = kv.Value.AsString()
			case keyTool:
				c.tool = kv.Value.AsString()
			case keyMethod:
				c.method = kv.Value.AsString()
			}
		}
		if c.backend == "" {
			continue
		}
		if backendCalls == nil {
			backendCalls = map[trace.SpanID]bool{}
		}
		backendCalls[sp.spanID] = true
		c.start, c.dur, c.failed = sp.start, sp.end-sp.start, sp.failed
		f.calls = append(f.calls, c)
	}
	for _, sp := range sn.spans {
		if kind, backend, ok := strings.Cut(sp.name, " "); ok && !sp.parentID.IsValid() && (kind == "connect" || kind == "relist") && backend != "" {
			// The root's own times, not the trace's: spans that join the
			// trace later (a backend's keepalive pings) must not stretch
			// the connect.
			f.op = &backendOp{kind: kind, backend: backend, start: sp.start, dur: sp.end - sp.start, failed: sp.failed}
			break
		}
	}
	for _, sp := range sn.spans {
		// A connect or relist trace holds the backend's SERVER spans, of
		// requests the gateway made, not a client's.
		if f.op != nil {
			break
		}
		if sp.kind != trace.SpanKindServer || backendCalls[sp.parentID] {
			continue
		}
		r := request{name: sp.name, spanID: sp.spanID, start: sp.start, dur: sp.end - sp.start, failed: sp.failed}
		mcp := false
		for _, kv := range sp.attrs {
			switch kv.Key {
			case keyMethod:
				mcp = true
			case keySession:
				r.session = kv.Value.AsString()
			case keyProtocol:
				r.protocol = kv.Value.AsString()
			case keyClientName:
				r.clientName = kv.Value.AsString()
			case keyClientVersion:
				r.clientVersion = kv.Value.AsString()
			case keyEndUser:
				r.identity = kv.Value.AsString()
			case keyClientAddress:
				r.address = kv.Value.AsString()
			}
		}
		if mcp {
			r.key = sessionKey(&r)
			f.requests = append(f.requests, r)
		}
	}
	sn.entry.facts.Store(f)
	return f
}
