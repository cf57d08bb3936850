package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Store holds the collectors of a shared (Redis) store. Create it with
// NewStore; it implements store.Observer and is safe for concurrent use.
type Store struct {
	Up          prometheus.Gauge         // 1 while decisions are taken with Redis
	Errors      *prometheus.CounterVec   // failed operations by op
	Latency     *prometheus.HistogramVec // seconds of successful operations by op
	FailureMode *prometheus.GaugeVec     // info: 1 for the configured mode
}

// NewStore creates the store collectors, sets the failure-mode info to
// mode ("local", "open" or "closed") and registers them on reg (nil: not
// registered).
func NewStore(reg prometheus.Registerer, mode string) *Store {
	m := &Store{
		Up: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "store_up",
			Help: "1 while admission decisions are taken with the shared store (Redis), 0 while store.on_failure applies.",
		}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "store_errors_total",
			Help: "Failed or timed-out shared store operations, by op (acquire, release, sync).",
		}, []string{"op"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "store_latency_seconds",
			Help:    "Time of successful shared store operations, by op (acquire, release).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14),
		}, []string{"op"}),
		FailureMode: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "store_failure_mode",
			Help: "Info: the store.on_failure mode in force has the value 1.",
		}, []string{"mode"}),
	}
	m.FailureMode.WithLabelValues(mode).Set(1)
	for _, op := range []string{"acquire", "release", "sync"} {
		m.Errors.WithLabelValues(op)
	}
	if reg != nil {
		reg.MustRegister(m.Up, m.Errors, m.Latency, m.FailureMode)
	}
	return m
}

// StoreUp records whether the store is up.
func (m *Store) StoreUp(up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.Up.Set(v)
}

// StoreError counts a failed operation.
func (m *Store) StoreError(op string) { m.Errors.WithLabelValues(op).Inc() }

// StoreLatency records a successful operation's time.
func (m *Store) StoreLatency(op string, d time.Duration) {
	m.Latency.WithLabelValues(op).Observe(d.Seconds())
}
