package flood

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// workerLine is one line a worker writes on its standard output: a
// progress snapshot, or, last, its result.
type workerLine struct {
	Progress *Progress `json:"progress,omitempty"`
	Result   *Result   `json:"result,omitempty"`
}

// workerProgressEvery is how often a worker reports progress.
const workerProgressEvery = 500 * time.Millisecond

// workerExitGrace is how long after the end of the run RunProcs waits for
// a worker to exit before it kills it.
const workerExitGrace = 15 * time.Second

// RunWorker runs cfg, normally one Part of a run, and writes its progress
// about twice a second and then its result to w, one JSON object a line.
// It is what a worker process started by RunProcs does. Errors are those
// of Run and of writing to w.
func RunWorker(ctx context.Context, cfg Config, w io.Writer) error {
	enc := json.NewEncoder(w)
	var last time.Time
	var werr error
	res, err := Run(ctx, cfg, func(p Progress) {
		if time.Since(last) < workerProgressEvery || werr != nil {
			return
		}
		last = time.Now()
		werr = enc.Encode(workerLine{Progress: &p})
	})
	if err != nil {
		return err
	}
	if err := enc.Encode(workerLine{Result: res}); err != nil {
		return fmt.Errorf("writing the result: %w", err)
	}
	return nil
}

// RunProcs spreads the run cfg describes over procs worker processes and
// merges what they report. command returns the command, not yet started,
// of the worker that does part: it must call RunWorker with cfg, that
// Part, and Probe.Interval zero, writing to its standard output.
// RunProcs sets the command's Stdout, and its Stderr to stderr when unset.
//
// The probe runs in this process, so its figures are not split. progress,
// when not nil, gets the workers' progress added to the probe's. When ctx
// is cancelled the workers are interrupted and report what they have.
// The Result holds what every worker reported; the error says which
// workers failed to.
func RunProcs(ctx context.Context, cfg Config, procs int, command func(Part) *exec.Cmd,
	stderr io.Writer, progress func(Progress)) (*Result, error) {
	if procs < 1 {
		return nil, configErrorf("procs must be at least 1")
	}
	cfg.Part = Part{Index: 0, Of: procs, Epoch: time.Now()}
	parent, err := newRun(ctx, cfg, false)
	if err != nil {
		return nil, err
	}

	ws := &workers{latest: make([]Progress, procs), results: make([]*Result, procs)}
	for i := range procs {
		part := cfg.Part
		part.Index = i
		if err := ws.start(command(part), i, stderr); err != nil {
			ws.kill()
			ws.wait()
			return nil, fmt.Errorf("starting worker %d: %w", i, err)
		}
	}

	// Interrupt the workers with the run, and kill those that overstay.
	stopInterrupt := context.AfterFunc(ctx, ws.interrupt)
	defer stopInterrupt()
	killer := time.AfterFunc(time.Until(parent.end)+workerExitGrace, ws.kill)
	defer killer.Stop()

	res := parent.execute(ctx, func(p Progress) {
		if progress != nil {
			progress(ws.progress(p))
		}
	})
	errs := ws.wait()
	// This process holds no connection: its memory is not the cost of
	// any, and would skew the workers' figure.
	res.Tool = Tool{FDLimit: res.Tool.FDLimit}
	for i, wr := range ws.results {
		if wr == nil {
			errs = append(errs, fmt.Errorf("worker %d reported no result", i))
			continue
		}
		res.Merge(wr)
	}
	res.Connections, res.Procs = cfg.Connections, procs
	return res, errors.Join(errs...)
}

// workers are the processes of RunProcs.
type workers struct {
	cmds    []*exec.Cmd
	readers sync.WaitGroup // one per worker's standard output

	mu      sync.Mutex // guards latest, results and errs
	latest  []Progress
	results []*Result
	errs    []error
}

// start starts worker i and a goroutine that reads its reports.
func (ws *workers) start(cmd *exec.Cmd, i int, stderr io.Writer) error {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if cmd.Stderr == nil {
		cmd.Stderr = stderr
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = workerSysProcAttr()
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	ws.cmds = append(ws.cmds, cmd)
	ws.readers.Add(1)
	go ws.read(out, i)
	return nil
}

// read decodes worker i's lines until its output ends.
func (ws *workers) read(out io.Reader, i int) {
	defer ws.readers.Done()
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	for sc.Scan() {
		var line workerLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			ws.fail(fmt.Errorf("worker %d: unreadable report: %w", i, err))
			continue
		}
		ws.mu.Lock()
		if line.Progress != nil {
			ws.latest[i] = *line.Progress
		}
		if line.Result != nil {
			ws.results[i] = line.Result
		}
		ws.mu.Unlock()
	}
	if err := sc.Err(); err != nil {
		ws.fail(fmt.Errorf("worker %d: reading its reports: %w", i, err))
	}
	// Drain whatever is left so the worker never blocks on a full pipe.
	io.Copy(io.Discard, out)
}

func (ws *workers) fail(err error) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.errs = append(ws.errs, err)
}

// progress returns own plus the latest progress of every worker.
func (ws *workers) progress(own Progress) Progress {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, p := range ws.latest {
		own.add(p)
	}
	return own
}

// interrupt asks every worker to stop early and report.
func (ws *workers) interrupt() {
	for _, cmd := range ws.cmds {
		cmd.Process.Signal(os.Interrupt)
	}
}

// kill ends every worker at once.
func (ws *workers) kill() {
	for _, cmd := range ws.cmds {
		cmd.Process.Kill()
	}
}

// wait waits for every worker to exit and returns what went wrong.
func (ws *workers) wait() []error {
	ws.readers.Wait()
	var errs []error
	for i, cmd := range ws.cmds {
		if err := cmd.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("worker %d: %w", i, err))
		}
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return append(errs, ws.errs...)
}
