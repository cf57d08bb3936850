// Package metrics defines wsguard's Prometheus collectors. Nothing here is
// labelled by client address or user: an attacker chooses those, and
// label cardinality is itself an attack surface.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "wsguard"

// Relay holds the collectors of the gateway's data plane. Create it with
// NewRelay; its methods are safe for concurrent use.
type Relay struct {
	Open         *prometheus.GaugeVec   // open connections by route
	Max          prometheus.Gauge       // limits.max_connections in force
	Pending      prometheus.Gauge       // handshakes accepted but not yet upgraded
	Pressure     prometheus.Gauge       // 1 while open connections are past limits.pressure
	Handshakes   *prometheus.CounterVec // handshakes by outcome and reason
	Closes       *prometheus.CounterVec // closes by code and by whom
	Frames       *prometheus.CounterVec // frames by direction
	Bytes        *prometheus.CounterVec // bytes by direction
	Violations   *prometheus.CounterVec // protocol violations by offender
	Throttled    prometheus.Counter     // times a client was paused for its message rate
	TooBig       prometheus.Counter     // messages over messages.max_size
	SlowReaders  prometheus.Counter     // clients closed for not reading
	PingsSent    prometheus.Counter     // the guard's own pings
	PongsOK      prometheus.Counter     // pongs that answered them in time
	AuthFailures *prometheus.CounterVec // refused tokens by reason
	Evictions    *prometheus.CounterVec // connections closed to make room or by an operator, by reason
	Admission    prometheus.Histogram   // seconds to take the connection counters
	Handshake    prometheus.Histogram   // seconds from accept to upgrade or refusal
	Dial         prometheus.Histogram   // seconds to dial the upstream
}

// NewRelay creates the data plane collectors and registers them on reg
// (nil: not registered).
func NewRelay(reg prometheus.Registerer) *Relay {
	m := &Relay{
		Open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "connections_open",
			Help: "Upgraded WebSocket connections open now, by route and auth (anonymous or authenticated).",
		}, []string{"route", "auth"}),
		Max: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "connections_max",
			Help: "The limit on upgraded connections in force (limits.max_connections).",
		}),
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "handshakes_pending",
			Help: "Connections accepted whose handshake is not finished.",
		}),
		Pressure: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "pressure",
			Help: "1 while open connections are at or past limits.pressure of max_connections (fair admission on), else 0.",
		}),
		Handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "handshakes_total",
			Help: "Handshakes by outcome (accepted, refused, failed, passthrough for proxied plain HTTP requests) and reason.",
		}, []string{"outcome", "reason"}),
		Closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "closes_total",
			Help: "Ended connections by the close code the client saw and by who ended them.",
		}, []string{"code", "by"}),
		Frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "frames_total",
			Help: "Frames relayed, by direction (client: from the client).",
		}, []string{"direction"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "bytes_total",
			Help: "Bytes read from each side, by direction.",
		}, []string{"direction"}),
		Violations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "protocol_violations_total",
			Help: "RFC 6455 violations, by the side that committed them.",
		}, []string{"direction"}),
		Throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "message_rate_throttled_total",
			Help: "Times a client's reads paused because it exceeded messages.rate.",
		}),
		TooBig: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "messages_too_big_total",
			Help: "Client messages over messages.max_size (closed with 1009).",
		}),
		SlowReaders: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "slow_readers_total",
			Help: "Clients closed because a write to them exceeded timeouts.write.",
		}),
		PingsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "pings_sent_total",
			Help: "Pings the guard sent to clients.",
		}),
		PongsOK: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "pongs_received_total",
			Help: "Pongs answering the guard's latest ping.",
		}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "auth_failures_total",
			Help: "Handshakes refused with 401, by reason (missing, expired, bad_signature, ...).",
		}, []string{"reason"}),
		Evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "evictions_total",
			Help: "Open connections closed by the guard to make room or on an operator's order, by reason.",
		}, []string{"reason"}),
		Admission: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "admission_duration_seconds",
			Help:    "Time to take a handshake's connection counters from the store.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10),
		}),
		Handshake: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "handshake_duration_seconds",
			Help:    "Time from accept to upgrade or refusal.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		Dial: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "upstream_dial_duration_seconds",
			Help:    "Time to connect to the upstream.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Open, m.Max, m.Pending, m.Pressure, m.Handshakes, m.Closes, m.Frames, m.Bytes,
			m.Violations, m.Throttled, m.TooBig, m.SlowReaders, m.PingsSent, m.PongsOK,
			m.AuthFailures, m.Evictions, m.Admission, m.Handshake, m.Dial)
	}
	return m
}
