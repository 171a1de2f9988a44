package httplimit

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

// Body reads the body of each POST, PUT and PATCH request in full before
// the next handler runs, so that the handler gets bytes already in memory.
// It never trusts Content-Length for an allocation: the buffer grows as
// bytes arrive, up to MaxBytes, so a client that announces 4 MB and sends
// nothing costs a few kilobytes. The whole body must arrive within
// ReadTimeout; a client that trickles it gets HTTP 408.
//
// Refusals: a body over MaxBytes gets HTTP 413 (at once when
// Content-Length announces it), a slow one 408. Both close the connection.
type Body struct {
	// MaxBytes bounds a body. It must be positive.
	MaxBytes int64
	// ReadTimeout bounds the time from the handler's start to the body's
	// last byte. If zero, there is no deadline.
	ReadTimeout time.Duration
	// Refusals counts 413 and 408 answers. If nil, they are not counted.
	Refusals *Refusals
}

// initialChunk is the buffer a body starts with, however large it says it
// is: enough for most JSON-RPC requests in one read.
const initialChunk = 4 << 10

// Wrap returns next behind the body limits.
func (b *Body) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
		default:
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > b.MaxBytes {
			b.refuse(w, r, http.StatusRequestEntityTooLarge, LimitBodyBytes)
			return
		}
		rc := http.NewResponseController(w)
		if b.ReadTimeout > 0 {
			// An unsupported writer (a test recorder) leaves the body
			// without a deadline rather than failing the request.
			_ = rc.SetReadDeadline(time.Now().Add(b.ReadTimeout))
		}
		body, err := b.read(r)
		if b.ReadTimeout > 0 {
			_ = rc.SetReadDeadline(time.Time{})
		}
		switch {
		case errors.Is(err, errTooLarge):
			b.refuse(w, r, http.StatusRequestEntityTooLarge, LimitBodyBytes)
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			b.refuse(w, r, http.StatusRequestTimeout, LimitBodyReadTimeout)
			return
		case err != nil:
			// The client went away or sent a broken chunked encoding;
			// nobody may be there to read an answer.
			w.Header().Set("Connection", "close")
			http.Error(w, "reading the request body failed", http.StatusBadRequest)
			return
		}
		r.Body = &readBody{Reader: bytes.NewReader(body), data: body}
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// readBody is a request body that Body has read in full.
type readBody struct {
	*bytes.Reader
	data []byte
}

func (*readBody) Close() error { return nil }

// Bytes returns the body that Body read for r, without copying it, and
// whether there is one: a handler behind Body that needs the whole body
// takes it here rather than reading it into a second buffer. The bytes
// must not be changed.
func Bytes(r *http.Request) ([]byte, bool) {
	if b, ok := r.Body.(*readBody); ok {
		return b.data, true
	}
	return nil, false
}

var errTooLarge = errors.New("request body too large")

// read reads r.Body up to MaxBytes, growing its buffer only as bytes
// arrive.
func (b *Body) read(r *http.Request) ([]byte, error) {
	size := int64(initialChunk)
	if r.ContentLength >= 0 && r.ContentLength < size {
		size = r.ContentLength + 1 // room to see EOF without growing
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > b.MaxBytes {
				return nil, errTooLarge
			}
			// Double, but never past one byte over the limit: that byte
			// tells an over-long body from one of exactly MaxBytes.
			grow := min(int64(cap(buf)), b.MaxBytes+1-int64(len(buf)))
			buf = append(buf, make([]byte, max(grow, 1))...)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > b.MaxBytes {
			return nil, errTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (b *Body) refuse(w http.ResponseWriter, r *http.Request, code int, limit string) {
	b.Refusals.Add(r.Context(), limit)
	// The rest of the body is not read: the connection cannot serve
	// another request.
	w.Header().Set("Connection", "close")
	msg := "request body exceeds " + strconv.FormatInt(b.MaxBytes, 10) + " bytes"
	if code == http.StatusRequestTimeout {
		msg = "request body not received in time"
	}
	// A JSON-RPC error, as everything the MCP listener answers; the id is
	// null, since the message was never read (JSON-RPC 2.0 section 5).
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"`+msg+`"}}`)
}
