package gateway

import (
	"maps"
	"sync/atomic"
)

// maxPolicyNames bounds the cache; past it, the cache starts over.
const maxPolicyNames = 4096

// policyNames caches the namespaced name of each tool and prompt called on
// /mcp/{backend}, where clients use the backend's own names but plugin
// filters match the namespaced ones: asking whether a hook is active must
// not allocate on every call. Names come from backend catalogs, so the
// cache stays small; it is copied on write and read without a lock. It
// holds the names of one name format: a reload that changes the format
// starts it over.
type policyNames struct {
	m atomic.Pointer[policyCache]
}

type policyCache struct {
	format string
	names  map[policyKey]string
}

type policyKey struct{ backend, original string }

func (p *policyNames) get(n *namer, backend, original string) string {
	k := policyKey{backend, original}
	format := n.current()
	if c := p.m.Load(); c != nil && c.format == format {
		if name, ok := c.names[k]; ok {
			return name
		}
	}
	name := nameWith(format, backend, original)
	for {
		old := p.m.Load()
		next := &policyCache{format: format}
		if old == nil || old.format != format || len(old.names) >= maxPolicyNames {
			next.names = make(map[policyKey]string, 1)
		} else {
			next.names = maps.Clone(old.names)
		}
		next.names[k] = name
		if p.m.CompareAndSwap(old, next) {
			return name
		}
	}
}
