package config

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Result is everything Check finds in a configuration file.
type Result struct {
	// Config is decoded as far as the file allows, with defaults applied;
	// nil when the file is not YAML or is empty. It is fit to serve only
	// when Errors is empty.
	Config *Config
	// Errors are the problems that stop the file from being served,
	// decoding and validation alike, each with its line and column where
	// the value at fault (or, for a missing one, the entry that lacks it)
	// is in the file.
	Errors Errors
	// Warnings are what serves but is probably not meant; see
	// Config.Warnings. Variables without a default that are unset or
	// empty are warnings too, unless an error names them already.
	Warnings Errors

	pos *positions
}

// Position returns where the value at path, or the nearest entry that
// contains it, is in the file; 0, 0 when it is nowhere (the whole file).
func (r *Result) Position(path string) (line, column int) {
	if r.pos == nil {
		return 0, 0
	}
	if n := r.pos.find(path); n != nil {
		return n.Line, n.Column
	}
	return 0, 0
}

// Check decodes, completes and validates data in one pass, as Parse does,
// and reports every problem at once rather than stopping after the first
// stage that fails. An error that follows from another (a value that did
// not decode, then fails validation) is reported once.
func Check(data []byte, getenv func(string) string) *Result {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	root, errs := parseDocument(data)
	if errs != nil {
		return &Result{Errors: errs}
	}
	if root == nil {
		return &Result{Errors: Errors{{Line: 1, Column: 1, Msg: "empty file: want a mapping of settings, such as backends"}}}
	}
	c := new(Config)
	d := &decoder{expanded: map[*yaml.Node]bool{}, active: map[*yaml.Node]bool{}}
	unset := map[*yaml.Node][]string{}
	expandTree(root, "", getenv, &d.errs, d.expanded, unset)
	d.decode(root, reflect.ValueOf(c).Elem(), "")
	c.ApplyDefaults()

	pos := newPositions(root)
	r := &Result{Config: c, Errors: d.errs, pos: pos}
	if err := c.Validate(); err != nil {
		for _, e := range err.(Errors) {
			if covered(d.errs, e.Path) {
				continue
			}
			if n := pos.find(e.Path); n != nil {
				e.Line, e.Column = n.Line, n.Column
				if vars := unset[n]; len(vars) > 0 {
					e.Msg += fmt.Sprintf(" (%s unset or empty)", varList(vars))
				}
			}
			r.Errors = append(r.Errors, e)
		}
	}
	for _, w := range c.Warnings() {
		if n := pos.find(w.Path); n != nil {
			w.Line, w.Column = n.Line, n.Column
		}
		r.Warnings = append(r.Warnings, w)
	}
	// In file order, each unset variable that no error mentions.
	pos.walk(func(path string, n *yaml.Node) {
		vars := unset[n]
		if len(vars) == 0 {
			return
		}
		for _, e := range r.Errors {
			if e.Line == n.Line && e.Column == n.Column {
				return
			}
		}
		r.Warnings = append(r.Warnings, &FieldError{Line: n.Line, Column: n.Column, Path: path,
			Msg: fmt.Sprintf("%s unset or empty, so the value is %q", varList(vars), n.Value)})
	})
	return r
}

// covered reports whether one of errs, from decoding, is about path or a
// value that contains it: a value that did not decode is left at its
// default, and validating that default would report it twice.
func covered(errs Errors, path string) bool {
	for _, prev := range errs {
		if prev.Path != "" && (path == prev.Path || strings.HasPrefix(path, prev.Path+".") || strings.HasPrefix(path, prev.Path+"[")) {
			return true
		}
	}
	return false
}

func varList(vars []string) string {
	s := make([]string, len(vars))
	for i, v := range vars {
		s[i] = "${" + v + "}"
	}
	return strings.Join(s, ", ")
}

// positions maps each path of a YAML tree, as FieldError names them, to
// its value node, with aliases and merge keys resolved as the decoder
// resolves them.
type positions struct {
	nodes  map[string]*yaml.Node
	order  []string
	active map[*yaml.Node]bool
}

func newPositions(root *yaml.Node) *positions {
	p := &positions{nodes: map[string]*yaml.Node{}, active: map[*yaml.Node]bool{}}
	budget := maxNodes
	p.add(root, "", &budget)
	return p
}

func (p *positions) add(n *yaml.Node, path string, budget *int) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	// As in decoder.enter: a bounded amount of work, and no way into a
	// node that contains an alias to itself.
	if *budget--; *budget < 0 || p.active[n] {
		return
	}
	p.active[n] = true
	defer delete(p.active, n)
	if _, seen := p.nodes[path]; !seen {
		p.nodes[path] = n
		p.order = append(p.order, path)
	} else {
		return // an explicit key won over a merged one
	}
	switch n.Kind {
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p.add(c, indexPath(path, i), budget)
		}
	case yaml.MappingNode:
		var merges []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				merges = append(merges, v)
				continue
			}
			p.add(v, keyPath(path, k.Value), budget)
		}
		for _, m := range merges {
			if m.Kind == yaml.AliasNode {
				m = m.Alias
			}
			if p.active[m] {
				continue
			}
			targets := []*yaml.Node{m}
			if m.Kind == yaml.SequenceNode {
				targets = m.Content
			}
			for _, t := range targets {
				if t.Kind == yaml.AliasNode {
					t = t.Alias
				}
				if t.Kind != yaml.MappingNode {
					continue
				}
				for i := 0; i+1 < len(t.Content); i += 2 {
					p.add(t.Content[i+1], keyPath(path, t.Content[i].Value), budget)
				}
			}
		}
	}
}

// find returns the node at path or, for a value the file leaves out, at
// the nearest enclosing path that it has; nil for the root path.
func (p *positions) find(path string) *yaml.Node {
	for path != "" {
		if n, ok := p.nodes[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return nil
		}
		path = path[:i]
	}
	return nil
}

func (p *positions) walk(f func(path string, n *yaml.Node)) {
	for _, path := range p.order {
		f(path, p.nodes[path])
	}
}
