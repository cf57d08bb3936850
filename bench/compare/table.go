package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"unicode/utf8"
)

// machine describes where a run happened.
type machine struct {
	CPUs    int    `json:"cpus"`
	CPU     string `json:"cpu"`
	Kernel  string `json:"kernel"`
	Go      string `json:"go"`
	Nginx   string `json:"nginx"`
	HAProxy string `json:"haproxy"`
}

func describeMachine(ps []*proxy) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	for _, p := range ps {
		switch p.name {
		case "nginx":
			b, _ := exec.Command(p.bin, "-v").CombinedOutput()
			m.Nginx = strings.TrimSpace(string(b))
		case "haproxy":
			b, _ := exec.Command(p.bin, "-v").CombinedOutput()
			m.HAProxy, _, _ = strings.Cut(string(b), "\n")
		}
	}
	return m
}

// loadAvg returns the three load averages of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// median returns the median of xs (the mean of the middle two for an
// even count), 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianSample takes the median of every figure separately.
func medianSample(ss []sample) sample {
	m := func(f func(s sample) float64) float64 {
		xs := make([]float64, len(ss))
		for i, s := range ss {
			xs[i] = f(s)
		}
		return median(xs)
	}
	return sample{
		IdleConns:       int(m(func(s sample) float64 { return float64(s.IdleConns) })),
		BytesPerIdle:    m(func(s sample) float64 { return s.BytesPerIdle }),
		Refusals:        int64(m(func(s sample) float64 { return float64(s.Refusals) })),
		RefusalsPerSec:  m(func(s sample) float64 { return s.RefusalsPerSec }),
		RefusalCPUSec:   m(func(s sample) float64 { return s.RefusalCPUSec }),
		ProbeSuccess:    m(func(s sample) float64 { return s.ProbeSuccess }),
		ProbeP99MS:      m(func(s sample) float64 { return s.ProbeP99MS }),
		LatencyP50MS:    m(func(s sample) float64 { return s.LatencyP50MS }),
		LatencyP99MS:    m(func(s sample) float64 { return s.LatencyP99MS }),
		MessagesPerSec:  m(func(s sample) float64 { return s.MessagesPerSec }),
		MessagesCPUSec:  m(func(s sample) float64 { return s.MessagesCPUSec }),
		MessagesRelayed: int64(m(func(s sample) float64 { return float64(s.MessagesRelayed) })),
	}
}

// row is one line of the table: a figure and how to get it from a
// sample. Ratios are computed per round and their median shown, so a
// ratio compares figures measured close together in time.
type row struct {
	label  string
	format string
	value  func(s sample) float64
}

var rows = []row{
	{"1. bytes per idle proxied connection", "%.0f", func(s sample) float64 { return s.BytesPerIdle }},
	{"2. refusals (429) per second", "%.0f", func(s sample) float64 { return s.RefusalsPerSec }},
	{"2. CPU seconds per 1,000 refusals", "%.3f", func(s sample) float64 { return perThousand(s.RefusalCPUSec, float64(s.Refusals)) }},
	{"2. refusals per CPU second", "%.0f", func(s sample) float64 { return div(float64(s.Refusals), s.RefusalCPUSec) }},
	{"2. probe success during flood (%)", "%.1f", func(s sample) float64 { return 100 * s.ProbeSuccess }},
	{"2. probe p99 during flood (ms)", "%.2f", func(s sample) float64 { return s.ProbeP99MS }},
	{"3. round trip p50 (ms)", "%.3f", func(s sample) float64 { return s.LatencyP50MS }},
	{"3. round trip p99 (ms)", "%.3f", func(s sample) float64 { return s.LatencyP99MS }},
	{"4. messages relayed per second", "%.0f", func(s sample) float64 { return s.MessagesPerSec }},
	{"4. CPU seconds per million messages", "%.2f", func(s sample) float64 { return 1e3 * perThousand(s.MessagesCPUSec, float64(s.MessagesRelayed)) }},
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func perThousand(cpu, n float64) float64 { return 1000 * div(cpu, n) }

// formatTable renders the medians and ratios as a Markdown table.
func formatTable(rep *report) string {
	lines := [][]string{
		{"figure (median of rounds)", "wsguard", "nginx", "HAProxy", "direct", "wsguard ÷ nginx", "wsguard ÷ HAProxy"},
		{"---", "---:", "---:", "---:", "---:", "---:", "---:"},
	}
	for _, r := range rows {
		line := []string{r.label}
		for _, name := range []string{"wsguard", "nginx", "haproxy"} {
			line = append(line, cell(rep, name, r))
		}
		direct := "–"
		if strings.HasPrefix(r.label, "3.") {
			direct = medianCell(rep.Direct, r)
		}
		line = append(line, direct,
			ratioCell(rep.Samples["wsguard"], rep.Samples["nginx"], r),
			ratioCell(rep.Samples["wsguard"], rep.Samples["haproxy"], r))
		lines = append(lines, line)
	}
	return markdown(lines)
}

// markdown joins cells into a Markdown table with padded columns.
func markdown(lines [][]string) string {
	width := make([]int, len(lines[0]))
	for _, l := range lines {
		for i, c := range l {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("|")
		for i, c := range l {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i == 0 {
				fmt.Fprintf(&b, " %s%s |", c, pad)
			} else {
				fmt.Fprintf(&b, " %s%s |", pad, c)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func cell(rep *report, name string, r row) string {
	ss, ok := rep.Samples[name]
	if !ok {
		return "–"
	}
	return medianCell(ss, r)
}

// medianCell is the median over the rounds of r's figure.
func medianCell(ss []sample, r row) string {
	xs := make([]float64, len(ss))
	for i, s := range ss {
		xs[i] = r.value(s)
	}
	return fmt.Sprintf(r.format, median(xs))
}

// ratioCell is the median over rounds of a's figure divided by b's in
// the same round.
func ratioCell(a, b []sample, r row) string {
	n := min(len(a), len(b))
	if n == 0 {
		return "–"
	}
	xs := make([]float64, 0, n)
	for i := range n {
		if d := r.value(b[i]); d != 0 {
			xs = append(xs, r.value(a[i])/d)
		}
	}
	if len(xs) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", median(xs))
}
