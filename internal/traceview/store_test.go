package traceview

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// makeTrace creates a root span with n-1 children and returns its ID.
func makeTrace(tp trace.TracerProvider, name string, n int) trace.TraceID {
	ctx, root := tp.Tracer("t").Start(context.Background(), name)
	for i := 1; i < n; i++ {
		_, c := tp.Tracer("t").Start(ctx, fmt.Sprintf("%s child %d", name, i))
		c.End()
	}
	root.End()
	return root.SpanContext().TraceID()
}

func TestStoreEvictsOldestWholeTraces(t *testing.T) {
	t.Parallel()
	s := NewStore(10)
	tp := newProvider(t, s, "svc")
	a := makeTrace(tp, "a", 4)
	b := makeTrace(tp, "b", 4)
	c := makeTrace(tp, "c", 4)

	tests := []struct {
		name string
		id   trace.TraceID
		want int
	}{
		{"oldest trace a", a, 0},
		{"trace b", b, 4},
		{"newest trace c", c, 4},
	}
	for _, tt := range tests {
		if got := len(s.lookup(tt.id)); got != tt.want {
			t.Errorf("%s: got %d spans, want %d", tt.name, got, tt.want)
		}
	}
	if got := s.Stats(); got.Spans != 8 || got.Traces != 2 || got.Dropped != 0 {
		t.Errorf("stats: got %+v, want 8 spans, 2 traces, 0 dropped", got)
	}
}

func TestStoreTraceLargerThanStore(t *testing.T) {
	t.Parallel()
	s := NewStore(5)
	tp := newProvider(t, s, "svc")
	id := makeTrace(tp, "big", 8)
	if got := len(s.lookup(id)); got != 5 {
		t.Errorf("got %d spans kept, want 5", got)
	}
	if got := s.Stats().Dropped; got != 3 {
		t.Errorf("got %d dropped, want 3", got)
	}
	// A new trace still gets in: the oversized one is evicted whole.
	next := makeTrace(tp, "next", 2)
	if got := len(s.lookup(next)); got != 2 {
		t.Errorf("next trace: got %d spans, want 2", got)
	}
	if got := len(s.lookup(id)); got != 0 {
		t.Errorf("big trace after next: got %d spans, want 0 (evicted whole)", got)
	}
}

func TestStoreKeepsGrowingOldestTrace(t *testing.T) {
	t.Parallel()
	s := NewStore(6)
	tp := newProvider(t, s, "svc")
	tr := tp.Tracer("t")
	// Trace a starts first and is still running when b arrives.
	ctxA, rootA := tr.Start(context.Background(), "a")
	for range 2 {
		_, c := tr.Start(ctxA, "a child")
		c.End()
	}
	b := makeTrace(tp, "b", 3)
	for range 2 {
		_, c := tr.Start(ctxA, "a late child")
		c.End()
	}
	rootA.End()
	a := rootA.SpanContext().TraceID()
	if got := len(s.lookup(a)); got != 5 {
		t.Errorf("trace a: got %d spans, want 5", got)
	}
	if got := len(s.lookup(b)); got != 0 {
		t.Errorf("trace b: got %d spans, want 0 (evicted for the growing trace)", got)
	}
}

func TestNewStoreDefault(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, -1} {
		if got := NewStore(n).max; got != DefaultMaxSpans {
			t.Errorf("NewStore(%d): got max %d, want %d", n, got, DefaultMaxSpans)
		}
	}
}

// TestStoreBoundedUnderLoad pushes many more spans than fit, from several
// goroutines, while readers query, and checks the bounds after every batch.
func TestStoreBoundedUnderLoad(t *testing.T) {
	t.Parallel()
	const (
		max     = 1000
		workers = 4
		traces  = 750 // per worker: ~30000 spans through a store of 1000
	)
	s := NewStore(max)
	tp := newProvider(t, s, "load")
	h := s.Handler()

	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			var l listResult
			if code := getJSON(t, h, "/api/traces?limit=1000", &l); code != 200 {
				t.Errorf("list under load: got %d, want 200", code)
				return
			}
			if l.StoredSpans > max {
				t.Errorf("list under load: got %d stored spans, want <= %d", l.StoredSpans, max)
			}
		}
	})

	var writers sync.WaitGroup
	for w := range workers {
		writers.Go(func() {
			for i := range traces {
				makeTrace(tp, "load", 1+(w+i)%20)
				if st := s.Stats(); st.Spans > max {
					t.Errorf("got %d spans, want <= %d", st.Spans, max)
					return
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	readers.Wait()

	st := s.Stats()
	if st.Spans > max || st.Spans < max-20 {
		t.Errorf("after load: got %d spans, want between %d and %d", st.Spans, max-20, max)
	}
	s.mu.Lock()
	live, queued, capacity := len(s.traces), len(s.order), cap(s.order)
	counted := 0
	for _, e := range s.traces {
		counted += len(e.spans)
	}
	s.mu.Unlock()
	if counted != st.Spans {
		t.Errorf("span count: got %d counted, want %d recorded", counted, st.Spans)
	}
	// The eviction queue is compacted: it stays within a small multiple of
	// the live traces however many have passed through.
	if limit := 2*live + 64; queued > limit || capacity > 4*limit {
		t.Errorf("eviction queue: got len %d cap %d with %d live traces, want len <= %d", queued, capacity, live, limit)
	}
}

// TestStoreMemoryFlat checks that memory stays flat under sustained load:
// after twenty times the store's capacity has passed through it, the heap
// it holds is within a quarter of what one fill cost. It does not run in
// parallel, so that other tests' allocations stay out of the measure.
func TestStoreMemoryFlat(t *testing.T) {
	const max = 4000
	s := NewStore(max)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "tracegate"))),
		sdktrace.WithSpanProcessor(s),
	)
	defer func() { _ = tp.Shutdown(context.Background()) }()
	empty := heapAfterGC()
	recordGateway(tp, max/4)
	first := heapAfterGC()
	for range 20 {
		recordGateway(tp, max/4)
	}
	last := heapAfterGC()
	if st := s.Stats(); st.Spans != max {
		t.Fatalf("got %d spans, want %d", st.Spans, max)
	}
	fill := int64(first) - int64(empty)
	grew := int64(last) - int64(first)
	t.Logf("one fill: %d bytes (%d per span); after 20 more: %+d bytes", fill, fill/max, grew)
	if fill <= 0 || grew > fill/4 {
		t.Errorf("heap: one fill %d bytes, then grew %d bytes over 20 more fills; want growth under a quarter of a fill", fill, grew)
	}
	runtime.KeepAlive(s)
}

