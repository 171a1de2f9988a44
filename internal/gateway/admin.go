package gateway

import (
	"github.com/tracegate/tracegate/internal/backend"
)

// Readiness is the body of /readyz.
type Readiness struct {
	Status   string           `json:"status"` // ready, degraded, unavailable
	Backends []backend.Status `json:"backends"`
	Cluster  *ClusterStatus   `json:"cluster,omitempty"`
}

// ClusterStatus is a replica's view of its cluster in /readyz.
type ClusterStatus struct {
	Replica  string `json:"replica"`
	Redis    string `json:"redis"`    // up or down
	Replicas int    `json:"replicas"` // registered at the last heartbeat
}

// Readiness reports each backend. The gateway is ready while at least one
// backend is (or none is configured): one dead backend must not take the
// others out of a load balancer.
func (g *Gateway) Readiness() Readiness {
	backends := g.Backends()
	r := Readiness{Backends: make([]backend.Status, 0, len(backends))}
	ready := 0
	for _, b := range backends {
		s := b.Status()
		if s.State == backend.StateReady {
			ready++
		}
		r.Backends = append(r.Backends, s)
	}
	switch {
	case ready == len(backends):
		r.Status = "ready"
	case ready > 0:
		r.Status = "degraded"
	default:
		r.Status = "unavailable"
	}
	if rp := g.replicas; rp != nil {
		cs := &ClusterStatus{Replica: rp.id, Redis: "up", Replicas: len(rp.c.Members())}
		if !rp.c.Up() {
			// Degraded, not unavailable: every replica loses Redis at
			// once, and taking them all out of the load balancer would
			// turn a Redis outage into a full one.
			cs.Redis = "down"
			if r.Status == "ready" {
				r.Status = "degraded"
			}
		}
		r.Cluster = cs
	}
	return r
}
