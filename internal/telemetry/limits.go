package telemetry

import (
	"context"
	"fmt"
	"strconv"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Span limits. The SDK configuration spec leaves attribute values
// unlimited by default; a gateway records names and IDs its clients
// choose, so tracegate bounds them. The counts keep the spec's defaults.
const (
	// DefaultAttributeValueLength bounds each string attribute value, in
	// characters, when neither OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT nor
	// OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT is set. It also bounds event and
	// link attribute values and the span status message.
	DefaultAttributeValueLength = 4096
	// MaxSpanNameLength bounds span and event names, in characters. MCP
	// span names are "{method} {target}"; a longer one was made from a
	// client's input.
	MaxSpanNameLength = 256
)

// Limits are the bounds applied to every span that tracegate records and
// exports.
type Limits struct {
	sdktrace.SpanLimits
	// NameLength bounds span and event names.
	NameLength int
}

// limitsFromEnv reads the SDK configuration spec's span limit variables.
// The span-specific variable wins over the generic one.
func limitsFromEnv(e env) (Limits, error) {
	l := Limits{SpanLimits: sdktrace.NewSpanLimits(), NameLength: MaxSpanNameLength}
	// NewSpanLimits read os.Getenv; start again from the defaults, so that
	// only e counts.
	l.AttributeValueLengthLimit = DefaultAttributeValueLength
	l.AttributeCountLimit = sdktrace.DefaultAttributeCountLimit
	l.EventCountLimit = sdktrace.DefaultEventCountLimit
	l.LinkCountLimit = sdktrace.DefaultLinkCountLimit
	l.AttributePerEventCountLimit = sdktrace.DefaultAttributePerEventCountLimit
	l.AttributePerLinkCountLimit = sdktrace.DefaultAttributePerLinkCountLimit
	for _, v := range []struct {
		dst  *int
		keys []string
	}{
		{&l.AttributeValueLengthLimit, []string{"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"}},
		{&l.AttributeCountLimit, []string{"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT"}},
		{&l.EventCountLimit, []string{"OTEL_SPAN_EVENT_COUNT_LIMIT"}},
		{&l.LinkCountLimit, []string{"OTEL_SPAN_LINK_COUNT_LIMIT"}},
		{&l.AttributePerEventCountLimit, []string{"OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT"}},
		{&l.AttributePerLinkCountLimit, []string{"OTEL_LINK_ATTRIBUTE_COUNT_LIMIT"}},
	} {
		s, key := e.first(v.keys...)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return l, fmt.Errorf("%s=%q: want a non-negative integer", key, s)
		}
		*v.dst = n
	}
	// The SDK reads 0 as "record nothing" for counts, which the spec also
	// says; a value length of 0 would erase every string, so it is
	// treated as the smallest useful bound instead.
	if l.AttributeValueLengthLimit == 0 {
		l.AttributeValueLengthLimit = 1
	}
	return l, nil
}

// truncate cuts s to at most n characters, on a character boundary.
func truncate(s string, n int) string {
	if n < 0 || len(s) <= n {
		return s // n bytes hold at most n characters
	}
	i := 0
	for range n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if i >= len(s) {
			return s
		}
	}
	return s[:i]
}

// nameLimiter truncates span names as spans start. It runs first among the
// span processors, so every later one sees the bounded name.
type nameLimiter struct{ max int }

func (p nameLimiter) OnStart(_ context.Context, s sdktrace.ReadWriteSpan) {
	if name := s.Name(); len(name) > p.max {
		s.SetName(truncate(name, p.max))
	}
}
func (nameLimiter) OnEnd(sdktrace.ReadOnlySpan)      {}
func (nameLimiter) Shutdown(context.Context) error   { return nil }
func (nameLimiter) ForceFlush(context.Context) error { return nil }

// bound returns s, or a view of s within l when some part of it is over:
// a name set after start, an event or link attribute value, an event name
// or the status message. The SDK bounds span attribute values and every
// count itself; these it leaves unlimited.
func (l Limits) bound(s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	if l.within(s) {
		return s
	}
	return boundedSpan{ReadOnlySpan: s, l: l}
}

func (l Limits) within(s sdktrace.ReadOnlySpan) bool {
	max := l.AttributeValueLengthLimit
	if len(s.Name()) > l.NameLength || len(s.Status().Description) > max {
		return false
	}
	for _, ev := range s.Events() {
		if len(ev.Name) > l.NameLength || !attrsWithin(ev.Attributes, max) {
			return false
		}
	}
	for _, lk := range s.Links() {
		if !attrsWithin(lk.Attributes, max) {
			return false
		}
	}
	return true
}

func attrsWithin(kvs []attribute.KeyValue, max int) bool {
	for _, kv := range kvs {
		if !valueWithin(kv.Value, max) {
			return false
		}
	}
	return true
}

func valueWithin(v attribute.Value, max int) bool {
	switch v.Type() {
	case attribute.STRING:
		return len(v.AsString()) <= max
	case attribute.STRINGSLICE:
		for _, s := range v.AsStringSlice() {
			if len(s) > max {
				return false
			}
		}
	}
	return true
}

func boundAttrs(kvs []attribute.KeyValue, max int) []attribute.KeyValue {
	if attrsWithin(kvs, max) {
		return kvs
	}
	out := make([]attribute.KeyValue, len(kvs))
	for i, kv := range kvs {
		switch kv.Value.Type() {
		case attribute.STRING:
			kv.Value = attribute.StringValue(truncate(kv.Value.AsString(), max))
		case attribute.STRINGSLICE:
			ss := kv.Value.AsStringSlice()
			for j := range ss {
				ss[j] = truncate(ss[j], max)
			}
			kv.Value = attribute.StringSliceValue(ss)
		}
		out[i] = kv
	}
	return out
}

// boundedSpan is a ReadOnlySpan cut to its limits. Embedding the interface
// keeps the SDK's unexported method, so exporters take it as any span.
type boundedSpan struct {
	sdktrace.ReadOnlySpan
	l Limits
}

func (s boundedSpan) Name() string { return truncate(s.ReadOnlySpan.Name(), s.l.NameLength) }

func (s boundedSpan) Status() sdktrace.Status {
	st := s.ReadOnlySpan.Status()
	st.Description = truncate(st.Description, s.l.AttributeValueLengthLimit)
	return st
}

func (s boundedSpan) Events() []sdktrace.Event {
	evs := s.ReadOnlySpan.Events()
	out := make([]sdktrace.Event, len(evs))
	for i, ev := range evs {
		ev.Name = truncate(ev.Name, s.l.NameLength)
		ev.Attributes = boundAttrs(ev.Attributes, s.l.AttributeValueLengthLimit)
		out[i] = ev
	}
	return out
}

func (s boundedSpan) Links() []sdktrace.Link {
	lks := s.ReadOnlySpan.Links()
	out := make([]sdktrace.Link, len(lks))
	for i, lk := range lks {
		lk.Attributes = boundAttrs(lk.Attributes, s.l.AttributeValueLengthLimit)
		out[i] = lk
	}
	return out
}

// boundedProcessor hands its span processor spans within l: the embedded
// viewer and any other extra processor see what the exporters see.
type boundedProcessor struct {
	sdktrace.SpanProcessor
	l Limits
}

func (p boundedProcessor) OnEnd(s sdktrace.ReadOnlySpan) { p.SpanProcessor.OnEnd(p.l.bound(s)) }
