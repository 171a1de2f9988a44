package conn

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"unicode/utf8"

	"github.com/tracegate/tracegate/internal/wire"
)

// session is what the three transports share: the session's life, and the
// requests waiting for their responses.
type session struct {
	opts Options
	log  *slog.Logger

	// ctx ends with the session; every HTTP request and stream of the
	// session runs under it, so that none outlives it.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	err     error
	pending map[string]chan []byte // by idKey
}

func newSession(opts Options) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{
		opts:    opts,
		log:     opts.Logger,
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		pending: make(map[string]chan []byte),
	}
}

func (s *session) Done() <-chan struct{} { return s.done }

func (s *session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// fail ends the session with err; the first cause wins. Every Request in
// flight returns it at once.
func (s *session) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.err = err
	close(s.done)
	s.cancel()
}

// idKey makes equal ids equal keys whatever their spelling: a string id
// by its value, a number by its digits.
func idKey(id []byte) string { return string(appendIDKey(nil, id)) }

// appendIDKey appends idKey(id) to dst, so that a key looked up or
// compared can be made in a buffer on the stack.
func appendIDKey(dst, id []byte) []byte {
	if len(id) > 0 && id[0] == '"' {
		if plainString(id) {
			return append(append(dst, 's'), id[1:len(id)-1]...)
		}
		if v, ok := wire.Unquote(id); ok {
			return append(append(dst, 's'), v...)
		}
	}
	return append(append(dst, 'n'), id...)
}

// plainString reports a raw JSON string that wire.Unquote returns as it
// is: quoted, without escapes, all ASCII.
func plainString(raw []byte) bool {
	if len(raw) < 2 || raw[len(raw)-1] != '"' {
		return false
	}
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// sameID reports whether two raw ids are the same id.
func sameID(a, b []byte) bool {
	var x, y [64]byte
	return string(appendIDKey(x[:0], a)) == string(appendIDKey(y[:0], b))
}

// expect registers a request about to be sent; its response will arrive
// on the returned channel.
func (s *session) expect(id []byte) (string, chan []byte, error) {
	key := idKey(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return "", nil, s.err
	}
	if _, dup := s.pending[key]; dup {
		return "", nil, fmt.Errorf("a request with id %s is already in flight", id)
	}
	ch := make(chan []byte, 1)
	s.pending[key] = ch
	return key, ch, nil
}

func (s *session) forget(key string) {
	s.mu.Lock()
	delete(s.pending, key)
	s.mu.Unlock()
}

// await returns the response to the request registered as key.
func (s *session) await(ctx context.Context, key string, ch chan []byte) ([]byte, error) {
	select {
	case msg := <-ch:
		return msg, nil
	case <-ctx.Done():
		s.forget(key) // a late response is dropped
		return nil, ctx.Err()
	case <-s.done:
		s.forget(key)
		select {
		case msg := <-ch: // it arrived just before the end
			return msg, nil
		default:
			return nil, s.Err()
		}
	}
}

// resolve hands a response to the Request waiting for it, and reports
// whether one was.
func (s *session) resolve(m *wire.Message) bool {
	var buf [64]byte
	key := appendIDKey(buf[:0], m.ID)
	s.mu.Lock()
	ch, ok := s.pending[string(key)]
	if ok {
		delete(s.pending, string(key))
	}
	s.mu.Unlock()
	if ok {
		ch <- bytes.Clone(m.Raw) // buffered: never blocks
	}
	return ok
}

// dispatch handles one message from a stream that every request shares
// (stdio, the legacy SSE stream, the Streamable HTTP GET stream): a
// response goes to its Request, anything else to Options.Unsolicited.
func (s *session) dispatch(raw []byte) {
	m, ok := s.parse(raw)
	if !ok {
		return
	}
	if m.IsResponse() {
		if !s.resolve(&m) {
			s.log.Debug("conn: dropping a response that no request waits for", "id", string(m.ID))
		}
		return
	}
	if s.opts.Unsolicited != nil {
		s.opts.Unsolicited(bytes.Clone(raw))
	}
}

// parse reads a message from the server. A malformed one is skipped and
// logged at debug level: one bad message from a server need not end a
// session that other callers share, and a request it hid times out under
// its caller's context.
func (s *session) parse(raw []byte) (wire.Message, bool) {
	m, err := wire.Parse(raw)
	if err != nil {
		s.log.Debug("conn: skipping a malformed message from the server", "error", err, "message", snippet(raw))
		return m, false
	}
	return m, true
}

// snippet shortens b for a log line or an error.
func snippet(b []byte) string {
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
