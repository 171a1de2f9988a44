package main

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tracegate/tracegate/internal/backend"
)

const backendScope = "github.com/tracegate/tracegate/internal/backend"

// backendMetrics are the operators' view of backend health:
// tracegate.backend.up and tracegate.backend.restarts are read from the
// backends' statuses at each collection, and state changes are counted as
// they happen (gateway.Options.OnBackendState).
type backendMetrics struct {
	changes metric.Int64Counter
}

// newBackendMetrics registers the backend instruments on mp. backends is
// called at each collection; it returns the gateway's backends, or nil
// before the gateway exists.
func newBackendMetrics(mp metric.MeterProvider, backends func() []*backend.Backend) (*backendMetrics, error) {
	m := mp.Meter(backendScope)
	// No unit: with "1" the Prometheus name would gain a _ratio suffix.
	up, err := m.Int64ObservableGauge("tracegate.backend.up",
		metric.WithDescription("1 while the backend is connected and its catalog listed (state ready), else 0."))
	if err != nil {
		return nil, fmt.Errorf("tracegate.backend.up gauge: %w", err)
	}
	restarts, err := m.Int64ObservableCounter("tracegate.backend.restarts",
		metric.WithUnit("{restart}"),
		metric.WithDescription("Reconnections of a backend after its first connect (for stdio, restarts of its child)."))
	if err != nil {
		return nil, fmt.Errorf("tracegate.backend.restarts counter: %w", err)
	}
	changes, err := m.Int64Counter("tracegate.backend.state_changes",
		metric.WithUnit("{change}"),
		metric.WithDescription("Backend state changes, by backend and the state entered (connecting, ready, down, stopped)."))
	if err != nil {
		return nil, fmt.Errorf("tracegate.backend.state_changes counter: %w", err)
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, b := range backends() {
			st := b.Status()
			name := metric.WithAttributes(attribute.String("tracegate.backend.name", st.Name))
			v := int64(0)
			if st.State == backend.StateReady {
				v = 1
			}
			o.ObserveInt64(up, v, name)
			o.ObserveInt64(restarts, int64(st.Restarts), name)
		}
		return nil
	}, up, restarts)
	if err != nil {
		return nil, fmt.Errorf("backend metrics callback: %w", err)
	}
	return &backendMetrics{changes: changes}, nil
}

// stateChanged counts one state change; its signature is
// gateway.Options.OnBackendState's.
func (bm *backendMetrics) stateChanged(name, state string, _ time.Time, _ string) {
	bm.changes.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String("tracegate.backend.name", name), attribute.String("tracegate.backend.state", state)))
}

// chainBackendState calls every non-nil hook in order.
func chainBackendState(hooks ...func(backend, state string, at time.Time, detail string)) func(string, string, time.Time, string) {
	return func(b, s string, at time.Time, d string) {
		for _, h := range hooks {
			if h != nil {
				h(b, s, at, d)
			}
		}
	}
}
