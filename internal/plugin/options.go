package plugin

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// FieldError is a configuration error for one key of a plugin entry, so the
// validate command can print it with its path (plugins[1].rate: ...).
type FieldError struct {
	Key string // the YAML key at fault, e.g. "rate" or "patterns[2]"
	Err error
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// options reads a plugin's type-specific keys strictly: every accessor
// records the key as known and any type error, and err reports those
// errors plus every key nobody asked for.
type options struct {
	m     map[string]any
	known map[string]bool
	errs  []error
}

func newOptions(m map[string]any) *options {
	return &options{m: m, known: map[string]bool{}}
}

func (o *options) fail(key string, format string, args ...any) {
	o.errs = append(o.errs, &FieldError{Key: key, Err: fmt.Errorf(format, args...)})
}

// get marks key as known and returns its value.
func (o *options) get(key string) (any, bool) {
	o.known[key] = true
	v, ok := o.m[key]
	if ok && v == nil {
		return nil, false // "key:" with no value means unset, as in YAML
	}
	return v, ok
}

func (o *options) string(key string) (string, bool) {
	v, ok := o.get(key)
	if !ok {
		return "", false
	}
	s, isStr := v.(string)
	if !isStr {
		o.fail(key, "got %s, want a string", typeName(v))
		return "", false
	}
	return s, true
}

// strings reads a list of strings; a single string is a list of one.
func (o *options) strings(key string) []string {
	v, ok := o.get(key)
	if !ok {
		return nil
	}
	if s, isStr := v.(string); isStr {
		return []string{s}
	}
	list, isList := v.([]any)
	if !isList {
		o.fail(key, "got %s, want a list of strings", typeName(v))
		return nil
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		s, isStr := e.(string)
		if !isStr {
			o.fail(fmt.Sprintf("%s[%d]", key, i), "got %s, want a string", typeName(e))
			continue
		}
		out = append(out, s)
	}
	return out
}

// list reads a list of any values.
func (o *options) list(key string) []any {
	v, ok := o.get(key)
	if !ok {
		return nil
	}
	list, isList := v.([]any)
	if !isList {
		o.fail(key, "got %s, want a list", typeName(v))
		return nil
	}
	return list
}

// int reads a whole number; YAML may hand it over as int, int64, uint64 or
// float64 depending on how it was written.
func (o *options) int(key string) (int64, bool) {
	v, ok := o.get(key)
	if !ok {
		return 0, false
	}
	n, isInt := toInt(v)
	if !isInt {
		o.fail(key, "got %s, want a whole number", typeName(v))
		return 0, false
	}
	return n, true
}

// size reads a byte count: an integer or a string such as "64KiB", "1MB".
func (o *options) size(key string) (int64, bool) {
	v, ok := o.get(key)
	if !ok {
		return 0, false
	}
	if n, isInt := toInt(v); isInt {
		if n <= 0 {
			o.fail(key, "got %d, want a positive size", n)
			return 0, false
		}
		return n, true
	}
	s, isStr := v.(string)
	if !isStr {
		o.fail(key, "got %s, want a size such as 65536 or \"64KiB\"", typeName(v))
		return 0, false
	}
	n, err := parseSize(s)
	if err != nil {
		o.fail(key, "%w", err)
		return 0, false
	}
	return n, true
}

// err returns every error found, unknown keys included, in a stable order.
func (o *options) err() error {
	var unknown []string
	for k := range o.m {
		if !o.known[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	errs := o.errs
	for _, k := range unknown {
		errs = append(errs, &FieldError{Key: k, Err: errors.New("unknown key for this plugin type")})
	}
	return errors.Join(errs...)
}

func toInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case uint64:
		if n > math.MaxInt64 {
			return 0, false
		}
		return int64(n), true
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
			return 0, false
		}
		return int64(n), true
	}
	return 0, false
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, uint64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

// sizeUnits are the suffixes parseSize accepts, longest first so "KiB" is
// not read as "B".
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// parseSize reads "65536", "64KiB", "1.5MB" and the like.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || !(f > 0) || f*float64(mult) > math.MaxInt64/2 { // !(f > 0) also catches NaN
		return 0, fmt.Errorf("invalid size %q: want a positive number with an optional unit B, KB, KiB, MB, MiB, GB or GiB", s)
	}
	return int64(math.Ceil(f * float64(mult))), nil
}
