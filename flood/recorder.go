package flood

import (
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// recorder collects the figures of one process's share of a run. It is
// safe for concurrent use.
type recorder struct {
	epoch   time.Time
	seconds int // seconds in the run, the length of the series
	// probeSkew is how many seconds a probe may finish after one that
	// started later: the probe timeout, rounded up, and one.
	probeSkew int
	open      atomic.Int64 // connections open now

	mu     sync.Mutex // guards everything below
	total  *Counts
	by     map[Scenario]*Counts
	series []Second
	probe  probeStats
}

// probeStats are the probe's figures; they live in the recorder's lock.
type probeStats struct {
	attempts  int64
	successes int64
	failures  map[string]int64
	samples   []probeSample // one per finished probe
}

type probeSample struct {
	sec int // index into series of the second the probe started in
	ok  bool
	ms  float64
}

func newRecorder(epoch time.Time, seconds int, probeTimeout time.Duration, scenarios []Scenario) *recorder {
	r := &recorder{
		epoch:     epoch,
		seconds:   seconds,
		probeSkew: int((probeTimeout+time.Second-1)/time.Second) + 1,
		total:     newCounts(),
		by:        map[Scenario]*Counts{},
		probe:     probeStats{failures: map[string]int64{}},
	}
	for _, sc := range scenarios {
		r.by[sc] = newCounts()
	}
	return r
}

// index returns the series index of the second t falls in.
func (r *recorder) index(t time.Time) int {
	i := int(t.Sub(r.epoch) / time.Second)
	return min(max(i, 0), r.seconds-1)
}

// second returns the series entry of t, growing the series. The lock
// must be held.
func (r *recorder) second(t time.Time) *Second {
	i := r.index(t)
	for len(r.series) <= i {
		r.series = append(r.series, Second{T: len(r.series) + 1})
	}
	return &r.series[i]
}

// update applies f to the totals and to sc's counts.
func (r *recorder) update(sc Scenario, f func(c *Counts)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r.total)
	f(r.by[sc])
}

func (r *recorder) attempted(sc Scenario) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total.Attempted++
	r.by[sc].Attempted++
	r.second(time.Now()).Attempted++
}

func (r *recorder) opened(sc Scenario) {
	r.open.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total.Opened++
	r.by[sc].Opened++
	r.second(time.Now()).Opened++
}

// ended records that an opened connection is no longer open.
func (r *recorder) ended() { r.open.Add(-1) }

func (r *recorder) refused(sc Scenario, status int) {
	key := strconv.Itoa(status)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total.Refused[key]++
	r.by[sc].Refused[key]++
	r.second(time.Now()).Refused++
}

func (r *recorder) failed(sc Scenario, kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total.Failed[kind]++
	r.by[sc].Failed[kind]++
	r.second(time.Now()).Failed++
}

func (r *recorder) closedByServer(sc Scenario, code uint16) {
	key := strconv.Itoa(int(code))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total.ClosedByServer[key]++
	r.by[sc].ClosedByServer[key]++
	r.second(time.Now()).ClosedByServer++
}

func (r *recorder) closedByClient(sc Scenario) {
	r.update(sc, func(c *Counts) { c.ClosedByClient++ })
}

func (r *recorder) heldAtEnd(sc Scenario) {
	r.update(sc, func(c *Counts) { c.HeldAtEnd++ })
}

func (r *recorder) pendingAtEnd(sc Scenario) {
	r.update(sc, func(c *Counts) { c.PendingAtEnd++ })
}

func (r *recorder) stalled(sc Scenario) {
	r.update(sc, func(c *Counts) { c.WritesStalled++ })
}

// traffic adds frames and bytes sent and received.
func (r *recorder) traffic(sc Scenario, sent, recv Traffic) {
	if sent == (Traffic{}) && recv == (Traffic{}) {
		return
	}
	r.update(sc, func(c *Counts) {
		c.Sent.add(sent)
		c.Received.add(recv)
	})
}

// probed records a finished probe that started at start: its latency in
// milliseconds when it succeeded, else the kind of failure.
func (r *recorder) probed(start time.Time, ms float64, failure string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.second(start)
	s.ProbeAttempts++
	r.probe.attempts++
	ok := failure == ""
	if ok {
		s.ProbeSuccesses++
		r.probe.successes++
	} else {
		r.probe.failures[failure]++
	}
	r.probe.samples = append(r.probe.samples, probeSample{sec: r.index(start), ok: ok, ms: ms})
}

// sample sets the open count of every second up to, not including, the
// one now falls in, that has none yet. It returns the index of now's
// second.
func (r *recorder) sample(now time.Time, filled int) int {
	i := r.index(now)
	if i <= filled {
		return filled
	}
	open := r.open.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	for j := filled; j < i; j++ {
		for len(r.series) <= j {
			r.series = append(r.series, Second{T: len(r.series) + 1})
		}
		r.series[j].Open = open
	}
	return i
}

// snapshot returns copies of the totals so far and the probe's figures
// for the last complete second.
func (r *recorder) snapshot(now time.Time) Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := Progress{
		Elapsed: now.Sub(r.epoch),
		Open:    r.open.Load(),
		Counts:  *r.total.clone(),
	}
	p.ProbeAttempts, p.ProbeSuccesses = r.probe.attempts, r.probe.successes
	if last := r.index(now) - 1; last >= 0 && last < len(r.series) {
		s := r.series[last]
		lat := r.latencies(last)
		s.ProbeP50MS, s.ProbeP99MS = roundMS(percentile(lat, 50)), roundMS(percentile(lat, 99))
		p.LastSecond = &s
	}
	return p
}

// latencies returns the sorted latencies of the successful probes that
// started in second sec. The lock must be held.
func (r *recorder) latencies(sec int) []float64 {
	var lat []float64
	for i := len(r.probe.samples) - 1; i >= 0; i-- {
		// Samples are in the order probes finished, which is their
		// order of starting give or take the probe timeout.
		s := r.probe.samples[i]
		if s.sec < sec-r.probeSkew {
			break
		}
		if s.sec == sec && s.ok {
			lat = append(lat, s.ms)
		}
	}
	slices.Sort(lat)
	return lat
}

// result fills the figures of res from what was recorded.
func (r *recorder) result(res *Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res.Counts = *r.total.clone()
	res.ByScenario = map[Scenario]*Counts{}
	for sc, c := range r.by {
		res.ByScenario[sc] = c.clone()
	}
	res.Series = slices.Clone(r.series)
	if res.Series == nil {
		res.Series = []Second{}
	}

	// Per-second probe percentiles, then the whole run's.
	bySec := map[int][]float64{}
	var all []float64
	for _, s := range r.probe.samples {
		if s.ok {
			bySec[s.sec] = append(bySec[s.sec], s.ms)
			all = append(all, s.ms)
		}
	}
	for i, lat := range bySec {
		if i < len(res.Series) {
			slices.Sort(lat)
			res.Series[i].ProbeP50MS = roundMS(percentile(lat, 50))
			res.Series[i].ProbeP99MS = roundMS(percentile(lat, 99))
		}
	}
	if res.Probe == nil {
		return
	}
	p := res.Probe
	p.Attempts, p.Successes = r.probe.attempts, r.probe.successes
	p.Failures = maps.Clone(r.probe.failures)
	if p.Attempts > 0 {
		p.SuccessRate = float64(p.Successes) / float64(p.Attempts)
	}
	slices.Sort(all)
	p.P50MS = roundMS(percentile(all, 50))
	p.P99MS = roundMS(percentile(all, 99))
	if len(all) > 0 {
		p.MaxMS = roundMS(all[len(all)-1])
	}
}
