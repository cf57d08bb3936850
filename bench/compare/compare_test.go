package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/internal/testsupport"
)

func TestParseStat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    procStat
		wantErr bool
	}{
		{"plain", "123 (nginx) S 100 123 123 0 -1 4194560 50 0 0 0 250 75 0 0 20 0 1 0 5 0 0",
			procStat{ppid: 100, cpuSec: 3.25}, false},
		{"name with spaces and parens", "7 (a b) (c)) R 1 7 7 0 -1 0 0 0 0 0 100 0 0 0 20 0 1 0 5 0 0",
			procStat{ppid: 1, cpuSec: 1}, false},
		{"no name", "7 R 1", procStat{}, true},
		{"too short", "7 (x) R 1 2", procStat{}, true},
		{"bad number", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 zz 0 0 0 20 0 1 0 5 0 0", procStat{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseStat = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseRSS(t *testing.T) {
	t.Parallel()
	rss, err := parseRSS("Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads: 1\n")
	if err != nil || rss != 1234*1024 {
		t.Fatalf("parseRSS = %d, %v; want %d", rss, err, 1234*1024)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t12 MB\n", "VmRSS:\tx kB\n"} {
		if _, err := parseRSS(bad); err == nil {
			t.Errorf("parseRSS(%q) accepted it", bad)
		}
	}
}

// TestSampleTreeSelf reads this test process's own /proc entries: the
// tree holds at least itself, with memory and descriptors.
func TestSampleTreeSelf(t *testing.T) {
	t.Parallel()
	u := sampleTree(os.Getpid())
	if u.procs < 1 || u.rss <= 0 || u.fds < 3 {
		t.Fatalf("sampleTree(self) = %+v", u)
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestFormatTableRatios checks that ratios are per round, then the
// median, and that a missing proxy leaves dashes rather than zeros.
func TestFormatTableRatios(t *testing.T) {
	t.Parallel()
	rep := &report{Samples: map[string][]sample{
		"wsguard": {{BytesPerIdle: 1000}, {BytesPerIdle: 3000}, {BytesPerIdle: 2000}},
		"nginx":   {{BytesPerIdle: 4000}, {BytesPerIdle: 6000}, {BytesPerIdle: 1000}},
	}}
	out := formatTable(rep)
	line := lineWith(t, out, "1. bytes per idle")
	cells := strings.Split(line, "|")
	// | label | wsguard | nginx | HAProxy | direct | ÷ nginx | ÷ HAProxy |
	want := []string{"2000", "4000", "–", "–", "0.50", "–"}
	for i, w := range want {
		if got := strings.TrimSpace(cells[i+2]); got != w {
			t.Errorf("column %d = %q, want %q\n%s", i+2, got, w, out)
		}
	}
	// With nginx's middle round at 3000 the per-round ratios are 0.25,
	// 1 and 2: their median is 1, while the ratio of the medians would
	// be 2000/3000.
	rep.Samples["nginx"][1].BytesPerIdle = 3000
	line = lineWith(t, formatTable(rep), "1. bytes per idle")
	if got := strings.TrimSpace(strings.Split(line, "|")[6]); got != "1.00" {
		t.Errorf("ratio column = %q, want 1.00 (median of 0.25, 1, 2)", got)
	}
}

func lineWith(t *testing.T, s, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "| "+prefix) {
			return l
		}
	}
	t.Fatalf("no line %q in\n%s", prefix, s)
	return ""
}

// TestWsguardConfigLoads checks the generated wsguard configuration with
// the config package, so a renamed key fails here and not in a run.
func TestWsguardConfigLoads(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "wsguard.yaml")
	s := settings{listen: "127.0.0.1:1", backend: "127.0.0.1:2", admin: "127.0.0.1:3"}
	if err := os.WriteFile(file, []byte(wsguardConfig(s)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatalf("generated config does not load: %v\n%s", err, wsguardConfig(s))
	}
	if cfg.Limits.PerIP != perIPLimit || cfg.Timeouts.PingInterval != 0 || cfg.Messages.Rate != 0 {
		t.Errorf("per_ip %d, ping_interval %v, messages.rate %v: want %d, 0, 0",
			cfg.Limits.PerIP, cfg.Timeouts.PingInterval, cfg.Messages.Rate, perIPLimit)
	}
}

// TestNginxConfigValid runs nginx -t on the generated configuration.
func TestNginxConfigValid(t *testing.T) {
	t.Parallel()
	bin := testsupport.LookPath(t, "nginx")
	dir := t.TempDir()
	s := settings{listen: "127.0.0.1:1", backend: "127.0.0.1:2", dir: dir}
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, []byte(nginxConfig(s)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-t", "-p", dir+"/", "-c", file, "-e", dir+"/error.log").CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

// TestHAProxyConfigValid runs haproxy -c on the generated configuration.
func TestHAProxyConfigValid(t *testing.T) {
	t.Parallel()
	bin := testsupport.LookPath(t, "haproxy")
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	s := settings{listen: "127.0.0.1:1", backend: "127.0.0.1:2"}
	if err := os.WriteFile(file, []byte(haproxyConfig(s)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-c", "-f", file).CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
}
