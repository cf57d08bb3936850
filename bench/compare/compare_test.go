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
