package mcptrace

import (
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// maxCached bounds each cache of an instrumenter. Tool and prompt names come
// from callers, so a peer that sends many names must not grow memory: past
// the bound, values are built per call as if there were no cache.
const maxCached = 1024

// boundedCache memoizes values that are costly to build on every call but
// few in kind, such as span names and metric attribute sets. The map is
// copied on write and read with one atomic load, so concurrent requests
// share no lock; writes stop at maxCached entries.
type boundedCache[K comparable, V any] struct {
	mu sync.Mutex // serializes writers
	m  atomic.Pointer[map[K]V]
}

func (c *boundedCache[K, V]) get(k K, build func() V) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	v := build()
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[K]V
	if m := c.m.Load(); m != nil {
		old = *m
	}
	if _, ok := old[k]; !ok && len(old) < maxCached {
		m := make(map[K]V, len(old)+1)
		for ok, ov := range old {
			m[ok] = ov
		}
		m[k] = v
		c.m.Store(&m)
	}
	return v
}

// len returns the number of cached values.
func (c *boundedCache[K, V]) len() int {
	if m := c.m.Load(); m != nil {
		return len(*m)
	}
	return 0
}

// operation is what labels one operation duration measurement, besides
// the instance's fixed attributes: the cache key of its attribute set.
type operation struct {
	method, tool, prompt, version string
	net                           network
	errorType, statusCode         string
}

func newOperation(m message, version string, n network) operation {
	return operation{method: m.method, tool: m.toolName, prompt: m.promptName, version: version, net: n}
}

// recordOptions returns the options that record a measurement of op.
// Building an attribute set sorts and copies, so each distinct one is
// built once.
func (in *instrumenter) recordOptions(op operation) []metric.RecordOption {
	return in.records.get(op, func() []metric.RecordOption {
		return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(in.metricAttrs(op, 0)...))}
	})
}

// spanName returns m's span name, built once per method and target.
func (in *instrumenter) spanName(m message) string {
	if m.toolName == "" && m.promptName == "" {
		return m.method // no concatenation, nothing to keep
	}
	return in.names.get(message{method: m.method, toolName: m.toolName, promptName: m.promptName}, m.spanName)
}
