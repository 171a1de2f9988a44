package mcptrace

import (
	"slices"
	"testing"
)

func TestMetaCarrier(t *testing.T) {
	t.Parallel()
	meta := MetaCarrier{
		"traceparent":   traceparentA,
		"progressToken": 7.0,
		"nested":        map[string]any{"a": "b"},
		"nil":           nil,
	}
	tests := []struct {
		key, want string
	}{
		{"traceparent", traceparentA},
		{"progressToken", ""}, // not a string
		{"nested", ""},
		{"nil", ""},
		{"missing", ""},
		{"Traceparent", ""}, // _meta keys are case-sensitive
	}
	for _, tt := range tests {
		if got := meta.Get(tt.key); got != tt.want {
			t.Errorf("Get(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
	if got, want := meta.Keys(), []string{"traceparent"}; !slices.Equal(got, want) {
		t.Errorf("Keys() = %v, want %v", got, want)
	}
	meta.Set("tracestate", "a=1")
	if got := meta.Get("tracestate"); got != "a=1" {
		t.Errorf("after Set, Get(tracestate) = %q, want %q", got, "a=1")
	}
	MetaCarrier(nil).Set("k", "v") // must not panic
	if got := MetaCarrier(nil).Get("k"); got != "" {
		t.Errorf("nil carrier Get = %q, want empty", got)
	}
}
