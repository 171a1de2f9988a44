package httplimit

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Names of the limits, the values of the limit attribute of
// tracegate.limit.refusals. They are the config keys that set them.
const (
	LimitConcurrentRequests = "max_concurrent_requests"
	LimitStreams            = "max_streams"
	LimitSessions           = "max_sessions"
	LimitBodyBytes          = "max_request_bytes"
	LimitBodyReadTimeout    = "body_read_timeout"
)

const scope = "github.com/tracegate/tracegate/internal/httplimit"

// Refusals counts refused requests in the tracegate.limit.refusals
// counter. A nil *Refusals counts nothing.
type Refusals struct {
	counter metric.Int64Counter
	attrs   map[string]metric.AddOption
}

// NewRefusals creates the counter on mp's meter.
func NewRefusals(mp metric.MeterProvider) (*Refusals, error) {
	c, err := mp.Meter(scope).Int64Counter("tracegate.limit.refusals",
		metric.WithUnit("{request}"),
		metric.WithDescription("Requests refused because a limit was reached, by the limit (its config key)."))
	if err != nil {
		return nil, fmt.Errorf("tracegate.limit.refusals counter: %w", err)
	}
	r := &Refusals{counter: c, attrs: map[string]metric.AddOption{}}
	for _, l := range []string{LimitConcurrentRequests, LimitStreams, LimitSessions, LimitBodyBytes, LimitBodyReadTimeout} {
		r.attrs[l] = metric.WithAttributeSet(attribute.NewSet(attribute.String("limit", l)))
	}
	return r, nil
}

// Add counts one refusal by limit, one of the Limit constants. Other
// names are counted as "other", so that the attribute stays a bounded set.
func (r *Refusals) Add(ctx context.Context, limit string) {
	if r == nil {
		return
	}
	opt, ok := r.attrs[limit]
	if !ok {
		opt = metric.WithAttributes(attribute.String("limit", "other"))
	}
	r.counter.Add(ctx, 1, opt)
}
