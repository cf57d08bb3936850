// Command compare measures wsguard, nginx and HAProxy side by side, in
// one run on one machine, in front of the same echo backend:
//
//	go run ./bench/compare [--quick] [--rounds N] [--out DIR]
//
// It installs nothing: nginx and haproxy must be on PATH or in /usr/sbin
// (Debian packages nginx and haproxy). For each round it starts each
// proxy in turn with an equivalent generated configuration (WebSocket
// proxying, a per-IP limit of 64 answering 429, descriptor limit 20,000,
// loopback ports), measures
//
//  1. RSS growth per idle proxied connection at 9,000 connections,
//     summed over the proxy's processes;
//  2. handshakes refused per second by the per-IP limit during a
//     single-address flood, the proxy's CPU per 1,000 refusals, and a
//     probe's success rate and p99 from another address;
//  3. request-reply latency p50/p99 at a modest fixed rate, through the
//     proxy and straight to the backend;
//  4. small messages relayed per second over many connections, and the
//     proxy's CPU per million;
//
// stops it, and finally runs the Go benchmarks of the frame parser,
// admission and store through benchstat (5). It prints one table of
// medians over the rounds with ratios of wsguard to nginx and HAProxy,
// and writes results.json, table.md, gobench.txt, benchstat.txt and PNG
// charts to --out. Connections are made by `wsguard flood` (figures 1
// and 2) and by the harness's own client (3 and 4); the backend is the
// harness's own echo server, run as a separate process. Everything runs
// on loopback and stops by itself.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	quick := flag.Bool("quick", false, "one short round, about two minutes")
	rounds := flag.Int("rounds", 3, "rounds of the whole comparison; the table shows medians")
	out := flag.String("out", "bench/results", "directory for results.json, table.md, benchstat.txt and charts")
	conns := flag.Int("conns", 9000, "idle connections per proxy for figure 1")
	goBench := flag.Bool("gobench", true, "run the Go benchmarks (figure 5)")
	only := flag.String("only", "", "comma-separated proxies to measure (default all)")
	backend := flag.String("backend", "", "internal: run as the echo backend on this address")
	load := flag.String("load", "", "run only the relay load (figures 3 and 4) against this address, for profiling")
	from := flag.String("from", "", "measure nothing: print the table and draw the charts of this results.json into --out")
	flag.Parse()
	if *from != "" {
		if err := replot(*from, *out); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
		return
	}
	if *load != "" {
		loadOnly(*load, fullPlan(0))
		return
	}
	if *backend != "" {
		if err := runBackend(*backend); err != nil {
			fmt.Fprintln(os.Stderr, "backend:", err)
			os.Exit(1)
		}
		return
	}
	pl := fullPlan(*conns)
	if *quick {
		pl, *rounds = quickPlan(*conns), 1
	}
	if err := run(pl, *rounds, *out, *goBench, *quick, *only); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// loadOnly runs the latency and throughput clients against addr and
// prints what they measured: a load to profile a proxy under.
func loadOnly(addr string, pl plan) {
	l, err := measureLatency(addr, pl.latencyEvery, pl.latencyFor)
	fmt.Printf("latency p50 %.3f ms p99 %.3f ms (%d round trips), err %v\n", ms(l.P50), ms(l.P99), l.N, err)
	n, d, err := measureThroughput(addr, pl.tputConns, pl.tputWindow, pl.tputFor)
	fmt.Printf("throughput %.0f messages/s, err %v\n", float64(n)/d.Seconds(), err)
}

func fullPlan(conns int) plan {
	return plan{idleConns: conns, idleSettle: 10 * time.Second,
		floodFor: 10 * time.Second, floodWorkers: 200,
		latencyFor: 15 * time.Second, latencyEvery: 2 * time.Millisecond,
		tputFor: 10 * time.Second, tputConns: 64, tputWindow: 16}
}

