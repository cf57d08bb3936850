package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/wsguard/wsguard/flood"
)

// plan is how long and how large each measurement is.
type plan struct {
	idleConns    int           // figure 1
	idleSettle   time.Duration // wait after the last connection opened
	floodFor     time.Duration // figure 2
	floodWorkers int           // concurrent handshakes beyond the limit
	latencyFor   time.Duration // figure 3
	latencyEvery time.Duration
	tputFor      time.Duration // figure 4
	tputConns    int
	tputWindow   int // messages in flight per connection
}

// Source addresses. The idle connections come from 127.0.0.2-254; the
// flood from one address outside that range, its probe from another.
const (
	idleSources  = "127.0.0.2-127.0.0.254"
	floodSource  = "127.0.1.1"
	probeSource  = "127.0.1.2"
	idleOpenRate = "3000/s"
)

// sample is one proxy's figures from one round.
type sample struct {
	IdleConns       int     `json:"idle_conns"`
	BytesPerIdle    float64 `json:"bytes_per_idle"`
	Refusals        int64   `json:"refusals"`
	RefusalsPerSec  float64 `json:"refusals_per_s"`
	RefusalCPUSec   float64 `json:"refusal_cpu_s"`
	OtherStatuses   string  `json:"other_statuses,omitempty"`
	ProbeSuccess    float64 `json:"probe_success"` // 0 to 1
	ProbeP99MS      float64 `json:"probe_p99_ms"`
	LatencyP50MS    float64 `json:"latency_p50_ms"`
	LatencyP99MS    float64 `json:"latency_p99_ms"`
	MessagesPerSec  float64 `json:"messages_per_s"`
	MessagesCPUSec  float64 `json:"messages_cpu_s"`
	MessagesRelayed int64   `json:"messages"`
}

