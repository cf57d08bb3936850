package lab

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/wsguard/flood"
)

// fakeResults is a small run: one scenario whose unprotected arm fails
// and never recovers, and whose protected arm holds.
func fakeResults() *Results {
	rec := 0.25
	arm := func(fds, conns int, success float64, recovery *float64) *Arm {
		var series []Sample
		var probes []ProbeSecond
		for t := -2; t <= 6; t++ {
			series = append(series, Sample{T: float64(t), FDs: fds * max(t, 0) / 6, FDLimit: 1024,
				RSSBytes: int64(30+t) << 20, CPUPercent: float64(10 * max(t, 0)), Conns: conns * max(t, 0) / 6})
			probes = append(probes, ProbeSecond{T: float64(t), Attempts: 10, Successes: int(10 * success)})
		}
		return &Arm{
			ProbeSuccess: success, ProbeAttempts: 40, ProbeP50MS: 2, ProbeP99MS: 12.5,
			ProbeFailures:  map[string]int{"timeout": int(40 * (1 - success))},
			BackendPeakFDs: fds, BackendFDLimit: 1024, BackendPeakRSS: 36 << 20, RecoverySeconds: recovery,
			Flood: flood.Counts{Attempted: 1500, Opened: int64(conns), Refused: map[string]int64{"503": 12},
				Failed: map[string]int64{}, ClosedByServer: map[string]int64{"1013": 3}},
			AttackEndS: 4, BackendSeries: series, ProbeSeries: probes,
		}
	}
	pr := arm(909, 899, 1, &rec)
	pr.GuardSeries = pr.BackendSeries
	pr.Guard = &Peaks{FDs: 1814, RSSBytes: 26 << 20, CPUPercent: 17}
	sc := Scenarios[0]
	sc.Duration = 4 * time.Second
	return &Results{
		Started: time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC), Seconds: 31,
		Host: Host{CPUs: 2, Kernel: "6.1", Go: "go1.26"}, BackendCmd: "python3 app.py --port {port} <&>",
		Nofile: 1024, Config: "examples/tornado/wsguard.yaml",
		Scenarios: []ScenarioResult{{Scenario: sc, DurationS: 4, Arms: map[string]*Arm{
			Unprotected: arm(1024, 1015, 0.25, nil), Protected: pr,
		}}},
	}
}

func TestWriteReport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := WriteReport(dir, fakeResults()); err != nil {
		t.Fatal(err)
	}

	// results.json has the keys the issue promises, per arm.
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Scenarios []struct {
			Name string                                `json:"name"`
			Arms map[string]map[string]json.RawMessage `json:"arms"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Scenarios) != 1 || doc.Scenarios[0].Name != "hold" {
		t.Fatalf("scenarios %+v", doc.Scenarios)
	}
	for _, arm := range []string{Unprotected, Protected} {
		a := doc.Scenarios[0].Arms[arm]
		for _, key := range []string{"probe_success", "probe_p99_ms", "backend_peak_fds",
			"backend_fd_limit", "backend_peak_rss_bytes", "recovery_seconds"} {
			if _, ok := a[key]; !ok {
				t.Errorf("%s arm: no %q", arm, key)
			}
		}
	}
	if got := string(doc.Scenarios[0].Arms[Unprotected]["recovery_seconds"]); got != "null" {
		t.Errorf("unrecovered arm's recovery_seconds %s, want null", got)
	}

	// report.md: the summary table, a row per arm, and the charts.
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| scenario | arm | probe success | probe p99 | backend peak descriptors (limit) | backend peak RSS | recovery |",
		"| hold | unprotected | 25.0% | 12 ms | 1024 (1024) | 36.0 MiB | not recovered |",
		"| hold | protected | 100.0% | 12 ms | 909 (1024) | 36.0 MiB | 0.2 s |",
		"| attacker: refused | 503: 12 | 503: 12 |",
		"![hold: probe success (a real user's view)](hold-probe.png)",
	} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}

	// report.html escapes what it shows and links every chart.
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(html, []byte("<&>")) || !bytes.Contains(html, []byte("&lt;&amp;&gt;")) {
		t.Error("report.html does not escape the backend command")
	}

	// Every chart is a PNG of the promised size.
	for _, name := range []string{"probe", "connections", "fds", "cpu", "rss"} {
		file := "hold-" + name + ".png"
		if !strings.Contains(string(html), `src="`+file+`"`) {
			t.Errorf("report.html does not show %s", file)
		}
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			t.Error(err)
			continue
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width < 600 || cfg.Height < 250 {
			t.Errorf("%s: %dx%d, %v", file, cfg.Width, cfg.Height, err)
		}
	}
}

func TestWriteSummary(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteSummary(&b, fakeResults()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "hold") || !strings.Contains(lines[1], "not recovered") ||
		!strings.Contains(lines[2], "100.0%") {
		t.Errorf("summary:\n%s", b.String())
	}
}

func TestReportShowsWarningsAndDeaths(t *testing.T) {
	t.Parallel()
	if md := markdownOf(t, fakeResults()); strings.Contains(md, "| attacker: warnings |") ||
		strings.Contains(md, "| died during the arm |") {
		t.Errorf("rows for warnings or deaths without any:\n%s", md)
	}
	res := fakeResults()
	un, pr := res.Scenarios[0].Arms[Unprotected], res.Scenarios[0].Arms[Protected]
	un.FloodWarnings = []string{"the descriptor limit (1024) caps this process"}
	un.BackendExit = "signal: killed"
	pr.GuardExit = "exit status 2"
	md := markdownOf(t, res)
	for _, want := range []string{
		"| attacker: warnings | the descriptor limit (1024) caps this process |  |",
		"| died during the arm | backend: signal: killed | wsguard: exit status 2 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
}

// markdownOf returns report.md for res, charts drawn into a temporary
// directory.
func markdownOf(t *testing.T, res *Results) string {
	t.Helper()
	rep, err := buildReport(t.TempDir(), res)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := rep.markdown(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
