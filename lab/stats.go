package lab

import (
	"math"
	"slices"
)

// probeRecord is one probe: when it started (seconds from the attack's
// start), whether it got its echo, and how long that took.
type probeRecord struct {
	T         float64
	OK        bool
	LatencyMS float64
	Failure   string
}

// percentile returns the p-th percentile (0 < p <= 100) of xs by the
// nearest-rank method: the smallest value with at least p% of the values
// at or below it. It returns 0 for no values.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// probeStats summarises the probes started in [from, to).
type probeStats struct {
	attempts, successes int
	p50, p99            float64
	failures            map[string]int
}

func summarizeProbes(probes []probeRecord, from, to float64) probeStats {
	st := probeStats{failures: map[string]int{}}
	var lat []float64
	for _, p := range probes {
		if p.T < from || p.T >= to {
			continue
		}
		st.attempts++
		if p.OK {
			st.successes++
			lat = append(lat, p.LatencyMS)
		} else {
			st.failures[p.Failure]++
		}
	}
	st.p50, st.p99 = percentile(lat, 50), percentile(lat, 99)
	return st
}

// successRate is successes over attempts, 0 without attempts.
func (st probeStats) successRate() float64 {
	if st.attempts == 0 {
		return 0
	}
	return float64(st.successes) / float64(st.attempts)
}

// recovery returns the time from end until the first probe started at
// or after end got its echo, and false when none did.
func recovery(probes []probeRecord, end float64) (float64, bool) {
	best, found := 0.0, false
	for _, p := range probes {
		if !p.OK || p.T < end {
			continue
		}
		if at := p.T - end + p.LatencyMS/1000; !found || at < best {
			best, found = at, true
		}
	}
	return best, found
}

// probeSeries buckets probes by the second they started in, from the
// second holding from to the one holding to.
func probeSeries(probes []probeRecord, from, to float64) []ProbeSecond {
	first, last := math.Floor(from), math.Floor(to)
	if last < first {
		return nil
	}
	out := make([]ProbeSecond, int(last-first)+1)
	lat := make([][]float64, len(out))
	for i := range out {
		out[i].T = first + float64(i)
	}
	for _, p := range probes {
		i := int(math.Floor(p.T) - first)
		if i < 0 || i >= len(out) {
			continue
		}
		out[i].Attempts++
		if p.OK {
			out[i].Successes++
			lat[i] = append(lat[i], p.LatencyMS)
		}
	}
	for i := range out {
		out[i].P99MS = percentile(lat[i], 99)
	}
	return out
}
