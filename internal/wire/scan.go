package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// ErrSyntax reports malformed JSON.
var ErrSyntax = errors.New("malformed JSON")

// maxScanDepth bounds nesting, as the SDK's decoder does.
const maxScanDepth = 1000

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func SkipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// skipString returns the index after the string starting at data[i] ('"'),
// and whether it holds escapes.
func skipString(data []byte, i int) (end int, escaped bool, err error) {
	if i >= len(data) || data[i] != '"' {
		return 0, false, ErrSyntax
	}
	for i++; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			i++
			if i >= len(data) {
				return 0, false, ErrSyntax
			}
		case c < 0x20:
			return 0, false, ErrSyntax
		}
	}
	return 0, false, ErrSyntax
}

// SkipValue returns the index after the value that starts at data[i]
// (whitespace before it is skipped).
func SkipValue(data []byte, i int) (int, error) {
	return skipValueDepth(data, i, 0)
}

func skipValueDepth(data []byte, i, depth int) (int, error) {
	i = SkipSpace(data, i)
	if i >= len(data) {
		return 0, ErrSyntax
	}
	switch c := data[i]; {
	case c == '"':
		end, _, err := skipString(data, i)
		return end, err
	case c == '{' || c == '[':
		if depth >= maxScanDepth {
			return 0, ErrSyntax
		}
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		i = SkipSpace(data, i+1)
		if i < len(data) && data[i] == closing {
			return i + 1, nil
		}
		for {
			if c == '{' {
				end, _, err := skipString(data, i)
				if err != nil {
					return 0, err
				}
				i = SkipSpace(data, end)
				if i >= len(data) || data[i] != ':' {
					return 0, ErrSyntax
				}
				i++
			}
			end, err := skipValueDepth(data, i, depth+1)
			if err != nil {
				return 0, err
			}
			i = SkipSpace(data, end)
			if i >= len(data) {
				return 0, ErrSyntax
			}
			if data[i] == closing {
				return i + 1, nil
			}
			if data[i] != ',' {
				return 0, ErrSyntax
			}
			i = SkipSpace(data, i+1)
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
	return 0, ErrSyntax
}

func skipLiteral(data []byte, i int, lit string) (int, error) {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return 0, ErrSyntax
	}
	return i + len(lit), nil
}

// Member is one member of a JSON object: data[KeyStart:KeyEnd] is the key
// with its quotes, data[ValStart:ValEnd] the value.
type Member struct {
	KeyStart, KeyEnd int
	ValStart, ValEnd int
	EscapedKey       bool
}

// Key returns the member's key, unescaped.
func (m Member) Key(data []byte) string {
	raw := data[m.KeyStart+1 : m.KeyEnd-1]
	if !m.EscapedKey {
		return string(raw)
	}
	s, _ := Unquote(data[m.KeyStart:m.KeyEnd])
	return s
}

// KeyIs reports whether the member's key is k, without allocating for keys
// that have no escapes.
func (m Member) KeyIs(data []byte, k string) bool {
	if !m.EscapedKey {
		return string(data[m.KeyStart+1:m.KeyEnd-1]) == k
	}
	return m.Key(data) == k
}

// Lookup returns meta's value for the member's key, without allocating for
// keys that have no escapes.
func (m Member) Lookup(data []byte, meta map[string]any) (any, bool) {
	if !m.EscapedKey {
		v, ok := meta[string(data[m.KeyStart+1:m.KeyEnd-1])]
		return v, ok
	}
	v, ok := meta[m.Key(data)]
	return v, ok
}

// RawStringIs reports whether raw is the JSON string s.
func RawStringIs(raw []byte, s string) bool {
	if len(raw) < 2 || raw[0] != '"' {
		return false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1:len(raw)-1]) == s
	}
	u, ok := Unquote(raw)
	return ok && u == s
}

// EachMember calls fn for every member of the object at data[i] in order,
// and stops early when fn returns false. It returns the index after the
// object.
func EachMember(data []byte, i int, fn func(Member) bool) (int, error) {
	i = SkipSpace(data, i)
	if i >= len(data) || data[i] != '{' {
		return 0, ErrSyntax
	}
	i = SkipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, nil
	}
	going := true
	for {
		var m Member
		var err error
		m.KeyStart = i
		m.KeyEnd, m.EscapedKey, err = skipString(data, i)
		if err != nil {
			return 0, err
		}
		i = SkipSpace(data, m.KeyEnd)
		if i >= len(data) || data[i] != ':' {
			return 0, ErrSyntax
		}
		m.ValStart = SkipSpace(data, i+1)
		m.ValEnd, err = skipValueDepth(data, m.ValStart, 1)
		if err != nil {
			return 0, err
		}
		if going {
			going = fn(m)
		}
		i = SkipSpace(data, m.ValEnd)
		if i >= len(data) {
			return 0, ErrSyntax
		}
		if data[i] == '}' {
			return i + 1, nil
		}
		if data[i] != ',' {
			return 0, ErrSyntax
		}
		i = SkipSpace(data, i+1)
	}
}

// Unquote decodes the JSON string raw (with its quotes).
func Unquote(raw []byte) (string, bool) {
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

// AppendString appends s as a JSON string.
func AppendString(dst []byte, s string) []byte {
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

// Value returns the member's raw value.
func (m Member) Value(data []byte) []byte { return data[m.ValStart:m.ValEnd] }

// Get returns the raw value of obj's member named key, or nil when obj is
// not an object or has no such member.
func Get(obj []byte, key string) []byte {
	var v []byte
	EachMember(obj, 0, func(m Member) bool {
		if m.KeyIs(obj, key) {
			v = m.Value(obj)
			return false
		}
		return true
	})
	return v
}

// GetString returns the string value of obj's member named key.
func GetString(obj []byte, key string) (string, bool) {
	v := Get(obj, key)
	if len(v) == 0 || v[0] != '"' {
		return "", false
	}
	return Unquote(v)
}

// EachElement calls fn with each element of the array arr, in order, and
// stops early when fn returns false.
func EachElement(arr []byte, fn func(v []byte) bool) error {
	i := SkipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return ErrSyntax
	}
	i = SkipSpace(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return nil
	}
	for {
		start := SkipSpace(arr, i)
		end, err := skipValueDepth(arr, start, 1)
		if err != nil {
			return err
		}
		if !fn(arr[start:end]) {
			return nil
		}
		i = SkipSpace(arr, end)
		if i >= len(arr) {
			return ErrSyntax
		}
		if arr[i] == ']' {
			return nil
		}
		if arr[i] != ',' {
			return ErrSyntax
		}
		i++
	}
}
