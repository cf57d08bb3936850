package lab

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteReport writes res into dir: results.json, report.md, report.html
// and the charts as PNG files.
func WriteReport(dir string, res *Results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	rep, err := buildReport(dir, res)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "report.md"), rep.markdown); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "report.html"), rep.html)
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// report is res laid out as text: what report.md and report.html show.
type report struct {
	Title     string
	Intro     []string
	Header    []string
	Summary   [][]string
	Scenarios []scenarioReport
	Notes     []string
}

type scenarioReport struct {
	Name, Description, Attack string
	Header                    []string
	Rows                      [][]string
	Charts                    []chart
}

// summaryHeader names the columns of the summary table.
var summaryHeader = []string{"scenario", "arm", "probe success", "probe p99",
	"backend peak descriptors (limit)", "backend peak RSS", "recovery"}

// buildReport draws the charts into dir and lays out the text.
func buildReport(dir string, res *Results) (*report, error) {
	backend := res.BackendCmd
	if backend == "" {
		backend = "the built-in echo backend (wsguard lab-backend)"
	} else {
		backend = "`" + backend + "`"
	}
	rep := &report{
		Title: "wsguard lab report",
		Intro: []string{
			fmt.Sprintf("Run on %s, %d CPUs, Linux %s, %s; it took %.0f s.",
				res.Started.UTC().Format("2006-01-02 15:04 MST"), res.Host.CPUs, res.Host.Kernel, res.Host.Go, res.Seconds),
			fmt.Sprintf("Backend: %s, limited to %d descriptors. Protected arm: wsguard with `%s`.",
				backend, res.Nofile, res.Config),
			"Each scenario ran twice on a fresh backend: attacked directly (unprotected), and behind wsguard (protected). " +
				"A probe, a well-behaved user from 127.0.0.1, opened a connection, sent a message and waited for its echo every " +
				"probe interval; the attackers came from other loopback addresses.",
		},
		Header: summaryHeader,
		Notes: []string{
			"probe success and p99: probes started during the attack; p99 is over the probes that got their echo.",
			"peaks: sampled every second from /proc over the whole arm (baseline, attack, recovery); descriptors and RSS are the backend's process group.",
			"recovery: from the end of the attack until the first probe started after it got its echo " +
				"(so it includes the wait for that probe, up to one probe interval).",
		},
	}
	if res.Interrupted {
		rep.Notes = append(rep.Notes, "The run was interrupted: only the scenarios above finished.")
	}
	for _, sr := range res.Scenarios {
		charts, err := writeCharts(dir, sr)
		if err != nil {
			return nil, err
		}
		for _, arm := range armNames {
			rep.Summary = append(rep.Summary, append([]string{sr.Name}, summaryRow(arm, sr.Arms[arm])...))
		}
		rep.Scenarios = append(rep.Scenarios, scenarioSection(sr, charts))
	}
	return rep, nil
}

// summaryRow is one arm's row of the summary, after the scenario.
func summaryRow(arm string, a *Arm) []string {
	return []string{arm, percent(a.ProbeSuccess), millis(a.ProbeP99MS),
		fmt.Sprintf("%d (%d)", a.BackendPeakFDs, a.BackendFDLimit), mib(a.BackendPeakRSS),
		recoveryText(a.RecoverySeconds)}
}

