package config

import (
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// expandTree replaces ${VAR} and ${VAR:-default} in every scalar value of
// the tree rooted at n, and records the nodes it changed in changed, and in
// unset the variables without a default that each changed node found unset
// or empty. It works on parsed
// nodes, not on the file's text, so an expanded value is always one scalar:
// a variable holding ": " or a newline cannot add keys or items. Mapping keys
// are left alone. An alias shares its anchor's node, which is expanded once
// where it is defined.
func expandTree(n *yaml.Node, path string, getenv func(string) string, errs *Errors, changed map[*yaml.Node]bool, unset map[*yaml.Node][]string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expandTree(c, path, getenv, errs, changed, unset)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandTree(c, indexPath(path, i), getenv, errs, changed, unset)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandTree(n.Content[i+1], keyPath(path, n.Content[i].Value), getenv, errs, changed, unset)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		var missing []string
		v, err := expandVars(n.Value, getenv, &missing)
		if err != nil {
			errs.addNode(n, path, "%v", err)
			return
		}
		if len(missing) > 0 {
			unset[n] = missing
		}
		n.Value = v
		changed[n] = true
		// A plain, untagged value is typed again from its expanded text,
		// so `max_request_bytes: ${MAX}` can be an integer. Quoted values
		// and explicit tags keep their type.
		if n.Style == 0 {
			n.Tag = ""
		}
	}
}

// expand substitutes ${NAME} and ${NAME:-default} in s. As in a POSIX shell,
// the default applies when NAME is unset or empty. "$$" is a literal "$"; a
// "$" followed by anything else is kept as is. The default is literal text up
// to the first "}".
func expand(s string, getenv func(string) string) (string, error) {
	return expandVars(s, getenv, nil)
}

// expandVars is expand that also appends to unset, if not nil, each
// variable without a default that is unset or empty.
func expandVars(s string, getenv func(string) string, unset *[]string) (string, error) {
	i := strings.IndexByte(s, '$')
	if i < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i >= 0 {
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$$"):
			b.WriteByte('$')
			s = s[2:]
		case strings.HasPrefix(s, "${"):
			end := strings.IndexByte(s, '}')
			if end < 0 {
				return "", errors.New(`unterminated "${"`)
			}
			name, def, hasDef := strings.Cut(s[2:end], ":-")
			if !validVarName(name) {
				return "", fmt.Errorf("invalid variable name %q in ${...}", name)
			}
			v := getenv(name)
			if v == "" && hasDef {
				v = def
			}
			if v == "" && !hasDef && unset != nil {
				*unset = append(*unset, name)
			}
			b.WriteString(v)
			s = s[end+1:]
		default:
			b.WriteByte('$')
			s = s[1:]
		}
		i = strings.IndexByte(s, '$')
	}
	b.WriteString(s)
	return b.String(), nil
}

// validVarName reports whether s is a portable environment variable name
// (POSIX.1-2017 section 8.1: letters, digits and underscore, not starting
// with a digit).
func validVarName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
