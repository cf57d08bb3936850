package flood

import (
	"context"
	"errors"
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

func TestProbeOnce(t *testing.T) {
	t.Parallel()
	const delay = 30 * time.Millisecond
	echo := startServer(t, serverOptions{echo: true, echoDelay: delay})
	refuse := startServer(t, serverOptions{status: 503})
	closing := startServer(t, serverOptions{closeWith: 1013})
	src := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name        string
		cfg         ProbeConfig
		wantFailure string
	}{
		{"echo", ProbeConfig{Target: echo.url("/ws"), Source: src}, ""},
		{"refused", ProbeConfig{Target: refuse.url("/ws")}, "refused_503"},
		{"closed", ProbeConfig{Target: closing.url("/ws"), Timeout: time.Second}, "closed_1013"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lat, failure, err := ProbeOnce(context.Background(), tt.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if failure != tt.wantFailure {
				t.Fatalf("failure %q, want %q", failure, tt.wantFailure)
			}
			if failure == "" && lat < delay {
				t.Errorf("latency %v, below the server's echo delay %v", lat, delay)
			}
		})
	}
	if len(echo.snapshot()) == 0 || echo.snapshot()[0].remote.Addr() != src {
		t.Errorf("the probe did not come from %s: %v", src, echo.snapshot())
	}
}

func TestProbeOnceRefusesBadConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []ProbeConfig{
		{Target: "ws://192.0.2.1/ws"}, // not loopback
		{Target: "http//nothing"},
		{Target: "ws://127.0.0.1:1/ws", Timeout: -time.Second},
		{Target: "ws://127.0.0.1:1/ws", Source: netip.MustParseAddr("::1")},
	} {
		_, _, err := ProbeOnce(context.Background(), cfg, nil)
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: error %v, want one wrapping ErrConfig", cfg, err)
		}
	}
}

// TestProbeOnceEndsWithItsContext cancels a probe that waits for an echo
// that never comes: it returns then, not at its timeout.
func TestProbeOnceEndsWithItsContext(t *testing.T) {
	t.Parallel()
	silent := startServer(t, serverOptions{}) // upgrades, never echoes
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type outcome struct {
		failure string
		err     error
	}
	done := make(chan outcome, 1)
	go func() {
		_, failure, err := ProbeOnce(ctx, ProbeConfig{Target: silent.url("/ws"), Timeout: time.Minute}, nil)
		done <- outcome{failure, err}
	}()
	silent.waitFor("the probe's upgrade", func(conns []serverConn) bool {
		return len(conns) == 1 && conns[0].upgraded
	})
	cancel()
	select {
	case o := <-done:
		if o.err != nil || o.failure == "" {
			t.Fatalf("failure %q, error %v; want a failure", o.failure, o.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the cancelled probe still waits for its echo")
	}
}