// scenarioSection lays out one scenario's details.
func scenarioSection(sr ScenarioResult, charts []chart) scenarioReport {
	attacks := make([]string, len(sr.Attacks))
	for i, a := range sr.Attacks {
		attacks[i] = string(a)
	}
	rate := fmt.Sprintf("%.0f/s", sr.Rate)
	if sr.Rate == 0 {
		rate = "unpaced"
	}
	s := scenarioReport{
		Name: sr.Name, Description: sr.Description, Charts: charts,
		Attack: fmt.Sprintf("flood: %s, %d connections at %s for %.0f s from %s.",
			strings.Join(attacks, " + "), sr.Connections, rate, sr.DurationS, sr.Sources),
		Header: []string{"", Unprotected, Protected},
	}
	un, pr := sr.Arms[Unprotected], sr.Arms[Protected]
	row := func(name string, f func(*Arm) string) {
		s.Rows = append(s.Rows, []string{name, f(un), f(pr)})
	}
	row("probe success", func(a *Arm) string {
		return fmt.Sprintf("%s of %d", percent(a.ProbeSuccess), a.ProbeAttempts)
	})
	row("probe p50 / p99", func(a *Arm) string { return millis(a.ProbeP50MS) + " / " + millis(a.ProbeP99MS) })
	row("probe failures", func(a *Arm) string { return counts(a.ProbeFailures) })
	row("recovery", func(a *Arm) string { return recoveryText(a.RecoverySeconds) })
	row("backend peak descriptors (limit)", func(a *Arm) string {
		return fmt.Sprintf("%d (%d)", a.BackendPeakFDs, a.BackendFDLimit)
	})
	row("backend peak connections", func(a *Arm) string { return fmt.Sprint(a.BackendPeakConns) })
	row("backend peak RSS", func(a *Arm) string { return mib(a.BackendPeakRSS) })
	row("backend peak CPU", func(a *Arm) string { return fmt.Sprintf("%.0f%%", a.BackendPeakCPU) })
	row("wsguard peak descriptors / RSS / CPU", func(a *Arm) string {
		if a.Guard == nil {
			return "-"
		}
		return fmt.Sprintf("%d / %s / %.0f%%", a.Guard.FDs, mib(a.Guard.RSSBytes), a.Guard.CPUPercent)
	})
	row("attacker: attempted / opened", func(a *Arm) string {
		return fmt.Sprintf("%d / %d", a.Flood.Attempted, a.Flood.Opened)
	})
	row("attacker: held at end / pending at end", func(a *Arm) string {
		return fmt.Sprintf("%d / %d", a.Flood.HeldAtEnd, a.Flood.PendingAtEnd)
	})
	row("attacker: refused", func(a *Arm) string { return counts64(a.Flood.Refused) })
	row("attacker: failed", func(a *Arm) string { return counts64(a.Flood.Failed) })
	row("attacker: closed by the server", func(a *Arm) string { return counts64(a.Flood.ClosedByServer) })
	if un.BackendExit+pr.BackendExit+pr.GuardExit != "" {
		row("died during the arm", func(a *Arm) string {
			var died []string
			if a.BackendExit != "" {
				died = append(died, "backend: "+a.BackendExit)
			}
			if a.GuardExit != "" {
				died = append(died, "wsguard: "+a.GuardExit)
			}
			return strings.Join(died, "; ")
		})
	}
	if len(un.FloodWarnings)+len(pr.FloodWarnings) > 0 {
		row("attacker: warnings", func(a *Arm) string { return strings.Join(a.FloodWarnings, "; ") })
	}
	return s
}

func percent(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

func millis(ms float64) string {
	if ms == 0 {
		return "-"
	}
	if ms < 10 {
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func recoveryText(r *float64) string {
	if r == nil {
		return "not recovered"
	}
	return fmt.Sprintf("%.1f s", *r)
}

// counts formats a map as "a: 1, b: 2" in key order, "-" when empty.
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func counts64(m map[string]int64) string {
	c := make(map[string]int, len(m))
	for k, v := range m {
		c[k] = int(v)
	}
	return counts(c)
}

// markdown writes the report as Markdown.
func (r *report) markdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	for _, p := range r.Intro {
		fmt.Fprintf(&b, "%s\n\n", p)
	}
	b.WriteString("## Summary\n\n")
	mdTable(&b, r.Header, r.Summary)
	b.WriteString("\n")
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	for _, s := range r.Scenarios {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n%s\n\n", s.Name, s.Description, s.Attack)
		mdTable(&b, s.Header, s.Rows)
		for _, c := range s.Charts {
			fmt.Fprintf(&b, "\n![%s](%s)\n", c.Title, c.File)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdTable writes a Markdown table; "|" in cells is escaped.
func mdTable(b *strings.Builder, header []string, rows [][]string) {
	line := func(cells []string) {
		esc := make([]string, len(cells))
		for i, c := range cells {
			esc[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		fmt.Fprintf(b, "| %s |\n", strings.Join(esc, " | "))
	}
	line(header)
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = "---"
	}
	line(sep)
	for _, r := range rows {
		line(r)
	}
}

// htmlTemplate lays out the same report as a web page.
var htmlTemplate = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; display: block; margin: 1rem 0; }
</style></head><body>
<h1>{{.Title}}</h1>
{{range .Intro}}<p>{{.}}</p>
{{end}}<h2>Summary</h2>
<table><tr>{{range .Header}}<th>{{.}}</th>{{end}}</tr>
{{range .Summary}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
<ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul>
{{range .Scenarios}}<h2>{{.Name}}</h2>
<p>{{.Description}}</p><p>{{.Attack}}</p>
<table><tr>{{range .Header}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
{{range .Charts}}<img src="{{.File}}" alt="{{.Title}}">
{{end}}{{end}}</body></html>
`))

// html writes the report as a web page, without Markdown's backticks.
func (r *report) html(w io.Writer) error {
	page := *r
	page.Intro = make([]string, len(r.Intro))
	for i, p := range r.Intro {
		page.Intro[i] = strings.ReplaceAll(p, "`", "")
	}
	return htmlTemplate.Execute(w, &page)
}

// WriteSummary writes the summary table of res to w, for a terminal.
func WriteSummary(w io.Writer, res *Results) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(summaryHeader, "\t"))
	for _, sr := range res.Scenarios {
		for _, arm := range armNames {
			fmt.Fprintln(tw, strings.Join(append([]string{sr.Name}, summaryRow(arm, sr.Arms[arm])...), "\t"))
		}
	}
	return tw.Flush()
}
