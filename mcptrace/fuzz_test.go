package mcptrace

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The fuzz targets run their seeds (here and in testdata/fuzz) in every
// test run. For a longer run:
//
//	go test -run '^$' -fuzz FuzzExtractTraceparent -fuzztime 60s ./mcptrace

func fuzzPropagation() *Propagation {
	return NewPropagation(WithMeterProvider(noop.NewMeterProvider()))
}

// FuzzExtractTraceparent checks that the validator agrees with the
// OpenTelemetry parser, and that only valid values become a parent.
func FuzzExtractTraceparent(f *testing.F) {
	for _, s := range []string{traceparentA, traceparentB, "ff-" + traceIDA + "-" + spanIDA + "-01", "01-" + traceIDA + "-" + spanIDA + "-01-x", ""} {
		f.Add(s)
	}
	p := fuzzPropagation()
	f.Fuzz(func(t *testing.T, tp string) {
		valid := validTraceparent(tp)
		otelCtx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp})
		if otelValid := trace.SpanContextFromContext(otelCtx).IsValid(); valid != otelValid {
			t.Errorf("validTraceparent(%q) = %v, but the OpenTelemetry parser says %v", tp, valid, otelValid)
		}
		ctx, ex := p.Extract(context.Background(), http.Header{"Traceparent": {tp}}, map[string]any{"traceparent": tp})
		want := SourceNone
		if valid {
			want = SourceMeta
		}
		if ex.Source != want {
			t.Errorf("Extract(%q): got source %q, want %q", tp, ex.Source, want)
		}
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() != valid {
			t.Errorf("Extract(%q): got span context %v, want valid=%v", tp, sc, valid)
		}
	})
}

// FuzzTracestate checks that what the validator accepts parses, and that a
// rejected tracestate never reaches the extracted span context.
func FuzzTracestate(f *testing.F) {
	for _, s := range []string{"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "a=1,,b=2", "t@s=v", "A=1", "a=1,a=2", ""} {
		f.Add(s)
	}
	p := fuzzPropagation()
	f.Fuzz(func(t *testing.T, ts string) {
		valid := validTracestate(ts)
		if _, err := trace.ParseTraceState(ts); valid && err != nil {
			t.Errorf("validTracestate(%q) = true, but ParseTraceState fails: %v", ts, err)
		}
		ctx, _ := p.Extract(context.Background(), nil, map[string]any{"traceparent": traceparentA, "tracestate": ts})
		sc := trace.SpanContextFromContext(ctx)
		if !sc.IsValid() {
			t.Fatalf("tracestate %q lost the traceparent", ts)
		}
		if !valid && sc.TraceState().Len() != 0 {
			t.Errorf("invalid tracestate %q was extracted as %q", ts, sc.TraceState())
		}
	})
}

// FuzzBaggage checks that what the validator accepts parses, and that
// rejected or oversized baggage is dropped whole.
func FuzzBaggage(f *testing.F) {
	for _, s := range []string{"userId=alice,serverNode=DF%2028,isProduction=false", "k=v;p;q=1", "k=%zz", "k", "=v", ""} {
		f.Add(s)
	}
	p := fuzzPropagation()
	f.Fuzz(func(t *testing.T, b string) {
		valid := len(b) <= MaxBaggageBytes && validBaggage(b)
		if _, err := baggage.Parse(b); valid && err != nil {
			t.Errorf("validBaggage(%q) = true, but baggage.Parse fails: %v", b, err)
		}
		ctx, _ := p.Extract(context.Background(), http.Header{"Baggage": {b}}, nil)
		if !valid && baggage.FromContext(ctx).Len() != 0 {
			t.Errorf("invalid baggage %q was extracted", b)
		}
	})
}

// FuzzMeta feeds arbitrary JSON as _meta: extraction never panics, only a
// valid traceparent string makes _meta the source, and injection keeps
// every other key.
func FuzzMeta(f *testing.F) {
	for _, s := range []string{
		`{"traceparent":"` + traceparentA + `","progressToken":1}`,
		`{"traceparent":42,"tracestate":{"a":1},"baggage":null}`,
		`{"traceparent":"` + traceparentA + `","baggage":"k=v","tracestate":"BAD"}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	p := fuzzPropagation()
	f.Fuzz(func(t *testing.T, data []byte) {
		var meta map[string]any
		if err := json.Unmarshal(data, &meta); err != nil {
			return
		}
		_, ex := p.Extract(context.Background(), nil, meta)
		tp, isString := meta["traceparent"].(string)
		if want := isString && validTraceparent(tp); (ex.Source == SourceMeta) != want {
			t.Errorf("meta %s: got source %q, want meta=%v", data, ex.Source, want)
		}
		ctx := remoteContext(context.Background(), t, traceparentB)
		out := p.InjectMeta(ctx, meta)
		for k, v := range meta {
			if p.isField(k) {
				continue
			}
			if _, ok := out[k]; !ok {
				t.Errorf("meta %s: InjectMeta dropped key %q (%v)", data, k, v)
			}
		}
		if out["traceparent"] != traceparentB {
			t.Errorf("meta %s: got traceparent %v, want %s", data, out["traceparent"], traceparentB)
		}
	})
}
