package mcptrace

import (
	"context"
	"maps"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"
)

func TestExtract(t *testing.T) {
	t.Parallel()
	bigBaggage := "k=" + strings.Repeat("v", MaxBaggageBytes)
	tests := []struct {
		name         string
		header       http.Header
		meta         map[string]any
		wantSource   Source
		wantTrace    string // trace ID of the context's span context, "" for none
		wantConflict bool
		wantBaggage  string // value of baggage member "k"
		wantDropped  map[string]int64
	}{
		{
			name:       "nothing",
			wantSource: SourceNone,
		},
		{
			name:       "header only",
			header:     http.Header{"Traceparent": {traceparentA}},
			wantSource: SourceHeader, wantTrace: traceIDA,
		},
		{
			name:       "meta only",
			meta:       map[string]any{"traceparent": traceparentB},
			wantSource: SourceMeta, wantTrace: traceIDB,
		},
		{
			name:       "both agree",
			header:     http.Header{"Traceparent": {traceparentA}},
			meta:       map[string]any{"traceparent": traceparentA},
			wantSource: SourceMeta, wantTrace: traceIDA,
		},
		{
			name:       "meta wins a conflict",
			header:     http.Header{"Traceparent": {traceparentA}},
			meta:       map[string]any{"traceparent": traceparentB},
			wantSource: SourceMeta, wantTrace: traceIDB, wantConflict: true,
		},
		{
			name:       "invalid meta falls back to header",
			header:     http.Header{"Traceparent": {traceparentA}},
			meta:       map[string]any{"traceparent": "ff-" + traceIDB + "-" + spanIDB + "-01"},
			wantSource: SourceHeader, wantTrace: traceIDA,
			wantDropped: map[string]int64{"meta/invalid_traceparent": 1},
		},
		{
			name:        "non-string meta value",
			meta:        map[string]any{"traceparent": 42.0},
			wantSource:  SourceNone,
			wantDropped: map[string]int64{"meta/invalid_traceparent": 1},
		},
		{
			name:        "repeated traceparent header",
			header:      http.Header{"Traceparent": {traceparentA, traceparentB}},
			wantSource:  SourceNone,
			wantDropped: map[string]int64{"header/invalid_traceparent": 1},
		},
		{
			name:        "upper-case header value",
			header:      http.Header{"Traceparent": {strings.ToUpper(traceparentA)}},
			wantSource:  SourceNone,
			wantDropped: map[string]int64{"header/invalid_traceparent": 1},
		},
		{
			name:       "invalid tracestate keeps traceparent",
			meta:       map[string]any{"traceparent": traceparentB, "tracestate": "BAD=1"},
			wantSource: SourceMeta, wantTrace: traceIDB,
			wantDropped: map[string]int64{"meta/invalid_tracestate": 1},
		},
		{
			name:       "baggage over 8 KiB",
			header:     http.Header{"Traceparent": {traceparentA}, "Baggage": {bigBaggage}},
			wantSource: SourceHeader, wantTrace: traceIDA,
			wantDropped: map[string]int64{"header/baggage_too_large": 1},
		},
		{
			name:       "invalid baggage",
			meta:       map[string]any{"traceparent": traceparentB, "baggage": "k=v v"},
			wantSource: SourceMeta, wantTrace: traceIDB,
			wantDropped: map[string]int64{"meta/invalid_baggage": 1},
		},
		{
			name:       "meta baggage over header baggage",
			header:     http.Header{"Traceparent": {traceparentA}, "Baggage": {"k=fromheader"}},
			meta:       map[string]any{"baggage": "k=frommeta"},
			wantSource: SourceHeader, wantTrace: traceIDA, wantBaggage: "frommeta",
		},
		{
			name:       "header baggage when meta has none",
			header:     http.Header{"Baggage": {"k=fromheader"}},
			meta:       map[string]any{"traceparent": traceparentB},
			wantSource: SourceMeta, wantTrace: traceIDB, wantBaggage: "fromheader",
		},
		{
			name:       "baggage without trace context",
			header:     http.Header{"Baggage": {"k=fromheader"}},
			wantSource: SourceNone, wantBaggage: "fromheader",
		},
		{
			name:       "repeated baggage headers are joined",
			header:     http.Header{"Baggage": {"a=1", "k=2"}},
			wantSource: SourceNone, wantBaggage: "2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tel := newTelemetry(t)
			p := NewPropagation(WithMeterProvider(tel.mp))
			ctx, ex := p.Extract(context.Background(), tt.header, tt.meta)
			if ex.Source != tt.wantSource {
				t.Errorf("got source %q, want %q", ex.Source, tt.wantSource)
			}
			if ex.Conflict != tt.wantConflict {
				t.Errorf("got conflict %v, want %v", ex.Conflict, tt.wantConflict)
			}
			sc := trace.SpanContextFromContext(ctx)
			gotTrace := ""
			if sc.IsValid() {
				gotTrace = sc.TraceID().String()
				if !sc.IsRemote() {
					t.Errorf("got a local span context, want a remote one")
				}
			}
			if gotTrace != tt.wantTrace {
				t.Errorf("got trace ID %q, want %q", gotTrace, tt.wantTrace)
			}
			if tt.wantConflict && ex.Header.TraceID().String() != traceIDA {
				t.Errorf("got header span context %v, want trace %s for the link", ex.Header, traceIDA)
			}
			if got := baggage.FromContext(ctx).Member("k").Value(); got != tt.wantBaggage {
				t.Errorf("got baggage k=%q, want %q", got, tt.wantBaggage)
			}
			want := tt.wantDropped
			if want == nil {
				want = map[string]int64{}
			}
			if got := tel.dropped(t); !maps.Equal(got, want) {
				t.Errorf("got dropped counts %v, want %v", got, want)
			}
		})
	}
}

