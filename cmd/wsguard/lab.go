package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wsguard/wsguard/lab"
)

// labFlags are the settings of lab.
type labFlags struct {
	opts      lab.Options
	suite     string
	scenarios string
	out       string
}

func labUsage(fs *flag.FlagSet) func() {
	return func() {
		w := fs.Output()
		fmt.Fprint(w, `usage: wsguard lab [--suite quick|full] [--backend-cmd CMD] [flags]

Attacks a WebSocket backend twice, directly and behind wsguard, and writes
a report (report.md, report.html, results.json, charts) to --out. Every
process it starts runs on loopback and is stopped when it ends.

scenarios: `+strings.Join(lab.Names(), ", ")+`
suites: quick (hold; under a minute), full (every scenario; about four minutes)

flags:
`)
		printFlags(fs)
	}
}

// parseLabFlags parses the command line of lab. Errors are usage errors.
func parseLabFlags(args []string, stderr io.Writer) (*labFlags, error) {
	f := &labFlags{}
	o := &f.opts
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = labUsage(fs)
	fs.StringVar(&f.suite, "suite", "quick", "ready-made scenario set: `quick` or full")
	fs.StringVar(&f.scenarios, "scenarios", "", "comma-separated `names` to run instead of a suite")
	fs.StringVar(&o.BackendCmd, "backend-cmd", "",
		"backend `command`, run as sh -c 'ulimit -n N; exec CMD', with {port} for its port on 127.0.0.1; empty runs a built-in echo backend")
	fs.IntVar(&o.BackendNofile, "backend-nofile", 1024, "the backend's descriptor limit (`N`, soft and hard)")
	fs.StringVar(&o.Path, "path", "/ws", "WebSocket `path` attacked and probed; it must echo text messages")
	fs.StringVar(&o.Config, "config", "examples/tornado/wsguard.yaml",
		"wsguard config `file` of the protected arm (routes' upstreams are pointed at the backend)")
	fs.StringVar(&o.WSGuardBin, "wsguard-bin", "", "wsguard `binary` to run (default: this one)")
	fs.StringVar(&f.out, "out", "lab-report", "report `directory` (created)")
	fs.DurationVar(&o.ProbeInterval, "probe-interval", 100*time.Millisecond, "time between two probes")
	fs.DurationVar(&o.ProbeTimeout, "probe-timeout", 2*time.Second, "a probe that takes longer fails")
	fs.DurationVar(&o.RecoveryTimeout, "recovery-timeout", 15*time.Second,
		"how long to wait for the probe to succeed again after an attack")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if f.scenarios != "" {
		o.Scenarios, err = lab.Lookup(f.scenarios)
	} else {
		o.Scenarios, err = lab.Suite(f.suite)
	}
	if err != nil {
		return nil, err
	}
	if f.out == "" {
		return nil, errors.New("--out must name a directory")
	}
	o.Dir = f.out
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--probe-interval", o.ProbeInterval}, {"--probe-timeout", o.ProbeTimeout},
		{"--recovery-timeout", o.RecoveryTimeout}} {
		if d.v <= 0 {
			return nil, fmt.Errorf("%s must be positive", d.name)
		}
	}
	return f, o.Validate()
}

// labCmd runs `wsguard lab`.
func labCmd(args []string, stdout, stderr io.Writer) int {
	f, err := parseLabFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "wsguard lab: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second Ctrl-C ends the lab at once

	f.opts.Progress = func(s string) { fmt.Fprintln(stderr, s) }
	res, runErr := lab.Run(ctx, f.opts)
	if res != nil && len(res.Scenarios) > 0 {
		if err := lab.WriteReport(f.out, res); err != nil {
			fmt.Fprintf(stderr, "wsguard lab: writing the report: %v\n", err)
			return 1
		}
		lab.WriteSummary(stdout, res)
		fmt.Fprintf(stdout, "report: %s\n", f.out+"/report.md")
	} else if runErr != nil {
		fmt.Fprintln(stderr, "wsguard lab: no scenario finished; no report written")
	}
	switch {
	case runErr != nil && ctx.Err() != nil:
		fmt.Fprintln(stderr, "wsguard lab: interrupted")
		return 130
	case runErr != nil:
		fmt.Fprintf(stderr, "wsguard lab: %v\n", runErr)
		return 1
	}
	return 0
}

// labBackendCmd runs the built-in echo backend of `wsguard lab` as its own
// process, so that the lab can limit and measure it like any backend. It
// is not listed in the usage.
func labBackendCmd(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("lab-backend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8888", "`address` to listen on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "wsguard lab-backend: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: echoHandler(), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Fprintf(stderr, "listening on %s\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "wsguard lab-backend: %v\n", err)
		return 1
	}
	return 0
}
