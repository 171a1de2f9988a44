package conn

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"sync"
)

// maxStderrLine bounds one logged line of a child's stderr; the rest of a
// longer line is dropped.
const maxStderrLine = 4096

// stderrLines reads a child's stderr line by line, sends each line to w
// or, if w is nil, to log at debug level, and remembers the last one,
// which is often why a child died.
type stderrLines struct {
	w   io.Writer
	log *slog.Logger

	buf []byte

	mu   sync.Mutex
	last string
}

func (s *stderrLines) run(r io.Reader) {
	br := bufio.NewReaderSize(r, maxStderrLine)
	for {
		line, err := br.ReadSlice('\n')
		long := err == bufio.ErrBufferFull
		for err == bufio.ErrBufferFull {
			_, err = br.ReadSlice('\n') // drop the rest of the line
		}
		if line = bytes.TrimRight(line, "\r\n"); len(line) > 0 {
			s.emit(line, long)
		}
		if err != nil {
			return
		}
	}
}

func (s *stderrLines) emit(line []byte, cut bool) {
	s.mu.Lock()
	s.last = string(line)
	s.mu.Unlock()
	if s.w != nil {
		s.buf = append(append(s.buf[:0], line...), '\n')
		_, _ = s.w.Write(s.buf)
		return
	}
	s.log.Debug("conn: server stderr", "line", string(line), "truncated", cut)
}

// Last returns the last line the child wrote.
func (s *stderrLines) Last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}
