package backend

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
)

// tailWriter logs a child's stderr line by line and remembers the last line,
// which is often the reason a child died.
type tailWriter struct {
	log  *slog.Logger
	mu   sync.Mutex
	buf  []byte
	last string
}

func newTailWriter(log *slog.Logger) *tailWriter { return &tailWriter{log: log} }

const maxStderrLine = 4096

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) > maxStderrLine {
				w.emit(w.buf[:maxStderrLine])
				w.buf = w.buf[:0]
			}
			return len(p), nil
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

func (w *tailWriter) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(line) == 0 {
		return
	}
	w.last = string(line)
	w.log.Log(context.Background(), slog.LevelInfo, "backend stderr", "line", w.last)
}

// Last returns the last complete line written.
func (w *tailWriter) Last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}
