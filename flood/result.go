package flood

import (
	"maps"
	"math"
	"slices"
	"time"
)

// Counts are what happened to connection attempts and the traffic of the
// connections that opened. Maps are never nil in a Result.
type Counts struct {
	// Attempted counts connection attempts, reconnections included.
	Attempted int64 `json:"attempted"`
	// Opened counts upgrades that succeeded (101 with the right
	// Sec-WebSocket-Accept).
	Opened int64 `json:"opened"`
	// Refused counts upgrades answered with another status, by status.
	Refused map[string]int64 `json:"refused"`
	// Failed counts attempts and connections that failed, by kind:
	// connect_refused, connect_timeout, handshake_timeout,
	// handshake_eof, handshake_reset, bad_response, bad_accept, fd_limit,
	// address_unavailable, ...; and for opened connections
	// protocol_error (the server broke RFC 6455) and write_error (a
	// SlowReader found its connection gone).
	Failed map[string]int64 `json:"failed"`
	// ClosedByServer counts opened connections the server ended, by the
	// code of its close frame: "1005" for a close frame without a code,
	// "1006" for a connection dropped without one.
	ClosedByServer map[string]int64 `json:"closed_by_server"`
	// ClosedByClient counts connections the tool closed before the run
	// ended (Churn).
	ClosedByClient int64 `json:"closed_by_client"`
	// HeldAtEnd counts connections still open when the run ended.
	HeldAtEnd int64 `json:"held_at_end"`
	// PendingAtEnd counts attempts still connecting or upgrading when the
	// run ended, Slowloris requests the server never answered among them.
	PendingAtEnd int64 `json:"pending_at_end"`
	// WritesStalled counts writes that did not finish within
	// Config.WriteTimeout: the server stopped reading.
	WritesStalled int64 `json:"writes_stalled"`
	// Sent and Received count frames and bytes after the handshake.
	Sent     Traffic `json:"sent"`
	Received Traffic `json:"received"`
}

// Traffic counts WebSocket frames and bytes in one direction.
type Traffic struct {
	Pings      int64 `json:"pings"`
	Pongs      int64 `json:"pongs"`
	DataFrames int64 `json:"data_frames"`
	Bytes      int64 `json:"bytes"` // frame headers and payloads
}

func newCounts() *Counts {
	return &Counts{
		Refused:        map[string]int64{},
		Failed:         map[string]int64{},
		ClosedByServer: map[string]int64{},
	}
}

// add adds o to c.
func (c *Counts) add(o *Counts) {
	c.Attempted += o.Attempted
	c.Opened += o.Opened
	addMap(c.Refused, o.Refused)
	addMap(c.Failed, o.Failed)
	addMap(c.ClosedByServer, o.ClosedByServer)
	c.ClosedByClient += o.ClosedByClient
	c.HeldAtEnd += o.HeldAtEnd
	c.PendingAtEnd += o.PendingAtEnd
	c.WritesStalled += o.WritesStalled
	c.Sent.add(o.Sent)
	c.Received.add(o.Received)
}

func (t *Traffic) add(o Traffic) {
	t.Pings += o.Pings
	t.Pongs += o.Pongs
	t.DataFrames += o.DataFrames
	t.Bytes += o.Bytes
}

func (c *Counts) clone() *Counts {
	out := *c
	out.Refused = maps.Clone(c.Refused)
	out.Failed = maps.Clone(c.Failed)
	out.ClosedByServer = maps.Clone(c.ClosedByServer)
	return &out
}