func TestLimitAttrs(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", maxValueLen) // 2 bytes per rune
	many := make([]attribute.KeyValue, maxAttrsPerSpan+5)
	for i := range many {
		many[i] = attribute.Int("k", i)
	}
	tests := []struct {
		name      string
		in        []attribute.KeyValue
		wantLen   int
		wantSame  bool
		maxValLen int
	}{
		{"small is kept as is", []attribute.KeyValue{attribute.String("a", "b")}, 1, true, 1},
		{"too many are cut", many, maxAttrsPerSpan, false, 0},
		{"long string is cut", []attribute.KeyValue{attribute.String("a", long)}, 1, false, maxValueLen + len("…")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := limitAttrs(tt.in)
			if len(got) != tt.wantLen {
				t.Fatalf("got %d attributes, want %d", len(got), tt.wantLen)
			}
			if same := &got[0] == &tt.in[0]; same != tt.wantSame {
				t.Errorf("got same slice %v, want %v", same, tt.wantSame)
			}
			if tt.maxValLen > 0 {
				v := got[0].Value.AsString()
				if len(v) > tt.maxValLen {
					t.Errorf("got value of %d bytes, want <= %d", len(v), tt.maxValLen)
				}
				if !strings.HasSuffix(v, "…") && len(v) > 1 {
					t.Errorf("got value without the cut mark")
				}
				if strings.ContainsRune(v, '\uFFFD') {
					t.Errorf("cut split a UTF-8 sequence")
				}
			}
			if tt.name == "long string is cut" && tt.in[0].Value.AsString() != long {
				t.Errorf("the input was modified")
			}
		})
	}
}

func TestOnEndRecordsSpan(t *testing.T) {
	t.Parallel()
	s := NewStore(0)
	tp := newProvider(t, s, "tracegate")
	linked := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled,
	})
	ctx := start(context.Background(), tp, spanOpts{name: "parent", kind: trace.SpanKindServer, to: 10 * time.Millisecond})
	_, sp := tp.Tracer("t").Start(ctx, "child",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(base.Add(time.Millisecond)),
		trace.WithAttributes(attribute.String("gen_ai.tool.name", "get_weather")),
		trace.WithLinks(trace.Link{SpanContext: linked, Attributes: []attribute.KeyValue{attribute.String("why", "http")}}),
	)
	sp.AddEvent("retry", trace.WithTimestamp(base.Add(2*time.Millisecond)), trace.WithAttributes(attribute.Int("attempt", 2)))
	sp.End(trace.WithTimestamp(base.Add(3 * time.Millisecond)))

	spans := s.lookup(sp.SpanContext().TraceID())
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want 2", len(spans))
	}
	got := spans[1]
	parent := trace.SpanContextFromContext(ctx)
	checks := []struct {
		what      string
		got, want any
	}{
		{"name", got.name, "child"},
		{"service", got.service, "tracegate"},
		{"kind", got.kind, trace.SpanKindClient},
		{"parent", got.parentID, parent.SpanID()},
		{"start", got.start, base.Add(time.Millisecond).UnixNano()},
		{"end", got.end, base.Add(3 * time.Millisecond).UnixNano()},
		{"attribute", got.attrs[0].Value.AsString(), "get_weather"},
		{"event", got.events[0].name, "retry"},
		{"event time", got.events[0].time, base.Add(2 * time.Millisecond).UnixNano()},
		{"link trace", got.links[0].traceID, linked.TraceID()},
		{"link span", got.links[0].spanID, linked.SpanID()},
		{"link attribute", got.links[0].attrs[0].Value.AsString(), "http"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestServiceNameDefault(t *testing.T) {
	t.Parallel()
	var c resourceCache
	if got, _ := c.get(nil); got.service != unknownService {
		t.Errorf("nil resource: got %q, want %q", got.service, unknownService)
	}
	if got, _ := newResource([]attribute.KeyValue{attribute.String("service.name", "")}); got.service != unknownService {
		t.Errorf("empty service.name: got %q, want %q", got.service, unknownService)
	}
}
