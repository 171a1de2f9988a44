package plugin

import (
	"fmt"
	"path"
	"strings"
)

// glob is one path.Match pattern, with fast paths for the common forms:
// a plain name, and a prefix followed by one "*".
type glob struct {
	pattern string
	exact   bool   // no metacharacters: compare strings
	prefix  string // set when pattern is prefix + "*"
}

const globMeta = `*?[\`

func compileGlob(p string) (glob, error) {
	if _, err := path.Match(p, ""); err != nil {
		return glob{}, fmt.Errorf("invalid pattern %q: %w", p, err)
	}
	g := glob{pattern: p, exact: !strings.ContainsAny(p, globMeta)}
	if pre, ok := strings.CutSuffix(p, "*"); ok && !strings.ContainsAny(pre, globMeta) {
		g.prefix = pre
	}
	return g, nil
}

func (g glob) match(name string) bool {
	switch {
	case g.exact:
		return g.pattern == name
	case g.prefix != "":
		// "*" does not match "/", as in path.Match.
		return strings.HasPrefix(name, g.prefix) && !strings.Contains(name[len(g.prefix):], "/")
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
