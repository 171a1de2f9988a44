package sse

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"time"
)

// ErrTooLarge reports an event, or one line of the stream, larger than the
// Reader's limit.
var ErrTooLarge = errors.New("server-sent event exceeds the size limit")

// Event is one dispatched event. Its slices belong to the Reader and are
// valid until the next call to Next.
type Event struct {
	// Type is the event type: "message" unless an "event" field named
	// another.
	Type string
	// Data is the event's data lines joined with LF; never empty.
	Data []byte
	// ID is the last event ID as of this event (it persists across events
	// that carry no "id" field); empty when the stream has set none.
	ID []byte
}

// Reader reads events from a text/event-stream. It is not safe for
// concurrent use.
type Reader struct {
	src  io.Reader
	buf  []byte // bytes read from src; buf[r:w] are not yet consumed
	r, w int
	err  error // the error src returned; reported once buf holds no full line

	long  []byte // a line longer than buf, assembled across reads
	data  []byte // the data buffer, each line followed by LF
	typ   []byte // the event type buffer
	id    []byte // the last event ID buffer
	retry time.Duration
	max   int

	skipLF   bool // the last line ended with a CR that was the last byte read
	sawStart bool // the byte order mark, if any, has been skipped
}

// DefaultMax is the event size limit of NewReader when max <= 0.
const DefaultMax = 64 << 20

const (
	bufSize = 16 << 10
	// keepCap is the largest buffer a Reader keeps between events, so that
	// one huge event does not pin its memory for the life of a stream.
	keepCap = 1 << 20
	// linePad lets a line hold its field name besides max bytes of value.
	linePad = 64
)

// NewReader returns a Reader of src whose events, and lines, are at most
// max bytes (DefaultMax when max <= 0).
func NewReader(src io.Reader, max int) *Reader {
	if max <= 0 {
		max = DefaultMax
	}
	r := readers.Get().(*Reader)
	*r = Reader{src: src, buf: r.buf[:bufSize], data: r.data[:0], typ: r.typ[:0], id: r.id[:0], max: max}
	return r
}

// readers keeps Readers, with their buffers, for the next stream: a
// gateway reads one short stream per call, and a fresh 16 KiB buffer for
// each would be most of the bytes it allocates.
var readers = sync.Pool{New: func() any { return &Reader{buf: make([]byte, bufSize)} }}

// Release gives the Reader back for reuse once its stream is done with.
// Neither the Reader nor any Event it returned may be used afterwards.
func (r *Reader) Release() {
	if cap(r.data) > keepCap || cap(r.buf) != bufSize {
		return // outgrown: let it go
	}
	r.src, r.long, r.err = nil, nil, nil
	readers.Put(r)
}

// Next returns the next event that carries data. At the end of the stream
// it returns src's error, io.EOF for a clean end; an event cut off by the
// end is dropped, as the standard requires. A larger event than the limit
// gives ErrTooLarge, after which the Reader is unusable.
//
// Events whose data is empty are skipped, but their id and retry fields
// still count. The standard does not dispatch an event whose data buffer
// is empty (only id, event or retry fields); it would dispatch one with a
// blank "data:" line as an empty string. Neither carries a JSON-RPC
// message, and TypeScript SDK servers open each resumable stream with the
// second kind (`id: 1\ndata: \n\n`), so both are skipped here.
func (r *Reader) Next() (Event, error) {
	if cap(r.data) > keepCap {
		r.data = nil
	}
	r.data, r.typ = r.data[:0], r.typ[:0]
	for {
		line, err := r.line()
		if err != nil {
			return Event{}, err
		}
		if len(line) == 0 {
			if len(r.data) <= 1 { // empty, or one blank data line
				r.data, r.typ = r.data[:0], r.typ[:0]
				continue
			}
			return Event{Type: r.eventType(), Data: r.data[:len(r.data)-1], ID: r.id}, nil
		}
		if err := r.field(line); err != nil {
			return Event{}, err
		}
	}
}

// Ended reports whether the source has ended: it returned io.EOF or
// another error, whether or not buffered events remain. For an HTTP
// response body that ended with io.EOF, the connection is already free
// for another request.
func (r *Reader) Ended() bool { return r.err != nil }

