package httplimit

import (
	"net/http"
	"time"
)

// WriteTimeout bounds each write of a response rather than the whole
// response, as http.Server.WriteTimeout does. A stream of server-sent
// events may stay open for hours; what must not last is a write blocked on
// a client that stopped reading. Before each Write and Flush, the
// connection's write deadline is moved to Timeout from now.
type WriteTimeout struct {
	// Timeout bounds one write. If zero, Wrap returns next unchanged.
	Timeout time.Duration
}

// Wrap returns next with each write bounded.
func (t *WriteTimeout) Wrap(next http.Handler) http.Handler {
	if t.Timeout <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dw := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), d: t.Timeout}
		// The server writes what the handler left buffered after it
		// returns, and the connection keeps its deadline across
		// keep-alive requests: extend it once more for that last write.
		defer dw.extend()
		next.ServeHTTP(dw, r)
	})
}

// deadlineWriter moves the write deadline before each write. Unwrap lets
// http.ResponseController reach the connection through it.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *deadlineWriter) extend() { _ = w.rc.SetWriteDeadline(time.Now().Add(w.d)) }

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.extend()
	return w.ResponseWriter.Write(p)
}

func (w *deadlineWriter) WriteHeader(code int) {
	w.extend()
	w.ResponseWriter.WriteHeader(code)
}

func (w *deadlineWriter) Flush() {
	w.extend()
	_ = w.rc.Flush()
}

func (w *deadlineWriter) FlushError() error {
	w.extend()
	return w.rc.Flush()
}

func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
