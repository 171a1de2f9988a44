package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"

	"github.com/tracegate/tracegate/internal/config"
)

// DefaultReplacement stands in for redacted text.
const DefaultReplacement = "[REDACTED]"

// secretPattern is one thing redact looks for.
type secretPattern struct {
	name string
	re   *regexp.Regexp
	// group is the submatch to replace; 0 is the whole match. bearer_token
	// keeps its "Bearer " so the text still reads.
	group int
	// valid, when set, must accept a match before it is replaced.
	valid func([]byte) bool
}

// namedPatterns are the built-in patterns, by the name used in `patterns:`.
var namedPatterns = map[string]secretPattern{
	"email": {
		re: regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}`),
	},
	"bearer_token": {
		re:    regexp.MustCompile(`(?i)\bbearer\s+([A-Za-z0-9\-._~+/]+=*)`),
		group: 1,
	},
	// AWS access key IDs: a four-letter prefix naming the key kind, then 16
	// upper-case letters and digits.
	"aws_access_key": {
		re: regexp.MustCompile(`\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b`),
	},
	// Card numbers: 13 to 19 digits, optionally grouped by spaces or
	// dashes, that pass the Luhn check (ISO/IEC 7812-1 Annex B).
	"credit_card": {
		re:    regexp.MustCompile(`\b\d(?:[ -]?\d){12,18}\b`),
		valid: luhn,
	},
	"jwt": {
		re: regexp.MustCompile(`\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`),
	},
}

// luhn reports whether the digits in b pass the Luhn check. A run of one
// repeated digit (0000 0000 0000 0) passes it too, but is no card number.
func luhn(b []byte) bool {
	sum, n, double := 0, 0, false
	same := true
	var first byte
	for i := len(b) - 1; i >= 0; i-- {
		c := b[i]
		if c < '0' || c > '9' {
			continue
		}
		if n == 0 {
			first = c
		} else if c != first {
			same = false
		}
		d := int(c - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
		n++
	}
	return n >= 13 && n <= 19 && sum%10 == 0 && !same
}

// redactPlugin replaces secrets in every string value of the arguments
// and/or results, leaving object keys, numbers and layout alone.
type redactPlugin struct {
	patterns    []secretPattern
	replacement []byte
	hooks       []Hook
}

func newRedact(cfg config.Plugin, _ Options) (Plugin, error) {
	o := newOptions(cfg.Options)
	names := o.strings("patterns")
	regexes := o.list("regex")
	replacement, hasRepl := o.string("replacement")
	applyTo := o.strings("apply_to")
	var errs []error
	if err := o.err(); err != nil {
		errs = append(errs, err)
	}
	fail := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Err: fmt.Errorf(format, args...)})
	}

	p := &redactPlugin{replacement: []byte(DefaultReplacement)}
	if hasRepl {
		p.replacement = []byte(replacement)
	}
	seen := map[string]bool{}
	for i, n := range names {
		sp, ok := namedPatterns[n]
		if !ok {
			fail(fmt.Sprintf("patterns[%d]", i), "unknown pattern %q (want one of %s)", n, strings.Join(patternNames(), ", "))
			continue
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		sp.name = n
		p.patterns = append(p.patterns, sp)
	}
	for i, r := range regexes {
		key := fmt.Sprintf("regex[%d]", i)
		name, expr := fmt.Sprintf("regex_%d", i), ""
		switch v := r.(type) {
		case string:
			expr = v
		case map[string]any:
			// {name: internal_id, pattern: "ID-[0-9]{6}"}: the name shows in
			// the span events.
			ro := newOptions(v)
			n, hasName := ro.string("name")
			expr, _ = ro.string("pattern")
			if err := ro.err(); err != nil {
				fail(key, "%w", err)
				continue
			}
			if hasName && n != "" {
				name = n
			}
		default:
			fail(key, "got %s, want a regular expression or {name, pattern}", typeName(r))
			continue
		}
		if expr == "" {
			fail(key, "empty regular expression")
			continue
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			fail(key, "%w", err)
			continue
		}
		if seen[name] {
			fail(key, "pattern name %q is used twice", name)
			continue
		}
		seen[name] = true
		p.patterns = append(p.patterns, secretPattern{name: name, re: re})
	}
	if len(names) == 0 && len(regexes) == 0 {
		fail("patterns", "set patterns (%s), regex, or both", strings.Join(patternNames(), ", "))
	}

	args, results := len(applyTo) == 0, len(applyTo) == 0
	for i, a := range applyTo {
		switch a {
		case "arguments":
			args = true
		case "results":
			results = true
		default:
			fail(fmt.Sprintf("apply_to[%d]", i), "got %q, want arguments or results", a)
		}
	}
	if args {
		p.hooks = append(p.hooks, ToolPreInvoke, PromptPreFetch)
	}
	if results {
		p.hooks = append(p.hooks, postHooks...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

func patternNames() []string {
	names := make([]string, 0, len(namedPatterns))
	for n := range namedPatterns {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (p *redactPlugin) Hooks() []Hook { return p.hooks }

var (
	attrRedactPattern = attribute.Key("redact.pattern")
	attrRedactCount   = attribute.Key("redact.count")
	attrRedactTarget  = attribute.Key("redact.target")
)

func (p *redactPlugin) Handle(ctx context.Context, call *Call) (Outcome, error) {
	data, target := call.Result, "result"
	if call.Hook.Pre() {
		data, target = call.Arguments, "arguments"
	}
	if len(data) == 0 {
		return Outcome{}, nil
	}
	counts := make([]int, len(p.patterns))
	out, err := p.rewrite(ctx, data, counts)
	if err != nil {
		return Outcome{}, fmt.Errorf("redacting %s: %w", target, err)
	}
	if out == nil {
		return Outcome{}, nil
	}
	// One event per pattern that fired: counts only, never the values.
	var events []Event
	for i, n := range counts {
		if n > 0 {
			events = append(events, Event{Name: "redact", Attributes: []attribute.KeyValue{
				attrRedactPattern.String(p.patterns[i].name),
				attrRedactCount.Int(n),
				attrRedactTarget.String(target),
			}})
		}
	}
	o := Outcome{Decision: Modify, Events: events}
	if call.Hook.Pre() {
		o.Arguments = out
	} else {
		o.Result = out
	}
	return o, nil
}

// errNotJSON does not quote the input: a syntax error's message would carry
// a piece of it into the log.
var errNotJSON = errors.New("not valid JSON")

// rewrite returns data with secrets in string values replaced, or nil when
// nothing matched. It scans the encoded JSON rather than decoding it, so
// that key order, numbers and spacing survive and untouched input costs
// no allocation; only changed strings are re-encoded.
func (p *redactPlugin) rewrite(ctx context.Context, data []byte, counts []int) ([]byte, error) {
	if !json.Valid(data) {
		return nil, errNotJSON
	}
	var out []byte // nil until the first change
	last := 0      // data[last:] is not yet copied to out
	strs := 0
	for i := 0; i < len(data); i++ {
		if data[i] != '"' {
			continue // outside strings, valid JSON has no '"' but string starts
		}
		end, escaped := i+1, false
		for data[end] != '"' {
			if data[end] == '\\' {
				escaped = true
				end++
			}
			end++
		}
		// A string followed by ':' is an object key: left alone.
		k := end + 1
		for k < len(data) && (data[k] == ' ' || data[k] == '\t' || data[k] == '\n' || data[k] == '\r') {
			k++
		}
		if k < len(data) && data[k] == ':' {
			i = end
			continue
		}
		val := data[i+1 : end]
		if escaped {
			var s string
			if err := json.Unmarshal(data[i:end+1], &s); err != nil {
				return nil, errNotJSON
			}
			val = []byte(s)
		}
		if strs++; strs%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err // a huge document must not outlive its timeout
			}
		}
		if nv, changed := p.redactString(val, counts); changed {
			if out == nil {
				out = make([]byte, 0, len(data))
			}
			enc, _ := json.Marshal(string(nv)) // a string always encodes
			out = append(out, data[last:i]...)
			out = append(out, enc...)
			last = end + 1
		}
		i = end
	}
	if out == nil {
		return nil, nil
	}
	return append(out, data[last:]...), nil
}

// redactString applies every pattern in turn, counting replacements.
func (p *redactPlugin) redactString(s []byte, counts []int) ([]byte, bool) {
	changed := false
	for pi, sp := range p.patterns {
		locs := sp.re.FindAllSubmatchIndex(s, -1)
		if len(locs) == 0 {
			continue
		}
		var b []byte
		last, n := 0, 0
		for _, loc := range locs {
			start, end := loc[2*sp.group], loc[2*sp.group+1]
			if start < 0 || (sp.valid != nil && !sp.valid(s[start:end])) {
				continue
			}
			b = append(b, s[last:start]...)
			b = append(b, p.replacement...)
			last = end
			n++
		}
		if n == 0 {
			continue
		}
		counts[pi] += n
		s = append(b, s[last:]...)
		changed = true
	}
	return s, changed
}
