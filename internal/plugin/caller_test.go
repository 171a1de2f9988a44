package plugin

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tracegate/tracegate/internal/auth"
	"github.com/tracegate/tracegate/internal/config"
)

func TestDenyAndAllowByCaller(t *testing.T) {
	t.Parallel()
	alice := auth.NewContext(context.Background(), auth.Identity{Method: auth.MethodOAuth, Subject: "alice", ClientID: "agent-1",
		Scopes: []string{"mcp", "files.write"}, Claims: map[string]any{"groups": []any{"sre", "oncall"}, "tenant": "acme"}})
	bob := auth.NewContext(context.Background(), auth.Identity{Method: auth.MethodOAuth, Subject: "bob", Scopes: []string{"mcp"},
		Claims: map[string]any{"groups": []any{"dev"}, "tenant": "acme"}})
	ci := auth.NewContext(context.Background(), auth.Identity{Method: auth.MethodStatic, TokenName: "ci"})
	anon := context.Background()

	deleteCall := func() *Call { return toolCall("files_delete", `{}`) }
	opts := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name string
		cfg  config.Plugin
		ctx  context.Context
		want string // "" means allowed
	}{
		{"deny by subject hits", config.Plugin{Name: "no-bob", Type: "deny", Tools: []string{"files_delete"}, Options: opts("subjects", []any{"bob"})}, bob,
			`denied by plugin "no-bob": tool "files_delete" matches "files_delete" for callers with subjects ["bob"]`},
		{"deny by subject spares others", config.Plugin{Name: "no-bob", Type: "deny", Tools: []string{"files_delete"}, Options: opts("subjects", []any{"bob"})}, alice, ""},
		{"deny by subject spares anonymous", config.Plugin{Name: "no-bob", Type: "deny", Options: opts("subjects", "bob")}, anon, ""},
		{"deny static token by name", config.Plugin{Name: "no-ci", Type: "deny", Options: opts("subjects", "token:*")}, ci,
			`denied by plugin "no-ci": tool "files_delete" is denied for callers with subjects ["token:*"]`},
		{"deny by claim list", config.Plugin{Name: "no-dev", Type: "deny", Options: opts("claims", map[string]any{"groups": "dev"})}, bob,
			`denied by plugin "no-dev": tool "files_delete" is denied for callers with claim groups ["dev"]`},
		{"deny by claim spares", config.Plugin{Name: "no-dev", Type: "deny", Options: opts("claims", map[string]any{"groups": "dev"})}, alice, ""},

		{"allow by scope", config.Plugin{Name: "writers", Type: "allow", Tools: []string{"files_delete"}, Options: opts("scopes", []any{"files.write"})}, alice, ""},
		{"allow by scope refuses", config.Plugin{Name: "writers", Type: "allow", Tools: []string{"files_delete"}, Options: opts("scopes", []any{"files.write"})}, bob,
			`denied by plugin "writers": tool "files_delete" is allowed only to callers with scopes ["files.write"]`},
		{"allow refuses anonymous", config.Plugin{Name: "writers", Type: "allow", Options: opts("scopes", "files.write")}, anon,
			`denied by plugin "writers": tool "files_delete" is allowed only to callers with scopes ["files.write"]`},
		{"allow needs every condition", config.Plugin{Name: "sre-acme", Type: "allow", Options: opts("claims", map[string]any{"groups": []any{"sre"}, "tenant": "acme"}, "subjects", "b*")}, alice,
			`denied by plugin "sre-acme": tool "files_delete" is allowed only to callers with subjects ["b*"] and claim groups ["sre"] and claim tenant ["acme"]`},
		{"allow all conditions met", config.Plugin{Name: "sre-acme", Type: "allow", Options: opts("claims", map[string]any{"groups": []any{"sre"}, "tenant": "acme"}, "subjects", "a*")}, alice, ""},
		{"allow patterns and caller", config.Plugin{Name: "p", Type: "allow", Options: opts("patterns", "files_read", "subjects", "alice")}, alice,
			`denied by plugin "p": tool "files_delete" matches no allowed pattern`},
		{"allow by client_id claim", config.Plugin{Name: "agents", Type: "allow", Options: opts("claims", map[string]any{"client_id": "agent-*"})}, alice, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBed(t, []config.Plugin{tt.cfg}, nil, nil)
			_, err := b.chain.Run(tt.ctx, deleteCall())
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want allowed", err)
				}
				return
			}
			var de *DenyError
			if !errors.As(err, &de) || err.Error() != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCallerOptionErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{"claims": "x"}, "claims: got a string, want a mapping of claim names to values"},
		{map[string]any{"claims": map[string]any{"g": 3}}, "claims.g: got a number, want a list of strings"},
		{map[string]any{"subjects": []any{"["}}, `subjects[0]: invalid pattern "["`},
		{map[string]any{}, "patterns: required, unless subjects, scopes or claims is set"},
	} {
		_, err := newAllow(config.Plugin{Name: "a", Type: "allow", Options: tt.opts}, Options{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want %q", tt.opts, err, tt.want)
		}
	}
}

func TestRateLimitPerSubject(t *testing.T) {
	t.Parallel()
	rl, err := newRateLimit(config.Plugin{Name: "r", Type: "ratelimit", Options: map[string]any{"rate": "1/h", "per": "subject"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctxOf := func(sub string) context.Context {
		return auth.NewContext(context.Background(), auth.Identity{Method: auth.MethodOAuth, Subject: sub})
	}
	call := func(ctx context.Context, session string) Decision {
		out, _ := rl.Handle(ctx, &Call{Hook: ToolPreInvoke, Name: "t", SessionID: session})
		return out.Decision
	}
	if call(ctxOf("alice"), "s1") != Continue {
		t.Fatal("alice's first call refused")
	}
	// A new session does not give alice a new bucket.
	if call(ctxOf("alice"), "s2") != Deny {
		t.Error("alice's second call, from another session: allowed, want refused")
	}
	if call(ctxOf("bob"), "s1") != Continue {
		t.Error("bob's first call, on alice's session ID: refused, want his own bucket")
	}
	if call(context.Background(), "s3") != Continue || call(context.Background(), "s4") != Deny {
		t.Error("anonymous callers: want one shared bucket")
	}
}
