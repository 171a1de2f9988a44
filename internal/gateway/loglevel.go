package gateway

import (
	"context"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/backend"
)

// logLevels carries the clients' logging/setLevel to the backends. A
// backend sends log messages only once its session has a level, and its
// session is shared, so it gets the most verbose level any client session
// asked for; the SDK then drops, per client session, what is below that
// session's own level when the gateway relays a message.
type logLevels struct {
	g *Gateway

	// levels is each client session's level. It is read on every
	// forwarded call, so it takes no lock.
	levels sync.Map // *mcp.ServerSession -> mcp.LoggingLevel

	mu      sync.Mutex
	current mcp.LoggingLevel                        // "" until a client asks
	applied map[*mcp.ClientSession]mcp.LoggingLevel // what each backend session was told
}

// severity orders the syslog levels MCP uses (RFC 5424): lower is more
// verbose.
var severity = map[mcp.LoggingLevel]int{
	"debug": 0, "info": 1, "notice": 2, "warning": 3, "error": 4, "critical": 5, "alert": 6, "emergency": 7,
}

func newLogLevels(g *Gateway) *logLevels {
	return &logLevels{g: g, applied: map[*mcp.ClientSession]mcp.LoggingLevel{}}
}

// track is receiving middleware that records each client session's level.
func (l *logLevels) track(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		res, err := next(ctx, method, req)
		if method != "logging/setLevel" || err != nil {
			return res, err
		}
		p, ok := req.GetParams().(*mcp.SetLoggingLevelParams)
		ss, _ := req.GetSession().(*mcp.ServerSession)
		if !ok || p == nil || ss == nil {
			return res, err
		}
		if _, known := severity[p.Level]; !known {
			return res, err
		}
		if _, seen := l.levels.Swap(ss, p.Level); !seen {
			go func() {
				ss.Wait()
				l.levels.Delete(ss)
				l.apply()
			}()
		}
		l.apply()
		return res, err
	}
}

// apply recomputes the level and sends it to every ready backend that
// logs and has not been told it yet.
func (l *logLevels) apply() {
	// Under mu, so that of two applies racing the later one sees the
	// later levels and has the last word.
	l.mu.Lock()
	level := mcp.LoggingLevel("")
	l.levels.Range(func(_, v any) bool {
		if lv := v.(mcp.LoggingLevel); level == "" || severity[lv] < severity[level] {
			level = lv
		}
		return true
	})
	if level == "" {
		// No client wants logs any more; the backends keep their last
		// level, and the gateway relays to nobody.
		level = l.current
	}
	l.current = level
	l.mu.Unlock()
	if level == "" {
		return
	}
	for _, b := range l.g.backends {
		l.send(b, level)
	}
}

// send sets level on b's session, once per session and level.
func (l *logLevels) send(b *backend.Backend, level mcp.LoggingLevel) {
	cs, err := b.Session()
	if err != nil || cs.InitializeResult() == nil || cs.InitializeResult().Capabilities == nil || cs.InitializeResult().Capabilities.Logging == nil {
		return
	}
	l.mu.Lock()
	prev, known := l.applied[cs]
	if known && prev == level {
		l.mu.Unlock()
		return
	}
	l.applied[cs] = level
	l.mu.Unlock()
	if !known {
		// Forget the session when it ends, so the map does not grow with
		// reconnects.
		go func() {
			cs.Wait()
			l.mu.Lock()
			delete(l.applied, cs)
			l.mu.Unlock()
		}()
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), b.Timeout())
		defer cancel()
		if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: level}); err != nil {
			l.g.log.Debug("setting the backend's log level failed", "backend", b.Name(), "level", string(level), "error", err)
			l.mu.Lock()
			if l.applied[cs] == level {
				l.applied[cs] = "" // try again with the next change
			}
			l.mu.Unlock()
		}
	}()
}

// backendReady gives a backend that just connected the current level.
func (l *logLevels) backendReady(b *backend.Backend) {
	l.mu.Lock()
	level := l.current
	l.mu.Unlock()
	if level != "" {
		l.send(b, level)
	}
}

// levelOf returns the level a client session asked for, "" for none.
func (l *logLevels) levelOf(ss *mcp.ServerSession) mcp.LoggingLevel {
	if ss == nil {
		return ""
	}
	v, _ := l.levels.Load(ss)
	level, _ := v.(mcp.LoggingLevel)
	return level
}

// wants reports whether a client that asked for level min gets a message
// at level.
func wants(min, level mcp.LoggingLevel) bool {
	m, ok := severity[min]
	v, known := severity[level]
	return ok && known && v >= m
}
