package traceview

import (
	"go.opentelemetry.io/otel/attribute"
)

// Limits bound what the store holds. The zero value of a field means its
// default.
type Limits struct {
	// MaxSpans bounds the spans held. Default DefaultMaxSpans.
	MaxSpans int
	// MaxBytes bounds the store's estimate of the heap its spans use.
	// Default DefaultMaxBytes. The estimate errs high: it counts every
	// string a span keeps, even one shared with the SDK or interned.
	MaxBytes int64
}

// DefaultMaxBytes is the store's byte bound when Limits.MaxBytes is zero.
// A gateway span costs about 1 KB by the store's estimate, so a default
// store of gateway spans reaches DefaultMaxSpans first; the byte bound is
// what holds when spans are large.
const DefaultMaxBytes = 256 << 20

// Per-span limits applied to everything stored, so that one span cannot
// hold an outsized share of memory. Counts mirror the SDK's default span
// limits; long strings are cut, and one span's strings together share a
// budget, so that 128 events of 128 attributes of 8 KiB cannot make one
// span weigh 128 MiB.
const (
	maxAttrsPerSpan  = 128
	maxEventsPerSpan = 128
	maxLinksPerSpan  = 128
	maxValueLen      = 8 << 10   // an attribute value, a status message
	maxNameLen       = 1 << 10   // a span, event or service name
	maxKeyLen        = 256       // an attribute key
	maxSpanStrings   = 256 << 10 // all strings of one span together
)

// Estimated heap cost of the fixed parts of what the store keeps, in
// bytes: a span record and its slot in its trace; one attribute, event or
// link beside its strings; one trace's entry, map slot and summary.
const (
	costSpan  = 256
	costAttr  = 64
	costEvent = 64
	costLink  = 64
	costTrace = 320
)

// budget is what is left of one span's string allowance.
type budget struct{ left int }

func newBudget() *budget { return &budget{left: maxSpanStrings} }

// str returns s cut to at most n bytes and to what the budget has left,
// and charges the result to the budget.
func (b *budget) str(s string, n int) string {
	n = max(min(n, b.left), 0)
	if len(s) > n {
		s = truncate(s, n)
	}
	b.left -= len(s)
	return s
}

// limitAttrs enforces the per-span attribute limits, copying only when a
// limit applies, so the common case costs one pass over lengths.
func limitAttrs(attrs []attribute.KeyValue) []attribute.KeyValue {
	return newBudget().attrs(attrs)
}

// attrs applies the limits to attrs, charging their strings to b.
func (b *budget) attrs(attrs []attribute.KeyValue) []attribute.KeyValue {
	if len(attrs) <= maxAttrsPerSpan {
		total, fits := 0, true
		for _, kv := range attrs {
			n, ok := stringBytes(kv)
			total += n
			if !ok {
				fits = false
				break
			}
		}
		if fits && total <= b.left {
			b.left -= total
			return attrs
		}
	}
	n := min(len(attrs), maxAttrsPerSpan)
	out := make([]attribute.KeyValue, n)
	for i, kv := range attrs[:n] {
		out[i] = attribute.KeyValue{Key: attribute.Key(b.str(string(kv.Key), maxKeyLen)), Value: b.value(kv.Value)}
	}
	return out
}

// stringBytes returns the string bytes of kv, and false when one of its
// strings, or the number of its elements, is over a per-item limit.
func stringBytes(kv attribute.KeyValue) (int, bool) {
	n := len(kv.Key)
	if n > maxKeyLen {
		return n, false
	}
	switch kv.Value.Type() {
	case attribute.STRING:
		v := len(kv.Value.AsString())
		return n + v, v <= maxValueLen
	case attribute.STRINGSLICE:
		ss := kv.Value.AsStringSlice()
		if len(ss) > maxAttrsPerSpan {
			return n, false
		}
		for _, s := range ss {
			if len(s) > maxValueLen {
				return n, false
			}
			n += len(s)
		}
	case attribute.SLICE, attribute.MAP, attribute.BYTESLICE:
		return n, false // rare: take the slow path that walks them
	}
	return n, true
}

// value applies the limits to one value.
func (b *budget) value(v attribute.Value) attribute.Value {
	switch v.Type() {
	case attribute.STRING:
		return attribute.StringValue(b.str(v.AsString(), maxValueLen))
	case attribute.STRINGSLICE:
		in := v.AsStringSlice()
		out := make([]string, min(len(in), maxAttrsPerSpan))
		for i := range out {
			out[i] = b.str(in[i], maxValueLen)
		}
		return attribute.StringSliceValue(out)
	case attribute.BYTESLICE:
		in := v.AsByteSlice()
		n := max(min(len(in), maxValueLen, b.left), 0)
		b.left -= n
		return attribute.ByteSliceValue(in[:n])
	case attribute.SLICE:
		in := v.AsSlice()
		out := make([]attribute.Value, min(len(in), maxAttrsPerSpan))
		for i := range out {
			out[i] = b.value(in[i])
		}
		return attribute.SliceValue(out...)
	case attribute.MAP:
		return attribute.MapValue(b.attrs(v.AsMap())...)
	}
	return v
}

// truncate cuts s to at most n bytes, the cut marked with an ellipsis,
// without splitting a UTF-8 sequence. The result is a copy, so it does
// not keep the rest of s alive, and it fits n exactly, so that an 8 KiB
// limit takes an 8 KiB allocation, not the next size class up.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	if n < len(mark) {
		return ""
	}
	n -= len(mark)
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + mark
}

// cost estimates the heap a span holds, its resource aside.
func (sp *span) cost() int64 {
	c := int64(costSpan + len(sp.name) + len(sp.statusMsg))
	c += attrsCost(sp.attrs)
	for _, ev := range sp.events {
		c += costEvent + int64(len(ev.name)) + attrsCost(ev.attrs)
	}
	for _, l := range sp.links {
		c += costLink + attrsCost(l.attrs)
	}
	return c
}

func attrsCost(attrs []attribute.KeyValue) int64 {
	var c int64
	for _, kv := range attrs {
		c += costAttr + int64(len(kv.Key)) + valueCost(kv.Value)
	}
	return c
}

func valueCost(v attribute.Value) int64 {
	switch v.Type() {
	case attribute.STRING:
		return int64(len(v.AsString()))
	case attribute.STRINGSLICE:
		var c int64
		for _, s := range v.AsStringSlice() {
			c += 16 + int64(len(s))
		}
		return c
	case attribute.BOOLSLICE:
		return int64(len(v.AsBoolSlice()))
	case attribute.INT64SLICE:
		return 8 * int64(len(v.AsInt64Slice()))
	case attribute.FLOAT64SLICE:
		return 8 * int64(len(v.AsFloat64Slice()))
	case attribute.BYTESLICE:
		return int64(len(v.AsByteSlice()))
	case attribute.SLICE:
		var c int64
		for _, e := range v.AsSlice() {
			c += costAttr + valueCost(e)
		}
		return c
	case attribute.MAP:
		return attrsCost(v.AsMap())
	}
	return 0
}
