package mcptrace

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// sessionContext is the trace context extracted at a stateful session's
// initialize. Later requests of the session that carry no context of their
// own take it as parent.
type sessionContext struct {
	parent  trace.SpanContext
	baggage baggage.Baggage
	version string // negotiated mcp.protocol.version
}

// sessionStore maps live sessions to their initialize context. Entries are
// removed when the session's connection ends, so the store holds no more
// than the sessions the SDK holds. Every request reads it and only
// initialize writes it: a sync.Map keeps concurrent readers off a shared
// lock.
type sessionStore struct {
	m sync.Map // mcp.Session -> sessionContext
}

func (s *sessionStore) put(k mcp.Session, v sessionContext) { s.m.Store(k, v) }

func (s *sessionStore) get(k mcp.Session) (sessionContext, bool) {
	if k == nil {
		return sessionContext{}, false
	}
	v, ok := s.m.Load(k)
	if !ok {
		return sessionContext{}, false
	}
	return v.(sessionContext), true
}

func (s *sessionStore) delete(k mcp.Session) { s.m.Delete(k) }

func (s *sessionStore) len() int {
	n := 0
	s.m.Range(func(any, any) bool { n++; return true })
	return n
}

// watchSession waits, in one goroutine per session, for the session's
// connection to end; it then forgets the session and records its duration.
// Both ServerSession and ClientSession have Wait.
func watchSession(session mcp.Session, store *sessionStore, hist metric.Float64Histogram, start time.Time, attrs []attribute.KeyValue) {
	w, ok := session.(interface{ Wait() error })
	if !ok || !validSession(session) {
		return
	}
	go func() {
		_ = w.Wait()
		if store != nil {
			store.delete(session)
		}
		hist.Record(context.Background(), time.Since(start).Seconds(), metric.WithAttributes(attrs...))
	}()
}

// validSession reports whether s is a session the go-sdk made, not nil.
func validSession(s mcp.Session) bool {
	switch s := s.(type) {
	case *mcp.ServerSession:
		return s != nil
	case *mcp.ClientSession:
		return s != nil
	}
	return false
}
