package sse

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
)

// ErrBadID reports an event id or type that would break the stream's
// framing: it holds a CR, an LF or a NUL.
var ErrBadID = errors.New("event id or type contains CR, LF or NUL")

// Writer writes an event stream, flushing after each event so that it
// reaches the client at once. It is not safe for concurrent use.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer to w. If w has a Flush method (an
// http.ResponseWriter does), it is called after each event.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Event writes one event: its type unless "" (which means "message"), its
// id unless "", and data, each of its lines (split at LF, CRLF or CR) in a
// field of its own.
func (w *Writer) Event(typ, id string, data []byte) error {
	if strings.ContainsAny(typ, "\r\n\x00") || strings.ContainsAny(id, "\r\n\x00") {
		return ErrBadID
	}
	b := w.buf[:0]
	if typ != "" {
		b = append(b, "event: "...)
		b = append(b, typ...)
		b = append(b, '\n')
	}
	if id != "" {
		b = append(b, "id: "...)
		b = append(b, id...)
		b = append(b, '\n')
	}
	for {
		i := lineEnd(data)
		b = append(b, "data: "...)
		if i < 0 {
			b = append(b, data...)
			b = append(b, '\n')
			break
		}
		b = append(b, data[:i]...)
		b = append(b, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	b = append(b, '\n')
	return w.write(b)
}

// Retry tells the client how long to wait before it reconnects.
func (w *Writer) Retry(d time.Duration) error {
	b := append(w.buf[:0], "retry: "...)
	b = strconv.AppendInt(b, d.Milliseconds(), 10)
	return w.write(append(b, "\n\n"...))
}

// Comment writes a comment line, which clients ignore: a keep-alive.
func (w *Writer) Comment(text string) error {
	if strings.ContainsAny(text, "\r\n") {
		return ErrBadID
	}
	b := append(w.buf[:0], ": "...)
	b = append(b, text...)
	return w.write(append(b, "\n\n"...))
}

func (w *Writer) write(b []byte) error {
	if cap(b) <= keepCap {
		w.buf = b[:0]
	} else {
		w.buf = nil
	}
	if _, err := w.w.Write(b); err != nil {
		return err
	}
	switch f := w.w.(type) {
	case interface{ Flush() error }:
		return f.Flush()
	case interface{ Flush() }:
		f.Flush()
	}
	return nil
}
