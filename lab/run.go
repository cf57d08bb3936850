package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/wsguard/wsguard/flood"
)

// readyTimeout bounds how long a backend or wsguard may take to answer
// its first probe.
const readyTimeout = 15 * time.Second

// minTail is how long the lab keeps measuring after the attack even when
// the probe succeeds at once, so that the charts show the way back.
const minTail = 3 * time.Second

// Run stages every scenario of o against both arms and returns what it
// measured. On an error or a cancelled ctx it returns the scenarios that
// finished along with the error; every process it started is stopped
// before it returns.
func Run(ctx context.Context, o Options) (*Results, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	if o.WSGuardBin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the wsguard binary: %w", err)
		}
		o.WSGuardBin = exe
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", o.Dir, err)
	}

	res := &Results{
		Started: time.Now(), Host: host(), BackendCmd: o.BackendCmd,
		Nofile: o.BackendNofile, Config: o.Config,
	}
	defer func() { res.Seconds = time.Since(res.Started).Seconds() }()
	for _, sc := range o.Scenarios {
		sr := ScenarioResult{Scenario: sc, DurationS: sc.Duration.Seconds(), Arms: map[string]*Arm{}}
		for _, arm := range armNames {
			o.Progress(fmt.Sprintf("%s: %s arm", sc.Name, arm))
			a, err := runArm(ctx, o, sc, arm)
			if ctx.Err() != nil {
				res.Interrupted = true
				return res, ctx.Err()
			}
			if err != nil {
				return res, fmt.Errorf("scenario %s, %s arm: %w", sc.Name, arm, err)
			}
			sr.Arms[arm] = a
		}
		res.Scenarios = append(res.Scenarios, sr)
	}
	return res, nil
}

