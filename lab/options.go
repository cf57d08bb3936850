package lab

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Options says what Run does. Zero fields take the defaults in their
// comments. Run copies Options and never modifies the caller's value.
type Options struct {
	// Scenarios to run, in order. Required.
	Scenarios []Scenario
	// BackendCmd is the backend's command line, run by /bin/sh as
	// `ulimit -n N; exec BackendCmd`, with every "{port}" replaced by the
	// port it must listen on (127.0.0.1). Empty runs the built-in echo
	// backend of WSGuardBin.
	BackendCmd string
	// BackendNofile is the backend's descriptor limit, soft and hard.
	// Default 1024.
	BackendNofile int
	// Path is the WebSocket path attacked and probed; the backend must
	// echo text messages there. Default "/ws".
	Path string
	// Config is the wsguard YAML file of the protected arm. Required. Its
	// routes' upstreams are pointed at the backend; everything else is
	// used as written.
	Config string
	// WSGuardBin is the wsguard binary. Default: this process's
	// executable.
	WSGuardBin string
	// Dir is where the backends' and wsguard's output go (backend-*.log,
	// wsguard-*.log) and the rewritten config. Required.
	Dir string
	// ProbeInterval is the time between two probes. Default 100ms.
	ProbeInterval time.Duration
	// ProbeTimeout bounds one probe. Default 2s.
	ProbeTimeout time.Duration
	// Baseline is how long the probe runs before the attack. Default 2s.
	Baseline time.Duration
	// RecoveryTimeout is how long after the attack the lab waits for the
	// probe to succeed again. Default 15s.
	RecoveryTimeout time.Duration
	// Progress, when not nil, gets one line per step ("hold: unprotected:
	// attacking").
	Progress func(string)
}

const (
	defaultNofile          = 1024
	defaultPath            = "/ws"
	defaultProbeInterval   = 100 * time.Millisecond
	defaultProbeTimeout    = 2 * time.Second
	defaultBaseline        = 2 * time.Second
	defaultRecoveryTimeout = 15 * time.Second

	// minNofile leaves a backend room for its own files and listener.
	minNofile = 32
)

// withDefaults returns o with its zero fields set to their defaults.
func (o Options) withDefaults() Options {
	if o.BackendNofile == 0 {
		o.BackendNofile = defaultNofile
	}
	if o.Path == "" {
		o.Path = defaultPath
	}
	if o.ProbeInterval == 0 {
		o.ProbeInterval = defaultProbeInterval
	}
	if o.ProbeTimeout == 0 {
		o.ProbeTimeout = defaultProbeTimeout
	}
	if o.Baseline == 0 {
		o.Baseline = defaultBaseline
	}
	if o.RecoveryTimeout == 0 {
		o.RecoveryTimeout = defaultRecoveryTimeout
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
	return o
}

// Validate reports every problem of o after defaults, one per line.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(o.Scenarios) == 0 {
		bad("no scenario to run")
	}
	if o.BackendNofile < minNofile {
		bad("backend nofile %d is below %d: the backend could not even start", o.BackendNofile, minNofile)
	} else if hard, err := hardNofile(); err == nil && uint64(o.BackendNofile) > hard {
		bad("backend nofile %d is above this process's hard limit %d, which a child cannot exceed", o.BackendNofile, hard)
	}
	if o.BackendCmd != "" && !strings.Contains(o.BackendCmd, "{port}") {
		bad("backend command %q has no {port}: the lab must choose the backend's port", o.BackendCmd)
	}
	if !strings.HasPrefix(o.Path, "/") {
		bad("path %q must begin with /", o.Path)
	}
	if o.Config == "" {
		bad("a wsguard config for the protected arm is required")
	} else if _, err := os.Stat(o.Config); err != nil {
		bad("wsguard config: %w", err)
	}
	if o.WSGuardBin != "" {
		if _, err := os.Stat(o.WSGuardBin); err != nil {
			bad("wsguard binary: %w", err)
		}
	}
	if o.Dir == "" {
		bad("an output directory is required")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"probe interval", o.ProbeInterval}, {"probe timeout", o.ProbeTimeout},
		{"baseline", o.Baseline}, {"recovery timeout", o.RecoveryTimeout},
	} {
		if d.v < 0 {
			bad("%s must be positive", d.name)
		}
	}
	if o.ProbeInterval > 0 && o.ProbeInterval < 10*time.Millisecond {
		bad("probe interval %s is below 10ms", o.ProbeInterval)
	}
	return errors.Join(errs...)
}
