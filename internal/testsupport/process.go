package testsupport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// readyTimeout bounds how long a started process may take to be ready.
	readyTimeout = 10 * time.Second
	// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
	stopGrace = 5 * time.Second
	// pipeGrace bounds how long Wait keeps copying output after the process
	// exited, in case a child of it still holds the pipe.
	pipeGrace = 2 * time.Second
)

// Process is a server started for a test. It is stopped by t.Cleanup when
// the test ends, and its output is written to the test log if the test
// failed. Its methods are safe for concurrent use.
type Process struct {
	Name string // short name used in messages, such as "tornado"
	Addr string // host:port the process listens on, such as "127.0.0.1:41234"
	PID  int    // operating-system process id

	cmd  *exec.Cmd
	out  *output
	done chan struct{} // closed once the process has exited and been reaped
	// waitErr is the result of cmd.Wait; read it only after done is closed.
	waitErr error

	stopOnce sync.Once
	stopErr  error // result of the first Stop
}

// start runs path with args as a Process named name, registering its
// cleanup with t. The caller waits for readiness and sets Addr.
func start(t testing.TB, name, path string, args ...string) *Process {
	t.Helper()
	out := newOutput()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	// One writer for both streams: exec then uses one pipe, keeping the
	// order of lines, and calls Write from one goroutine at a time.
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = pipeGrace
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}

	p := &Process{
		Name: name,
		PID:  cmd.Process.Pid,
		cmd:  cmd,
		out:  out,
		done: make(chan struct{}),
	}
	go p.reap()
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Logf("stopping %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("output of %s (pid %d):\n%s", name, p.PID, p.Output())
		}
	})
	return p
}

// reap waits for the process to exit and records how it ended.
func (p *Process) reap() {
	p.waitErr = p.cmd.Wait()
	close(p.done)
}

// Done returns a channel that is closed once the process has exited.
func (p *Process) Done() <-chan struct{} {
	return p.done
}

// Signal sends sig to the process, for tests that crash or pause a backend
// on purpose. Signalling a process that has exited returns an error wrapping
// os.ErrProcessDone.
func (p *Process) Signal(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signalling %s (pid %d): %w", p.Name, p.PID, err)
	}
	return nil
}

// Stop ends the process: SIGTERM, then SIGKILL if it has not exited within
// 5 seconds. It returns nil only if the process was running and exited with
// status 0 after SIGTERM. Later calls return the first call's result.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() { p.stopErr = p.stop() })
	return p.stopErr
}

func (p *Process) stop() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited before Stop: %w", p.Name, exitError(p.waitErr))
	default:
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil &&
		!errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("sending SIGTERM to %s: %w", p.Name, err)
	}
	timer := time.NewTimer(stopGrace)
	defer timer.Stop()
	select {
	case <-p.done:
		if p.waitErr != nil {
			return fmt.Errorf("%s exited uncleanly after SIGTERM: %w", p.Name, p.waitErr)
		}
		return nil
	case <-timer.C:
	}

	// NOTE: Kill fails only if the process is already gone, in which
	// case done is about to close anyway.
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%s still running %v after SIGTERM, killed", p.Name, stopGrace)
}

// exitError describes how a process that exited on its own ended.
func exitError(waitErr error) error {
	if waitErr == nil {
		return errors.New("exit status 0")
	}
	return waitErr
}

// Output returns everything the process has written to stdout and stderr
// so far, interleaved as written.
func (p *Process) Output() string {
	s, _ := p.out.snapshot()
	return s
}

// WaitOutput waits until substr occurs at least n times in the process's
// output, for tests that need to know a backend has seen an event, such as
// the Tornado example's "ws close path=/ws code=1000" log line. It fails if
// ctx ends or the process exits first.
func (p *Process) WaitOutput(ctx context.Context, substr string, n int) error {
	err := p.waitFor(ctx, func(s string) bool { return strings.Count(s, substr) >= n })
	if err != nil {
		return fmt.Errorf("waiting for %q %d times in output of %s: %w", substr, n, p.Name, err)
	}
	return nil
}

// errExited is wrapped when a process exits while something waits on it.
var errExited = errors.New("process exited")

// waitFor calls match with the whole output after every write until it
// returns true. It returns ctx's error if ctx ends first, and an error
// wrapping errExited if the process exits without match succeeding.
func (p *Process) waitFor(ctx context.Context, match func(output string) bool) error {
	for {
		s, changed := p.out.snapshot()
		if match(s) {
			return nil
		}
		select {
		case <-changed:
		case <-p.done:
			// Wait has returned, so the output is complete: look once more.
			if s, _ := p.out.snapshot(); match(s) {
				return nil
			}
			return fmt.Errorf("%w: %v", errExited, exitError(p.waitErr))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// output collects a process's output and wakes waiters on every write.
type output struct {
	mu      sync.Mutex    // guards buf and changed
	buf     bytes.Buffer  // everything written so far
	changed chan struct{} // closed by the next Write, then replaced
}

func newOutput() *output {
	return &output{changed: make(chan struct{})}
}

// Write appends b and wakes everyone waiting for a change.
func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()

	o.buf.Write(b)
	close(o.changed)
	o.changed = make(chan struct{})
	return len(b), nil
}

// snapshot returns the output so far and a channel closed by the next write.
func (o *output) snapshot() (string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String(), o.changed
}

// waitProbe calls probe every interval until it succeeds, p exits, or
// readyTimeout passes; it is how a started process is judged ready.
func (p *Process) waitProbe(interval time.Duration, probe func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		last := probe(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-tick.C:
		case <-p.done:
			return fmt.Errorf("%w: %v", errExited, exitError(p.waitErr))
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %v)", ctx.Err(), last)
		}
	}
}
