package plugin

import (
	"fmt"
	"path"
	"strings"
)

// glob is one path.Match pattern, with a fast path for plain names.
type glob struct {
	pattern string
	exact   bool // no metacharacters: compare strings
}

func compileGlob(p string) (glob, error) {
	if _, err := path.Match(p, ""); err != nil {
		return glob{}, fmt.Errorf("invalid pattern %q: %w", p, err)
	}
	return glob{pattern: p, exact: !strings.ContainsAny(p, `*?[\`)}, nil
}

func (g glob) match(name string) bool {
	if g.exact {
		return g.pattern == name
	}
	ok, _ := path.Match(g.pattern, name) // the pattern was checked when compiled
	return ok
}

// globs is a list of patterns; an empty list matches everything.
type globs []glob

func compileGlobs(key string, patterns []string) (globs, error) {
	gs := make(globs, 0, len(patterns))
	for i, p := range patterns {
		g, err := compileGlob(p)
		if err != nil {
			return nil, &FieldError{Key: fmt.Sprintf("%s[%d]", key, i), Err: err}
		}
		gs = append(gs, g)
	}
	return gs, nil
}

// matchAll is the filter form: an empty list matches everything.
func (gs globs) matchAll(name string) bool {
	if len(gs) == 0 {
		return true
	}
	_, ok := gs.first(name)
	return ok
}

// first returns the first pattern that matches name.
func (gs globs) first(name string) (string, bool) {
	for _, g := range gs {
		if g.match(name) {
			return g.pattern, true
		}
	}
	return "", false
}
