package gateway

import (
	"context"
	"sync"

	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/wire"
)

// subscriptions keeps which client sessions listen to which resource URIs
// (resources/subscribe), and subscribes each backend session to a URI
// once, however many clients listen to it there.
type subscriptions struct {
	g  *Gateway
	mu sync.Mutex
	// bySession: for each backend session (the shared one, or a client's
	// own), for each URI, the client sessions subscribed.
	byBackend map[*backend.Backend]map[string]map[*session]bool
}

func newSubscriptions(g *Gateway) *subscriptions {
	return &subscriptions{g: g, byBackend: map[*backend.Backend]map[string]map[*session]bool{}}
}

// set subscribes (on) or unsubscribes s to uri, served by b.
func (sb *subscriptions) set(ctx context.Context, s *session, b *backend.Backend, uri string, on bool) error {
	sb.mu.Lock()
	uris := sb.byBackend[b]
	if uris == nil {
		uris = map[string]map[*session]bool{}
		sb.byBackend[b] = uris
	}
	subs := uris[uri]
	first := len(subs) == 0
	if on {
		if subs == nil {
			subs = map[*session]bool{}
			uris[uri] = subs
		}
		subs[s] = true
	} else {
		delete(subs, s)
		if len(subs) == 0 {
			delete(uris, uri)
		}
	}
	last := !on && len(subs) == 0
	sb.mu.Unlock()
	if b.PerClient() && !s.stateless {
		first, last = on, !on
	}
	if !(on && first) && !last {
		return nil
	}
	client := ""
	if b.PerClient() && !s.stateless {
		client = s.id
	}
	bs, err := b.SessionFor(ctx, client)
	if err != nil {
		return unavailableErr(b, err)
	}
	method := "resources/subscribe"
	if !on {
		method = "resources/unsubscribe"
	}
	cctx, cancel := context.WithTimeout(ctx, b.Timeout())
	defer cancel()
	params := append(wire.AppendString([]byte(`{"uri":`), uri), '}')
	if _, err := bs.Call(cctx, method, params, false); err != nil {
		if e, ok := err.(*wire.Error); ok {
			return e
		}
		return unavailableErr(b, err)
	}
	return nil
}

// has reports whether s is subscribed to uri at b here.
func (sb *subscriptions) has(s *session, b *backend.Backend, uri string) bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.byBackend[b][uri][s]
}

// updated passes a backend's notifications/resources/updated to the client
// sessions subscribed to uri there.
func (sb *subscriptions) updated(bs *backend.Session, uri string, msg []byte) {
	b := bs.Backend()
	sb.mu.Lock()
	var to []*session
	for s := range sb.byBackend[b][uri] {
		if owner := bs.Client(); owner == "" || owner == s.id {
			to = append(to, s)
		}
	}
	sb.mu.Unlock()
	for _, s := range to {
		s.notify("notifications/resources/updated", msg)
	}
}

// restore subscribes a new backend session to what its clients listen to.
func (sb *subscriptions) restore(bs *backend.Session) {
	b := bs.Backend()
	sb.mu.Lock()
	var uris []string
	for uri, subs := range sb.byBackend[b] {
		for s := range subs {
			if owner := bs.Client(); owner == "" || owner == s.id {
				uris = append(uris, uri)
				break
			}
		}
	}
	sb.mu.Unlock()
	if len(uris) == 0 {
		return
	}
	go func() {
		for _, uri := range uris {
			ctx, cancel := context.WithTimeout(context.Background(), b.Timeout())
			params := append(wire.AppendString([]byte(`{"uri":`), uri), '}')
			bs.Call(ctx, "resources/subscribe", params, true)
			cancel()
		}
	}()
}

// dropSession forgets a session's subscriptions, unsubscribing backend
// sessions no one listens on any more.
func (sb *subscriptions) dropSession(s *session) {
	type gone struct {
		b   *backend.Backend
		uri string
	}
	var left []gone
	sb.mu.Lock()
	for b, uris := range sb.byBackend {
		for uri, subs := range uris {
			if subs[s] {
				delete(subs, s)
				if len(subs) == 0 {
					delete(uris, uri)
					if !b.PerClient() {
						left = append(left, gone{b, uri})
					}
				}
			}
		}
	}
	sb.mu.Unlock()
	for _, x := range left {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), x.b.Timeout())
			defer cancel()
			if bs, err := x.b.SessionFor(ctx, ""); err == nil {
				bs.Call(ctx, "resources/unsubscribe", append(wire.AppendString([]byte(`{"uri":`), x.uri), '}'), true)
			}
		}()
	}
}
