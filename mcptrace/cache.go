package mcptrace

import (
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// maxCached bounds each cache of an instrumenter. Tool and prompt names come
// from callers, so a peer that sends many names must not grow memory: past
// the bound, values are built per call as if there were no cache.
const maxCached = 1024

// boundedCache memoizes values that are costly to build on every call but
// few in kind, such as span names and metric attribute sets. Reads take a
// read lock only.
type boundedCache[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

func (c *boundedCache[K, V]) get(k K, build func() V) V {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = build()
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[K]V)
	}
	if len(c.m) < maxCached {
		c.m[k] = v
	}
	c.mu.Unlock()
	return v
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
