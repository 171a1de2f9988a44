package gateway

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/config"
)

// An idle session is closed; one with an open stream or recent traffic is
// kept.
func TestReapClosesIdleSessions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g, err := New(&config.Config{}, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-time.Hour).UnixNano()
	add := func() *session {
		s := &session{id: newSessionID(), front: g.all, start: time.Now()}
		s.last.Store(long)
		g.sessions.add(s)
		return s
	}
	idle, streaming, busy := add(), add(), add()
	streaming.streams.Add(1)
	go func() {
		// Traffic keeps arriving until the test ends.
		for ctx.Err() == nil {
			busy.touch()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	go g.reap(ctx, 40*time.Millisecond)
	for g.sessions.get(idle.id) != nil {
		if ctx.Err() != nil {
			t.Fatal("the idle session was never closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for name, s := range map[string]*session{"streaming": streaming, "busy": busy} {
		if g.sessions.get(s.id) == nil {
			t.Errorf("the %s session was closed", name)
		}
	}
}
