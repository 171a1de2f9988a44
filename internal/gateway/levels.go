package gateway

import (
	"context"
	"sync"

	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/wire"
)

// logLevels carries the clients' logging/setLevel to the backends. A
// backend sends log messages only at or above its session's level, and a
// shared session serves every client, so it gets the most verbose level
// any client asked for; the gateway then passes each client only what its
// own level lets through. A per-client session gets its owner's level.
type logLevels struct {
	g *Gateway

	mu      sync.Mutex
	current string                             // "" until a client asks
	applied map[*backend.Session]*sessionLevel // what each backend session is told
}

// sessionLevel is one backend session's level: the one it should have,
// and the last one sent. One goroutine at a time sends, the latest wanted
// level last, so two changes in quick succession cannot reach the backend
// in the wrong order and leave it at the older one.
type sessionLevel struct {
	want, sent string
	sending    bool
}

func newLogLevels(g *Gateway) *logLevels {
	return &logLevels{g: g, applied: map[*backend.Session]*sessionLevel{}}
}

var levelNames = [...]string{"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}

// recompute finds the most verbose level any session asked for and
// applies it to every backend session that does not have it yet.
func (l *logLevels) recompute() {
	best := -1
	l.g.sessions.each(func(s *session) {
		if v := int(s.level.Load()) - 1; v >= 0 && (best < 0 || v < best) {
			best = v
		}
	})
	level := ""
	if best >= 0 {
		level = levelNames[best]
	}
	l.mu.Lock()
	l.current = level
	l.mu.Unlock()
	for _, b := range l.g.Backends() {
		for _, s := range b.Sessions() {
			l.applyTo(s)
		}
	}
}

// applyTo sets the level on one backend session, if it logs and its
// level differs: the shared level, or its owner's.
func (l *logLevels) applyTo(s *backend.Session) {
	if !s.Init().Caps.Logging {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	level := l.current
	if owner := s.Client(); owner != "" {
		level = ""
		if cs := l.g.sessions.get(owner); cs != nil {
			if v := int(cs.level.Load()) - 1; v >= 0 {
				level = levelNames[v]
			}
		}
	}
	if level == "" {
		return
	}
	st := l.applied[s]
	if st == nil {
		st = &sessionLevel{}
		l.applied[s] = st
		go func() {
			<-s.Done()
			l.mu.Lock()
			delete(l.applied, s)
			l.mu.Unlock()
		}()
	}
	st.want = level
	if st.sending || st.sent == level {
		return // the sender in flight sends want next
	}
	st.sending = true
	go l.send(s, st)
}

// send passes st.want to the backend session until what was last sent is
// what is wanted.
func (l *logLevels) send(s *backend.Session, st *sessionLevel) {
	for {
		l.mu.Lock()
		level := st.want
		if level == st.sent {
			st.sending = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), s.Backend().Timeout())
		params := wire.AppendString([]byte(`{"level":`), level)
		params = append(params, '}')
		if _, err := s.Call(ctx, "logging/setLevel", params, true); err != nil {
			l.g.log.Debug("passing the log level to a backend failed", "backend", s.Backend().Name(), "error", s.Backend().Redact(err))
		}
		cancel()
		l.mu.Lock()
		st.sent = level // after a failure too: the next change tries again
		l.mu.Unlock()
	}
}
