package config

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// NameFor gives the name under which the gateway exposes a backend's tool
// or prompt: format with {backend} and {tool} replaced. Any other text in
// format is copied as is. It makes one allocation.
func NameFor(format, backend, tool string) string {
	if format == DefaultNameFormat {
		return backend + "_" + tool
	}
	var b strings.Builder
	b.Grow(len(format) + len(backend) + len(tool))
	for {
		i := strings.IndexByte(format, '{')
		if i < 0 {
			b.WriteString(format)
			return b.String()
		}
		b.WriteString(format[:i])
		format = format[i:]
		switch {
		case strings.HasPrefix(format, "{backend}"):
			b.WriteString(backend)
			format = format[len("{backend}"):]
		case strings.HasPrefix(format, "{tool}"):
			b.WriteString(tool)
			format = format[len("{tool}"):]
		default:
			b.WriteByte('{')
			format = format[1:]
		}
	}
}

// checkNameFormat returns what is wrong with a tools.name_format, if
// anything. Names it makes must stay valid MCP tool names, whose characters
// are A-Z a-z 0-9 _ - . (SEP-986); backend names already are.
func checkNameFormat(format string) []string {
	var msgs []string
	if !strings.Contains(format, "{tool}") {
		msgs = append(msgs, "must contain {tool}")
	}
	var bad []string
	for rest := format; rest != ""; {
		switch {
		case strings.HasPrefix(rest, "{backend}"):
			rest = rest[len("{backend}"):]
			continue
		case strings.HasPrefix(rest, "{tool}"):
			rest = rest[len("{tool}"):]
			continue
		case rest[0] == '{':
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				msgs = append(msgs, `unclosed "{"`)
				rest = rest[1:]
				continue
			}
			msgs = append(msgs, fmt.Sprintf("unknown placeholder %q; use {backend} and {tool}", rest[:end+1]))
			rest = rest[end+1:]
			continue
		}
		r, size := utf8.DecodeRuneInString(rest)
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			if q := fmt.Sprintf("%q", string(r)); !slices.Contains(bad, q) {
				bad = append(bad, q)
			}
		}
		rest = rest[size:]
	}
	if len(bad) > 0 {
		msgs = append(msgs, "characters not allowed in tool names (SEP-986): "+strings.Join(bad, ", "))
	}
	return msgs
}
