package telemetry_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/otlptest"
	"github.com/tracegate/tracegate/internal/telemetry"
)

// abusiveSpan records one span with everything a client could make long
// or numerous: a 1 MB name, 1 MB attribute, event, link and status
// values, 300 attributes, events and links.
func abusiveSpan(tel *telemetry.Telemetry) {
	huge := strings.Repeat("x", 1<<20)
	link := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
	links := make([]trace.Link, 300)
	for i := range links {
		links[i] = trace.Link{SpanContext: link, Attributes: []attribute.KeyValue{attribute.String("big", huge), attribute.Int("i", i), attribute.Int("j", i)}}
	}
	_, s := tel.TracerProvider.Tracer("test").Start(context.Background(), "tools/call "+huge, trace.WithLinks(links...))
	s.SetAttributes(attribute.String("gen_ai.tool.name", huge), attribute.StringSlice("list", []string{huge, "ok"}))
	for i := range 300 {
		s.SetAttributes(attribute.Int("n"+strings.Repeat("0", 3)+string(rune('a'+i%26))+string(rune('a'+i/26)), i))
	}
	for range 300 {
		s.AddEvent("event "+huge, trace.WithAttributes(attribute.String("exception.message", huge), attribute.Int("a", 1), attribute.Int("b", 2)))
	}
	s.SetStatus(codes.Error, huge)
	s.SetName("tools/call " + huge) // after start, past the name limiter
	s.End()
}

func exportOne(t *testing.T, env map[string]string) (otlptest.Span, sdktrace.ReadOnlySpan) {
	t.Helper()
	rcv := otlptest.NewReceiver(t)
	rec := tracetest.NewSpanRecorder()
	tel := newTelemetry(t, config.Telemetry{}, queueEnv(rcv.URL(), env), telemetry.Options{ExtraSpanProcessors: []sdktrace.SpanProcessor{rec}})
	abusiveSpan(tel)
	if err := tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := rcv.WaitForSpans(t, 5*time.Second, otlptest.AtLeast(1))
	ended := rec.Ended()
	if len(ended) != 1 {
		t.Fatalf("viewer-side processor got %d spans, want 1", len(ended))
	}
	return spans[0], ended[0]
}

func TestSpanLimitsDefault(t *testing.T) {
	t.Parallel()
	got, seen := exportOne(t, nil)
	const vmax, nmax = telemetry.DefaultAttributeValueLength, telemetry.MaxSpanNameLength
	checks := []struct {
		what string
		n    int
		max  int
	}{
		{"span name", len(got.Name), nmax},
		{"gen_ai.tool.name", len(got.Attrs["gen_ai.tool.name"].(string)), vmax},
		{"string slice item", len(got.Attrs["list"].([]any)[0].(string)), vmax},
		{"status message", len(got.StatusMessage), vmax},
		{"event name", len(got.Events[0].Name), nmax},
		{"event attribute", len(got.Events[0].Attrs["exception.message"].(string)), vmax},
		{"link attribute", len(got.Links[0].Attrs["big"].(string)), vmax},
		{"attributes", len(got.Attrs), 128},
		{"events", len(got.Events), 128},
		{"links", len(got.Links), 128},
		{"viewer span name", len(seen.Name()), nmax},
		{"viewer event attribute", len(seen.Events()[0].Attributes[0].Value.AsString()), vmax},
		{"viewer status", len(seen.Status().Description), vmax},
	}
	for _, c := range checks {
		if c.n > c.max || c.n < c.max/2 {
			t.Errorf("%s: exported %d, want at most %d (and not cut to nothing)", c.what, c.n, c.max)
		}
	}
	if !strings.HasPrefix(got.Name, "tools/call x") {
		t.Errorf("span name %.40q: want it kept from the start", got.Name)
	}
}

func TestSpanLimitsFromEnv(t *testing.T) {
	t.Parallel()
	got, _ := exportOne(t, map[string]string{
		"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT":      "100",
		"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "50", // wins over the generic one
		"OTEL_ATTRIBUTE_COUNT_LIMIT":             "7",
		"OTEL_SPAN_EVENT_COUNT_LIMIT":            "2",
		"OTEL_SPAN_LINK_COUNT_LIMIT":             "3",
		"OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT":       "1",
		"OTEL_LINK_ATTRIBUTE_COUNT_LIMIT":        "2",
	})
	for _, c := range []struct {
		what      string
		got, want int
	}{
		{"attribute value", len(got.Attrs["gen_ai.tool.name"].(string)), 50},
		{"event attribute value", len(got.Events[0].Attrs["exception.message"].(string)), 50},
		{"link attribute value", len(got.Links[0].Attrs["big"].(string)), 50},
		{"status message", len(got.StatusMessage), 50},
		{"attributes (generic count)", len(got.Attrs), 7},
		{"events", len(got.Events), 2},
		{"links", len(got.Links), 3},
		{"event attributes", len(got.Events[0].Attrs), 1},
		{"link attributes", len(got.Links[0].Attrs), 2},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %d, want %d", c.what, c.got, c.want)
		}
	}

	got, _ = exportOne(t, map[string]string{"OTEL_ATTRIBUTE_COUNT_LIMIT": "7", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "4"})
	if len(got.Attrs) != 4 {
		t.Errorf("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT=4 over the generic 7: got %d attributes", len(got.Attrs))
	}
}

func TestSpanLimitsRejectBadValues(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_SPAN_EVENT_COUNT_LIMIT", "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT"} {
		for _, v := range []string{"-1", "lots"} {
			_, err := telemetry.New(context.Background(), config.Telemetry{}, telemetry.Options{Getenv: envOf(map[string]string{key: v})})
			if err == nil || !strings.Contains(err.Error(), key) {
				t.Errorf("%s=%s: got %v, want an error naming the variable", key, v, err)
			}
		}
	}
}

// TestSpanLimitsKeepUTF8 cuts a name made of 3-byte characters: the result
// is valid UTF-8 and holds the limit in characters.
func TestSpanLimitsKeepUTF8(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tel := newTelemetry(t, config.Telemetry{}, map[string]string{"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "10"}, telemetry.Options{ExtraSpanProcessors: []sdktrace.SpanProcessor{rec}})
	_, s := tel.TracerProvider.Tracer("test").Start(context.Background(), strings.Repeat("€", 1000))
	s.AddEvent("e", trace.WithAttributes(attribute.String("v", strings.Repeat("€", 100))))
	s.End()
	got := rec.Ended()[0]
	if n := utf8.RuneCountInString(got.Name()); !utf8.ValidString(got.Name()) || n != telemetry.MaxSpanNameLength {
		t.Errorf("name: %d characters, valid UTF-8 %v; want %d", n, utf8.ValidString(got.Name()), telemetry.MaxSpanNameLength)
	}
	v := got.Events()[0].Attributes[0].Value.AsString()
	if n := utf8.RuneCountInString(v); !utf8.ValidString(v) || n != 10 {
		t.Errorf("event attribute: %d characters, valid UTF-8 %v; want 10", n, utf8.ValidString(v))
	}
}
