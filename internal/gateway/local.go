package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tracegate/tracegate/internal/auth"
	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/wire"
)

// The methods the gateway answers itself.

// initialize negotiates a version and opens a session.
func (rq *request) initialize() ([]byte, error) {
	if rq.s != nil {
		return nil, &wire.Error{Code: codeInvalidRequest, Message: "the session is already initialized"}
	}
	p := rq.m.Params
	asked, _ := wire.GetString(p, "protocolVersion")
	version := latestStateful
	if supportedVersion(asked) && asked < statelessRevision {
		version = asked
	}
	s := &session{id: newSessionID(), front: rq.f, version: version, header: rq.http.Header.Clone(), start: time.Now(),
		owner: auth.SessionOwner(rq.http.Context())}
	s.caps, s.client = parseClient(wire.Get(p, "capabilities"), wire.Get(p, "clientInfo"))
	s.touch()
	rq.s = s
	if f, ok := rq.ctx.Value(factsKey{}).(*requestFacts); ok {
		f.client = s.client
	}
	rq.g.sessions.add(s)
	rq.rp.w.Header().Set("Mcp-Session-Id", s.id)
	v := rq.f.view()
	out := []byte(`{"protocolVersion":`)
	out = wire.AppendString(out, version)
	out = append(out, `,"capabilities":`...)
	out = append(out, v.capabilities...)
	out = append(out, `,"serverInfo":`...)
	out = append(out, rq.g.serverInfoFor(rq.f)...)
	if v.instructions != "" {
		out = append(out, `,"instructions":`...)
		out = wire.AppendString(out, v.instructions)
	}
	return append(out, '}'), nil
}

// serverInfoFor names the server a client of f talks to: the gateway at
// /mcp, the backend's own identity at /mcp/{backend}.
func (g *Gateway) serverInfoFor(f *front) []byte {
	if len(f.view().backends) == 1 && f.namer == nil {
		if info := f.view().backends[0].Catalog().Init.ServerInfo; len(info) > 0 {
			return info
		}
	}
	return g.serverInfo()
}

// discover answers server/discover (2026-07-28).
func (rq *request) discover() ([]byte, error) {
	v := rq.f.view()
	out, _ := json.Marshal(map[string]any{
		"supportedVersions": append([]string{statelessRevision}, clientVersions...),
		"capabilities":      json.RawMessage(v.capabilities),
		"instructions":      v.instructions,
	})
	return out, nil
}

// setLevel records the session's log level and passes the most verbose
// level any session asked for on to the backends.
func (rq *request) setLevel() ([]byte, error) {
	level, _ := wire.GetString(rq.m.Params, "level")
	sev, ok := severity[level]
	if !ok {
		return nil, &wire.Error{Code: codeInvalidParams, Message: fmt.Sprintf("unknown log level %q", level)}
	}
	rq.s.level.Store(int32(sev) + 1)
	rq.g.levels.recompute()
	if rq.g.replicas != nil {
		rq.g.replicas.changed(rq.ctx, rq.s)
	}
	return []byte("{}"), nil
}

// subscribe handles resources/subscribe and unsubscribe: the gateway keeps
// who listens to which URI and subscribes its backend session once.
func (rq *request) subscribe(on bool) ([]byte, error) {
	uri, ok := wire.GetString(rq.m.Params, "uri")
	if !ok {
		return nil, &wire.Error{Code: codeInvalidParams, Message: "missing uri"}
	}
	b := rq.f.view().resource(uri)
	if b == nil {
		if !on {
			return []byte("{}"), nil
		}
		return nil, resourceNotFound(uri)
	}
	if on && !b.Catalog().Init.Caps.Subscribe {
		return nil, &wire.Error{Code: codeMethodNotFound, Message: fmt.Sprintf("backend %q does not support resource subscriptions", b.Name())}
	}
	if err := rq.g.subs.set(rq.ctx, rq.s, b, uri, on); err != nil {
		return nil, err
	}
	if rq.g.replicas != nil {
		s := rq.s
		s.mu.Lock()
		if s.subURIs == nil {
			s.subURIs = map[string]bool{}
		}
		if on {
			s.subURIs[uri] = true
		} else {
			delete(s.subURIs, uri)
		}
		s.mu.Unlock()
		rq.g.replicas.changed(rq.ctx, s)
	}
	return []byte("{}"), nil
}