func quickPlan(conns int) plan {
	return plan{idleConns: conns, idleSettle: 3 * time.Second,
		floodFor: 5 * time.Second, floodWorkers: 200,
		latencyFor: 4 * time.Second, latencyEvery: 2 * time.Millisecond,
		tputFor: 4 * time.Second, tputConns: 64, tputWindow: 16}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// report is everything one run found; results.json holds it.
type report struct {
	Started  time.Time           `json:"started"`
	Machine  machine             `json:"machine"`
	Quick    bool                `json:"quick"`
	Rounds   int                 `json:"rounds"`
	Plan     string              `json:"plan"`
	Samples  map[string][]sample `json:"samples"` // by proxy, one per round
	Direct   []sample            `json:"direct"`  // latency straight to the backend
	Medians  map[string]sample   `json:"medians"`
	DirectMd sample              `json:"direct_median"`
	Load     []string            `json:"load"` // uptime before each round and at the end
}

func run(pl plan, rounds int, out string, goBench, quick bool, only string) error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("needs Linux (/proc, 127.0.0.0/8 source addresses)")
	}
	if err := setNofile(); err != nil {
		return err
	}
	handleInterrupts()
	dir, err := os.MkdirTemp("", "wsguard-compare")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	onInterrupt(func() { os.RemoveAll(dir) })
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}

	logf("building wsguard")
	bin := filepath.Join(dir, "wsguard")
	if b, err := exec.Command("go", "build", "-o", bin, "./cmd/wsguard").CombinedOutput(); err != nil {
		return fmt.Errorf("building wsguard (run from the repository root): %v\n%s", err, b)
	}
	ps := selectProxies(proxies(bin), only)
	if err := lookPaths(ps); err != nil {
		return err
	}
	rep := &report{Started: time.Now().UTC(), Machine: describeMachine(ps), Quick: quick,
		Rounds: rounds, Plan: fmt.Sprintf("%+v", pl), Samples: map[string][]sample{}}

	backendAddr, stopBackend, err := startBackend()
	if err != nil {
		return err
	}
	defer stopBackend()

	for round := range rounds {
		rep.Load = append(rep.Load, loadAvg())
		logf("round %d of %d, load %s", round+1, rounds, loadAvg())
		// Rotate the order so drift in the machine's load spreads evenly.
		for i := range ps {
			p := ps[(i+round)%len(ps)]
			s, err := measureProxy(p, dir, backendAddr, bin, pl)
			if err != nil {
				return err
			}
			rep.Samples[p.name] = append(rep.Samples[p.name], s)
		}
		l, err := measureLatency(backendAddr, pl.latencyEvery, pl.latencyFor)
		if err != nil {
			return fmt.Errorf("direct latency: %w", err)
		}
		rep.Direct = append(rep.Direct, sample{LatencyP50MS: ms(l.P50), LatencyP99MS: ms(l.P99)})
	}
	rep.Load = append(rep.Load, loadAvg())
	stopBackend()

	rep.Medians = map[string]sample{}
	for name, ss := range rep.Samples {
		rep.Medians[name] = medianSample(ss)
	}
	rep.DirectMd = medianSample(rep.Direct)
	table := formatTable(rep)
	fmt.Println(table)
	if err := writeOutputs(rep, table, out); err != nil {
		return err
	}
	if goBench {
		stat, err := runGoBenchmarks(dir, quick)
		if err != nil {
			return err
		}
		fmt.Println(stat)
		if err := os.WriteFile(filepath.Join(out, "benchstat.txt"), []byte(stat), 0o644); err != nil {
			return err
		}
		// Keep the raw runs too, for a later `benchstat old new`.
		raw, err := os.ReadFile(filepath.Join(dir, "gobench.txt"))
		if err == nil {
			err = os.WriteFile(filepath.Join(out, "gobench.txt"), raw, 0o644)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// replot renders the table and charts of a saved results.json.
func replot(file, out string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	table := formatTable(&rep)
	fmt.Println(table)
	if err := os.WriteFile(filepath.Join(out, "table.md"), []byte(table), 0o644); err != nil {
		return err
	}
	return writeCharts(&rep, out)
}

// measureProxy starts p, measures it and stops it.
func measureProxy(p *proxy, dir, backendAddr, bin string, pl plan) (sample, error) {
	r, err := start(p, dir, backendAddr)
	if err != nil {
		return sample{}, err
	}
	defer r.stop()
	return measureAll(r, bin, dir, pl)
}

func selectProxies(ps []*proxy, only string) []*proxy {
	if only == "" {
		return ps
	}
	var out []*proxy
	for _, p := range ps {
		if strings.Contains(","+only+",", ","+p.name+",") {
			out = append(out, p)
		}
	}
	return out
}

// startBackend runs this program again as the echo backend.
func startBackend() (addr string, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	addr = freeAddr()
	cmd := exec.Command(self, "-backend", addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	unregister := onInterrupt(func() { cmd.Process.Kill() })
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cmd.Process.Kill()
			cmd.Wait()
			unregister()
		}
	}
	if err := waitTCP(addr, 10*time.Second); err != nil {
		stop()
		return "", nil, err
	}
	return addr, stop, nil
}

func writeOutputs(rep *report, table, out string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "results.json"), b, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "table.md"), []byte(table), 0o644); err != nil {
		return err
	}
	return writeCharts(rep, out)
}

func waitTCP(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not accept within %v: %w", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port free at the moment.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err) // loopback without a free port: nothing to measure
	}
	defer ln.Close()
	return ln.Addr().String()
}
