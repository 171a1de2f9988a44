package traceview

import (
	"context"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

var _ sdktrace.SpanProcessor = (*Store)(nil)

// unknownService is the service.name the SDKs use when none is set
// (OpenTelemetry resource semantic conventions, service.name).
const unknownService = "unknown_service"

// OnStart does nothing: only finished spans are shown.
func (s *Store) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd records a finished span. It runs on the request path, so it only
// copies what the viewer needs into a compact record; the attribute slice
// of the SDK's read-only snapshot is immutable and is kept as is.
func (s *Store) OnEnd(ro sdktrace.ReadOnlySpan) {
	sc := ro.SpanContext()
	if !sc.IsValid() {
		s.dropped.Add(1)
		return
	}
	st := ro.Status()
	res, extra := s.resources.get(ro.Resource())
	b := newBudget()
	sp := &span{
		traceID:   sc.TraceID(),
		spanID:    sc.SpanID(),
		parentID:  ro.Parent().SpanID(),
		kind:      ro.SpanKind(),
		status:    st.Code,
		statusMsg: b.str(st.Description, maxValueLen),
		start:     ro.StartTime().UnixNano(),
		end:       ro.EndTime().UnixNano(),
		name:      b.str(ro.Name(), maxNameLen),
		service:   res.service,
		res:       res,
		attrs:     b.attrs(ro.Attributes()),
	}
	if evs := ro.Events(); len(evs) > 0 {
		evs = evs[:min(len(evs), maxEventsPerSpan)]
		sp.events = make([]event, len(evs))
		for i, ev := range evs {
			sp.events[i] = event{name: b.str(ev.Name, maxNameLen), time: ev.Time.UnixNano(), attrs: b.attrs(ev.Attributes)}
		}
	}
	if lks := ro.Links(); len(lks) > 0 {
		lks = lks[:min(len(lks), maxLinksPerSpan)]
		sp.links = make([]link, len(lks))
		for i, l := range lks {
			sp.links[i] = link{traceID: l.SpanContext.TraceID(), spanID: l.SpanContext.SpanID(), attrs: b.attrs(l.Attributes)}
		}
	}
	s.add(sp, extra)
}

// Shutdown does nothing: the store stays readable after the tracer
// provider shuts down, so the UI keeps working until the process exits.
func (s *Store) Shutdown(context.Context) error { return nil }

// ForceFlush does nothing: spans are stored as they end.
func (s *Store) ForceFlush(context.Context) error { return nil }
