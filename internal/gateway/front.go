package gateway

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/yosida95/uritemplate/v3"

	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/wire"
)

// front is one virtual MCP server: the aggregate of every backend at /mcp
// (name ""), or one backend with its own names at /mcp/{backend}. A front
// lives as long as its endpoint: sessions point to it, and a reload
// changes its members (setBackends) rather than the front.
type front struct {
	g     *Gateway
	name  string
	namer *namer // nil: the backends' own names
	cur   atomic.Pointer[view]

	mu sync.Mutex // serializes sync and setBackends
	// lastSeen keeps each backend's last ready catalog, so that its names
	// can be answered with "unavailable" while it is down.
	lastSeen map[*backend.Backend]*backend.Catalog
}

// view is an immutable snapshot of a front: its routes and its prebuilt
// list results. The request path reads it with one atomic load.
type view struct {
	// backends are the front's members, in configuration order.
	backends  []*backend.Backend
	tools     map[string]*route
	prompts   map[string]*route
	resources map[string]*backend.Backend
	templates []templateRoute
	// gone maps the names and URIs of backends that are not ready to
	// their backend, so that a call gets "backend X is unavailable"
	// rather than "unknown tool".
	gone map[string]*backend.Backend

	// Results of the list methods, and what initialize declares.
	toolsList, promptsList, resourcesList, templatesList []byte
	capabilities                                         []byte
	instructions                                         string
}

// route is where a tool or prompt goes.
type route struct {
	backend  *backend.Backend
	original string // the backend's own name
	visible  string // the name clients see
	schema   []byte // a tool's inputSchema
	// paramHeaders: the schema maps arguments to Mcp-Param-* headers,
	// which 2026-07-28 clients send and the gateway checks.
	paramHeaders bool
}

type templateRoute struct {
	backend *backend.Backend
	tmpl    *uritemplate.Template
	raw     string
}

func newFront(g *Gateway, name string, backends []*backend.Backend, n *namer) *front {
	f := &front{g: g, name: name, namer: n, lastSeen: map[*backend.Backend]*backend.Catalog{}}
	f.cur.Store(f.build(backends))
	return f
}

func (f *front) view() *view { return f.cur.Load() }

// resource finds the backend serving uri: an exact resource first, then
// the first matching template.
func (v *view) resource(uri string) *backend.Backend {
	if b, ok := v.resources[uri]; ok {
		return b
	}
	for _, t := range v.templates {
		if t.tmpl.Match(uri) != nil {
			return t.backend
		}
	}
	return nil
}

func (f *front) visible(b *backend.Backend, name string) string {
	if f.namer == nil {
		return name
	}
	return f.namer.name(b.Name(), name)
}

// sync rebuilds the view from the backends' catalogs and sends
// list_changed for each list whose content changed, to the sessions of
// this front that can receive it.
func (f *front) sync() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.publish(f.cur.Load().backends)
}

// setBackends makes backends the front's members, as sync does: the
// sessions of the front stay, and see the lists change.
func (f *front) setBackends(backends []*backend.Backend) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for b := range f.lastSeen {
		if !slices.Contains(backends, b) {
			delete(f.lastSeen, b)
		}
	}
	f.publish(backends)
}

// inherit lets to answer for the names from's catalog had, while to is
// not ready: a backend's replacement that is down gets calls to its tools
// answered "unavailable", not "unknown tool".
func (f *front) inherit(from, to *backend.Backend) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.lastSeen[to]; !ok && f.lastSeen[from] != nil {
		f.lastSeen[to] = f.lastSeen[from]
	}
}

// publish builds the view of backends and puts it in force, then sends
// list_changed for each list whose content changed. Caller holds f.mu.
func (f *front) publish(backends []*backend.Backend) {
	old := f.cur.Load()
	next := f.build(backends)
	f.cur.Store(next)
	var changed []string
	if !bytes.Equal(old.toolsList, next.toolsList) {
		changed = append(changed, "notifications/tools/list_changed")
	}
	if !bytes.Equal(old.promptsList, next.promptsList) {
		changed = append(changed, "notifications/prompts/list_changed")
	}
	if !bytes.Equal(old.resourcesList, next.resourcesList) || !bytes.Equal(old.templatesList, next.templatesList) {
		changed = append(changed, "notifications/resources/list_changed")
	}
	for _, method := range changed {
		f.g.broadcast(f, method, wire.AppendRequest(nil, nil, method, nil), nil)
	}
}

