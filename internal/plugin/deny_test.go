package plugin

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tracegate/tracegate/internal/config"
)

func TestDenyAndAllow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  config.Plugin
		call *Call
		want string // "" means allowed
	}{
		{"deny by tools filter", config.Plugin{Name: "no-deletes", Type: "deny", Tools: []string{"files_delete*"}},
			toolCall("files_delete", `{}`), `denied by plugin "no-deletes": tool "files_delete" matches "files_delete*"`},
		{"deny filter passes others", config.Plugin{Name: "no-deletes", Type: "deny", Tools: []string{"files_delete*"}},
			toolCall("files_read", `{}`), ""},
		{"deny by patterns", config.Plugin{Name: "nd", Type: "deny", Options: map[string]any{"patterns": []any{"*_delete", "*_drop"}}},
			toolCall("db_drop", `{}`), `denied by plugin "nd": tool "db_drop" matches "*_drop"`},
		{"deny patterns pass others", config.Plugin{Name: "nd", Type: "deny", Options: map[string]any{"patterns": []any{"*_delete"}}},
			toolCall("db_select", `{}`), ""},
		{"deny patterns within filter", config.Plugin{Name: "nd", Type: "deny", Backends: []string{"db"}, Options: map[string]any{"patterns": "*_drop"}},
			&Call{Hook: ToolPreInvoke, Backend: "files", Name: "files_drop"}, ""},
		{"deny everything", config.Plugin{Name: "closed", Type: "deny", Backends: []string{"legacy"}},
			&Call{Hook: PromptPreFetch, Backend: "legacy", Name: "legacy_greet"}, `denied by plugin "closed": prompt "legacy_greet" is denied`},
		{"deny resource by uri", config.Plugin{Name: "no-etc", Type: "deny", Tools: []string{"file:///etc/*"}},
			&Call{Hook: ResourcePreFetch, Backend: "files", Name: "file:///etc/passwd"}, `denied by plugin "no-etc": resource "file:///etc/passwd" matches "file:///etc/*"`},
		{"deny own reason", config.Plugin{Name: "nd", Type: "deny", Tools: []string{"files_delete"}, Options: map[string]any{"reason": "deletes need a ticket"}},
			toolCall("files_delete", `{}`), `denied by plugin "nd": deletes need a ticket`},
		{"allow listed", config.Plugin{Name: "only-read", Type: "allow", Options: map[string]any{"patterns": []any{"files_read", "weather_*"}}},
			&Call{Hook: ToolPreInvoke, Backend: "weather", Name: "weather_get"}, ""},
		{"allow denies unlisted", config.Plugin{Name: "only-read", Type: "allow", Options: map[string]any{"patterns": []any{"files_read", "weather_*"}}},
			toolCall("files_write", `{}`), `denied by plugin "only-read": tool "files_write" matches no allowed pattern`},
		{"allow scoped by backends", config.Plugin{Name: "only-read", Type: "allow", Backends: []string{"files"}, Options: map[string]any{"patterns": []any{"files_read"}}},
			&Call{Hook: ToolPreInvoke, Backend: "weather", Name: "weather_get"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBed(t, []config.Plugin{tt.cfg}, nil, nil)
			_, err := b.chain.Run(context.Background(), tt.call)
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
			if de.Plugin != tt.cfg.Name || de.RetryAfter != 0 {
				t.Errorf("got plugin %q retry %v, want %q and 0", de.Plugin, de.RetryAfter, tt.cfg.Name)
			}
		})
	}
}

// deny and allow decide before the call: they never run on post hooks.
func TestDenyRunsOnPreHooksOnly(t *testing.T) {
	t.Parallel()
	b := newBed(t, []config.Plugin{{Name: "nd", Type: "deny"}, {Name: "al", Type: "allow", Options: map[string]any{"patterns": "x"}}}, nil, nil)
	for _, h := range postHooks {
		if b.chain.Has(h, "files", "files_delete") {
			t.Errorf("Has(%s) = true, want false", h)
		}
	}
	for _, h := range preHooks {
		if !b.chain.Has(h, "files", "files_delete") {
			t.Errorf("Has(%s) = false, want true", h)
		}
	}
}

func TestDenyAllowOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg  config.Plugin
		want string
	}{
		{config.Plugin{Name: "a", Type: "allow"}, "patterns: required"},
		{config.Plugin{Name: "a", Type: "allow", Tools: []string{"x"}}, "patterns: required"},
		{config.Plugin{Name: "a", Type: "allow", Options: map[string]any{"patterns": []any{"ok", 3}}}, "patterns[1]: got a number, want a string"},
		{config.Plugin{Name: "d", Type: "deny", Options: map[string]any{"patterns": []any{"[x"}}}, `patterns[0]: invalid pattern "[x"`},
		{config.Plugin{Name: "d", Type: "deny", Options: map[string]any{"pattern": "x"}}, "pattern: unknown key for this plugin type"},
		{config.Plugin{Name: "d", Type: "deny", Options: map[string]any{"reason": 5}}, "reason: got a number, want a string"},
		{config.Plugin{Name: "d", Type: "deny", Options: map[string]any{"patterns": map[string]any{}}}, "patterns: got a mapping, want a list of strings"},
	}
	for _, tt := range tests {
		err := Validate(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: got %v, want %q", tt.cfg, err, tt.want)
		}
	}
}
