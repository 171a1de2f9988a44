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
//
// subjects, scopes and claims narrow it to some callers
// ({type: deny, tools: ["files_delete*"], subjects: ["bob"]}).
type denyPlugin struct {
	patterns globs  // names to deny; empty: every call the plugin applies to
	filter   globs  // the tools filter, quoted in the reason when patterns is empty
	reason   string // operator's own reason, replacing the generated one
	caller   callerMatch
}

func newDeny(cfg config.Plugin, _ Options) (Plugin, error) {
	o := newOptions(cfg.Options)
	pats := o.strings("patterns")
	reason, _ := o.string("reason")
	caller, cerr := readCaller(o)
	err := o.err()
	g, gerr := compileGlobs("patterns", pats)
	if err != nil || gerr != nil || cerr != nil {
		return nil, errors.Join(err, gerr, cerr)
	}
	filter, _ := compileGlobs("tools", cfg.Tools) // checked by the chain
	return &denyPlugin{patterns: g, filter: filter, reason: reason, caller: caller}, nil
}

func (p *denyPlugin) Hooks() []Hook { return preHooks }

func (p *denyPlugin) Handle(ctx context.Context, call *Call) (Outcome, error) {
	if !p.caller.matches(ctx) {
		return Outcome{}, nil
	}
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
	if reason == p.reason || p.caller.empty() {
		return Outcome{Decision: Deny, Reason: reason}, nil
	}
	return Outcome{Decision: Deny, Reason: reason + " for callers with " + p.caller.String()}, nil
}

// allowPlugin refuses every call, among those it applies to, whose name
// matches none of its patterns, or whose caller does not meet its subjects,
// scopes and claims conditions. It needs patterns or a caller condition:
// the tools filter only says where the plugin applies, so it cannot be the
// allow list too. With only caller conditions, every name is allowed to the
// callers who meet them ({type: allow, tools: ["admin_*"], scopes: [admin]}).
type allowPlugin struct {
	patterns globs
	reason   string
	caller   callerMatch
}

func newAllow(cfg config.Plugin, _ Options) (Plugin, error) {
	o := newOptions(cfg.Options)
	pats := o.strings("patterns")
	reason, _ := o.string("reason")
	caller, cerr := readCaller(o)
	err := o.err()
	g, gerr := compileGlobs("patterns", pats)
	if err == nil && gerr == nil && cerr == nil && len(g) == 0 && caller.empty() {
		gerr = &FieldError{Key: "patterns", Err: errors.New("required, unless subjects, scopes or claims is set: the names to allow (tools only narrows where the plugin applies)")}
	}
	if err != nil || gerr != nil || cerr != nil {
		return nil, errors.Join(err, gerr, cerr)
	}
	return &allowPlugin{patterns: g, reason: reason, caller: caller}, nil
}

func (p *allowPlugin) Hooks() []Hook { return preHooks }

func (p *allowPlugin) Handle(ctx context.Context, call *Call) (Outcome, error) {
	named := p.patterns.matchAll(call.Name)
	if named && p.caller.matches(ctx) {
		return Outcome{}, nil
	}
	reason := p.reason
	switch {
	case reason != "":
	case !named:
		reason = fmt.Sprintf("%s %q matches no allowed pattern", call.Hook.Kind(), call.Name)
	default:
		reason = fmt.Sprintf("%s %q is allowed only to callers with %s", call.Hook.Kind(), call.Name, p.caller)
	}
	return Outcome{Decision: Deny, Reason: reason}, nil
}