// build makes a view of backends from their current catalogs. Caller
// holds f.mu, or f is being made.
func (f *front) build(backends []*backend.Backend) *view {
	v := &view{
		backends:  backends,
		tools:     map[string]*route{},
		prompts:   map[string]*route{},
		resources: map[string]*backend.Backend{},
		gone:      map[string]*backend.Backend{},
	}
	var tools, prompts, resources, templates [][]byte
	caps := capabilitySet{}
	var instructions []string
	for _, b := range backends {
		cat := b.Catalog()
		if b.State() != backend.StateReady {
			if last := f.lastSeen[b]; last != nil {
				for _, t := range last.Tools {
					v.gone["tool:"+f.visible(b, t.Key)] = b
				}
				for _, p := range last.Prompts {
					v.gone["prompt:"+f.visible(b, p.Key)] = b
				}
				for _, r := range last.Resources {
					v.gone["resource:"+r.Key] = b
				}
			}
			continue
		}
		f.lastSeen[b] = cat
		caps.add(cat.Init.Caps)
		if s := strings.TrimSpace(cat.Init.Instructions); s != "" {
			if f.namer == nil {
				instructions = append(instructions, s)
			} else {
				instructions = append(instructions, "## "+b.Name()+"\n\n"+s)
			}
		}
		for _, t := range cat.Tools {
			name := f.visible(b, t.Key)
			if _, dup := v.tools[name]; dup {
				f.g.log.Warn("duplicate tool name; keeping the first", "tool", name, "backend", b.Name())
				continue
			}
			schema := wire.Get(t.Raw, "inputSchema")
			if len(schema) == 0 || schema[0] != '{' {
				f.g.log.Warn("tool skipped: inputSchema is not a JSON object", "tool", t.Key, "backend", b.Name())
				continue
			}
			v.tools[name] = &route{backend: b, original: t.Key, visible: name, schema: schema,
				paramHeaders: bytes.Contains(schema, []byte(`"x-mcp-header"`))}
			tools = append(tools, renamed(t.Raw, "name", t.Key, name))
		}
		for _, p := range cat.Prompts {
			name := f.visible(b, p.Key)
			if _, dup := v.prompts[name]; dup {
				f.g.log.Warn("duplicate prompt name; keeping the first", "prompt", name, "backend", b.Name())
				continue
			}
			v.prompts[name] = &route{backend: b, original: p.Key, visible: name}
			prompts = append(prompts, renamed(p.Raw, "name", p.Key, name))
		}
		for _, r := range cat.Resources {
			if owner, dup := v.resources[r.Key]; dup {
				// A read must never reach the wrong backend: the URI stays
				// with the first backend that lists it, and the other's
				// copy is left out here (it is served at /mcp/{backend}).
				f.g.log.Warn("resource URI listed by two backends; /mcp serves it from the first",
					"uri", r.Key, "backend", owner.Name(), "left_out", b.Name())
				continue
			}
			v.resources[r.Key] = b
			resources = append(resources, r.Raw)
		}
		for _, t := range cat.Templates {
			tmpl, err := uritemplate.New(t.Key)
			if err != nil {
				f.g.log.Warn("resource template skipped: invalid URI template", "template", t.Key, "backend", b.Name())
				continue
			}
			v.templates = append(v.templates, templateRoute{backend: b, tmpl: tmpl, raw: t.Key})
			templates = append(templates, t.Raw)
		}
	}
	v.toolsList = listResult("tools", tools)
	v.promptsList = listResult("prompts", prompts)
	v.resourcesList = listResult("resources", resources)
	v.templatesList = listResult("resourceTemplates", templates)
	v.capabilities = caps.json()
	v.instructions = strings.Join(instructions, "\n\n")
	return v
}

// renamed returns item with its key member changed from old to name, or
// item itself when they are the same.
func renamed(item []byte, key, old, name string) []byte {
	if old == name {
		return item
	}
	return wire.AppendParams(nil, item, []wire.Set{{Key: key, Value: wire.AppendString(nil, name)}}, nil)
}

func listResult(field string, items [][]byte) []byte {
	out := append([]byte(`{"`), field...)
	out = append(out, `":[`...)
	for i, it := range items {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, it...)
	}
	return append(out, "]}"...)
}

// capabilitySet is what a front declares: the union of its ready
// backends' capabilities. Tools, prompts and resources always declare
// listChanged, since the set of backends changes under the client.
type capabilitySet struct {
	backend.Caps
}

func (c *capabilitySet) add(b backend.Caps) {
	c.Tools = c.Tools || b.Tools
	c.Prompts = c.Prompts || b.Prompts
	c.Resources = c.Resources || b.Resources
	c.Subscribe = c.Subscribe || b.Subscribe
	c.Completions = c.Completions || b.Completions
	c.Logging = c.Logging || b.Logging
}

func (c capabilitySet) json() []byte {
	caps := map[string]any{
		// Always: backends come and go, and a client told there are no
		// tools would never ask again.
		"tools":     map[string]any{"listChanged": true},
		"prompts":   map[string]any{"listChanged": true},
		"resources": map[string]any{"listChanged": true, "subscribe": c.Subscribe},
		// The gateway answers logging/setLevel itself.
		"logging": map[string]any{},
	}
	if c.Completions {
		caps["completions"] = map[string]any{}
	}
	out, _ := json.Marshal(caps)
	return out
}

// namer renders tools.name_format, which a reload may change.
type namer struct{ format atomic.Pointer[string] }

func newNamer(format string) *namer {
	n := &namer{}
	n.set(format)
	return n
}

func (n *namer) set(format string) { n.format.Store(&format) }

func (n *namer) current() string { return *n.format.Load() }

func (n *namer) name(backendName, item string) string {
	return nameWith(n.current(), backendName, item)
}

func nameWith(format, backendName, item string) string {
	if format == "" || format == "{backend}_{tool}" {
		return backendName + "_" + item
	}
	return strings.NewReplacer("{backend}", backendName, "{tool}", item).Replace(format)
}
