package wsguard

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// guardMetrics are the Guard's collectors. They are named apart from the
// gateway's (wsguard_middleware_...), so one registry may hold both.
// No label names a client or a user.
type guardMetrics struct {
	handshakes *prometheus.CounterVec // by outcome and reason
	open       prometheus.Gauge
}

// newGuardMetrics builds the collectors and registers them on reg, if
// not nil. A second Guard on one registry is an error: its counts would
// be indistinguishable from the first's.
func newGuardMetrics(reg prometheus.Registerer) (*guardMetrics, error) {
	m := &guardMetrics{
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "wsguard", Subsystem: "middleware", Name: "handshakes_total",
			Help: "WebSocket upgrade requests seen by the Guard, by outcome (accepted, refused, failed) and reason.",
		}, []string{"outcome", "reason"}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "wsguard", Subsystem: "middleware", Name: "connections_open",
			Help: "Connections admitted by the Guard and not yet closed.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	if err := reg.Register(m.handshakes); err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	if err := reg.Register(m.open); err != nil {
		reg.Unregister(m.handshakes)
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	return m, nil
}
