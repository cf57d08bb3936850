package flood

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestJSONSchema checks the keys and types that other tools read.
func TestJSONSchema(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{echo: true, status: 0})
	cfg := testConfig(s, IdleHold, 2, 1200*time.Millisecond)
	cfg.Probe = ProbeConfig{Interval: 100 * time.Millisecond}
	res := mustRun(t, cfg)
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	checkJSONKeys(t, "", doc, map[string]string{
		"attempted": "number", "opened": "number", "refused": "object", "failed": "object",
		"closed_by_server": "object", "closed_by_client": "number", "held_at_end": "number",
		"pending_at_end": "number", "writes_stalled": "number", "sent": "object", "received": "object",
		"target": "string", "scenarios": "array", "started": "string", "duration_s": "number",
		"connections": "number", "rate": "number", "procs": "number", "interrupted": "bool",
		"by_scenario": "object", "probe": "object", "series": "array", "tool": "object",
		"warnings": "array",
	})
	checkJSONKeys(t, "probe.", doc["probe"].(map[string]any), map[string]string{
		"attempts": "number", "successes": "number", "success_rate": "number",
		"p50_ms": "number", "p99_ms": "number", "max_ms": "number", "failures": "object",
		"target": "string", "source": "string", "interval_ms": "number",
	})
	series := doc["series"].([]any)
	if len(series) != 2 {
		t.Fatalf("%d seconds in the series of a 1.2s run, want 2", len(series))
	}
	checkJSONKeys(t, "series[0].", series[0].(map[string]any), map[string]string{
		"t": "number", "attempted": "number", "opened": "number", "refused": "number",
		"failed": "number", "closed_by_server": "number", "open": "number",
		"probe_attempts": "number", "probe_successes": "number",
		"probe_p50_ms": "number", "probe_p99_ms": "number",
	})
	checkJSONKeys(t, "tool.", doc["tool"].(map[string]any), map[string]string{
		"fd_limit": "number", "peak_open": "number", "rss_start_bytes": "number",
		"rss_at_peak_bytes": "number", "bytes_per_conn": "number",
	})
	byScenario := doc["by_scenario"].(map[string]any)
	if _, ok := byScenario["idle-hold"].(map[string]any); !ok {
		t.Errorf("by_scenario %v has no idle-hold object", byScenario)
	}
	// How many connections are open in which second depends on how fast
	// a loaded machine opens them; that the series counts them does not.
	opened, peak := doc["opened"].(float64), 0.0
	for _, sec := range series {
		peak = max(peak, sec.(map[string]any)["open"].(float64))
	}
	if peak < 1 || peak > opened {
		t.Errorf("series peaks at %v open connections, want 1 to opened (%v)", peak, opened)
	}
}

func checkJSONKeys(t *testing.T, prefix string, obj map[string]any, want map[string]string) {
	t.Helper()
	for key, typ := range want {
		v, ok := obj[key]
		if !ok {
			t.Errorf("%s%s missing", prefix, key)
			continue
		}
		var got string
		switch v.(type) {
		case float64:
			got = "number"
		case string:
			got = "string"
		case bool:
			got = "bool"
		case []any:
			got = "array"
		case map[string]any:
			got = "object"
		default:
			got = "null"
		}
		if got != typ {
			t.Errorf("%s%s is %s (%v), want %s", prefix, key, got, v, typ)
		}
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	part := func(opened int64, open int64, probe bool) *Result {
		c := newCounts()
		c.Attempted, c.Opened, c.HeldAtEnd = opened+1, opened, opened
		c.Refused["429"] = 1
		r := &Result{
			Counts:     *c,
			ByScenario: map[Scenario]*Counts{IdleHold: c.clone()},
			Series:     []Second{{T: 1, Opened: opened, Open: open}, {T: 2, Open: open}},
			Tool:       Tool{FDLimit: 20000, PeakOpen: open, RSSStartBytes: 1000, RSSAtPeakBytes: 1000 + open*3000},
			Seconds:    2,
		}
		if probe {
			r.Series[1].ProbeAttempts, r.Series[1].ProbeSuccesses, r.Series[1].ProbeP50MS = 10, 9, 1.5
			r.Probe = &ProbeResult{Attempts: 20, Successes: 19}
		}
		return r
	}
	res := part(0, 0, true) // the parent: the probe only
	res.ByScenario = map[Scenario]*Counts{}
	res.Merge(part(5, 5, false))
	res.Merge(part(7, 7, false))

	if res.Opened != 12 || res.Attempted != 15 || res.Refused["429"] != 3 || res.HeldAtEnd != 12 {
		t.Errorf("merged counts %+v", res.Counts)
	}
	if c := res.ByScenario[IdleHold]; c == nil || c.Opened != 12 {
		t.Errorf("merged idle-hold %+v", c)
	}
	if s := res.Series[1]; s.Open != 12 || s.ProbeAttempts != 10 || s.ProbeP50MS != 1.5 {
		t.Errorf("merged second 2: %+v", s)
	}
	if res.Probe == nil || res.Probe.Attempts != 20 {
		t.Errorf("merged probe %+v", res.Probe)
	}
	if res.Tool.PeakOpen != 12 || res.Tool.BytesPerConn != 3000*12/12 {
		t.Errorf("merged tool %+v", res.Tool)
	}
}

func TestWriteSummary(t *testing.T) {
	t.Parallel()
	c := newCounts()
	c.Attempted, c.Opened, c.HeldAtEnd = 10, 8, 7
	c.Refused["429"], c.Refused["503"] = 1, 1
	c.ClosedByServer["1001"] = 1
	res := &Result{
		Target: "ws://127.0.0.1:1/ws", Scenarios: []Scenario{IdleHold}, Connections: 10, Procs: 1,
		Counts: *c, ByScenario: map[Scenario]*Counts{IdleHold: c.clone()},
		Probe: &ProbeResult{Attempts: 10, Successes: 9, P50MS: 1.25, P99MS: 8, MaxMS: 9,
			Failures: map[string]int64{"timeout": 1}},
	}
	var b bytes.Buffer
	if err := res.WriteSummary(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"idle-hold", "429:1 503:1", "1001:1", "probe: 9/10 ok (90.0%)", "p50 1.2 ms", "timeout:1"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasSuffix(line, " ") {
			t.Errorf("trailing space in %q", line)
		}
	}
}
