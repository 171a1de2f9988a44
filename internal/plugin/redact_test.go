package plugin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tracegate/tracegate/internal/config"
)

func redactCfg(opts map[string]any) config.Plugin {
	return config.Plugin{Name: "scrub", Type: "redact", Options: opts}
}

func TestRedactPatterns(t *testing.T) {
	t.Parallel()
	all := map[string]any{"patterns": []any{"email", "bearer_token", "aws_access_key", "credit_card", "jwt"}}
	tests := []struct {
		name string
		in   string
		want string // "" means unchanged
	}{
		{"email", `{"to":"ann.lee+x@mail.example.org","n":1}`, `{"to":"[REDACTED]","n":1}`},
		{"bearer keeps the word", `{"h":"Authorization: Bearer abc.DEF-123_xyz=="}`, `{"h":"Authorization: Bearer [REDACTED]"}`},
		{"aws key", `{"k":"id AKIAIOSFODNN7EXAMPLE end"}`, `{"k":"id [REDACTED] end"}`},
		{"card with spaces", `{"c":"card 4111 1111 1111 1111 ok"}`, `{"c":"card [REDACTED] ok"}`},
		{"card with dashes", `{"c":"5500-0000-0000-0004"}`, `{"c":"[REDACTED]"}`},
		{"digits failing luhn stay", `{"c":"order 4111111111111112"}`, ""},
		{"repeated digit stays", `{"c":"0000000000000000"}`, ""},
		{"short digit run stays", `{"c":"call 555 0100"}`, ""},
		{"jwt", `{"t":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nat-ure"}`, `{"t":"[REDACTED]"}`},
		{"keys are left alone", `{"ann@example.com":"x"}`, ""},
		{"nested, arrays, order and spacing kept", "{\"z\": [\"a@b.co\", {\"y\": \"no\"}],\n \"a\": 1.50}", "{\"z\": [\"[REDACTED]\", {\"y\": \"no\"}],\n \"a\": 1.50}"},
		{"escaped string", `{"m":"line\n\"ann@example.com\""}`, `{"m":"line\n\"[REDACTED]\""}`},
		{"two in one string", `{"m":"a@b.co and c@d.co"}`, `{"m":"[REDACTED] and [REDACTED]"}`},
		{"key-like value", `{"a":"x:y","b":"q@r.st"}`, `{"a":"x:y","b":"[REDACTED]"}`},
		{"nothing to do", `{"a":[1,true,null,"plain"]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBed(t, []config.Plugin{redactCfg(all)}, nil, nil)
			res, err := b.chain.Run(context.Background(), toolCall("files_send", tt.in))
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			want := tt.want
			if want == "" {
				want = tt.in
			}
			if string(res.Arguments) != want || res.Modified != (tt.want != "") {
				t.Errorf("got %s modified=%v, want %s modified=%v", res.Arguments, res.Modified, want, tt.want != "")
			}
			if !json.Valid(res.Arguments) {
				t.Errorf("output is not valid JSON: %s", res.Arguments)
			}
		})
	}
}

// The secrets appear nowhere in what the chain records: span attributes,
// events, status, or the log, even when a later plugin fails.
func TestRedactLeavesNoTrace(t *testing.T) {
	t.Parallel()
	failing := &testPlugin{handle: func(context.Context, *Call) (Outcome, error) { return Outcome{}, errBoom }}
	cfgs := []config.Plugin{
		redactCfg(map[string]any{"patterns": []any{"email", "credit_card"}, "regex": []any{map[string]any{"name": "ticket", "pattern": `TCK-[0-9]{6}`}}}),
		{Name: "failing", Type: "t:failing", OnError: "ignore"},
	}
	b := newBed(t, cfgs, registryOf(map[string]*testPlugin{"failing": failing}), nil)
	secrets := []string{"ann@example.com", "bob@example.net", "4111 1111 1111 1111", "TCK-123456"}
	args := `{"to":["ann@example.com","bob@example.net"],"card":"4111 1111 1111 1111","ref":"TCK-123456"}`
	res, err := b.chain.Run(context.Background(), toolCall("mail_send", args))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := string(failing.seen()); strings.Contains(got, "ann@") {
		t.Errorf("the next plugin saw %s, want redacted arguments", got)
	}
	recorded := b.dump() + b.logs.String() + string(res.Arguments)
	for _, s := range secrets {
		if strings.Contains(recorded, s) {
			t.Errorf("secret %q leaked:\n%s", s, recorded)
		}
	}

	// Counts per pattern, as events on the redact plugin's span.
	var redactSpan = b.spans(spanExecute)[0]
	got := map[string]int64{}
	for _, ev := range redactSpan.Events() {
		if ev.Name != "redact" {
			continue
		}
		var name string
		var n int64
		for _, a := range ev.Attributes {
			switch a.Key {
			case attrRedactPattern:
				name = a.Value.AsString()
			case attrRedactCount:
				n = a.Value.AsInt64()
			case attrRedactTarget:
				if a.Value.AsString() != "arguments" {
					t.Errorf("redact.target %q, want arguments", a.Value.AsString())
				}
			}
		}
		got[name] = n
	}
	want := map[string]int64{"email": 2, "credit_card": 1, "ticket": 1}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("redact.count for %s = %d, want %d (all: %v)", k, got[k], w, got)
		}
	}
	if v, _ := attrOf(redactSpan, attrDecision); v.Emit() != "modify" {
		t.Errorf("decision %q, want modify", v.Emit())
	}
}

func TestRedactApplyTo(t *testing.T) {
	t.Parallel()
	result := `{"content":[{"type":"text","text":"mail ann@example.com"}],"isError":false}`
	tests := []struct {
		applyTo    any
		wantArgs   string
		wantResult string
	}{
		{nil, `{"q":"[REDACTED]"}`, `{"content":[{"type":"text","text":"mail [REDACTED]"}],"isError":false}`},
		{[]any{"arguments"}, `{"q":"[REDACTED]"}`, result},
		{[]any{"results"}, `{"q":"ann@example.com"}`, `{"content":[{"type":"text","text":"mail [REDACTED]"}],"isError":false}`},
	}
	for _, tt := range tests {
		opts := map[string]any{"patterns": []any{"email"}}
		if tt.applyTo != nil {
			opts["apply_to"] = tt.applyTo
		}
		b := newBed(t, []config.Plugin{redactCfg(opts)}, nil, nil)
		pre, err := b.chain.Run(context.Background(), toolCall("t", `{"q":"ann@example.com"}`))
		if err != nil {
			t.Fatal(err)
		}
		post, err := b.chain.Run(context.Background(), &Call{Hook: ToolPostInvoke, Name: "t", Arguments: pre.Arguments, Result: json.RawMessage(result)})
		if err != nil {
			t.Fatal(err)
		}
		if string(pre.Arguments) != tt.wantArgs || string(post.Result) != tt.wantResult {
			t.Errorf("apply_to %v: got args %s result %s, want %s and %s", tt.applyTo, pre.Arguments, post.Result, tt.wantArgs, tt.wantResult)
		}
	}
}

func TestRedactCustomRegexAndReplacement(t *testing.T) {
	t.Parallel()
	b := newBed(t, []config.Plugin{redactCfg(map[string]any{
		"regex":       []any{`sk-[a-z0-9]{8}`},
		"replacement": "***",
	})}, nil, nil)
	res, err := b.chain.Run(context.Background(), &Call{Hook: PromptPostFetch, Name: "p", Result: json.RawMessage(`{"messages":[{"content":{"type":"text","text":"use sk-abcd1234 <now>"}}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(res.Result), `{"messages":[{"content":{"type":"text","text":"use *** \u003cnow\u003e"}}]}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	ev := b.spans(spanExecute)[0].Events()
	if len(ev) != 1 || ev[0].Attributes[0].Value.AsString() != "regex_0" {
		t.Errorf("got events %v, want one for regex_0", ev)
	}
}

func TestRedactInvalidJSONFails(t *testing.T) {
	t.Parallel()
	b := newBed(t, []config.Plugin{redactCfg(map[string]any{"patterns": "email"})}, nil, nil)
	_, err := b.chain.Run(context.Background(), &Call{Hook: ToolPostInvoke, Name: "t", Result: json.RawMessage(`{"x":"ann@example.com"`)})
	if err == nil || err.Error() != `plugin "scrub" failed: redacting result: not valid JSON` {
		t.Errorf("got %v, want the not valid JSON failure", err)
	}
	if strings.Contains(b.dump()+b.logs.String(), "ann@") {
		t.Errorf("input leaked into spans or logs")
	}
}

func TestRedactOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opts map[string]any
		want string
	}{
		{nil, "patterns: set patterns (aws_access_key, bearer_token, credit_card, email, jwt), regex, or both"},
		{map[string]any{"patterns": []any{"phone"}}, `patterns[0]: unknown pattern "phone"`},
		{map[string]any{"regex": []any{"("}}, "regex[0]: error parsing regexp"},
		{map[string]any{"regex": []any{map[string]any{"name": "x", "patern": "y"}}}, "regex[0]: patern: unknown key"},
		{map[string]any{"regex": []any{map[string]any{"name": "email", "pattern": "y"}}, "patterns": "email"}, `regex[0]: pattern name "email" is used twice`},
		{map[string]any{"regex": []any{""}}, "regex[0]: empty regular expression"},
		{map[string]any{"regex": "x"}, "regex: got a string, want a list"},
		{map[string]any{"patterns": "email", "apply_to": []any{"logs"}}, `apply_to[0]: got "logs", want arguments or results`},
		{map[string]any{"patterns": "email", "replace": "x"}, "replace: unknown key for this plugin type"},
	}
	for _, tt := range tests {
		err := Validate(redactCfg(tt.opts))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want %q", tt.opts, err, tt.want)
		}
	}
}

func TestLuhn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{"4111111111111111", true},
		{"4111 1111 1111 1111", true},
		{"378282246310005", true}, // 15 digits
		{"4111111111111112", false},
		{"411111111111", false}, // 12 digits
		{"1111111111111111111", false},
		{"00000000000000", false},
	}
	for _, tt := range tests {
		if got := luhn([]byte(tt.in)); got != tt.want {
			t.Errorf("luhn(%s) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzRedactKeepsJSONValid(f *testing.F) {
	for _, s := range []string{`{"a":"b@c.de"}`, `["x\"y@z.io\\"]`, `"4111 1111 1111 1111"`, `{"k" : "v" , "n":[1,2,{"":""}]}`} {
		f.Add(s)
	}
	p, err := newRedact(redactCfg(map[string]any{"patterns": []any{"email", "credit_card", "bearer_token"}}), Options{})
	if err != nil {
		f.Fatal(err)
	}
	rp := p.(*redactPlugin)
	f.Fuzz(func(t *testing.T, in string) {
		if !json.Valid([]byte(in)) {
			return
		}
		out, err := rp.rewrite(context.Background(), []byte(in), make([]int, len(rp.patterns)))
		if err != nil {
			t.Fatalf("rewrite(%q): %v", in, err)
		}
		if out != nil && !json.Valid(out) {
			t.Fatalf("rewrite(%q) = %q, not valid JSON", in, out)
		}
	})
}
