package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/auth"
)

// sessionIdleTimeout is the default of Options.SessionIdleTimeout:
// abandoned sessions are reclaimed rather than kept forever.
const sessionIdleTimeout = 30 * time.Minute

// sessionTable knows a front server's stateful client sessions by ID. The
// forwarding path serves calls the SDK never sees, so the gateway keeps the
// sessions' idle clocks itself rather than leaving them to the SDK's.
type sessionTable struct {
	mu sync.RWMutex
	m  map[string]*sessionEntry
}

type sessionEntry struct {
	ss          *mcp.ServerSession
	owner       string // auth.SessionOwner of the caller who opened it
	initialized atomic.Bool
	last        atomic.Int64 // unix nanoseconds of the last request
	streams     atomic.Int32 // open GET streams
}

func (e *sessionEntry) touch() { e.last.Store(time.Now().UnixNano()) }

func newSessionTable() *sessionTable { return &sessionTable{m: map[string]*sessionEntry{}} }

func (t *sessionTable) get(id string) *sessionEntry {
	t.mu.RLock()
	e := t.m[id]
	t.mu.RUnlock()
	return e
}

// add records ss, opened by owner (auth.SessionOwner), and forgets it when
// it ends.
func (t *sessionTable) add(ss *mcp.ServerSession, owner string) *sessionEntry {
	id := ss.ID()
	if id == "" {
		return nil
	}
	t.mu.Lock()
	e := t.m[id]
	if e == nil {
		e = &sessionEntry{ss: ss, owner: owner}
		e.touch()
		t.m[id] = e
		go func() {
			ss.Wait()
			t.mu.Lock()
			if t.m[id] == e {
				delete(t.m, id)
			}
			t.mu.Unlock()
		}()
	}
	t.mu.Unlock()
	return e
}

// track is receiving middleware that adds sessions to t as they
// initialize.
func (t *sessionTable) track(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		res, err := next(ctx, method, req)
		if err != nil {
			return res, err
		}
		switch method {
		case "initialize", "notifications/initialized":
			ss, ok := req.GetSession().(*mcp.ServerSession)
			if !ok || ss == nil {
				break
			}
			if e := t.add(ss, auth.SessionOwner(ctx)); e != nil && method == "notifications/initialized" {
				e.initialized.Store(true)
			}
		}
		return res, err
	}
}

// reap closes idle sessions until ctx is done.
func (t *sessionTable) reap(ctx context.Context, idle time.Duration) {
	tick := time.NewTicker(min(idle/4, time.Minute))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			var stale []*sessionEntry
			t.mu.RLock()
			for _, e := range t.m {
				if e.streams.Load() == 0 && now.Sub(time.Unix(0, e.last.Load())) > idle {
					stale = append(stale, e)
				}
			}
			t.mu.RUnlock()
			for _, e := range stale {
				e.ss.Close()
			}
		}
	}
}
