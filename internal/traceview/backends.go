package traceview

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Backend states, as the gateway reports them to RecordBackendState.
const (
	BackendConnecting = "connecting"
	BackendReady      = "ready"
	BackendDegraded   = "degraded"
	BackendDown       = "down"
)

const (
	maxStateHistory = 64   // transitions kept per backend
	maxBackends     = 1024 // backends tracked; more are ignored
	maxDetailLen    = 1 << 10
	maxBackendOps   = 20 // connect and relist traces listed per backend
)

// backendStates is every backend's recent state history.
type backendStates struct {
	mu sync.Mutex
	m  map[string]*stateRing
}

type stateRing struct {
	events   []stateEvent // ring of at most maxStateHistory
	next     int          // where the next event goes once full
	restarts int
	last     stateEvent
	seen     bool
}

type stateEvent struct {
	State  string `json:"state"`
	At     string `json:"at"`
	Detail string `json:"detail,omitempty"`
	at     int64
}

// RecordBackendState records that backend entered state at the time at,
// with an optional detail (an error message). The gateway calls it on
// every change; a call that repeats the current state and detail is
// ignored. state is one of BackendConnecting, BackendReady,
// BackendDegraded and BackendDown. A restart is counted each time the
// backend goes back to connecting after it was ready, degraded or down.
// It is safe for concurrent use and never blocks on anything but the
// store's own small lock.
func (s *Store) RecordBackendState(backend, state string, at time.Time, detail string) {
	backend = truncate(backend, maxNameLen)
	state = truncate(state, 32)
	detail = truncate(detail, maxDetailLen)
	b := &s.backends
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]*stateRing{}
	}
	r := b.m[backend]
	if r == nil {
		if len(b.m) >= maxBackends {
			return
		}
		r = &stateRing{}
		b.m[backend] = r
	}
	if r.seen && r.last.State == state && r.last.Detail == detail {
		return
	}
	if r.seen && state == BackendConnecting && r.last.State != BackendConnecting {
		r.restarts++
	}
	ev := stateEvent{State: state, At: rfc3339(at.UnixNano()), Detail: detail, at: at.UnixNano()}
	r.last, r.seen = ev, true
	if len(r.events) < maxStateHistory {
		r.events = append(r.events, ev)
	} else {
		r.events[r.next] = ev
		r.next = (r.next + 1) % maxStateHistory
	}
}

// history returns the ring's events, oldest first.
func (r *stateRing) history() []stateEvent {
	out := make([]stateEvent, 0, len(r.events))
	out = append(out, r.events[r.next:]...)
	return append(out, r.events[:r.next]...)
}

// backendJSON is one backend in /api/backends.
type backendJSON struct {
	Name       string       `json:"name"`
	State      string       `json:"state,omitempty"` // latest reported; "" when none was
	Since      string       `json:"since,omitempty"`
	Detail     string       `json:"detail,omitempty"`
	Restarts   int          `json:"restarts"`
	History    []stateEvent `json:"history"` // oldest first
	Calls      int          `json:"calls"`
	Errors     int          `json:"errors"`
	ErrorPct   float64      `json:"error_pct"`
	P50MS      float64      `json:"p50_ms"`
	P95MS      float64      `json:"p95_ms"`
	P99MS      float64      `json:"p99_ms"`
	Operations []opJSON     `json:"operations"` // latest connect and relist traces, newest first

	durs []int64
	ops  []opJSON
}

// opJSON is one connect or relist trace.
type opJSON struct {
	Kind       string  `json:"kind"` // connect or relist
	TraceID    string  `json:"trace_id"`
	StartTime  string  `json:"start_time"`
	DurationMS float64 `json:"duration_ms"` // of the root span
	Error      bool    `json:"error"`

	start int64
}

type backendsResponse struct {
	Backends []*backendJSON `json:"backends"`
}

// backendsView joins the reported states with the calls and the connect
// and relist traces in the store, sorted by name.
func (s *Store) backendsView() backendsResponse {
	byName := map[string]*backendJSON{}
	get := func(name string) *backendJSON {
		b := byName[name]
		if b == nil {
			b = &backendJSON{Name: name, History: []stateEvent{}, Operations: []opJSON{}}
			byName[name] = b
		}
		return b
	}
	buf := s.snapshotAll()
	defer releaseSnapshots(buf)
	for _, sn := range *buf {
		f := factsOf(sn)
		for _, c := range f.calls {
			b := get(c.backend)
			b.Calls++
			if c.failed {
				b.Errors++
			}
			b.durs = append(b.durs, c.dur)
		}
		if op := f.op; op != nil {
			b := get(op.backend)
			b.ops = append(b.ops, opJSON{Kind: op.kind, TraceID: sn.entry.id.String(), StartTime: rfc3339(op.start), DurationMS: millis(op.dur), Error: op.failed, start: op.start})
		}
	}
	s.backends.mu.Lock()
	for name, r := range s.backends.m {
		b := get(name)
		b.State, b.Since, b.Detail, b.Restarts = r.last.State, r.last.At, r.last.Detail, r.restarts
		b.History = r.history()
	}
	s.backends.mu.Unlock()

	out := make([]*backendJSON, 0, len(byName))
	for _, b := range byName {
		if len(b.durs) > 0 {
			slices.Sort(b.durs)
			b.P50MS, b.P95MS, b.P99MS = millis(quantile(b.durs, 0.50)), millis(quantile(b.durs, 0.95)), millis(quantile(b.durs, 0.99))
			b.ErrorPct = 100 * float64(b.Errors) / float64(b.Calls)
		}
		slices.SortFunc(b.ops, func(x, y opJSON) int {
			return cmp.Or(cmp.Compare(y.start, x.start), strings.Compare(x.TraceID, y.TraceID))
		})
		b.Operations = append(b.Operations, b.ops[:min(len(b.ops), maxBackendOps)]...)
		out = append(out, b)
	}
	slices.SortFunc(out, func(x, y *backendJSON) int { return strings.Compare(x.Name, y.Name) })
	return backendsResponse{Backends: out}
}