func addMap(dst, src map[string]int64) {
	for k, v := range src {
		dst[k] += v
	}
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// Result is the outcome of a run. It marshals to the JSON of
// `wsguard flood --json`: the fields of Counts at the top level, then the
// rest.
type Result struct {
	Target      string     `json:"target"`
	Scenarios   []Scenario `json:"scenarios"`
	Started     time.Time  `json:"started"`
	Seconds     float64    `json:"duration_s"`  // how long the run lasted
	Connections int        `json:"connections"` // as requested, over all processes
	Rate        float64    `json:"rate"`        // opens per second requested; 0 is no limit
	Procs       int        `json:"procs"`
	Interrupted bool       `json:"interrupted"` // stopped before its duration
	Counts
	// ByScenario splits Counts by scenario.
	ByScenario map[Scenario]*Counts `json:"by_scenario"`
	// Probe is the legitimate user's view; nil when no probe ran.
	Probe *ProbeResult `json:"probe,omitempty"`
	// Series has one entry per second of the run.
	Series []Second `json:"series"`
	// Tool is what the run cost the flood tool itself.
	Tool Tool `json:"tool"`
	// Warnings say what limited the run, such as the descriptor limit.
	Warnings []string `json:"warnings"`
}

// Second is one second of a run.
type Second struct {
	// T numbers the second: T=1 covers the run's first second.
	T              int   `json:"t"`
	Attempted      int64 `json:"attempted"`
	Opened         int64 `json:"opened"`
	Refused        int64 `json:"refused"`
	Failed         int64 `json:"failed"`
	ClosedByServer int64 `json:"closed_by_server"`
	// Open is how many connections were open at the end of the second.
	Open int64 `json:"open"`
	// Probe figures for probes started in this second; the latencies are
	// 0 when none succeeded.
	ProbeAttempts  int64   `json:"probe_attempts"`
	ProbeSuccesses int64   `json:"probe_successes"`
	ProbeP50MS     float64 `json:"probe_p50_ms"`
	ProbeP99MS     float64 `json:"probe_p99_ms"`
}

// ProbeResult is what the probe saw over the run.
type ProbeResult struct {
	Target      string  `json:"target"`
	Source      string  `json:"source"` // "" when the kernel chose
	IntervalMS  float64 `json:"interval_ms"`
	Attempts    int64   `json:"attempts"`
	Successes   int64   `json:"successes"`
	SuccessRate float64 `json:"success_rate"` // Successes/Attempts, 0 to 1
	// Latency of successful probes, from starting to connect until the
	// echo arrived; 0 when none succeeded.
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
	// Failures counts failed probes by kind: "refused_429", "timeout",
	// "closed_1001", or a kind of Counts.Failed.
	Failures map[string]int64 `json:"failures"`
}

// Tool is what a run cost the process (or processes) running it.
type Tool struct {
	// FDLimit is the descriptor limit of one process after raising it.
	FDLimit uint64 `json:"fd_limit"`
	// PeakOpen is the most connections held at once, sampled each second.
	PeakOpen int64 `json:"peak_open"`
	// RSSStartBytes and RSSAtPeakBytes are the resident memory before the
	// first connection and when PeakOpen was sampled.
	RSSStartBytes  int64 `json:"rss_start_bytes"`
	RSSAtPeakBytes int64 `json:"rss_at_peak_bytes"`
	// BytesPerConn is the memory growth divided by PeakOpen: what one
	// held connection cost the tool.
	BytesPerConn int64 `json:"bytes_per_conn"`
}

// Merge adds the figures of o, a share of the same run made by another
// process, to r. Probe figures are kept from whichever has a probe.
func (r *Result) Merge(o *Result) {
	r.Counts.add(&o.Counts)
	for sc, c := range o.ByScenario {
		if r.ByScenario[sc] == nil {
			r.ByScenario[sc] = newCounts()
		}
		r.ByScenario[sc].add(c)
	}
	for _, s := range o.Series {
		for len(r.Series) < s.T {
			r.Series = append(r.Series, Second{T: len(r.Series) + 1})
		}
		d := &r.Series[s.T-1]
		d.Attempted += s.Attempted
		d.Opened += s.Opened
		d.Refused += s.Refused
		d.Failed += s.Failed
		d.ClosedByServer += s.ClosedByServer
		d.Open += s.Open
		if s.ProbeAttempts > 0 {
			d.ProbeAttempts, d.ProbeSuccesses = s.ProbeAttempts, s.ProbeSuccesses
			d.ProbeP50MS, d.ProbeP99MS = s.ProbeP50MS, s.ProbeP99MS
		}
	}
	if r.Probe == nil {
		r.Probe = o.Probe
	}
	r.Seconds = math.Max(r.Seconds, o.Seconds)
	r.Interrupted = r.Interrupted || o.Interrupted
	r.Tool.FDLimit = max(r.Tool.FDLimit, o.Tool.FDLimit)
	r.Tool.PeakOpen += o.Tool.PeakOpen
	r.Tool.RSSStartBytes += o.Tool.RSSStartBytes
	r.Tool.RSSAtPeakBytes += o.Tool.RSSAtPeakBytes
	r.Tool.BytesPerConn = perConn(r.Tool)
	for _, w := range o.Warnings {
		if !slices.Contains(r.Warnings, w) {
			r.Warnings = append(r.Warnings, w)
		}
	}
}

func perConn(t Tool) int64 {
	if t.PeakOpen == 0 || t.RSSAtPeakBytes < t.RSSStartBytes {
		return 0
	}
	return (t.RSSAtPeakBytes - t.RSSStartBytes) / t.PeakOpen
}

// percentile returns the p-th percentile (0 to 100) of sorted values by
// the nearest-rank method, 0 for none.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// roundMS rounds a latency in milliseconds to microseconds, for JSON.
func roundMS(ms float64) float64 { return math.Round(ms*1000) / 1000 }
