package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// An idle session is closed; one with an open stream or recent traffic is
// kept.
func TestReapClosesIdleSessions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	server := mcp.NewServer(&mcp.Implementation{Name: "s"}, nil)
	open := func() *mcp.ServerSession {
		st, ct := mcp.NewInMemoryTransports()
		ss, err := server.Connect(ctx, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "c"}, nil).Connect(ctx, ct, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		return ss
	}
	table := newSessionTable()
	idle, streaming, busy := open(), open(), open()
	long := time.Now().Add(-time.Hour).UnixNano()
	for _, ss := range []*mcp.ServerSession{idle, streaming, busy} {
		// In-memory sessions have no ID; give the table one.
		e := &sessionEntry{ss: ss}
		e.last.Store(long)
		table.m[ss.ID()+time.Now().String()] = e
		if ss == streaming {
			e.streams.Add(1)
		}
		if ss == busy {
			// Traffic keeps arriving until the test ends.
			go func() {
				for ctx.Err() == nil {
					e.touch()
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
	}
	go table.reap(ctx, 40*time.Millisecond)
	done := make(chan struct{})
	go func() { idle.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("the idle session was never closed")
	}
	for name, ss := range map[string]*mcp.ServerSession{"streaming": streaming, "busy": busy} {
		if err := ss.Ping(ctx, nil); err != nil {
			t.Errorf("the %s session was closed: %v", name, err)
		}
	}
}
