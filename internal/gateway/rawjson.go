package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// A small JSON scanner for the forwarding path. It finds the members of an
// object and the extent of their values without decoding them, so that a
// message can be rewritten (its id, a tool's name, the trace fields of
// _meta) and every other byte forwarded as the client sent it. It checks
// structure as it goes and reports malformed input as errSyntax; it never
// allocates except to unescape a string that has escapes.

var errSyntax = errors.New("malformed JSON")

// maxScanDepth bounds nesting, as the SDK's decoder does.
const maxScanDepth = 1000

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// skipString returns the index after the string starting at data[i] ('"'),
// and whether it holds escapes.
func skipString(data []byte, i int) (end int, escaped bool, err error) {
	if i >= len(data) || data[i] != '"' {
		return 0, false, errSyntax
	}
	for i++; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			i++
			if i >= len(data) {
				return 0, false, errSyntax
			}
		case c < 0x20:
			return 0, false, errSyntax
		}
	}
	return 0, false, errSyntax
}

// skipValue returns the index after the value that starts at data[i]
// (whitespace before it is skipped).
func skipValue(data []byte, i int) (int, error) {
	return skipValueDepth(data, i, 0)
}

func skipValueDepth(data []byte, i, depth int) (int, error) {
	i = skipSpace(data, i)
	if i >= len(data) {
		return 0, errSyntax
	}
	switch c := data[i]; {
	case c == '"':
		end, _, err := skipString(data, i)
		return end, err
	case c == '{' || c == '[':
		if depth >= maxScanDepth {
			return 0, errSyntax
		}
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		i = skipSpace(data, i+1)
		if i < len(data) && data[i] == closing {
			return i + 1, nil
		}
		for {
			if c == '{' {
				end, _, err := skipString(data, i)
				if err != nil {
					return 0, err
				}
				i = skipSpace(data, end)
				if i >= len(data) || data[i] != ':' {
					return 0, errSyntax
				}
				i++
			}
			end, err := skipValueDepth(data, i, depth+1)
			if err != nil {
				return 0, err
			}
			i = skipSpace(data, end)
			if i >= len(data) {
				return 0, errSyntax
			}
			if data[i] == closing {
				return i + 1, nil
			}
			if data[i] != ',' {
				return 0, errSyntax
			}
			i = skipSpace(data, i+1)
		}
	case c == 't':
		return skipLiteral(data, i, "true")
	case c == 'f':
		return skipLiteral(data, i, "false")
	case c == 'n':
		return skipLiteral(data, i, "null")
	case c == '-' || ('0' <= c && c <= '9'):
		j := i
		for j < len(data) && (data[j] == '-' || data[j] == '+' || data[j] == '.' || data[j] == 'e' || data[j] == 'E' || ('0' <= data[j] && data[j] <= '9')) {
			j++
		}
		return j, nil
	}
	return 0, errSyntax
}

func skipLiteral(data []byte, i int, lit string) (int, error) {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return 0, errSyntax
	}
	return i + len(lit), nil
}

// member is one member of a JSON object: data[keyStart:keyEnd] is the key
// with its quotes, data[valStart:valEnd] the value.
type member struct {
	keyStart, keyEnd int
	valStart, valEnd int
	escapedKey       bool
}

// key returns the member's key, unescaped.
func (m member) key(data []byte) string {
	raw := data[m.keyStart+1 : m.keyEnd-1]
	if !m.escapedKey {
		return string(raw)
	}
	s, _ := unquote(data[m.keyStart:m.keyEnd])
	return s
}

// keyIs reports whether the member's key is k, without allocating for keys
// that have no escapes.
func (m member) keyIs(data []byte, k string) bool {
	if !m.escapedKey {
		return string(data[m.keyStart+1:m.keyEnd-1]) == k
	}
	return m.key(data) == k
}

// lookup returns meta's value for the member's key, without allocating for
// keys that have no escapes.
func (m member) lookup(data []byte, meta map[string]any) (any, bool) {
	if !m.escapedKey {
		v, ok := meta[string(data[m.keyStart+1:m.keyEnd-1])]
		return v, ok
	}
	v, ok := meta[m.key(data)]
	return v, ok
}

// rawStringIs reports whether raw is the JSON string s.
func rawStringIs(raw []byte, s string) bool {
	if len(raw) < 2 || raw[0] != '"' {
		return false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1:len(raw)-1]) == s
	}
	u, ok := unquote(raw)
	return ok && u == s
}

// eachMember calls fn for every member of the object at data[i] in order,
// and stops early when fn returns false. It returns the index after the
// object.
func eachMember(data []byte, i int, fn func(member) bool) (int, error) {
	i = skipSpace(data, i)
	if i >= len(data) || data[i] != '{' {
		return 0, errSyntax
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, nil
	}
	going := true
	for {
		var m member
		var err error
		m.keyStart = i
		m.keyEnd, m.escapedKey, err = skipString(data, i)
		if err != nil {
			return 0, err
		}
		i = skipSpace(data, m.keyEnd)
		if i >= len(data) || data[i] != ':' {
			return 0, errSyntax
		}
		m.valStart = skipSpace(data, i+1)
		m.valEnd, err = skipValueDepth(data, m.valStart, 1)
		if err != nil {
			return 0, err
		}
		if going {
			going = fn(m)
		}
		i = skipSpace(data, m.valEnd)
		if i >= len(data) {
			return 0, errSyntax
		}
		if data[i] == '}' {
			return i + 1, nil
		}
		if data[i] != ',' {
			return 0, errSyntax
		}
		i = skipSpace(data, i+1)
	}
}

// unquote decodes the JSON string raw (with its quotes).
func unquote(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	plain := true
	for _, c := range inner {
		if c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigit(c>>4), hexDigit(c&0xf))
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func hexDigit(b byte) byte { return "0123456789abcdef"[b&0xf] }
