package plugin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/tracegate/tracegate/internal/config"
)

// maxSchemas bounds the cache of resolved schemas; when full it starts
// over, which costs one Resolve per tool.
const maxSchemas = 1024

// schemaPlugin checks tool arguments against the tool's inputSchema before
// the call is forwarded, so a malformed call never reaches the backend.
type schemaPlugin struct {
	limit int // cache size, maxSchemas; tests lower it
	mu    sync.RWMutex
	cache map[[sha256.Size]byte]*compiledSchema
}

// compiledSchema is one inputSchema, resolved once.
type compiledSchema struct {
	resolved *jsonschema.Resolved
	doc      any   // the schema as plain JSON, to quote its constraints
	err      error // the schema itself is broken
}

func newSchema(cfg config.Plugin, _ Options) (Plugin, error) {
	if err := newOptions(cfg.Options).err(); err != nil {
		return nil, err
	}
	return &schemaPlugin{limit: maxSchemas, cache: map[[sha256.Size]byte]*compiledSchema{}}, nil
}

func (p *schemaPlugin) Hooks() []Hook { return []Hook{ToolPreInvoke} }

func (p *schemaPlugin) Handle(_ context.Context, call *Call) (Outcome, error) {
	if len(call.InputSchema) == 0 {
		return Outcome{}, nil // nothing to check against
	}
	cs := p.compile(call.InputSchema)
	if cs.err != nil {
		return Outcome{}, fmt.Errorf("inputSchema of tool %q: %w", call.Name, cs.err)
	}
	var args any = map[string]any{} // MCP arguments are optional: absent means {}
	if a := bytes.TrimSpace(call.Arguments); len(a) > 0 && !bytes.Equal(a, []byte("null")) {
		if err := json.Unmarshal(a, &args); err != nil {
			return Outcome{Decision: Deny, Reason: fmt.Sprintf("tool %q: arguments are not valid JSON", call.Name)}, nil
		}
	}
	if err := cs.resolved.Validate(args); err != nil {
		return Outcome{Decision: Deny, Reason: fmt.Sprintf("tool %q: %s", call.Name, describe(err, cs.doc))}, nil
	}
	return Outcome{}, nil
}

// compile resolves a schema once per distinct content.
func (p *schemaPlugin) compile(raw []byte) *compiledSchema {
	key := sha256.Sum256(raw)
	p.mu.RLock()
	cs := p.cache[key]
	p.mu.RUnlock()
	if cs != nil {
		return cs
	}
	cs = &compiledSchema{}
	var s jsonschema.Schema
	if err := json.Unmarshal(raw, &s); err != nil {
		cs.err = fmt.Errorf("decoding: %w", err)
	} else if cs.resolved, err = s.Resolve(nil); err != nil {
		cs.err = fmt.Errorf("resolving: %w", err)
	} else {
		_ = json.Unmarshal(raw, &cs.doc) // it just decoded as a Schema
	}
	p.mu.Lock()
	if len(p.cache) >= p.limit {
		clear(p.cache)
	}
	p.cache[key] = cs
	p.mu.Unlock()
	return cs
}

// describe turns a validation error into a reason that names the failing
// field and the rule it broke, without the value: the library's messages
// quote the argument, and reasons reach the client and spans. It reads the
// library's "validating <schema path>: <keyword>: ..." messages; anything
// else is reported by its innermost schema path alone.
func describe(err error, doc any) string {
	msg, ptr := err.Error(), ""
	for strings.HasPrefix(msg, "validating ") {
		p, rest, ok := strings.Cut(strings.TrimPrefix(msg, "validating "), ": ")
		if !ok {
			break
		}
		ptr, msg = p, rest
	}
	subject := "arguments"
	if f := fieldOf(ptr); f != "" {
		subject = fmt.Sprintf("argument %q", f)
	}
	switch {
	case strings.HasPrefix(msg, "required: missing properties: "):
		// The list holds names from the schema.
		return subject + ": missing required properties " + strings.TrimPrefix(msg, "required: missing properties: ")
	case strings.HasPrefix(msg, "unexpected additional properties "):
		return subject + ": unexpected properties " + strings.TrimPrefix(msg, "unexpected additional properties ")
	case strings.HasPrefix(msg, "type: "):
		// "type: <value> has type "string", want "integer"": keep what
		// follows the value.
		if i := strings.LastIndex(msg, ` has type "`); i >= 0 {
			return subject + ": type " + strings.TrimPrefix(msg[i:], " has type ")
		}
	}
	kw, _, ok := strings.Cut(msg, ":")
	if !ok || !isKeyword(kw) {
		return subject + ": do not match the tool's inputSchema"
	}
	if v, ok := constraint(doc, ptr, kw); ok {
		return fmt.Sprintf("%s: fails %s %s", subject, kw, v)
	}
	return fmt.Sprintf("%s: fails %s", subject, kw)
}

func isKeyword(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// schemaArgs are the JSON Schema keywords whose next pointer segment is a
// name or index rather than a keyword.
var schemaArgs = map[string]bool{
	"properties": true, "patternProperties": true, "$defs": true, "definitions": true,
	"allOf": true, "anyOf": true, "oneOf": true, "prefixItems": true, "dependentSchemas": true,
}

// fieldOf turns a schema path such as /properties/opts/properties/unit into
// the argument it constrains, "opts.unit"; items become "[]".
func fieldOf(ptr string) string {
	if !strings.HasPrefix(ptr, "/") {
		return ""
	}
	segs := strings.Split(ptr[1:], "/")
	var f strings.Builder
	for i := 0; i < len(segs); i++ {
		seg := segs[i]
		switch {
		case seg == "properties" && i+1 < len(segs):
			if f.Len() > 0 {
				f.WriteByte('.')
			}
			f.WriteString(unescapePointer(segs[i+1]))
			i++
		case seg == "items" || seg == "prefixItems":
			f.WriteString("[]")
			if seg == "prefixItems" {
				i++
			}
		case seg == "$defs" || seg == "definitions":
			// A $ref jumped here: the path no longer says where in the
			// arguments we are, so name the field from here on.
			f.Reset()
			i++
		case schemaArgs[seg]:
			i++
		}
	}
	return f.String()
}

// unescapePointer undoes RFC 6901 section 4 escaping.
func unescapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}

// constraint returns the schema's value for keyword at ptr, encoded, when
// it is short enough to quote.
func constraint(doc any, ptr, keyword string) (string, bool) {
	node := doc
	if strings.HasPrefix(ptr, "/") {
		for _, seg := range strings.Split(ptr[1:], "/") {
			seg = unescapePointer(seg)
			switch n := node.(type) {
			case map[string]any:
				node = n[seg]
			case []any:
				i, err := strconv.Atoi(seg)
				if err != nil || i < 0 || i >= len(n) {
					return "", false
				}
				node = n[i]
			default:
				return "", false
			}
		}
	} else if ptr != "root" && ptr != "" {
		return "", false // an $id: not a path we can follow
	}
	m, ok := node.(map[string]any)
	if !ok {
		return "", false
	}
	v, ok := m[keyword]
	if !ok {
		return "", false
	}
	b, err := json.Marshal(v)
	if err != nil || len(b) > 80 {
		return "", false
	}
	return string(b), true
}
