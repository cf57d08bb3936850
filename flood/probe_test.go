package flood

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestProbeSeesTheServerLatency(t *testing.T) {
	t.Parallel()
	const delay = 20 * time.Millisecond
	s := startServer(t, serverOptions{echo: true, echoDelay: delay})
	cfg := testConfig(s, IdleHold, 1, 1500*time.Millisecond)
	cfg.Probe = ProbeConfig{Interval: 50 * time.Millisecond, Timeout: 5 * time.Second}
	var live []Second // the probe's last second, as the live display saw it
	res, err := Run(context.Background(), cfg, func(p Progress) {
		if p.LastSecond != nil && p.LastSecond.ProbeSuccesses > 0 {
			live = append(live, *p.LastSecond)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(live) == 0 {
		t.Error("the progress never showed a second of probes")
	}
	for _, s := range live {
		if s.ProbeP50MS < 20 || !strings.Contains((Progress{ProbeAttempts: 1, LastSecond: &s}).Line(), "p50 ") {
			t.Errorf("live second %d: p50 %v ms", s.T, s.ProbeP50MS)
		}
	}

	p := res.Probe
	if p == nil {
		t.Fatal("no probe figures")
	}
	if p.Attempts < 5 || p.Successes != p.Attempts || p.SuccessRate != 1 {
		t.Fatalf("probe %d/%d ok (rate %v), failures %v; want every one of at least 5",
			p.Successes, p.Attempts, p.SuccessRate, p.Failures)
	}
	if p.P50MS < 20 || p.P99MS < p.P50MS || p.MaxMS < p.P99MS {
		t.Errorf("p50 %v ms, p99 %v ms, max %v ms; want 20 <= p50 <= p99 <= max", p.P50MS, p.P99MS, p.MaxMS)
	}
	if p.Source != "127.0.0.1" && p.Source != "127.255.255.254" {
		t.Errorf("probe source %q", p.Source)
	}

	// Per second: every probe counted once, latencies at least the delay.
	var attempts int64
	for _, sec := range res.Series {
		attempts += sec.ProbeAttempts
		if sec.ProbeSuccesses > 0 && sec.ProbeP50MS < 20 {
			t.Errorf("second %d: p50 %v ms", sec.T, sec.ProbeP50MS)
		}
	}
	if attempts != p.Attempts {
		t.Errorf("the series counts %d probes, the total %d", attempts, p.Attempts)
	}

	// Each probe came from its own connection, from the probe's source,
	// and said one message.
	probes := 0
	for _, c := range s.allEnded() {
		if c.remote.Addr().String() == p.Source {
			probes++
			if len(c.messages) != 1 || c.closed != 1000 {
				t.Errorf("probe connection: %d messages, close %d; want 1 and 1000", len(c.messages), c.closed)
			}
		}
	}
	if probes != int(p.Attempts) {
		t.Errorf("server saw %d probe connections, the probe made %d", probes, p.Attempts)
	}
}

func TestProbeFailuresByKind(t *testing.T) {
	t.Parallel()
	probeSrc := netip.MustParseAddr("127.0.0.9")
	s := startServer(t, serverOptions{echo: true, refuseFrom: probeSrc, status: 503})
	cfg := testConfig(s, IdleHold, 2, 500*time.Millisecond)
	cfg.Sources, _ = ParseSources("127.0.0.10")
	cfg.Probe = ProbeConfig{Interval: 100 * time.Millisecond, Source: probeSrc}
	res := mustRun(t, cfg)
	checkHeld(t, res, 2)

	p := res.Probe
	if p.Attempts == 0 || p.Successes != 0 || p.Failures["refused_503"] != p.Attempts {
		t.Errorf("probe %d/%d ok, failures %v; want every one refused_503", p.Successes, p.Attempts, p.Failures)
	}
	if p.P50MS != 0 || p.SuccessRate != 0 {
		t.Errorf("p50 %v, success rate %v without a success", p.P50MS, p.SuccessRate)
	}
}

func TestDefaultProbeSource(t *testing.T) {
	t.Parallel()
	lo := netip.MustParseAddr("127.0.0.1")
	src := func(s string) Sources {
		if s == "" {
			return Sources{}
		}
		v, err := ParseSources(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name    string
		dst     netip.Addr
		sources Sources
		want    string
	}{
		{"sources elsewhere", lo, src("127.0.0.2-127.0.0.254"), "127.0.0.1"},
		{"no sources: the attack is 127.0.0.1", lo, src(""), "127.255.255.254"},
		{"sources hold 127.0.0.1", lo, src("127.0.0.1,127.255.255.254"), "127.255.255.253"},
		{"not loopback", netip.MustParseAddr("192.0.2.1"), src(""), "invalid IP"},
		{"IPv6 loopback", netip.IPv6Loopback(), src(""), "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := defaultProbeSource(tt.dst, tt.sources).String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
