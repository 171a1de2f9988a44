package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/tracegate/tracegate/internal/config"
)

// denyPlugin refuses calls by name. Where it applies is set by the common
// backends and tools filters; patterns, when given, narrow it further. So
// {type: deny, tools: ["files_delete*"]} denies those tools, and so does
// {type: deny, patterns: ["files_delete*"]}.
type denyPlugin struct {
	patterns globs  // names to deny; empty: every call the plugin applies to
	filter   globs  // the tools filter, quoted in the reason when patterns is empty
	reason   string // operator's own reason, replacing the generated one
}

func newDeny(cfg config.Plugin, _ Options) (Plugin, error) {
	o := newOptions(cfg.Options)
	pats := o.strings("patterns")
	reason, _ := o.string("reason")
	err := o.err()
	g, gerr := compileGlobs("patterns", pats)
	if err != nil || gerr != nil {
		return nil, errors.Join(err, gerr)
	}
	filter, _ := compileGlobs("tools", cfg.Tools) // checked by the chain
	return &denyPlugin{patterns: g, filter: filter, reason: reason}, nil
}

func (p *denyPlugin) Hooks() []Hook { return preHooks }

func (p *denyPlugin) Handle(_ context.Context, call *Call) (Outcome, error) {
	pats := p.patterns
	if len(pats) == 0 {
		pats = p.filter
	}
	pat, matched := pats.first(call.Name)
	if len(p.patterns) > 0 && !matched {
		return Outcome{}, nil
	}
	reason := p.reason
	switch {
	case reason != "":
	case matched:
		reason = fmt.Sprintf("%s %q matches %q", call.Hook.Kind(), call.Name, pat)
	default:
		reason = fmt.Sprintf("%s %q is denied", call.Hook.Kind(), call.Name)
	}
	return Outcome{Decision: Deny, Reason: reason}, nil
}

// allowPlugin refuses every call, among those it applies to, whose name
// matches none of its patterns. patterns is required: the tools filter only
// says where the plugin applies, so it cannot be the allow list too.
type allowPlugin struct {
	patterns globs
	reason   string
}

func newAllow(cfg config.Plugin, _ Options) (Plugin, error) {
	o := newOptions(cfg.Options)
	pats := o.strings("patterns")
	reason, _ := o.string("reason")
	err := o.err()
	g, gerr := compileGlobs("patterns", pats)
	if err == nil && gerr == nil && len(g) == 0 {
		gerr = &FieldError{Key: "patterns", Err: errors.New("required: the names to allow (tools only narrows where the plugin applies)")}
	}
	if err != nil || gerr != nil {
		return nil, errors.Join(err, gerr)
	}
	return &allowPlugin{patterns: g, reason: reason}, nil
}

func (p *allowPlugin) Hooks() []Hook { return preHooks }

func (p *allowPlugin) Handle(_ context.Context, call *Call) (Outcome, error) {
	if _, ok := p.patterns.first(call.Name); ok {
		return Outcome{}, nil
	}
	reason := p.reason
	if reason == "" {
		reason = fmt.Sprintf("%s %q matches no allowed pattern", call.Hook.Kind(), call.Name)
	}
	return Outcome{Decision: Deny, Reason: reason}, nil
}