func TestExtractKeepsSpanOfCtxWhenNoneFound(t *testing.T) {
	t.Parallel()
	own := mustSpanContext(t, traceparentA)
	ctx := trace.ContextWithSpanContext(context.Background(), own)

	got, ex := NewPropagation().Extract(ctx, http.Header{"Content-Type": {"application/json"}}, map[string]any{"progressToken": 1.0})
	if ex.Source != SourceNone {
		t.Errorf("got source %q, want none", ex.Source)
	}
	if sc := trace.SpanContextFromContext(got); !sc.Equal(own) {
		t.Errorf("got span context %v, want ctx's own %v", sc, own)
	}

	// A span in ctx is not mistaken for one found in a carrier.
	_, ex = NewPropagation().Extract(ctx, http.Header{"Traceparent": {traceparentB}}, nil)
	if ex.Source != SourceHeader || ex.Header.TraceID().String() != traceIDB {
		t.Errorf("got %+v, want the header's context %s", ex, traceIDB)
	}
}

func TestInjectMeta(t *testing.T) {
	t.Parallel()
	bag, err := baggage.Parse("user=alice,tenant=acme")
	if err != nil {
		t.Fatal(err)
	}
	ctx := baggage.ContextWithBaggage(remoteContext(context.Background(), t, traceparentA), bag)

	tests := []struct {
		name        string
		ctx         context.Context
		policy      BaggagePolicy
		meta        map[string]any
		want        map[string]any
		wantBaggage []string // members, in any order
	}{
		{
			name:        "keeps other keys",
			ctx:         ctx,
			meta:        map[string]any{"progressToken": "tok", "io.example/custom": map[string]any{"x": 1.0}},
			want:        map[string]any{"progressToken": "tok", "io.example/custom": map[string]any{"x": 1.0}, "traceparent": traceparentA},
			wantBaggage: []string{"user=alice", "tenant=acme"},
		},
		{
			name:   "replaces stale trace context",
			ctx:    ctx,
			policy: BaggageNone(),
			meta:   map[string]any{"traceparent": traceparentB, "tracestate": "old=1", "baggage": "secret=1"},
			want:   map[string]any{"traceparent": traceparentA},
		},
		{
			name:        "baggage key list",
			ctx:         ctx,
			policy:      BaggageKeys("tenant"),
			want:        map[string]any{"traceparent": traceparentA},
			wantBaggage: []string{"tenant=acme"},
		},
		{
			name: "no context, no meta",
			ctx:  context.Background(),
			want: nil,
		},
		{
			name: "no context removes stale keys",
			ctx:  context.Background(),
			meta: map[string]any{"traceparent": traceparentB, "progressToken": 3.0},
			want: map[string]any{"progressToken": 3.0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			orig := maps.Clone(tt.meta)
			got := NewPropagation(WithBaggage(tt.policy)).InjectMeta(tt.ctx, tt.meta)

			if !equalJSONish(tt.meta, orig) {
				t.Errorf("caller's map changed: got %v, want %v", tt.meta, orig)
			}
			gotBaggage, _ := got["baggage"].(string)
			delete(got, "baggage")
			if tt.want == nil && got != nil {
				t.Errorf("got %v, want nil", got)
			}
			if !equalJSONish(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			var members []string
			if gotBaggage != "" {
				members = strings.Split(gotBaggage, ",")
			}
			if !sameMembers(members, tt.wantBaggage) {
				t.Errorf("got baggage %q, want members %v", gotBaggage, tt.wantBaggage)
			}
		})
	}
}

func TestInjectHeader(t *testing.T) {
	t.Parallel()
	bag, _ := baggage.Parse("user=alice")
	ctx := baggage.ContextWithBaggage(remoteContext(context.Background(), t, traceparentA), bag)

	h := http.Header{"Traceparent": {traceparentB}, "Tracestate": {"old=1"}, "Accept": {"text/event-stream"}}
	NewPropagation().InjectHeader(ctx, h)
	want := http.Header{"Traceparent": {traceparentA}, "Baggage": {"user=alice"}, "Accept": {"text/event-stream"}}
	if !maps.EqualFunc(h, want, func(a, b []string) bool { return strings.Join(a, "|") == strings.Join(b, "|") }) {
		t.Errorf("got header %v, want %v", h, want)
	}

	NewPropagation(WithBaggage(BaggageNone())).InjectHeader(ctx, h)
	if got := h.Get("Baggage"); got != "" {
		t.Errorf("with BaggageNone got baggage %q, want none", got)
	}
	NewPropagation().InjectHeader(ctx, nil) // must not panic
}

// equalJSONish compares two maps of decoded-JSON-like values.
func equalJSONish(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok {
			return false
		}
		ma, aIsMap := va.(map[string]any)
		mb, bIsMap := vb.(map[string]any)
		if aIsMap || bIsMap {
			if !aIsMap || !bIsMap || !equalJSONish(ma, mb) {
				return false
			}
			continue
		}
		if va != vb {
			return false
		}
	}
	return true
}

func sameMembers(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			found = found || x == y
		}
		if !found {
			return false
		}
	}
	return true
}
