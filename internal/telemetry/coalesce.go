package telemetry

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// CoalesceOptions configure NewCoalescingHandler.
type CoalesceOptions struct {
	// Window is how long repeats of an event are counted before their
	// summary line is written. If zero, 10s.
	Window time.Duration
	// Vary names the attributes that differ between repeats of one event,
	// such as a session ID: they are left out when records are compared,
	// and out of the summary line.
	Vary []string
	// MaxEvents bounds the distinct events counted at once; records of
	// further events pass through unchanged. If zero, 1000.
	MaxEvents int
}

// CoalescingHandler writes the first record of an event at once and
// counts its repeats for a window, then writes one summary line with the
// count. An event is a level, a message and the attributes not named in
// Vary: "backend session ended" for 5,000 client sessions becomes two
// lines, the first and a summary with "repeats":4999, not 5,000.
//
// Wrap it around the handler that adds trace IDs, so that they do not
// make every record unique. Flush writes the pending summaries; call it
// before the process exits.
type CoalescingHandler struct {
	next slog.Handler
	// base is next without the Vary attributes given to WithAttrs; the
	// summary goes through it.
	base   slog.Handler
	prefix string // the WithAttrs and WithGroup calls that made this handler
	group  string // the open group, for Vary keys inside it
	s      *coalesceState
}

type coalesceState struct {
	window time.Duration
	vary   []string
	max    int

	mu      sync.Mutex
	pending map[string]*coalesced
}

type coalesced struct {
	next    slog.Handler
	first   slog.Record
	repeats int
	timer   *time.Timer
}

// NewCoalescingHandler wraps next.
func NewCoalescingHandler(next slog.Handler, opts CoalesceOptions) *CoalescingHandler {
	s := &coalesceState{window: opts.Window, vary: opts.Vary, max: opts.MaxEvents, pending: map[string]*coalesced{}}
	if s.window <= 0 {
		s.window = 10 * time.Second
	}
	if s.max <= 0 {
		s.max = 1000
	}
	return &CoalescingHandler{next: next, base: next, s: s}
}

func (h *CoalescingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *CoalescingHandler) Handle(ctx context.Context, r slog.Record) error {
	key := h.key(r)
	s := h.s
	s.mu.Lock()
	if p, ok := s.pending[key]; ok {
		p.repeats++
		s.mu.Unlock()
		return nil
	}
	if len(s.pending) < s.max {
		p := &coalesced{next: h.base, first: h.withoutVary(r)}
		s.pending[key] = p
		p.timer = time.AfterFunc(s.window, func() { s.flush(key) })
	}
	s.mu.Unlock()
	return h.next.Handle(ctx, r)
}

// key identifies r's event: level, message and the attributes not in Vary.
func (h *CoalescingHandler) key(r slog.Record) string {
	var b strings.Builder
	b.WriteString(h.prefix)
	b.WriteString(r.Level.String())
	b.WriteByte(0)
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		if !h.varies(a.Key) {
			b.WriteByte(0)
			b.WriteString(a.Key)
			b.WriteByte('=')
			b.WriteString(a.Value.Resolve().String())
		}
		return true
	})
	return b.String()
}

func (h *CoalescingHandler) varies(key string) bool {
	return slices.Contains(h.s.vary, key) || h.group != "" && slices.Contains(h.s.vary, h.group+"."+key)
}

// withoutVary copies r without the Vary attributes, for the summary.
func (h *CoalescingHandler) withoutVary(r slog.Record) slog.Record {
	c := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if !h.varies(a.Key) {
			c.AddAttrs(a)
		}
		return true
	})
	return c
}

// flush writes key's summary, if its event repeated, and forgets it.
func (s *coalesceState) flush(key string) {
	s.mu.Lock()
	p, ok := s.pending[key]
	if ok {
		delete(s.pending, key)
		p.timer.Stop()
	}
	s.mu.Unlock()
	if !ok || p.repeats == 0 {
		return
	}
	r := p.first.Clone()
	r.Time = time.Now()
	r.AddAttrs(slog.Int("repeats", p.repeats), slog.String("within", s.window.String()))
	_ = p.next.Handle(context.Background(), r)
}

// Flush writes every pending summary now.
func (h *CoalescingHandler) Flush() {
	h.s.mu.Lock()
	keys := make([]string, 0, len(h.s.pending))
	for k := range h.s.pending {
		keys = append(keys, k)
	}
	h.s.mu.Unlock()
	for _, k := range keys {
		h.s.flush(k)
	}
}

func (h *CoalescingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	var b strings.Builder
	b.WriteString(h.prefix)
	var kept []slog.Attr
	for _, a := range attrs {
		if h.varies(a.Key) {
			continue
		}
		kept = append(kept, a)
		b.WriteString(a.Key)
		b.WriteByte('=')
		b.WriteString(a.Value.Resolve().String())
		b.WriteByte(0)
	}
	return &CoalescingHandler{next: h.next.WithAttrs(attrs), base: h.base.WithAttrs(kept), prefix: b.String(), group: h.group, s: h.s}
}

func (h *CoalescingHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	g := name
	if h.group != "" {
		g = h.group + "." + name
	}
	return &CoalescingHandler{next: h.next.WithGroup(name), base: h.base.WithGroup(name), prefix: h.prefix + "[" + name + "]", group: g, s: h.s}
}
