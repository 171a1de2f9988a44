package config

import (
	"errors"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the work of decoding, so that a small file of nested
// aliases (a "billion laughs") cannot expand into a huge one.
const maxNodes = 100_000

// decoder fills Go values from a yaml.Node tree. It exists, rather than
// yaml's own Decode with KnownFields, so that every error carries the path
// of the value at fault as well as its line, and so that all of them are
// reported at once.
type decoder struct {
	errs     Errors
	expanded map[*yaml.Node]bool // scalars changed by ${VAR} expansion
	active   map[*yaml.Node]bool // anchored nodes being decoded, to stop cycles
	nodes    int
}

// enter resolves an alias and reports whether decoding may go into the
// result: not when the node budget is spent, nor when an anchored node
// contains an alias to itself (`a: &x [*x]`). A true result must be
// followed by leave.
func (d *decoder) enter(n *yaml.Node, path string) (*yaml.Node, bool) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if d.nodes++; d.nodes > maxNodes {
		if d.nodes == maxNodes+1 {
			d.fail(n, "", "more than %d values after alias expansion", maxNodes)
		}
		return n, false
	}
	if n.Anchor != "" {
		if d.active[n] {
			d.fail(n, path, "anchor &%s contains an alias to itself", n.Anchor)
			return n, false
		}
		d.active[n] = true
	}
	return n, true
}

func (d *decoder) leave(n *yaml.Node) {
	if n.Anchor != "" {
		delete(d.active, n)
	}
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// literal is implemented by types that, like strings, take an expanded
// ${VAR} as its text even when it reads "null" or is empty.
type literal interface{ literalScalar() }

var literalType = reflect.TypeFor[literal]()

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs.addNode(n, path, format, args...)
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n, ok := d.enter(n, path)
	if !ok {
		return
	}
	defer d.leave(n)
	d.value(n, v, path)
}

// value decodes n, which is not an alias, into v.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && v.Kind() == reflect.String && d.expanded[n] {
		// Expanded text is taken literally: a variable holding "null"
		// or "" gives that string, not a YAML null.
		v.SetString(n.Value)
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" && !(d.expanded[n] && reflect.PointerTo(v.Type()).Implements(literalType)) {
		return // leave the zero value, which defaults fill in
	}
	if v.CanAddr() && reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.value(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "want a mapping, got %s", kindName(n))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for _, p := range d.pairs(n, path) {
			d.mapEntry(p, v, path)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), indexPath(path, i))
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a string, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	default: // numbers, bools, and the any values of plugin options
		if n.Kind != yaml.ScalarNode && v.Kind() != reflect.Interface {
			d.fail(n, path, "want %s, got %s", wantName(v.Kind()), kindName(n))
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			if v.Kind() == reflect.Interface {
				d.fail(n, path, "%s", yamlMessage(err))
			} else {
				d.fail(n, path, "want %s", wantName(v.Kind()))
			}
		}
	}
}

// structure decodes a mapping into a struct, refusing keys the struct does
// not name unless it has an inline map to hold them (Plugin.Options).
func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", kindName(n))
		return
	}
	t := v.Type()
	inline := -1
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, opts, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		switch {
		case opts == "inline":
			inline = i
		case name != "" && name != "-":
			fields[name] = i
		}
	}
	for _, p := range d.pairs(n, path) {
		if i, ok := fields[p.name]; ok {
			d.decode(p.val, v.Field(i), keyPath(path, p.name))
			continue
		}
		if inline < 0 {
			d.fail(p.key, keyPath(path, p.name), "unknown key")
			continue
		}
		m := v.Field(inline)
		if m.IsNil() {
			m.Set(reflect.MakeMap(m.Type()))
		}
		d.mapEntry(p, m, path)
	}
}

func (d *decoder) mapEntry(p pair, m reflect.Value, path string) {
	e := reflect.New(m.Type().Elem()).Elem()
	d.decode(p.val, e, keyPath(path, p.name))
	m.SetMapIndex(reflect.ValueOf(p.name), e)
}

type pair struct {
	key, val *yaml.Node
	name     string
}

// pairs lists the entries of mapping n in file order, with YAML merge keys
// (<<) resolved: merged entries come first and explicit keys override them
// (https://yaml.org/type/merge.html). A key given twice is an error, as
// YAML 1.2 section 3.2.1.1 requires keys to be unique.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	var merged, own []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "keys must be strings, got %s", kindName(k))
			continue
		}
		if k.Tag == "!!merge" {
			merged = append(merged, d.merge(v, path)...)
			continue
		}
		own = append(own, pair{key: k, val: v, name: k.Value})
	}
	first := make(map[string]*yaml.Node, len(own))
	out := make([]pair, 0, len(merged)+len(own))
	for _, p := range own {
		if prev, dup := first[p.name]; dup {
			d.fail(p.key, keyPath(path, p.name), "duplicate key (first at line %d)", prev.Line)
			continue
		}
		first[p.name] = p.key
	}
	for _, p := range merged {
		if _, overridden := first[p.name]; !overridden {
			first[p.name] = p.key
			out = append(out, p)
		}
	}
	for _, p := range own {
		if first[p.name] == p.key {
			out = append(out, p)
		}
	}
	return out
}

// merge returns the entries that a << value brings in: one mapping, or a
// list of them where earlier ones win.
func (d *decoder) merge(v *yaml.Node, path string) []pair {
	v, ok := d.enter(v, path)
	if !ok {
		return nil
	}
	defer d.leave(v)
	switch v.Kind {
	case yaml.MappingNode:
		return d.pairs(v, path)
	case yaml.SequenceNode:
		var out []pair
		seen := map[string]bool{}
		for _, m := range v.Content {
			for _, p := range d.merge(m, path) {
				if !seen[p.name] {
					seen[p.name] = true
					out = append(out, p)
				}
			}
		}
		return out
	}
	d.fail(v, path, "<< wants a mapping or a list of mappings")
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a scalar"
}

func wantName(k reflect.Kind) string {
	switch k {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a value"
}

// yamlMessage shortens an error from yaml's own decoder to its messages,
// without the "yaml:" prefix and line numbers that our FieldError adds.
func yamlMessage(err error) string {
	var te *yaml.TypeError
	msgs := []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for i, m := range msgs {
		if _, rest, ok := strings.Cut(m, ": "); ok && strings.HasPrefix(m, "line ") {
			msgs[i] = rest
		}
	}
	return strings.Join(msgs, "; ")
}
