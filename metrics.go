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
	closes     *prometheus.CounterVec // policy closes, by rule
}

// policyClose counts a connection a frame policy ended.
func (m *guardMetrics) policyClose(rule string) {
	m.closes.WithLabelValues(rule).Inc()
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
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "wsguard", Subsystem: "middleware", Name: "policy_closes_total",
			Help: "Hijacked connections ended by a frame policy (Options.FramePolicies), by rule.",
		}, []string{"rule"}),
	}
	if reg == nil {
		return m, nil
	}
	var done []prometheus.Collector
	for _, c := range []prometheus.Collector{m.handshakes, m.open, m.closes} {
		if err := reg.Register(c); err != nil {
			for _, d := range done {
				reg.Unregister(d)
			}
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
		done = append(done, c)
	}
	return m, nil
}
