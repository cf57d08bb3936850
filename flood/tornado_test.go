package flood

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/testsupport"
)

// TestTornadoIdleHoldWithProbe holds connections on the real Tornado
// example from five addresses while the probe echoes through /ws, and
// checks both what the tool counted and what Tornado logged.
func TestTornadoIdleHoldWithProbe(t *testing.T) {
	t.Parallel()
	backend := testsupport.StartTornado(t)
	cfg := Config{
		Target:      backend.WSURL("/ws"),
		Connections: 20,
		Rate:        200,
		Duration:    2 * time.Second,
		Probe:       ProbeConfig{Interval: 100 * time.Millisecond, Timeout: 5 * time.Second},
	}
	var err error
	if cfg.Sources, err = ParseSources("127.0.0.2-127.0.0.6"); err != nil {
		t.Fatal(err)
	}
	res := mustRun(t, cfg)
	checkHeld(t, res, 20)

	p := res.Probe
	if p.Source != "127.0.0.1" {
		t.Errorf("probe source %s, want 127.0.0.1 (outside the sources)", p.Source)
	}
	if p.Attempts < 10 || p.Successes != p.Attempts || p.P50MS <= 0 {
		t.Fatalf("probe %d/%d ok, p50 %v ms, failures %v; want every one of at least 10",
			p.Successes, p.Attempts, p.P50MS, p.Failures)
	}

	// Tornado saw every connection close with 1000: the 20 held and one
	// per probe.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	closes := 20 + int(p.Successes)
	if err := backend.WaitOutput(ctx, "ws close path=/ws code=1000", closes); err != nil {
		t.Fatalf("waiting for %d closes with 1000: %v\n%s", closes, err, backend.Output())
	}
	out := backend.Output()
	for _, peer := range []string{"127.0.0.2", "127.0.0.6", "127.0.0.1"} {
		if n := strings.Count(out, "ws open path=/ws peer="+peer+" "); n == 0 {
			t.Errorf("Tornado saw no connection from %s", peer)
		}
	}
}