// host describes this machine.
func host() Host {
	h := Host{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	return h
}

// armSetup is what an arm started: the processes, and where to attack.
type armSetup struct {
	backend, guard *child
	target         string
}

// stop ends every process of the arm.
func (s *armSetup) stop() {
	if s.guard != nil {
		s.guard.Stop()
	}
	if s.backend != nil {
		s.backend.Stop()
	}
}

// runArm starts the arm's processes, attacks, measures and stops them.
func runArm(ctx context.Context, o Options, sc Scenario, arm string) (*Arm, error) {
	setup := &armSetup{}
	defer setup.stop()
	if err := setup.start(ctx, o, sc.Name, arm); err != nil {
		return nil, err
	}
	fcfg, err := sc.floodConfig(setup.target)
	if err != nil {
		return nil, err
	}

	// Baseline, attack and recovery on one clock: T=0 starts the attack.
	t0 := time.Now().Add(o.Baseline)
	groups := []int{setup.backend.pid(), 0}
	if setup.guard != nil {
		groups[1] = setup.guard.pid()
	}
	smp := startSampler(t0, groups...)
	prb := startProber(ctx, t0, setup.target, o.ProbeInterval, o.ProbeTimeout)
	series, probes, fres, err := measure(ctx, o, fcfg, t0, smp, prb)
	if err != nil {
		return nil, err
	}
	end := fres.Started.Add(fcfg.Duration).Sub(t0).Seconds()
	a := summarizeArm(series, probes, fres, end)
	if arm == Protected && len(a.GuardSeries) == 0 {
		return nil, errors.New("no sample of wsguard")
	}
	// A process that died under attack is a finding, not a lab failure:
	// the report says so next to the figures.
	if setup.backend.exited() {
		a.BackendExit = setup.backend.exitErr().Error()
		o.Progress("  the backend exited: " + a.BackendExit)
	}
	if setup.guard != nil && setup.guard.exited() {
		a.GuardExit = setup.guard.exitErr().Error()
		o.Progress("  wsguard exited: " + a.GuardExit)
	}
	return a, nil
}

// measure waits out the baseline, runs the flood and the recovery phase,
// and stops the sampler and the prober, whatever happens.
func measure(ctx context.Context, o Options, fcfg flood.Config, t0 time.Time,
	smp *sampler, prb *prober) ([][]Sample, []probeRecord, *flood.Result, error) {
	stopAll := func() ([][]Sample, []probeRecord) { return smp.stop(), prb.stop() }

	if err := sleepUntil(ctx, t0); err != nil {
		stopAll()
		return nil, nil, nil, err
	}
	o.Progress(fmt.Sprintf("  attacking %s for %s", fcfg.Target, fcfg.Duration))
	fres, err := flood.Run(ctx, fcfg, nil)
	if err != nil {
		stopAll()
		return nil, nil, nil, fmt.Errorf("flood: %w", err)
	}
	o.Progress("  attack over; waiting for the probe to succeed again")
	waitRecovery(ctx, o, prb, fres.Started.Add(fcfg.Duration))
	series, probes := stopAll()
	if ctx.Err() != nil {
		return nil, nil, nil, ctx.Err()
	}
	return series, probes, fres, nil
}

// waitRecovery returns once a probe started after end has succeeded and
// minTail has passed since end, or RecoveryTimeout has, or ctx is done.
func waitRecovery(ctx context.Context, o Options, prb *prober, end time.Time) {
	tick := time.NewTicker(o.ProbeInterval)
	defer tick.Stop()
	deadline := end.Add(o.RecoveryTimeout)
	for time.Now().Before(deadline) {
		if time.Since(end) >= minTail {
			if recovered(prb, end) {
				return
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// recovered reports whether a probe started at or after end succeeded.
func recovered(prb *prober, end time.Time) bool {
	_, ok := recovery(prb.snapshot(), end.Sub(prb.t0).Seconds())
	return ok
}

// summarizeArm turns the samples and probes into the arm's figures.
func summarizeArm(series [][]Sample, probes []probeRecord, fres *flood.Result, attack float64) *Arm {
	st := summarizeProbes(probes, 0, attack)
	bp := peaks(series[0])
	a := &Arm{
		ProbeSuccess: st.successRate(), ProbeAttempts: st.attempts,
		ProbeP50MS: st.p50, ProbeP99MS: st.p99, ProbeFailures: st.failures,
		BackendPeakFDs: bp.FDs, BackendFDLimit: bp.FDLimit, BackendPeakRSS: bp.RSSBytes,
		BackendPeakConns: bp.Conns, BackendPeakCPU: bp.CPUPercent,
		Flood: fres.Counts, FloodWarnings: fres.Warnings, AttackEndS: attack,
		BackendSeries: series[0], GuardSeries: series[1],
	}
	if r, ok := recovery(probes, attack); ok {
		a.RecoverySeconds = &r
	}
	if len(series[1]) > 0 {
		gp := peaks(series[1])
		a.Guard = &gp
	}
	var from, to float64
	if len(probes) > 0 {
		from, to = probes[0].T, probes[0].T
		for _, p := range probes {
			from, to = min(from, p.T), max(to, p.T)
		}
	}
	a.ProbeSeries = probeSeries(probes, from, to)
	return a
}

// start starts the backend and, in the protected arm, wsguard in front
// of it, and waits until the probe gets through.
func (s *armSetup) start(ctx context.Context, o Options, scenario, arm string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	prefix := filepath.Join(o.Dir, scenario+"-"+arm)
	s.backend, err = startChild("backend", prefix+"-backend.log", backendArgv(o, port))
	if err != nil {
		return err
	}
	backendAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.target = "ws://" + backendAddr + o.Path
	if err := waitReady(ctx, s.backend, s.target, prefix+"-backend.log"); err != nil {
		return err
	}
	if arm != Protected {
		return nil
	}

	cfg := prefix + "-wsguard.yaml"
	if err := rewriteConfig(o.Config, cfg, "http://"+backendAddr); err != nil {
		return err
	}
	gport, err := freePort()
	if err != nil {
		return err
	}
	aport, err := freePort()
	if err != nil {
		return err
	}
	gaddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(gport))
	s.guard, err = startChild("wsguard", prefix+"-wsguard.log", []string{o.WSGuardBin, "serve",
		"--config", cfg, "--listen", gaddr,
		"--admin-listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(aport))})
	if err != nil {
		return err
	}
	s.target = "ws://" + gaddr + o.Path
	return waitReady(ctx, s.guard, s.target, prefix+"-wsguard.log")
}

// backendArgv is the backend's command line: the shell sets the
// descriptor limit, soft and hard, then becomes the backend, so that the
// limit holds from the backend's first instruction and its pid is the
// one the lab started.
func backendArgv(o Options, port int) []string {
	cmd := o.BackendCmd
	if cmd == "" {
		cmd = shellQuote(o.WSGuardBin) + " lab-backend --listen 127.0.0.1:{port}"
	}
	cmd = strings.ReplaceAll(cmd, "{port}", strconv.Itoa(port))
	return []string{"/bin/sh", "-c", fmt.Sprintf("ulimit -n %d || exit 125; exec %s", o.BackendNofile, cmd)}
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// waitReady waits until a probe of target succeeds, failing early when
// the process exits.
func waitReady(ctx context.Context, c *child, target, logPath string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	cfg := flood.ProbeConfig{Target: target, Source: probeSource, Timeout: time.Second}
	last := ""
	for {
		_, failure, err := flood.ProbeOnce(ctx, cfg, nil)
		if err != nil {
			return fmt.Errorf("probing %s: %w", c.name, err)
		}
		if failure == "" {
			return nil
		}
		last = failure
		if c.exited() {
			return fmt.Errorf("%s exited before it answered (%v); the end of its output:\n%s",
				c.name, c.exitErr(), tail(logPath, 2048))
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s did not answer a probe of %s within %s (last: %s); the end of its output:\n%s",
					c.name, target, readyTimeout, last, tail(logPath, 2048))
			}
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// sleepUntil waits for t or ctx.
func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
