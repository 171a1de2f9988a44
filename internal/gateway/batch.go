package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/tracegate/tracegate/internal/sse"
	"github.com/tracegate/tracegate/internal/wire"
)

// JSON-RPC batches (JSON-RPC 2.0 section 6). Revision 2025-03-26 lets a
// client send requests, notifications and responses as one array;
// 2025-06-18 removed batching. A batch on a session of an earlier
// revision is served element by element through the one pipeline, in
// order, and the responses go back as one array. Any other batch gets one
// -32600, since no revision that could apply to it has batches.

// batchRemoved is the first revision without JSON-RPC batches.
const batchRemoved = "2025-06-18"

// maxBatch bounds the messages in one batch. Each one may be answered
// with a whole catalog, so a small body must not make a huge answer; and
// the elements run one after another, inside one request's slot of
// limits.max_concurrent_requests.
const maxBatch = 64

// serveBatch answers a POST whose body is a JSON array.
func (g *Gateway) serveBatch(w http.ResponseWriter, r *http.Request, f *front, body []byte) {
	if !json.Valid(body) {
		writeJSON(w, http.StatusBadRequest, wire.AppendError(nil, nil, codeParseError, "invalid JSON-RPC message: "+wire.ErrSyntax.Error(), nil))
		return
	}
	refuse := func(msg string) {
		writeJSON(w, http.StatusBadRequest, wire.AppendError(nil, nil, codeInvalidRequest, msg, nil))
	}
	var s *session
	if r.Header.Get("Mcp-Session-Id") != "" {
		var ok bool
		if s, ok = g.namedSession(w, r, f, nil); !ok {
			return
		}
	}
	switch {
	case s == nil:
		// Without a session, a batch is either an initialize, which must
		// not be batched (2025-03-26, lifecycle), or a stateless request
		// of a revision without batches.
		refuse("JSON-RPC batches need a session of protocol revision 2025-03-26: initialize must not be batched, and revision " + batchRemoved + " removed batching")
		return
	case s.version >= batchRemoved:
		refuse(fmt.Sprintf("JSON-RPC batches were removed in protocol revision %s; this session uses %s: send each message in its own POST", batchRemoved, s.version))
		return
	}
	var elems [][]byte
	wire.EachElement(body, func(v []byte) bool {
		elems = append(elems, v)
		return len(elems) <= maxBatch
	})
	switch {
	case len(elems) == 0:
		// JSON-RPC 2.0 section 6: an empty array is one invalid request.
		refuse("invalid JSON-RPC message: an empty batch")
		return
	case len(elems) > maxBatch:
		refuse(fmt.Sprintf("invalid JSON-RPC message: a batch of more than %d messages", maxBatch))
		return
	}
	var out []byte
	for _, raw := range elems {
		resp := g.batchElement(r, f, s, raw)
		if resp == nil {
			continue
		}
		if out == nil {
			out = append(out, '[')
		} else {
			out = append(out, ',')
		}
		out = append(out, resp...)
	}
	if out == nil {
		// Only notifications and responses: nothing to answer
		// (2025-03-26, Streamable HTTP, sending messages to the server).
		w.WriteHeader(http.StatusAccepted)
		return
	}
	writeJSON(w, http.StatusOK, append(out, ']'))
}

// batchElement serves one message of a batch as servePost serves one
// message alone, and returns its response, nil for a notification or a
// response.
func (g *Gateway) batchElement(r *http.Request, f *front, s *session, raw []byte) []byte {
	m, err := wire.Parse(raw)
	if err != nil {
		code, id := int64(codeInvalidRequest), m.ID
		if err == wire.ErrSyntax {
			code, id = codeParseError, nil
		}
		return wire.AppendError(nil, id, code, "invalid JSON-RPC message: "+err.Error(), nil)
	}
	switch {
	case m.IsResponse():
		g.answer(discardWriter{http.Header{}}, r, s, &m)
		return nil
	case m.IsNotification():
		g.notification(r, s, &m)
		return nil
	}
	bw := &batchWriter{h: http.Header{}, s: s}
	g.request(bw, r, f, s, &m)
	return bw.resp
}

// batchWriter takes what the pipeline writes for one request of a batch.
// The response is kept for the batch's answer. A message streamed before
// it (progress, a log, a backend's own request) goes to the session's GET
// stream at once, as one does that comes after its call was answered.
type batchWriter struct {
	h    http.Header
	s    *session
	sse  []byte // the part of an event received so far
	resp []byte
}

func (b *batchWriter) Header() http.Header { return b.h }
func (b *batchWriter) WriteHeader(int)     {}
func (b *batchWriter) Flush()              {}

func (b *batchWriter) Write(p []byte) (int, error) {
	if mediaType(b.h.Get("Content-Type")) != "text/event-stream" {
		b.resp = append(b.resp, p...)
		return len(p), nil
	}
	// The events received whole so far are read by the one SSE reader.
	b.sse = append(b.sse, p...)
	end := bytes.LastIndex(b.sse, []byte("\n\n"))
	if end < 0 {
		return len(p), nil
	}
	rd := sse.NewReader(bytes.NewReader(b.sse[:end+2]), 0)
	defer rd.Release()
	for {
		ev, err := rd.Next()
		if err != nil {
			break
		}
		msg := bytes.Clone(ev.Data)
		if m, err := wire.Parse(msg); err == nil && m.IsResponse() {
			b.resp = msg
		} else {
			b.s.deliver(msg)
		}
	}
	b.sse = b.sse[end+2:]
	return len(p), nil
}

// discardWriter takes the answer to a response, which has none to give.
type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) WriteHeader(int)             {}
func (d discardWriter) Write(p []byte) (int, error) { return io.Discard.Write(p) }
