package plugin

import (
	"testing"

	"github.com/tracegate/tracegate/internal/config"
)

func TestContentRedactor(t *testing.T) {
	t.Parallel()
	if r := newBed(t, []config.Plugin{{Name: "d", Type: "deny", Tools: []string{"x"}}}, nil, nil).chain.ContentRedactor(); r != nil {
		t.Errorf("a chain without redact plugins: got a redactor, want nil")
	}
	if r := (*Chain)(nil).ContentRedactor(); r != nil {
		t.Errorf("nil chain: got a redactor, want nil")
	}
	// Filters and apply_to narrow where a plugin rewrites calls, not what
	// telemetry may keep.
	redact := newBed(t, []config.Plugin{
		{Name: "mail", Type: "redact", Backends: []string{"weather"}, Options: map[string]any{"patterns": "email", "apply_to": "results"}},
		{Name: "ids", Type: "redact", Tools: []string{"files_*"}, Options: map[string]any{"regex": []any{"ID-[0-9]{4}"}, "replacement": "#"}},
	}, nil, nil).chain.ContentRedactor()
	tests := []struct{ in, want string }{
		{`{"to":"ann@example.com","id":"ID-1234"}`, `{"to":"[REDACTED]","id":"#"}`},
		{`{"to":"ann\u0040example.com"}`, `{"to":"[REDACTED]"}`},
		{`{"note":"nothing here"}`, `{"note":"nothing here"}`},
		// Cut short, so not JSON: the text is scrubbed as a whole.
		{`{"to":"ann@example.com","id":"ID-12`, `{"to":"[REDACTED]","id":"ID-12`},
	}
	for _, tt := range tests {
		if got := string(redact("gen_ai.tool.call.arguments", []byte(tt.in))); got != tt.want {
			t.Errorf("redact(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
