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
// cache stays small; it is copied on write and read without a lock.
type policyNames struct {
	m atomic.Pointer[map[policyKey]string]
}

type policyKey struct{ backend, original string }

func (p *policyNames) get(n *namer, backend, original string) string {
	k := policyKey{backend, original}
	if m := p.m.Load(); m != nil {
		if name, ok := (*m)[k]; ok {
			return name
		}
	}
	name := n.name(backend, original)
	for {
		old := p.m.Load()
		var next map[policyKey]string
		if old == nil || len(*old) >= maxPolicyNames {
			next = make(map[policyKey]string, 1)
		} else {
			next = maps.Clone(*old)
		}
		next[k] = name
		if p.m.CompareAndSwap(old, &next) {
			return name
		}
	}
}
