package probe

import (
	"encoding/json"
	"maps"
	"testing"
)

func TestParamHeaders(t *testing.T) {
	t.Parallel()
	schema := `{"type":"object","properties":{
		"region":{"type":"string","x-mcp-header":"Region"},
		"count":{"type":"integer","x-mcp-header":"Count"},
		"dry":{"type":"boolean","x-mcp-header":"Dry"},
		"plain":{"type":"string"},
		"nested":{"type":"object","properties":{"tenant":{"type":"string","x-mcp-header":"Tenant"}}}}}`
	tests := []struct {
		name string
		args string
		want map[string]string
	}{
		{"all primitives", `{"region":"eu","count":3,"dry":false,"plain":"x","nested":{"tenant":"acme"}}`,
			map[string]string{"Mcp-Param-Region": "eu", "Mcp-Param-Count": "3", "Mcp-Param-Dry": "false", "Mcp-Param-Tenant": "acme"}},
		{"absent and null get none", `{"region":null}`, map[string]string{}},
		{"non-ASCII is base64", `{"region":"zürich"}`, map[string]string{"Mcp-Param-Region": "=?base64?esO8cmljaA==?="}},
		{"surrounding space is base64", `{"region":" eu"}`, map[string]string{"Mcp-Param-Region": "=?base64?IGV1?="}},
		{"fraction is not an integer", `{"count":1.5}`, map[string]string{}},
		{"object is not primitive", `{"region":{"a":1}}`, map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := paramHeaders(json.RawMessage(schema), json.RawMessage(tc.args))
			if !maps.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if got := paramHeaders(nil, json.RawMessage(`{"a":1}`)); len(got) != 0 {
		t.Errorf("without a schema: got %v, want none", got)
	}
}
