package lab

import (
	"math"
	"strings"
	"testing"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100 down to 1: the order must not matter
	}
	tests := []struct {
		name string
		xs   []float64
		p    float64
		want float64
	}{
		{"none", nil, 99, 0},
		{"one", []float64{7}, 99, 7},
		{"p50 of two", []float64{2, 1}, 50, 1},
		{"p99 of 100", hundred, 99, 99},
		{"p100 of 100", hundred, 100, 100},
		{"p50 of 100", hundred, 50, 50},
		{"p99 of ten takes the top", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 1000}, 99, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.xs, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.xs, tt.p, got, tt.want)
			}
		})
	}
	if hundred[0] != 100 {
		t.Error("percentile sorted its argument in place")
	}
}

func TestSummarizeProbes(t *testing.T) {
	t.Parallel()
	probes := []probeRecord{
		{T: -0.5, OK: true, LatencyMS: 1}, // baseline: not counted
		{T: 0, OK: true, LatencyMS: 2},
		{T: 1, OK: false, Failure: "timeout"},
		{T: 2, OK: false, Failure: "timeout"},
		{T: 3, OK: false, Failure: "refused_503"},
		{T: 9.9, OK: true, LatencyMS: 40},
		{T: 10, OK: true, LatencyMS: 3}, // after the attack: not counted
	}
	st := summarizeProbes(probes, 0, 10)
	if st.attempts != 5 || st.successes != 2 || st.successRate() != 0.4 {
		t.Errorf("%d of %d (%v), want 2 of 5 (0.4)", st.successes, st.attempts, st.successRate())
	}
	if st.p50 != 2 || st.p99 != 40 {
		t.Errorf("p50 %v, p99 %v; want 2 and 40", st.p50, st.p99)
	}
	if st.failures["timeout"] != 2 || st.failures["refused_503"] != 1 || len(st.failures) != 2 {
		t.Errorf("failures %v", st.failures)
	}
	if rate := summarizeProbes(nil, 0, 10).successRate(); rate != 0 {
		t.Errorf("success rate without probes %v, want 0", rate)
	}
}

func TestRecovery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		probes []probeRecord
		want   float64
		ok     bool
	}{
		{"none", nil, 0, false},
		{"only failures after the end", []probeRecord{{T: 10.5}, {T: 11}}, 0, false},
		{"a success before the end does not count", []probeRecord{{T: 9.9, OK: true, LatencyMS: 5}, {T: 10.1}}, 0, false},
		{"first success after the end, latency included",
			[]probeRecord{{T: 10.1}, {T: 11.2, OK: true, LatencyMS: 300}, {T: 12, OK: true, LatencyMS: 1}}, 1.5, true},
		{"a later start that finished first wins",
			[]probeRecord{{T: 10, OK: true, LatencyMS: 1900}, {T: 10.5, OK: true, LatencyMS: 100}}, 0.6, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := recovery(tt.probes, 10)
			if ok != tt.ok || math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("recovery = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestProbeSeries(t *testing.T) {
	t.Parallel()
	probes := []probeRecord{
		{T: -1.5, OK: true, LatencyMS: 1},
		{T: -0.1, OK: false},
		{T: 0, OK: true, LatencyMS: 5},
		{T: 0.9, OK: true, LatencyMS: 7},
		{T: 2.2, OK: false},
	}
	got := probeSeries(probes, -1.5, 2.2)
	want := []ProbeSecond{
		{T: -2, Attempts: 1, Successes: 1, P99MS: 1},
		{T: -1, Attempts: 1},
		{T: 0, Attempts: 2, Successes: 2, P99MS: 7},
		{T: 1},
		{T: 2, Attempts: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("second %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestPeaks(t *testing.T) {
	t.Parallel()
	p := peaks([]Sample{
		{FDs: 10, FDLimit: 1024, RSSBytes: 5, Conns: 1, CPUPercent: 80},
		{FDs: 1024, FDLimit: 1024, RSSBytes: 9, Conns: 1015, CPUPercent: 20},
		{FDs: 3, RSSBytes: 1}, // the backend gone: no limit read
	})
	want := Peaks{FDs: 1024, FDLimit: 1024, RSSBytes: 9, Conns: 1015, CPUPercent: 80}
	if p != want {
		t.Errorf("peaks %+v, want %+v", p, want)
	}
}

func TestNiceTicks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lo, hi float64
		want   []string
	}{
		{0, 2721, []string{"0", "500", "1000", "1500", "2000", "2500"}},
		{0, 63, []string{"0", "10", "20", "30", "40", "50", "60"}},
		{0, 1.5, []string{"0", "0.2", "0.4", "0.6", "0.8", "1", "1.2", "1.4"}},
		{3, 3, []string{"3"}},
	}
	for _, tt := range tests {
		var got []string
		for _, tk := range (niceTicks{}).Ticks(tt.lo, tt.hi) {
			got = append(got, tk.Label)
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("ticks %v to %v: %v, want %v", tt.lo, tt.hi, got, tt.want)
		}
	}
}
