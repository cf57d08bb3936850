package relay

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/wsguard/metrics"
)

// relayMetrics resolves the label values the hot paths use once, so
// counting a frame is an atomic add and no map lookup.
type relayMetrics struct {
	*metrics.Relay
	pingsSent     prometheus.Counter
	pongsReceived prometheus.Counter
	throttled     prometheus.Counter
	tooBig        prometheus.Counter
	slowReaders   prometheus.Counter
	violations    *prometheus.CounterVec
	frames        [2]prometheus.Counter
	bytes         [2]prometheus.Counter
}

func newRelayMetrics(reg prometheus.Registerer) *relayMetrics {
	m := metrics.NewRelay(reg)
	return &relayMetrics{
		Relay:         m,
		pingsSent:     m.PingsSent,
		pongsReceived: m.PongsOK,
		throttled:     m.Throttled,
		tooBig:        m.TooBig,
		slowReaders:   m.SlowReaders,
		violations:    m.Violations,
		frames:        [2]prometheus.Counter{m.Frames.WithLabelValues("client"), m.Frames.WithLabelValues("upstream")},
		bytes:         [2]prometheus.Counter{m.Bytes.WithLabelValues("client"), m.Bytes.WithLabelValues("upstream")},
	}
}

// count records frames and bytes read in one direction.
func (m *relayMetrics) count(dir, frames, bytes int) {
	if frames > 0 {
		m.frames[dir].Add(float64(frames))
	}
	m.bytes[dir].Add(float64(bytes))
}

func (m *relayMetrics) closed(code uint16, by string) {
	m.Closes.WithLabelValues(strconv.Itoa(int(code)), by).Inc()
}
