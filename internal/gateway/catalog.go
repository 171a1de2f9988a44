package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/yosida95/uritemplate/v3"

	"github.com/tracegate/tracegate/internal/backend"
)

// front is one virtual MCP server: the aggregate of every backend at /mcp,
// or a single backend with its original names at /mcp/{backend}.
type front struct {
	server   *mcp.Server
	backends []*backend.Backend
	namer    *namer // nil: original names (single-backend view)
	log      *slog.Logger
	table    atomic.Pointer[routes]
	sessions *sessionTable

	mu sync.Mutex // serializes sync; guards the registered sets
	// What is registered on server, keyed by client-visible name or URI,
	// so that sync only adds and removes what changed (each change makes
	// the SDK send list_changed to every client).
	tools     map[string]*mcp.Tool
	prompts   map[string]*mcp.Prompt
	resources map[string]*mcp.Resource
	templates map[string]*mcp.ResourceTemplate
	// lastSeen keeps each backend's last ready catalog so that its names
	// can be answered with "unavailable" while it is down.
	lastSeen map[*backend.Backend]*backend.Catalog
}

func newFront(server *mcp.Server, backends []*backend.Backend, n *namer, log *slog.Logger) *front {
	f := &front{
		server:    server,
		backends:  backends,
		namer:     n,
		log:       log,
		tools:     map[string]*mcp.Tool{},
		prompts:   map[string]*mcp.Prompt{},
		resources: map[string]*mcp.Resource{},
		templates: map[string]*mcp.ResourceTemplate{},
		lastSeen:  map[*backend.Backend]*backend.Catalog{},
		sessions:  newSessionTable(),
	}
	f.table.Store(emptyRoutes())
	return f
}

func (f *front) routes() *routes { return f.table.Load() }

func (f *front) visible(b *backend.Backend, name string) string {
	if f.namer == nil {
		return name
	}
	return f.namer.name(b.Name(), name)
}

// sync rebuilds the routing table from the backends' current catalogs and
// brings the SDK server's registrations in line with it.
func (f *front) sync() {
	f.mu.Lock()
	defer f.mu.Unlock()

	rt := emptyRoutes()
	wantTools := map[string]*mcp.Tool{}
	wantPrompts := map[string]*mcp.Prompt{}
	wantResources := map[string]*mcp.Resource{}
	wantTemplates := map[string]*mcp.ResourceTemplate{}

	for _, b := range f.backends {
		ready := b.State() == backend.StateReady
		cat := b.Catalog()
		if ready {
			f.lastSeen[b] = cat
		} else {
			if last := f.lastSeen[b]; last != nil {
				f.tombstone(rt, b, last)
			}
			continue
		}
		for _, t := range cat.Tools {
			name := f.visible(b, t.Name)
			if _, dup := rt.tools[name]; dup {
				f.log.Warn("duplicate tool name; keeping the first", "tool", name, "backend", b.Name())
				continue
			}
			schema, ok := objectSchema(t.InputSchema)
			if !ok {
				f.log.Warn("tool skipped: inputSchema is not a JSON object schema", "tool", t.Name, "backend", b.Name())
				continue
			}
			vt := t
			if name != t.Name {
				c := *t
				c.Name = name
				vt = &c
			}
			rt.tools[name] = &toolRoute{backend: b, original: t.Name, tool: vt, schema: schema,
				paramHeaders: bytes.Contains(schema, []byte(`"x-mcp-header"`))}
			wantTools[name] = vt
		}
		for _, p := range cat.Prompts {
			name := f.visible(b, p.Name)
			if _, dup := rt.prompts[name]; dup {
				continue
			}
			vp := p
			if name != p.Name {
				c := *p
				c.Name = name
				vp = &c
			}
			rt.prompts[name] = &promptRoute{backend: b, original: p.Name, prompt: vp}
			wantPrompts[name] = vp
		}
		for _, r := range cat.Resources {
			if _, dup := rt.resources[r.URI]; dup {
				continue
			}
			rt.resources[r.URI] = b
			wantResources[r.URI] = r
		}
		for _, t := range cat.Templates {
			tmpl, err := uritemplate.New(t.URITemplate)
			if err != nil {
				f.log.Warn("resource template skipped", "template", t.URITemplate, "backend", b.Name(), "error", err)
				continue
			}
			if _, dup := wantTemplates[t.URITemplate]; dup {
				continue
			}
			rt.templates = append(rt.templates, templateRoute{backend: b, tmpl: tmpl, resource: t})
			wantTemplates[t.URITemplate] = t
		}
	}
	f.table.Store(rt)
	f.apply(wantTools, wantPrompts, wantResources, wantTemplates)
}

func (f *front) tombstone(rt *routes, b *backend.Backend, cat *backend.Catalog) {
	for _, t := range cat.Tools {
		rt.gone["tool:"+f.visible(b, t.Name)] = b
	}
	for _, p := range cat.Prompts {
		rt.gone["prompt:"+f.visible(b, p.Name)] = b
	}
	for _, r := range cat.Resources {
		rt.gone["resource:"+r.URI] = b
	}
}

// apply registers and unregisters on the SDK server. Registered handlers
// are never reached for calls (the dispatch middleware answers first); they
// exist so that the SDK lists, paginates and announces list_changed.
func (f *front) apply(tools map[string]*mcp.Tool, prompts map[string]*mcp.Prompt, resources map[string]*mcp.Resource, templates map[string]*mcp.ResourceTemplate) {
	s := f.server
	reconcile(f.tools, tools, s.RemoveTools, func(t *mcp.Tool) { s.AddTool(t, unreachableTool) })
	reconcile(f.prompts, prompts, s.RemovePrompts, func(p *mcp.Prompt) { s.AddPrompt(p, unreachablePrompt) })
	reconcile(f.resources, resources, s.RemoveResources, func(r *mcp.Resource) { s.AddResource(r, unreachableResource) })
	reconcile(f.templates, templates, s.RemoveResourceTemplates, func(t *mcp.ResourceTemplate) { s.AddResourceTemplate(t, unreachableResource) })
}

// reconcile brings the registered set have in line with want, touching
// only what changed: every SDK add or remove sends list_changed to clients.
// Items are compared by pointer, since catalogs are immutable once listed.
func reconcile[T comparable](have, want map[string]T, remove func(...string), add func(T)) {
	var drop []string
	for k := range have {
		if _, ok := want[k]; !ok {
			drop = append(drop, k)
		}
	}
	if len(drop) > 0 {
		remove(drop...)
		for _, k := range drop {
			delete(have, k)
		}
	}
	for k, v := range want {
		if have[k] != v {
			add(v)
			have[k] = v
		}
	}
}

// objectSchema returns the schema as JSON when it describes an object, which
// the protocol requires of inputSchema (and the SDK enforces).
func objectSchema(s any) (json.RawMessage, bool) {
	if s == nil {
		return nil, false
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return nil, false
	}
	var head struct {
		Type any `json:"type"`
	}
	if json.Unmarshal(raw, &head) != nil || head.Type != "object" {
		return nil, false
	}
	return raw, true
}

func unreachableTool(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return nil, errNotRouted
}

func unreachablePrompt(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	return nil, errNotRouted
}

func unreachableResource(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	return nil, errNotRouted
}
