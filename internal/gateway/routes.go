package gateway

import (
	"encoding/json"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/yosida95/uritemplate/v3"

	"github.com/tracegate/tracegate/internal/backend"
)

// routes is an immutable routing snapshot for one front server: the
// aggregate at /mcp, or one backend alone at /mcp/{backend}. The request
// path reads it through an atomic pointer, so routing takes no lock.
type routes struct {
	tools     map[string]*toolRoute
	prompts   map[string]*promptRoute
	resources map[string]*backend.Backend
	templates []templateRoute
	// gone maps names and URIs of backends that are not ready to their
	// backend, so a call gets "backend X is unavailable" rather than
	// "unknown tool".
	gone map[string]*backend.Backend
}

type toolRoute struct {
	backend  *backend.Backend
	original string
	tool     *mcp.Tool // as the client sees it (namespaced)
	schema   json.RawMessage
	// paramHeaders: the schema maps arguments to Mcp-Param-* headers,
	// which the SDK checks for 2026-07-28 clients.
	paramHeaders bool
}

type promptRoute struct {
	backend  *backend.Backend
	original string
	prompt   *mcp.Prompt
}

type templateRoute struct {
	backend  *backend.Backend
	tmpl     *uritemplate.Template
	resource *mcp.ResourceTemplate
}

func emptyRoutes() *routes {
	return &routes{
		tools:     map[string]*toolRoute{},
		prompts:   map[string]*promptRoute{},
		resources: map[string]*backend.Backend{},
		gone:      map[string]*backend.Backend{},
	}
}

// resource finds the backend serving uri: an exact resource first, then
// the first matching template.
func (r *routes) resource(uri string) *backend.Backend {
	if b, ok := r.resources[uri]; ok {
		return b
	}
	for _, t := range r.templates {
		if t.tmpl.Match(uri) != nil {
			return t.backend
		}
	}
	return nil
}

// namer renders tools.name_format.
type namer struct{ format string }

func (n namer) name(backendName, item string) string {
	if n.format == "" || n.format == "{backend}_{tool}" {
		return backendName + "_" + item
	}
	return strings.NewReplacer("{backend}", backendName, "{tool}", item).Replace(n.format)
}