// resourceNotFound is the error for an unknown URI. MCP 2025-11-25 gives
// it -32602 (invalid params), as the SDKs send it.
func resourceNotFound(uri string) error {
	data, _ := json.Marshal(map[string]string{"uri": uri})
	return &wire.Error{Code: codeInvalidParams, Message: "Resource not found", Data: data}
}

// listen serves subscriptions/listen (2026-07-28): the response stays open
// as a stream that carries list_changed and resources/updated, until the
// client goes away.
func (rq *request) listen() ([]byte, error) {
	n := wire.Get(rq.m.Params, "notifications")
	if n == nil {
		return nil, &wire.Error{Code: codeInvalidParams, Message: "missing required 'notifications' field"}
	}
	s := &session{id: "listen-" + newSessionID(), front: rq.f, version: rq.s.version, stateless: true, client: rq.s.client, caps: rq.s.caps}
	s.initialized.Store(true)
	s.listenID = rq.m.ID
	wants := func(key string) bool { return string(wire.Get(n, key)) == "true" }
	s.listens = listenSet{tools: wants("toolsListChanged"), prompts: wants("promptsListChanged"), resources: wants("resourcesListChanged")}
	var uris []string
	if raw := wire.Get(n, "resourceSubscriptions"); len(raw) > 0 && raw[0] == '[' {
		wire.EachElement(raw, func(v []byte) bool {
			if u, ok := wire.Unquote(v); ok && v[0] == '"' {
				uris = append(uris, u)
			}
			return len(uris) < 1024
		})
	}
	out, stop, _ := s.openStream()
	// An open stream: the idle reaper leaves the session alone.
	s.streams.Add(1)
	s.touch()
	rq.g.sessions.add(s)
	defer rq.g.endSession(s.id, true)
	for _, uri := range uris {
		if b := rq.f.view().resource(uri); b != nil && b.Catalog().Init.Caps.Subscribe {
			if err := rq.g.subs.set(rq.ctx, s, b, uri, true); err != nil {
				return nil, err
			}
		}
	}
	ack, _ := json.Marshal(map[string]any{
		"notifications": map[string]any{
			"toolsListChanged": s.listens.tools, "promptsListChanged": s.listens.prompts,
			"resourcesListChanged": s.listens.resources, "resourceSubscriptions": uris,
		},
		"_meta": map[string]json.RawMessage{metaSubscriptionID: rq.m.ID},
	})
	if !rq.rp.send(wire.AppendRequest(nil, nil, "notifications/subscriptions/acknowledged", ack)) {
		return nil, context.Canceled
	}
	for {
		select {
		case msg := <-out:
			if !rq.rp.send(msg) {
				return nil, context.Canceled
			}
		case <-stop:
			return []byte(`{"_meta":{}}`), nil
		case <-rq.ctx.Done():
			return nil, rq.ctx.Err()
		}
	}
}

// rootsChanged passes a client's notifications/roots/list_changed on to
// the backend sessions that may ask it for roots: its own (per_client), or
// the shared ones of its front.
func (g *Gateway) rootsChanged(ctx context.Context, s *session) {
	for _, b := range s.front.view().backends {
		var bs *backend.Session
		if b.PerClient() {
			for _, x := range b.Sessions() {
				if x.Client() == s.id {
					bs = x
				}
			}
		} else if b.State() == backend.StateReady {
			bs, _ = b.SessionFor(ctx, "")
		}
		if bs != nil {
			go func() {
				nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.Timeout())
				defer cancel()
				bs.Notify(nctx, "notifications/roots/list_changed", nil)
			}()
		}
	}
}
