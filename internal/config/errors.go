package config

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FieldError is one problem in a configuration, named by the path of the
// value at fault, such as backends[1].url.
type FieldError struct {
	// Line and Column locate the value in the YAML file, when known; 0
	// otherwise. Check sets them on every problem that has a place in the
	// file; Parse's validation errors carry no position.
	Line, Column int
	// Path names the value: telemetry.sampler.ratio, backends[0].headers.Accept.
	// Empty for problems that belong to no single value.
	Path string
	// Msg says what is wrong. It never quotes a secret value.
	Msg string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a configuration, in file order. Its
// Error method gives one line per problem.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find each *FieldError.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

func (es *Errors) add(line int, path, format string, args ...any) {
	*es = append(*es, &FieldError{Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (es *Errors) addNode(n *yaml.Node, path, format string, args ...any) {
	*es = append(*es, &FieldError{Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// keyPath names a mapping key below parent: parent.key, or parent["key"]
// when the key would not read plainly (spaces, dots, brackets).
func keyPath(parent, key string) string {
	if !plainKey(key) {
		return parent + "[" + strconv.Quote(key) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

func plainKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
