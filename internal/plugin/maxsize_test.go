package plugin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tracegate/tracegate/internal/config"
)

func TestMaxSize(t *testing.T) {
	t.Parallel()
	cfg := config.Plugin{Name: "small", Type: "max_size", Options: map[string]any{"max_argument_bytes": 16, "max_result_bytes": "1KiB"}}
	big := `{"text":"` + strings.Repeat("x", 1100) + `"}`
	tests := []struct {
		name string
		call *Call
		want string
	}{
		{"arguments within", toolCall("t", `{"a":"0123456"}`), ""},    // 15 bytes
		{"arguments at limit", toolCall("t", `{"a":"01234567"}`), ""}, // 16 bytes
		{"arguments over", toolCall("t", `{"a":"012345678"}`), `denied by plugin "small": arguments are 17 bytes, over the limit of 16 bytes`},
		{"prompt arguments over", &Call{Hook: PromptPreFetch, Name: "p", Arguments: json.RawMessage(`{"topic":"0123456789"}`)}, `denied by plugin "small": arguments are 22 bytes, over the limit of 16 bytes`},
		{"result within", &Call{Hook: ToolPostInvoke, Name: "t", Arguments: json.RawMessage(big), Result: json.RawMessage(`{"content":[]}`)}, ""},
		{"result over", &Call{Hook: ResourcePostFetch, Name: "file:///a", Result: json.RawMessage(big)}, `denied by plugin "small": result is 1111 bytes, over the limit of 1024 bytes`},
	}
	b := newBed(t, []config.Plugin{cfg}, nil, nil)
	for _, tt := range tests {
		_, err := b.chain.Run(context.Background(), tt.call)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	if b.chain.Has(ResourcePreFetch, "", "file:///a") {
		t.Errorf("max_size runs on resource_pre_fetch, which has no arguments")
	}
}

func TestMaxSizeOnlyResults(t *testing.T) {
	t.Parallel()
	b := newBed(t, []config.Plugin{{Name: "r", Type: "max_size", Options: map[string]any{"max_result_bytes": 10}}}, nil, nil)
	if b.chain.Has(ToolPreInvoke, "b", "t") {
		t.Errorf("Has(tool_pre_invoke) = true with only max_result_bytes, want false")
	}
	if !b.chain.Has(ToolPostInvoke, "b", "t") {
		t.Errorf("Has(tool_post_invoke) = false, want true")
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
	}{
		{"65536", 65536}, {"64KiB", 65536}, {"64 KiB", 65536}, {"1MiB", 1 << 20}, {"1.5MB", 1_500_000},
		{"2KB", 2000}, {"1GiB", 1 << 30}, {"10B", 10},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestMaxSizeOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opts map[string]any
		want string
	}{
		{nil, "max_argument_bytes: set max_argument_bytes, max_result_bytes or both"},
		{map[string]any{"max_argument_bytes": "64 kilobytes"}, `max_argument_bytes: invalid size "64 kilobytes"`},
		{map[string]any{"max_result_bytes": 0}, "max_result_bytes: got 0, want a positive size"},
		{map[string]any{"max_result_bytes": "-1KiB"}, `max_result_bytes: invalid size "-1KiB"`},
		{map[string]any{"max_result_bytes": true}, "max_result_bytes: got a boolean, want a size"},
		{map[string]any{"max_bytes": 10}, "max_bytes: unknown key for this plugin type"},
	}
	for _, tt := range tests {
		err := Validate(config.Plugin{Name: "m", Type: "max_size", Options: tt.opts})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want %q", tt.opts, err, tt.want)
		}
	}
}
