package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tracegate/tracegate/internal/config"
)

const weatherSchema = `{
  "type": "object",
  "properties": {
    "city": {"type": "string", "minLength": 2},
    "days": {"type": "integer", "minimum": 1, "maximum": 7},
    "opts": {
      "type": "object",
      "properties": {"unit": {"enum": ["c", "f"]}},
      "additionalProperties": false
    },
    "tags": {"type": "array", "items": {"type": "string"}},
    "home": {"$ref": "#/$defs/place"}
  },
  "required": ["city"],
  "additionalProperties": false,
  "$defs": {"place": {"type": "object", "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}}}}
}`

func TestSchema(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args string
		want string // "" means allowed
	}{
		{"valid", `{"city":"Oslo","days":3,"opts":{"unit":"c"},"tags":["a"]}`, ""},
		{"valid minimal", `{"city":"Oslo"}`, ""},
		{"missing required", `{}`, `arguments: missing required properties ["city"]`},
		{"absent arguments", ``, `arguments: missing required properties ["city"]`},
		{"wrong type", `{"city":"Oslo","days":"s3cret-value"}`, `argument "days": type "string", want "integer"`},
		{"not an integer", `{"city":"Oslo","days":2.5}`, `argument "days": type "number", want "integer"`},
		{"over maximum", `{"city":"Oslo","days":9}`, `argument "days": fails maximum 7`},
		{"too short", `{"city":"O"}`, `argument "city": fails minLength 2`},
		{"nested enum", `{"city":"Oslo","opts":{"unit":"kelvin"}}`, `argument "opts.unit": fails enum ["c","f"]`},
		{"nested extra", `{"city":"Oslo","opts":{"colour":1}}`, `argument "opts": unexpected properties ["colour"]`},
		{"array item", `{"city":"Oslo","tags":["a",5]}`, `argument "tags[]": type "integer", want "string"`},
		{"extra argument", `{"city":"Oslo","cty":"x"}`, `arguments: unexpected properties ["cty"]`},
		{"through a ref", `{"city":"Oslo","home":{"zip":"abc"}}`, `argument "zip": fails pattern "^[0-9]{5}$"`},
		{"not an object", `["Oslo"]`, `arguments: type "array", want "object"`},
		{"not JSON", `{"city":`, `arguments are not valid JSON`},
	}
	b := newBed(t, []config.Plugin{{Name: "check", Type: "schema"}}, nil, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call := toolCall("weather_get", tt.args)
			call.InputSchema = json.RawMessage(weatherSchema)
			_, err := b.chain.Run(context.Background(), call)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want allowed", err)
				}
				return
			}
			want := `denied by plugin "check": tool "weather_get": ` + tt.want
			var de *DenyError
			if !errors.As(err, &de) || err.Error() != want {
				t.Fatalf("got %v\nwant %s", err, want)
			}
		})
	}
	if dump := b.dump(); strings.Contains(dump, "s3cret") || strings.Contains(dump, "kelvin") {
		t.Errorf("argument values leaked into spans:\n%s", dump)
	}
	if p := b.chain.byHook[0][0].plugin.(*schemaPlugin); len(p.cache) != 1 {
		t.Errorf("got %d cached schemas, want 1 for one schema", len(p.cache))
	}
}

func TestSchemaWithoutSchema(t *testing.T) {
	t.Parallel()
	b := newBed(t, []config.Plugin{{Name: "check", Type: "schema"}}, nil, nil)
	if _, err := b.chain.Run(context.Background(), toolCall("t", `{"anything":1}`)); err != nil {
		t.Errorf("no inputSchema: got %v, want allowed", err)
	}
	for _, h := range []Hook{ToolPostInvoke, PromptPreFetch, ResourcePreFetch} {
		if b.chain.Has(h, "b", "t") {
			t.Errorf("schema runs on %s, want tool_pre_invoke only", h)
		}
	}
}

// A schema the library cannot use is the plugin failing, not the caller.
func TestSchemaBroken(t *testing.T) {
	t.Parallel()
	for _, onError := range []string{"fail", "ignore"} {
		b := newBed(t, []config.Plugin{{Name: "check", Type: "schema", OnError: onError}}, nil, nil)
		call := toolCall("t", `{}`)
		call.InputSchema = json.RawMessage(`{"type":"object","properties":{"a":{"$ref":"#/$defs/missing"}}}`)
		_, err := b.chain.Run(context.Background(), call)
		var pe *PluginError
		if got := errors.As(err, &pe); got != (onError == "fail") {
			t.Errorf("on_error %s: got %v, want PluginError=%v", onError, err, onError == "fail")
		}
		if onError == "fail" && !strings.Contains(err.Error(), `inputSchema of tool "t": resolving`) {
			t.Errorf("got %q, want it to name the inputSchema", err)
		}
	}
}

func TestSchemaCacheBound(t *testing.T) {
	t.Parallel()
	p := &schemaPlugin{limit: 8, cache: map[[32]byte]*compiledSchema{}}
	for i := range 20 {
		p.compile([]byte(`{"type":"object","description":"` + strings.Repeat("x", i) + `"}`))
	}
	if n := len(p.cache); n > p.limit || n == 0 {
		t.Errorf("got %d cached schemas, want 1 to %d", n, p.limit)
	}
}

func TestSchemaOptions(t *testing.T) {
	t.Parallel()
	err := Validate(config.Plugin{Name: "s", Type: "schema", Options: map[string]any{"strict": true}})
	if err == nil || err.Error() != "strict: unknown key for this plugin type" {
		t.Errorf("got %v, want the unknown key error", err)
	}
}
