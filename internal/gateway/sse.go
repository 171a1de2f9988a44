package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// errEventTooLarge stops a backend stream whose event outgrows the limit.
var errEventTooLarge = errors.New("server-sent event too large")

// sseReader reads the data of server-sent events (the WHATWG event stream
// format) from a backend's response: each event's data lines joined by
// newlines. Event types, ids and comments are skipped: every MCP event is a
// JSON-RPC message.
type sseReader struct {
	r    *bufio.Reader
	data []byte
	line []byte
	max  int
}

func newSSEReader(r io.Reader, max int) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 16<<10), max: max}
}

// next returns the data of the next event that has any. The slice is valid
// until the following call. At the end of the stream it returns io.EOF; an
// event cut off by the end is dropped, as the format requires.
func (s *sseReader) next() ([]byte, error) {
	s.data = s.data[:0]
	have := false
	for {
		line, err := s.readLine()
		if err != nil {
			return nil, err
		}
		if len(line) == 0 {
			if have {
				return s.data, nil
			}
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		if string(field) != "data" {
			continue
		}
		if have {
			s.data = append(s.data, '\n')
		}
		if len(s.data)+len(value) > s.max {
			return nil, errEventTooLarge
		}
		s.data = append(s.data, value...)
		have = true
	}
}

// readLine returns one line without its terminator (LF or CRLF).
func (s *sseReader) readLine() ([]byte, error) {
	line, err := s.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		s.line = append(s.line[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(s.line) > s.max {
				return nil, errEventTooLarge
			}
			line, err = s.r.ReadSlice('\n')
			s.line = append(s.line, line...)
		}
		line = s.line
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}