// LastEventID is the last event ID buffer: what a reconnecting client
// sends in Last-Event-ID.
func (r *Reader) LastEventID() string { return string(r.id) }

// Retry is the reconnection time the server set with a "retry" field, 0
// when it set none.
func (r *Reader) Retry() time.Duration { return r.retry }

func (r *Reader) eventType() string {
	// The usual types need no allocation.
	switch string(r.typ) {
	case "", "message":
		return "message"
	case "endpoint":
		return "endpoint"
	}
	return string(r.typ)
}

// field processes one non-empty line (WHATWG HTML 9.2.6).
func (r *Reader) field(line []byte) error {
	if line[0] == ':' {
		return nil // a comment
	}
	name, value := line, line[len(line):]
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "data":
		if len(r.data)+len(value) > r.max {
			return ErrTooLarge
		}
		r.data = append(r.data, value...)
		r.data = append(r.data, '\n')
	case "event":
		r.typ = append(r.typ[:0], value...)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			r.id = append(r.id[:0], value...)
		}
	case "retry":
		if ms, ok := digits(value); ok {
			r.retry = time.Duration(ms) * time.Millisecond
		}
	}
	return nil
}

// digits parses a value made only of ASCII digits, saturating rather than
// overflowing a Duration.
func digits(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	const limit = int64(1<<63-1) / int64(time.Millisecond)
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < limit {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, limit), true
}

var bom = []byte("\xEF\xBB\xBF")

// line returns the next line without its end (LF, CRLF or a lone CR). The
// slice is valid until the next call.
func (r *Reader) line() ([]byte, error) {
	if cap(r.long) > keepCap {
		r.long = nil
	}
	r.long = r.long[:0]
	for {
		if r.skipLF && r.r < r.w {
			// The previous line ended with a CR at the end of a read; an
			// LF that starts this one belongs to it.
			if r.buf[r.r] == '\n' {
				r.r++
			}
			r.skipLF = false
		}
		if !r.sawStart {
			seg := r.buf[r.r:r.w]
			if len(seg) < len(bom) && bytes.HasPrefix(bom, seg) && r.err == nil {
				if err := r.fill(); err != nil {
					return nil, err
				}
				continue
			}
			if bytes.HasPrefix(seg, bom) {
				r.r += len(bom)
			}
			r.sawStart = true
		}
		seg := r.buf[r.r:r.w]
		if i := lineEnd(seg); i >= 0 {
			line := seg[:i]
			r.r += i + 1
			if seg[i] == '\r' {
				switch {
				case i+1 == len(seg):
					r.skipLF = true
				case seg[i+1] == '\n':
					r.r++
				}
			}
			if len(r.long) > 0 {
				if len(r.long)+len(line) > r.max+linePad {
					return nil, ErrTooLarge
				}
				line = append(r.long, line...)
				r.long = line
			}
			return line, nil
		}
		if r.err != nil {
			// The stream ended inside a line: the pending event is dropped.
			return nil, r.err
		}
		if r.w == len(r.buf) {
			if r.r == 0 {
				// One line fills the buffer: move it aside and read on.
				if len(r.long)+len(seg) > r.max+linePad {
					return nil, ErrTooLarge
				}
				r.long = append(r.long, seg...)
				r.w = 0
			} else {
				r.w = copy(r.buf, seg)
				r.r = 0
			}
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// lineEnd returns the index of the first CR or LF in b, or -1.
func lineEnd(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return bytes.IndexByte(b, '\r')
	}
	if j := bytes.IndexByte(b[:i], '\r'); j >= 0 {
		return j
	}
	return i
}

// fill reads more bytes into buf[w:], which has room. A read error is kept
// for when the buffered lines run out.
func (r *Reader) fill() error {
	for tries := 0; tries < 100; tries++ {
		n, err := r.src.Read(r.buf[r.w:])
		r.w += n
		if err != nil {
			r.err = err
			return nil
		}
		if n > 0 {
			return nil
		}
	}
	return io.ErrNoProgress
}
