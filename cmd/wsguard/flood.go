package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wsguard/wsguard/flood"
)

// floodFlags are the settings of flood, parsed into a flood.Config.
type floodFlags struct {
	cfg      flood.Config
	jsonFile string
	procs    int
	worker   *flood.Part // set in a worker process started by --procs
}

// workerFlag is the hidden flag that makes a process a worker of a
// --procs run: "index/of@epoch-unix-nanoseconds".
const workerFlag = "worker"

func floodUsage(fs *flag.FlagSet) func() {
	return func() {
		w := fs.Output()
		fmt.Fprint(w, `usage: wsguard flood --target ws://127.0.0.1:8080/ws [flags]

Stages a connection-exhaustion attack against a WebSocket server you own,
while a probe measures what a legitimate user sees. Targets must be on
loopback unless --allow-target names their range. Every run ends by itself.

scenarios: `+scenarioList()+`

flags:
`)
		printFlags(fs, workerFlag)
	}
}

// printFlags lists the flags of fs, GNU style (--name), leaving out the
// hidden ones.
func printFlags(fs *flag.FlagSet, hidden ...string) {
	w := fs.Output()
	fs.VisitAll(func(f *flag.Flag) {
		if slices.Contains(hidden, f.Name) {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s %s\n    \t%s", f.Name, name, strings.ReplaceAll(usage, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

func scenarioList() string {
	names := make([]string, len(flood.AllScenarios))
	for i, sc := range flood.AllScenarios {
		names[i] = string(sc)
	}
	return strings.Join(names, ", ")
}

// floodText holds the flags that need parsing after the flag package is
// done with them.
type floodText struct {
	scenarios, rate, sources, messageSize, fragmentSize string
	tokenFile, probeTokenFile, probeSource, worker      string
	allow                                               []netip.Prefix
}

// parseFloodFlags parses the command line of flood. Errors are usage
// errors.
func parseFloodFlags(args []string, stderr io.Writer) (*floodFlags, error) {
	f := &floodFlags{}
	var t floodText
	fs := flag.NewFlagSet("flood", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = floodUsage(fs)
	defineFloodFlags(fs, f, &t)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := t.apply(f); err != nil {
		return nil, err
	}
	if err := checkFloodNumbers(f); err != nil {
		return nil, err
	}
	return f, f.cfg.Validate()
}

// defineFloodFlags declares the flags of flood, with their defaults.
func defineFloodFlags(fs *flag.FlagSet, f *floodFlags, t *floodText) {
	c := &f.cfg

	// What to attack, how hard, from where.
	fs.StringVar(&c.Target, "target", "ws://127.0.0.1:8080/ws", "ws:// `URL` to attack")
	fs.StringVar(&t.scenarios, "scenario", "idle-hold", "comma-separated `scenarios`, given to connections in turn")
	fs.IntVar(&c.Connections, "connections", 100, "connections to open, over all processes")
	fs.StringVar(&t.rate, "rate", "100/s", "connections opened per second (`R/s`, R/m); 0 is as fast as possible")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long the run lasts")
	fs.StringVar(&t.sources, "sources", "", "IPv4 source `addresses` to bind, in turn: ranges, CIDRs, lists (127.0.0.2-127.0.0.254)")
	fs.BoolVar(&c.XFF, "xff", false, "send forged X-Forwarded-For and X-Real-IP headers with random addresses")
	fs.StringVar(&t.tokenFile, "token-file", "", "`file` of bearer tokens, one a line, sent in turn as Authorization: Bearer")
	fs.BoolVar(&c.Reconnect, "reconnect", false, "open a connection again when the server refused or closed it")
	fs.Func("allow-target", "let the target be in this `CIDR` although not on loopback (repeatable)", func(s string) error {
		p, err := flood.ParsePrefixes(s)
		t.allow = append(t.allow, p...)
		return err
	})

	// The scenarios' knobs.
	fs.DurationVar(&c.PingEvery, "ping-every", 5*time.Second, "interval of ping-keepalive's pings, data-keepalive's and oversize's messages")
	fs.DurationVar(&c.PongDelay, "pong-delay", 5*time.Second, "how late slow-pongs answers a ping")
	fs.DurationVar(&c.SlowlorisInterval, "slowloris-interval", 2*time.Second, "time between two header lines of slowloris")
	fs.StringVar(&c.ReaderRequest, "reader-request", "", "`text` slow-reader sends to make the server write (default 1 KiB of text)")
	fs.DurationVar(&c.ReaderEvery, "reader-every", 10*time.Millisecond, "how often slow-reader sends its request")
	fs.StringVar(&t.messageSize, "message-size", "2MiB", "`size` of oversize's messages")
	fs.StringVar(&t.fragmentSize, "fragment-size", "16", "payload `size` of fragment-flood's frames")
	fs.DurationVar(&c.FragmentEvery, "fragment-every", 10*time.Millisecond, "time between two frames of fragment-flood")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", 10*time.Second, "time to connect and upgrade")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 5*time.Second, "time a write may take before it counts as stalled")

	// The probe.
	fs.DurationVar(&c.Probe.Interval, "probe-interval", 100*time.Millisecond, "time between two probes; 0 turns the probe off")
	fs.StringVar(&c.Probe.Target, "probe-target", "", "ws:// `URL` the probe uses, which must echo (default --target)")
	fs.StringVar(&t.probeSource, "probe-source", "", "source `address` of the probe (default 127.0.0.1, or a loopback address outside --sources)")
	fs.DurationVar(&c.Probe.Timeout, "probe-timeout", 2*time.Second, "time a probe may take, from connecting to the echo")
	fs.StringVar(&t.probeTokenFile, "probe-token-file", "", "`file` whose first line the probe sends as its bearer token")

	// Output and processes.
	fs.StringVar(&f.jsonFile, "json", "", "write every figure, with a per-second series, to this JSON `file`")
	fs.IntVar(&f.procs, "procs", 1, "spread the run over this many worker processes")
	fs.StringVar(&t.worker, workerFlag, "", "internal: run as a worker of a --procs run")
}

// apply parses the text flags into f.
func (t *floodText) apply(f *floodFlags) error {
	c := &f.cfg
	c.AllowTargets = t.allow
	var err error
	if c.Scenarios, err = flood.ParseScenarios(t.scenarios); err != nil {
		return err
	}
	if c.Rate, err = flood.ParseRate(t.rate); err != nil {
		return err
	}
	if c.MessageSize, err = flood.ParseSize(t.messageSize); err != nil {
		return err
	}
	n, err := flood.ParseSize(t.fragmentSize)
	if err != nil {
		return err
	}
	c.FragmentSize = int(min(n, 1<<30))
	if t.sources != "" {
		if c.Sources, err = flood.ParseSources(t.sources); err != nil {
			return err
		}
	}
	if t.probeSource != "" {
		if c.Probe.Source, err = netip.ParseAddr(t.probeSource); err != nil {
			return fmt.Errorf("--probe-source %q is not an address", t.probeSource)
		}
	}
	if t.tokenFile != "" {
		if c.Tokens, err = readTokens(t.tokenFile); err != nil {
			return err
		}
	}
	if t.probeTokenFile != "" {
		tokens, err := readTokens(t.probeTokenFile)
		if err != nil {
			return err
		}
		c.Probe.Token = tokens[0]
	}
	if t.worker != "" {
		if f.worker, err = parseWorker(t.worker); err != nil {
			return err
		}
	}
	return nil
}

// checkFloodNumbers refuses zero where flood.Config would read it as
// "the default", which on a command line would surprise.
func checkFloodNumbers(f *floodFlags) error {
	c := &f.cfg
	if f.procs < 1 {
		return errors.New("--procs must be at least 1")
	}
	if c.Connections < 1 {
		return errors.New("--connections must be at least 1")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"duration", c.Duration}, {"ping-every", c.PingEvery}, {"pong-delay", c.PongDelay},
		{"slowloris-interval", c.SlowlorisInterval}, {"reader-every", c.ReaderEvery},
		{"fragment-every", c.FragmentEvery}, {"handshake-timeout", c.HandshakeTimeout},
		{"write-timeout", c.WriteTimeout}, {"probe-timeout", c.Probe.Timeout},
	} {
		if d.v <= 0 {
			return fmt.Errorf("--%s must be positive", d.name)
		}
	}
	return nil
}

// readTokens reads one bearer token per line, skipping blank lines and
// lines starting with '#'.
func readTokens(file string) ([]string, error) {
	fh, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var tokens []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			tokens = append(tokens, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%s holds no token", file)
	}
	return tokens, nil
}

// parseWorker parses the hidden --worker value.
func parseWorker(s string) (*flood.Part, error) {
	share, epoch, ok := strings.Cut(s, "@")
	idx, of, ok2 := strings.Cut(share, "/")
	i, err1 := strconv.Atoi(idx)
	n, err2 := strconv.Atoi(of)
	ns, err3 := strconv.ParseInt(epoch, 10, 64)
	if !ok || !ok2 || errors.Join(err1, err2, err3) != nil {
		return nil, fmt.Errorf("bad --%s %q", workerFlag, s)
	}
	return &flood.Part{Index: i, Of: n, Epoch: time.Unix(0, ns)}, nil
}

// floodCmd runs wsguard flood. Exit status: 0 when the run completed,
// whatever the target did; 1 when it could not run or report; 2 on usage
// errors; 130 when interrupted (after reporting).
func floodCmd(args []string, stdout, stderr io.Writer) int {
	f, err := parseFloodFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "wsguard flood:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if f.worker != nil {
		cfg := f.cfg
		cfg.Part = *f.worker
		cfg.Probe.Interval = 0
		if err := flood.RunWorker(ctx, cfg, stdout); err != nil {
			fmt.Fprintf(stderr, "wsguard flood worker %d: %v\n", cfg.Part.Index, err)
			return 1
		}
		return 0
	}

	live := newLiveLine(stdout)
	var res *flood.Result
	if f.procs > 1 {
		var command func(flood.Part) *exec.Cmd
		if command, err = workerCommand(args); err == nil {
			res, err = flood.RunProcs(ctx, f.cfg, f.procs, command, stderr, live.show)
		}
	} else {
		res, err = flood.Run(ctx, f.cfg, live.show)
	}
	live.clear()
	if errors.Is(err, flood.ErrConfig) {
		fmt.Fprintln(stderr, "wsguard flood:", err)
		return 2
	}
	if res == nil {
		fmt.Fprintln(stderr, "wsguard flood:", err)
		return 1
	}
	return report(res, err, f.jsonFile, stdout, stderr)
}

// report writes the summary and the JSON file and picks the exit status.
// err is what went wrong with some of the workers, if anything.
func report(res *flood.Result, err error, jsonFile string, stdout, stderr io.Writer) int {
	code := 0
	res.WriteSummary(stdout)
	if jsonFile != "" {
		if werr := writeJSON(jsonFile, res); werr != nil {
			fmt.Fprintln(stderr, "wsguard flood:", werr)
			code = 1
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "wsguard flood:", err)
		code = 1
	}
	if code == 0 && res.Interrupted {
		code = 130
	}
	return code
}

func writeJSON(file string, res *flood.Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(b, '\n'), 0o644)
}

// workerCommand returns the command of each worker of a --procs run: this
// binary again, with the same arguments and the hidden --worker flag.
func workerCommand(args []string) (func(flood.Part) *exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this binary to start workers: %w", err)
	}
	return func(p flood.Part) *exec.Cmd {
		wargs := append([]string{"flood"}, args...)
		wargs = append(wargs, "--"+workerFlag, fmt.Sprintf("%d/%d@%d", p.Index, p.Of, p.Epoch.UnixNano()))
		return exec.Command(exe, wargs...)
	}, nil
}

// liveLine redraws one line of progress on a terminal, and does nothing
// when the output is not one.
type liveLine struct {
	w io.Writer // nil when not a terminal

	mu    sync.Mutex // guards drawn
	drawn bool
}

func newLiveLine(w io.Writer) *liveLine {
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return &liveLine{w: w}
		}
	}
	return &liveLine{}
}

// show draws p over the previous line. It is nil-safe as a callback.
func (l *liveLine) show(p flood.Progress) {
	if l.w == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "\r\x1b[K%s", p.Line())
	l.drawn = true
}

// clear erases the progress line before the summary.
func (l *liveLine) clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drawn {
		fmt.Fprint(l.w, "\r\x1b[K")
		l.drawn = false
	}
}
