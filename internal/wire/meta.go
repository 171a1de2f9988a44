package wire

import (
	"encoding/json"
	"slices"
)

// MetaView decodes a raw params._meta object for code that reads and
// injects trace context (mcptrace): string values as strings, every other
// value as json.RawMessage. It refuses a repeated key.
func MetaView(raw []byte) (map[string]any, error) {
	if raw == nil {
		return nil, nil
	}
	meta := map[string]any{}
	var perr error
	_, err := EachMember(raw, 0, func(m Member) bool {
		k := metaKey(raw, m)
		v := m.Value(raw)
		if _, dup := meta[k]; dup {
			perr = ErrRepeated
			return false
		}
		if v[0] == '"' {
			s, ok := Unquote(v)
			if !ok {
				perr = ErrSyntax
				return false
			}
			meta[k] = s
		} else {
			meta[k] = json.RawMessage(v)
		}
		return true
	})
	if err != nil {
		return nil, ErrSyntax
	}
	if perr != nil {
		return nil, perr
	}
	return meta, nil
}

// metaKey is m.Key(raw) without a copy for the keys calls carry most.
func metaKey(raw []byte, m Member) string {
	if !m.EscapedKey {
		switch string(raw[m.KeyStart+1 : m.KeyEnd-1]) {
		case "traceparent":
			return "traceparent"
		case "tracestate":
			return "tracestate"
		case "baggage":
			return "baggage"
		case "progressToken":
			return "progressToken"
		}
	}
	return m.Key(raw)
}

// Set replaces, adds or (with a nil Value) removes one member of a params
// object in AppendParams.
type Set struct {
	Key   string
	Value []byte // raw JSON; nil removes the member
}

// AppendParams appends a copy of the params object (nil: an empty one)
// with each member named in sets replaced or removed, the sets' other
// members added, and, when meta is not nil, _meta written as AppendMeta
// writes it from the original _meta and meta. Every other byte is copied.
func AppendParams(dst, params []byte, sets []Set, meta map[string]any) []byte {
	dst = append(dst, '{')
	first := true
	sep := func() {
		if !first {
			dst = append(dst, ',')
		}
		first = false
	}
	var done uint64 // bit i: sets[i] was written in place
	wroteMeta := false
	if params != nil {
		EachMember(params, 0, func(m Member) bool {
			for i, s := range sets {
				if m.KeyIs(params, s.Key) {
					done |= 1 << i
					if s.Value != nil {
						sep()
						dst = append(dst, params[m.KeyStart:m.KeyEnd]...)
						dst = append(dst, ':')
						dst = append(dst, s.Value...)
					}
					return true
				}
			}
			if meta != nil && m.KeyIs(params, "_meta") {
				sep()
				dst = append(dst, `"_meta":`...)
				dst = AppendMeta(dst, m.Value(params), meta)
				wroteMeta = true
				return true
			}
			sep()
			dst = append(dst, params[m.KeyStart:m.ValEnd]...)
			return true
		})
	}
	for i, s := range sets {
		if done&(1<<i) == 0 && s.Value != nil {
			sep()
			dst = AppendString(dst, s.Key)
			dst = append(dst, ':')
			dst = append(dst, s.Value...)
		}
	}
	if meta != nil && !wroteMeta && len(meta) > 0 {
		sep()
		dst = append(dst, `"_meta":`...)
		dst = AppendMeta(dst, nil, meta)
	}
	return append(dst, '}')
}

// AppendMeta writes the object meta describes: the members of orig in
// their order, with the value meta holds for each key (a member meta no
// longer has is dropped), then meta's new keys in sorted order. Values
// meta took from orig are copied as they were.
func AppendMeta(dst, orig []byte, meta map[string]any) []byte {
	dst = append(dst, '{')
	first := true
	sep := func() {
		if !first {
			dst = append(dst, ',')
		}
		first = false
	}
	seen := 0
	if orig != nil {
		EachMember(orig, 0, func(m Member) bool {
			v, ok := m.Lookup(orig, meta)
			if !ok {
				return true
			}
			seen++
			raw := m.Value(orig)
			sep()
			dst = append(dst, orig[m.KeyStart:m.KeyEnd]...)
			dst = append(dst, ':')
			switch v := v.(type) {
			case json.RawMessage:
				dst = append(dst, v...)
			case string:
				if RawStringIs(raw, v) {
					dst = append(dst, raw...)
				} else {
					dst = AppendString(dst, v)
				}
			default:
				dst = appendAny(dst, v)
			}
			return true
		})
	}
	if seen < len(meta) {
		var added []string
		for k := range meta {
			if orig == nil || Get(orig, k) == nil {
				added = append(added, k)
			}
		}
		slices.Sort(added)
		for _, k := range added {
			sep()
			dst = AppendString(dst, k)
			dst = append(dst, ':')
			dst = appendAny(dst, meta[k])
		}
	}
	return append(dst, '}')
}

func appendAny(dst []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return AppendString(dst, v)
	case json.RawMessage:
		return append(dst, v...)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return append(dst, "null"...)
	}
	return append(dst, data...)
}
