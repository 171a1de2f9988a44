package traceview

import (
	"sync"

	"go.opentelemetry.io/otel/attribute"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// origin is what the store keeps of the process that made a span: its
// service.name and its resource attributes. Spans of one process share it.
type origin struct {
	service string
	attrs   []attribute.KeyValue
}

// maxResourceAttrs bounds a resource's attributes; resources describe a
// process in a few dozen.
const maxResourceAttrs = 64

// newResource bounds attrs and reads the service name from them. It
// returns the resource and its estimated heap cost.
func newResource(attrs []attribute.KeyValue) (*origin, int64) {
	b := newBudget()
	attrs = b.attrs(attrs[:min(len(attrs), maxResourceAttrs)])
	r := &origin{service: unknownService, attrs: attrs}
	for _, kv := range attrs {
		if kv.Key == semconv.ServiceNameKey && kv.Value.Type() == attribute.STRING && kv.Value.AsString() != "" {
			r.service = truncate(kv.Value.AsString(), maxNameLen)
		}
	}
	return r, 64 + attrsCost(attrs)
}

// resourceCache maps the SDK's resources to the store's, so that spans
// of the in-process tracer providers share one. A process has a handful;
// the map is emptied if it ever grows past a bound.
type resourceCache struct {
	mu sync.Mutex
	m  map[*sdkresource.Resource]*origin
}

const maxCachedResources = 64

// get returns the store's resource for res, and its cost when it is new.
func (c *resourceCache) get(res *sdkresource.Resource) (*origin, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.m[res]; ok {
		return r, 0
	}
	var attrs []attribute.KeyValue
	if res != nil {
		attrs = res.Attributes()
	}
	r, cost := newResource(attrs)
	if c.m == nil || len(c.m) >= maxCachedResources {
		c.m = make(map[*sdkresource.Resource]*origin)
	}
	c.m[res] = r
	return r, cost
}
