package traceview

import (
	"slices"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// DefaultMaxSpans is the store's span bound when Limits.MaxSpans is zero.
const DefaultMaxSpans = 100000

// span is the compact, immutable record of one finished span. Once in the
// store it is never modified, so readers may use it without the lock.
type span struct {
	traceID   trace.TraceID
	spanID    trace.SpanID
	parentID  trace.SpanID
	kind      trace.SpanKind
	status    codes.Code
	failed    bool  // isFailed, computed once
	start     int64 // unix nanoseconds
	end       int64
	name      string
	service   string
	statusMsg string
	res       *origin // shared by the spans of one process
	attrs     []attribute.KeyValue
	events    []event
	links     []link
}

type event struct {
	name  string
	time  int64
	attrs []attribute.KeyValue
}

type link struct {
	traceID trace.TraceID
	spanID  trace.SpanID
	attrs   []attribute.KeyValue
}

// traceEntry holds one trace's spans in arrival order. The slice is only
// ever appended to under Store.mu, so a header copied under the lock stays
// valid to read after it is released.
type traceEntry struct {
	id    trace.TraceID
	spans []*span
	bytes int64                   // estimated heap, as charged to Store.bytes
	sum   atomic.Pointer[summary] // the list's summary, for len(spans) at the time
	facts atomic.Pointer[facts]   // the MCP views' facts, likewise
	index atomic.Pointer[attrIndex]
}

// Store is a bounded in-memory span store. It implements
// sdktrace.SpanProcessor and ingests OTLP/HTTP; both feed the same traces.
// All methods are safe for concurrent use.
type Store struct {
	max       int
	maxBytes  int64
	otlpLimit int64 // MaxOTLPBodyBytes; smaller in tests

	mu     sync.Mutex
	traces map[trace.TraceID]*traceEntry
	order  []*traceEntry // first-arrival order; order[head:] are live
	head   int
	spans  int
	bytes  int64

	resources resourceCache
	backends  backendStates

	dropped atomic.Uint64
}

// NewStore returns a store that keeps at most maxSpans spans
// (DefaultMaxSpans when maxSpans <= 0) and DefaultMaxBytes.
func NewStore(maxSpans int) *Store {
	return New(Limits{MaxSpans: maxSpans})
}

// New returns a store bounded by l.
func New(l Limits) *Store {
	if l.MaxSpans <= 0 {
		l.MaxSpans = DefaultMaxSpans
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	return &Store{max: l.MaxSpans, maxBytes: l.MaxBytes, otlpLimit: MaxOTLPBodyBytes, traces: make(map[trace.TraceID]*traceEntry)}
}

// Stats describes what the store holds.
type Stats struct {
	Spans  int   // spans held now
	Traces int   // traces held now
	Bytes  int64 // estimated heap of the spans held now
	// Dropped counts spans refused because their trace alone already
	// filled the store, or because they were invalid.
	Dropped uint64
}

// Stats reports the store's current size and drop count.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	st := Stats{Spans: s.spans, Traces: len(s.traces), Bytes: s.bytes}
	s.mu.Unlock()
	st.Dropped = s.dropped.Load()
	return st
}

// add files sp under its trace, evicting the oldest whole traces to make
// room. extra is heap sp brought beside its own (a new resource). The
// critical section is a map lookup, an append and, when full, a few map
// deletes.
func (s *Store) add(sp *span, extra int64) {
	sp.failed = isFailed(sp.status, sp.attrs)
	cost := sp.cost() + extra
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.traces[sp.traceID]
	if e == nil {
		cost += costTrace
	}
	if cost > s.maxBytes {
		s.dropped.Add(1) // larger than the whole store
		return
	}
	for (s.spans >= s.max || s.bytes+cost > s.maxBytes) && s.head < len(s.order) {
		oldest := s.order[s.head]
		if oldest == e {
			// The trace being added to is the oldest and the store is
			// full of it alone: keep what it has rather than evict it.
			if len(s.order)-s.head == 1 {
				s.dropped.Add(1)
				return
			}
			// Otherwise move it to the back; it is still growing.
			s.order = append(s.order, oldest)
			s.order[s.head] = nil
			s.head++
			continue
		}
		s.evictHead()
	}
	if e == nil {
		e = &traceEntry{id: sp.traceID}
		s.traces[sp.traceID] = e
		s.order = append(s.order, e)
	}
	e.spans = append(e.spans, sp)
	e.bytes += cost
	s.spans++
	s.bytes += cost
}

// evictHead removes the oldest trace. It compacts order once the dead
// prefix is as long as the live part, so order stays O(live traces).
func (s *Store) evictHead() {
	e := s.order[s.head]
	s.order[s.head] = nil
	s.head++
	s.spans -= len(e.spans)
	s.bytes -= e.bytes
	delete(s.traces, e.id)
	if s.head >= 64 && s.head*2 >= len(s.order) {
		n := copy(s.order, s.order[s.head:])
		clear(s.order[n:])
		s.order = s.order[:n]
		s.head = 0
	}
}

// snapshot is one trace's spans as seen at one moment.
type snapshot struct {
	entry *traceEntry
	spans []*span
}

// snapshotPool holds the buffers of snapshotAll: a full store has tens of
// thousands of traces, and a buffer per request would be most of what a
// list or an aggregate allocates, and so of what makes the garbage
// collector run.
var snapshotPool = sync.Pool{New: func() any { return new([]snapshot) }}

// snapshotAll copies every trace's span slice header, holding the lock
// only for that copy; the work on the spans happens after it is released.
// The caller passes the result to releaseSnapshots when done with it.
func (s *Store) snapshotAll() *[]snapshot {
	buf := snapshotPool.Get().(*[]snapshot)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Grow((*buf)[:0], len(s.order)-s.head)
	for _, e := range s.order[s.head:] {
		out = append(out, snapshot{entry: e, spans: e.spans[:len(e.spans):len(e.spans)]})
	}
	*buf = out
	return buf
}

// releaseSnapshots returns a buffer of snapshotAll to the pool, cleared,
// so that it keeps no evicted trace alive.
func releaseSnapshots(buf *[]snapshot) {
	clear(*buf)
	*buf = (*buf)[:0]
	snapshotPool.Put(buf)
}

// lookup returns one trace's spans, or nil.
func (s *Store) lookup(id trace.TraceID) []*span {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.traces[id]
	if !ok {
		return nil
	}
	return e.spans[:len(e.spans):len(e.spans)]
}

// has reports whether the store holds any span of the trace.
func (s *Store) has(id trace.TraceID) bool {
	s.mu.Lock()
	_, ok := s.traces[id]
	s.mu.Unlock()
	return ok
}
