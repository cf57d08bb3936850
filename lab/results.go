package lab

import (
	"time"

	"github.com/wsguard/wsguard/flood"
)

// The arms' names, as keys of ScenarioResult.Arms.
const (
	Unprotected = "unprotected"
	Protected   = "protected"
)

// armNames lists the arms in the order they run and are shown.
var armNames = []string{Unprotected, Protected}

// Results is everything Run measured; it marshals to results.json.
type Results struct {
	Started    time.Time        `json:"started"`
	Seconds    float64          `json:"duration_s"`
	Host       Host             `json:"host"`
	BackendCmd string           `json:"backend_cmd"` // "" for the built-in echo backend
	Nofile     int              `json:"backend_nofile"`
	Config     string           `json:"wsguard_config"`
	Scenarios  []ScenarioResult `json:"scenarios"`
	// Interrupted says the run was cancelled; the scenarios hold what
	// finished.
	Interrupted bool `json:"interrupted"`
}

// Host describes the machine the lab ran on.
type Host struct {
	CPUs   int    `json:"cpus"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
}

// ScenarioResult is one scenario's settings and both arms' figures.
type ScenarioResult struct {
	Scenario
	DurationS float64         `json:"duration_s"`
	Arms      map[string]*Arm `json:"arms"`
}

// Arm is what one arm measured. Probe figures cover the probes started
// during the attack; peaks cover the whole arm.
type Arm struct {
	// ProbeSuccess is the share of probes started during the attack that
	// got their echo, 0 to 1.
	ProbeSuccess  float64 `json:"probe_success"`
	ProbeAttempts int     `json:"probe_attempts"`
	// ProbeP50MS and ProbeP99MS are latencies of the successful probes
	// among them; 0 when none succeeded.
	ProbeP50MS    float64        `json:"probe_p50_ms"`
	ProbeP99MS    float64        `json:"probe_p99_ms"`
	ProbeFailures map[string]int `json:"probe_failures"`

	BackendPeakFDs   int     `json:"backend_peak_fds"`
	BackendFDLimit   int     `json:"backend_fd_limit"`
	BackendPeakRSS   int64   `json:"backend_peak_rss_bytes"`
	BackendPeakConns int     `json:"backend_peak_connections"`
	BackendPeakCPU   float64 `json:"backend_peak_cpu_percent"`
	// RecoverySeconds runs from the end of the attack until the first
	// probe started after it got its echo; nil when none did within
	// Options.RecoveryTimeout.
	RecoverySeconds *float64 `json:"recovery_seconds"`

	// BackendExit and GuardExit say how the process ended when it died
	// during the arm; empty when it ran to the end.
	BackendExit string `json:"backend_exit,omitempty"`
	GuardExit   string `json:"guard_exit,omitempty"`

	// Guard holds wsguard's peaks, in the protected arm only.
	Guard *Peaks `json:"guard,omitempty"`
	// Flood is what the attacker saw.
	Flood flood.Counts `json:"flood"`
	// FloodWarnings are the flood's own warnings, such as a descriptor
	// limit that capped it.
	FloodWarnings []string `json:"flood_warnings"`

	// AttackEndS is when the attack ended, in seconds from its start.
	AttackEndS float64 `json:"attack_end_s"`
	// The series: one sample a second of each process group, and the
	// probe by second of its start. T counts from the attack's start and
	// is negative during the baseline.
	BackendSeries []Sample      `json:"backend_series"`
	GuardSeries   []Sample      `json:"guard_series,omitempty"`
	ProbeSeries   []ProbeSecond `json:"probe_series"`
}

// Peaks are the highest samples of a process group.
type Peaks struct {
	FDs        int     `json:"peak_fds"`
	FDLimit    int     `json:"fd_limit"`
	RSSBytes   int64   `json:"peak_rss_bytes"`
	Conns      int     `json:"peak_connections"`
	CPUPercent float64 `json:"peak_cpu_percent"`
}

// Sample is one reading of a process group.
type Sample struct {
	T          float64 `json:"t"`
	Procs      int     `json:"procs"`
	FDs        int     `json:"fds"`
	FDLimit    int     `json:"fd_limit"`
	RSSBytes   int64   `json:"rss_bytes"`
	CPUPercent float64 `json:"cpu_percent"` // of one core, since the last sample
	Conns      int     `json:"connections"` // established TCP connections
}

// ProbeSecond is the probes started within one second: T is the second's
// start.
type ProbeSecond struct {
	T         float64 `json:"t"`
	Attempts  int     `json:"attempts"`
	Successes int     `json:"successes"`
	P99MS     float64 `json:"p99_ms"` // of the successes; 0 without one
}

// peaks returns the highest values of samples.
func peaks(samples []Sample) Peaks {
	var p Peaks
	for _, s := range samples {
		if s.FDs > p.FDs {
			p.FDs = s.FDs
		}
		if s.FDLimit > 0 {
			p.FDLimit = s.FDLimit
		}
		p.RSSBytes = max(p.RSSBytes, s.RSSBytes)
		p.Conns = max(p.Conns, s.Conns)
		p.CPUPercent = max(p.CPUPercent, s.CPUPercent)
	}
	return p
}
