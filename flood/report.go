package flood

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Progress is a snapshot of a run in progress, for a live display.
type Progress struct {
	Elapsed time.Duration `json:"elapsed"`
	Open    int64         `json:"open"` // connections open now
	Counts
	ProbeAttempts  int64 `json:"probe_attempts"`
	ProbeSuccesses int64 `json:"probe_successes"`
	// LastSecond is the last complete second, for the probe's recent
	// figures; nil during the first second.
	LastSecond *Second `json:"last_second,omitempty"`
}

// add adds the figures of another process's progress to p.
func (p *Progress) add(o Progress) {
	p.Elapsed = max(p.Elapsed, o.Elapsed)
	p.Open += o.Open
	if p.Refused == nil {
		p.Counts = *newCounts()
	}
	p.Counts.add(&o.Counts)
	p.ProbeAttempts += o.ProbeAttempts
	p.ProbeSuccesses += o.ProbeSuccesses
	if o.LastSecond != nil && o.LastSecond.ProbeAttempts > 0 {
		p.LastSecond = o.LastSecond
	}
}

// Line formats p as one line for a terminal, without a line break.
func (p Progress) Line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%5.1fs  open %d  opened %d/%d", p.Elapsed.Seconds(), p.Open, p.Opened, p.Attempted)
	if n := sum(p.Refused); n > 0 {
		fmt.Fprintf(&b, "  refused %s", formatCounts(p.Refused))
	}
	if n := sum(p.Failed); n > 0 {
		fmt.Fprintf(&b, "  failed %s", formatCounts(p.Failed))
	}
	if n := sum(p.ClosedByServer); n > 0 {
		fmt.Fprintf(&b, "  closed %s", formatCounts(p.ClosedByServer))
	}
	if p.ProbeAttempts > 0 {
		fmt.Fprintf(&b, "  probe %s", percent(p.ProbeSuccesses, p.ProbeAttempts))
		if s := p.LastSecond; s != nil && s.ProbeAttempts > 0 {
			fmt.Fprintf(&b, " (last s %s, p50 %s)", percent(s.ProbeSuccesses, s.ProbeAttempts), ms(s.ProbeP50MS))
		}
	}
	return b.String()
}

// formatCounts writes a map as "key:count" pairs, the largest first.
func formatCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return int(m[b] - m[a])
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + strconv.FormatInt(m[k], 10)
	}
	return strings.Join(parts, " ")
}

func percent(n, of int64) string {
	if of == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*float64(n)/float64(of), 'f', 1, 64) + "%"
}

func ms(v float64) string {
	return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
}

// WriteSummary writes the result as a table: one row per scenario and a
// total, then the probe's figures and the tool's cost.
func (r *Result) WriteSummary(w io.Writer) error {
	var b strings.Builder
	names := make([]string, len(r.Scenarios))
	for i, sc := range r.Scenarios {
		names[i] = string(sc)
	}
	rate := "unlimited"
	if r.Rate > 0 {
		rate = strconv.FormatFloat(r.Rate, 'f', -1, 64) + "/s"
	}
	procs := "1 process"
	if r.Procs > 1 {
		procs = strconv.Itoa(r.Procs) + " worker processes"
	}
	fmt.Fprintf(&b, "wsguard flood: %s against %s, %d connections at %s, %.1fs, %s",
		strings.Join(names, ","), r.Target, r.Connections, rate, r.Seconds, procs)
	if r.Interrupted {
		b.WriteString(", interrupted")
	}
	b.WriteString("\n\n")

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tattempted\topened\trefused\tfailed\tclosed by server\tclosed by us\theld at end\tpending at end\tstalled writes")
	row := func(name string, c *Counts) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", name, c.Attempted, c.Opened,
			formatCounts(c.Refused), formatCounts(c.Failed), formatCounts(c.ClosedByServer),
			c.ClosedByClient, c.HeldAtEnd, c.PendingAtEnd, c.WritesStalled)
	}
	for _, sc := range r.Scenarios {
		if c := r.ByScenario[sc]; c != nil {
			row(string(sc), c)
		}
	}
	if len(r.Scenarios) > 1 {
		row("total", &r.Counts)
	}
	tw.Flush()

	fmt.Fprintf(&b, "\nsent: %d pings, %d pongs, %d data frames, %d bytes; received: %d pings, %d pongs, %d data frames, %d bytes\n",
		r.Sent.Pings, r.Sent.Pongs, r.Sent.DataFrames, r.Sent.Bytes,
		r.Received.Pings, r.Received.Pongs, r.Received.DataFrames, r.Received.Bytes)
	if p := r.Probe; p != nil {
		fmt.Fprintf(&b, "probe: %d/%d ok (%s), p50 %s, p99 %s, max %s",
			p.Successes, p.Attempts, percent(p.Successes, p.Attempts), ms(p.P50MS), ms(p.P99MS), ms(p.MaxMS))
		if len(p.Failures) > 0 {
			fmt.Fprintf(&b, "; failures %s", formatCounts(p.Failures))
		}
		b.WriteString("\n")
	}
	if t := r.Tool; t.PeakOpen > 0 && t.BytesPerConn > 0 {
		fmt.Fprintf(&b, "tool: %d connections held at the peak, about %d bytes each (RSS %s -> %s)\n",
			t.PeakOpen, t.BytesPerConn, mib(t.RSSStartBytes), mib(t.RSSAtPeakBytes))
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", warn)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mib(n int64) string {
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
}
