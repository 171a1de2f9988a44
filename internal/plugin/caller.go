package plugin

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tracegate/tracegate/internal/auth"
)

// callerMatch narrows a deny or allow plugin to callers by who they are:
// the identity that auth put in the call's context. Each condition given
// must hold (subjects and scopes and claims); within one, any value will do.
// An empty callerMatch matches every caller, identified or not; a non-empty
// one never matches a caller without an identity (an open listener).
type callerMatch struct {
	subjects globs            // auth.Identity.ID(): sub, else client_id, else token:NAME
	scopes   []string         // the caller holds at least one
	claims   map[string]globs // claim name -> patterns, one value must match
}

// readCaller reads the subjects, scopes and claims keys.
func readCaller(o *options) (callerMatch, error) {
	var m callerMatch
	var err error
	if m.subjects, err = compileGlobs("subjects", o.strings("subjects")); err != nil {
		return m, err
	}
	m.scopes = o.strings("scopes")
	v, ok := o.get("claims")
	if !ok {
		return m, nil
	}
	cm, isMap := v.(map[string]any)
	if !isMap {
		o.fail("claims", "got %s, want a mapping of claim names to values", typeName(v))
		return m, nil
	}
	m.claims = make(map[string]globs, len(cm))
	sub := newOptions(cm)
	for name := range cm {
		pats := sub.strings(name)
		if len(pats) == 0 {
			o.fail("claims."+name, "want a value or a list of values")
			continue
		}
		g, err := compileGlobs("claims."+name, pats)
		if err != nil {
			return m, err
		}
		m.claims[name] = g
	}
	for _, e := range sub.errs {
		if fe, ok := e.(*FieldError); ok {
			fe.Key = "claims." + fe.Key
		}
		o.errs = append(o.errs, e)
	}
	return m, nil
}

func (m callerMatch) empty() bool {
	return len(m.subjects) == 0 && len(m.scopes) == 0 && len(m.claims) == 0
}

// matches reports whether the caller of ctx meets every condition.
func (m callerMatch) matches(ctx context.Context) bool {
	if m.empty() {
		return true
	}
	id, ok := auth.FromContext(ctx)
	if !ok {
		return false
	}
	if len(m.subjects) > 0 {
		if _, hit := m.subjects.first(id.ID()); !hit {
			return false
		}
	}
	if len(m.scopes) > 0 && !slices.ContainsFunc(m.scopes, id.HasScope) {
		return false
	}
	for name, pats := range m.claims {
		if !slices.ContainsFunc(id.ClaimValues(name), func(v string) bool { _, hit := pats.first(v); return hit }) {
			return false
		}
	}
	return true
}

// String describes the conditions for a refusal's reason, without the
// caller's own values.
func (m callerMatch) String() string {
	var parts []string
	if len(m.subjects) > 0 {
		parts = append(parts, "subjects "+patterns(m.subjects))
	}
	if len(m.scopes) > 0 {
		parts = append(parts, fmt.Sprintf("scopes %q", m.scopes))
	}
	names := make([]string, 0, len(m.claims))
	for n := range m.claims {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		parts = append(parts, "claim "+n+" "+patterns(m.claims[n]))
	}
	return strings.Join(parts, " and ")
}

func patterns(gs globs) string {
	ps := make([]string, len(gs))
	for i, g := range gs {
		ps[i] = g.pattern
	}
	return fmt.Sprintf("%q", ps)
}