// measureAll runs the four measurements against one started proxy, in
// the order idle memory, refusals, latency, throughput.
func measureAll(r *running, floodBin, dir string, pl plan) (sample, error) {
	var s sample
	steps := []struct {
		name string
		run  func() error
	}{
		{"idle memory", func() error { return measureIdle(r, floodBin, dir, pl, &s) }},
		{"refusals", func() error { return measureRefusals(r, floodBin, dir, pl, &s) }},
		{"latency", func() error {
			l, err := measureLatency(r.addr, pl.latencyEvery, pl.latencyFor)
			s.LatencyP50MS, s.LatencyP99MS = ms(l.P50), ms(l.P99)
			return err
		}},
		{"throughput", func() error { return measureRelay(r, pl, &s) }},
	}
	for _, st := range steps {
		logf("  %s: %s", r.name, st.name)
		if err := st.run(); err != nil {
			return s, fmt.Errorf("%s, %s: %w", r.name, st.name, err)
		}
	}
	return s, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// measureIdle holds pl.idleConns idle connections through r with
// `wsguard flood --scenario idle-hold` and divides the growth of the
// proxy's summed RSS by the connections it holds.
func measureIdle(r *running, floodBin, dir string, pl plan, s *sample) error {
	before := r.usage()
	f, err := startFlood(floodBin, dir, "idle-"+r.name,
		"--target", "ws://"+r.addr+"/", "--scenario", "idle-hold",
		"--connections", strconv.Itoa(pl.idleConns), "--rate", idleOpenRate,
		"--sources", idleSources, "--duration", "10m", "--probe-interval", "0")
	if err != nil {
		return err
	}
	if err := waitHeld(r, f, before.fds, pl.idleConns); err != nil {
		f.interrupt()
		return err
	}
	time.Sleep(pl.idleSettle) // a measurement, not a test: let the proxy settle
	after := r.usage()
	s.IdleConns = (after.fds - before.fds) / 2
	s.BytesPerIdle = float64(after.rss-before.rss) / float64(s.IdleConns)

	// Close them, and wait until the proxy has let go of them, so that the
	// CPU it spends closing is not charged to the next measurement.
	f.interrupt()
	return waitReleased(r, before.fds)
}

// waitReleased waits until the proxy holds no more than a few descriptors
// beyond base, for up to a minute.
func waitReleased(r *running, base int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		fds := r.usage().fds
		if fds <= base+8 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the proxy still holds %d descriptors a minute after the flood ended, %d before it", fds, base)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitHeld waits until the proxy holds n more proxied connections than
// when it held base descriptors (two descriptors each), or at least 98%
// of them with no change for five seconds: on a loaded machine a few
// handshakes of thousands may time out, and the figure is per connection
// actually held.
func waitHeld(r *running, f *floodRun, base, n int) error {
	want := base + 2*n
	deadline := time.Now().Add(2 * time.Minute)
	last, since := -1, time.Now()
	for {
		fds := r.usage().fds
		if fds >= want || (fds >= base+2*n*98/100 && time.Since(since) > 5*time.Second) {
			return nil
		}
		if fds != last {
			last, since = fds, time.Now()
		}
		if time.Now().After(deadline) || f.exited() {
			return fmt.Errorf("the proxy holds %d descriptors, want %d\nflood:\n%s\nproxy:\n%s",
				fds, want, tail(f.log), tail(r.log))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// measureRefusals floods r from one address with pl.floodWorkers more
// connections than the per-IP limit allows, each opened again as soon as
// it is refused, while a probe from another address runs.
func measureRefusals(r *running, floodBin, dir string, pl plan, s *sample) error {
	out := filepath.Join(dir, "flood-"+r.name+".json")
	before := r.usage()
	f, err := startFlood(floodBin, dir, "refuse-"+r.name,
		"--target", "ws://"+r.addr+"/", "--scenario", "idle-hold", "--reconnect",
		"--connections", strconv.Itoa(perIPLimit+pl.floodWorkers), "--rate", "0",
		"--sources", floodSource, "--probe-source", probeSource,
		"--probe-interval", "100ms", "--duration", pl.floodFor.String(), "--json", out)
	if err != nil {
		return err
	}
	if err := f.wait(); err != nil {
		return err
	}
	cpu := r.usage().cpuSec - before.cpuSec

	var res flood.Result
	b, err := os.ReadFile(out)
	if err == nil {
		err = json.Unmarshal(b, &res)
	}
	if err != nil {
		return fmt.Errorf("reading the flood's result: %w", err)
	}
	s.Refusals = res.Refused["429"]
	for code, n := range res.Refused {
		if code != "429" {
			s.OtherStatuses += fmt.Sprintf("%s:%d ", code, n)
		}
	}
	s.RefusalsPerSec = float64(s.Refusals) / res.Seconds
	s.RefusalCPUSec = cpu
	if res.Probe != nil {
		s.ProbeSuccess, s.ProbeP99MS = res.Probe.SuccessRate, res.Probe.P99MS
	}
	return nil
}

// measureRelay runs the throughput client through r and charges the
// proxy's CPU time to the messages relayed.
func measureRelay(r *running, pl plan, s *sample) error {
	before := r.usage()
	n, elapsed, err := measureThroughput(r.addr, pl.tputConns, pl.tputWindow, pl.tputFor)
	if err != nil {
		return err
	}
	s.MessagesRelayed = n
	s.MessagesPerSec = float64(n) / elapsed.Seconds()
	s.MessagesCPUSec = r.usage().cpuSec - before.cpuSec
	return nil
}

// floodRun is a running `wsguard flood`.
type floodRun struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process ended
	err  error         // how it ended; read after done
}

func startFlood(bin, dir, name string, args ...string) (*floodRun, error) {
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := exec.Command(bin, append([]string{"flood"}, args...)...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting wsguard flood: %w", err)
	}
	f := &floodRun{cmd: cmd, log: logPath, done: make(chan struct{})}
	unregister := onInterrupt(func() { cmd.Process.Kill() })
	go func() { f.err = cmd.Wait(); unregister(); close(f.done) }()
	return f, nil
}

// wait waits for the flood to end by itself.
func (f *floodRun) wait() error {
	<-f.done
	if f.err != nil {
		out, _ := os.ReadFile(f.log)
		return fmt.Errorf("wsguard flood: %w\n%s", f.err, out)
	}
	return nil
}

func (f *floodRun) exited() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// interrupt stops the flood early (it closes its connections on SIGINT)
// and waits for it, killing it after 20 s.
func (f *floodRun) interrupt() {
	f.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-f.done:
	case <-time.After(20 * time.Second):
		f.cmd.Process.Kill()
		<-f.done
	}
}

// tail returns the end of a log file, for error messages.
func tail(file string) string {
	b, _ := os.ReadFile(file)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
