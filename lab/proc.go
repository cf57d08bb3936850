package lab

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a child has to exit after SIGTERM before its
// process group gets SIGKILL.
const stopGrace = 5 * time.Second

// child is a process the lab started, in a process group of its own so
// that what it forks is sampled and stopped with it.
type child struct {
	name string
	cmd  *exec.Cmd
	log  *cappedFile
	done chan struct{} // closed once the process has been waited for
	err  error         // how it exited; read after done
	stop sync.Once
}

// startChild starts argv with its output in logPath. The process leads a
// new process group and gets SIGKILL if the lab's thread dies first.
func startChild(name, logPath string, argv []string) (*child, error) {
	f, err := newCappedFile(logPath, maxLogBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: creating log: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// A grandchild that left the group must not hold Wait on the pipe.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: f, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// pid is the process's id, which is also its process group's.
func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the process has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Stop ends the process group: SIGTERM, then SIGKILL after stopGrace
// (or at once when the group leader is gone but members may remain). It
// is safe to call more than once.
func (c *child) Stop() {
	c.stop.Do(func() {
		pgid := c.pid()
		syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(stopGrace)
		select {
		case <-c.done:
		case <-t.C:
		}
		t.Stop()
		// Whatever of the group is left, the leader included.
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-c.done
		c.log.Close()
	})
}

// exitErr describes how the process ended, for an error message.
func (c *child) exitErr() error {
	if c.err == nil {
		return errors.New("exited with status 0")
	}
	return c.err
}

// maxLogBytes caps a child's log: a backend out of descriptors may log an
// error for every accept it retries.
const maxLogBytes = 4 << 20

// cappedFile writes up to max bytes to a file and counts the rest. It is
// safe for concurrent use.
type cappedFile struct {
	mu      sync.Mutex // guards everything below
	f       *os.File
	max     int64
	written int64
	dropped int64
}

func newCappedFile(path string, max int64) (*cappedFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &cappedFile{f: f, max: max}, nil
}

// Write keeps what fits and reports every byte as written, so that the
// child never blocks on its output.
func (c *cappedFile) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - c.written
	keep := min(int64(len(b)), max(room, 0))
	if keep > 0 {
		n, _ := c.f.Write(b[:keep])
		c.written += int64(n)
	}
	c.dropped += int64(len(b)) - keep
	return len(b), nil
}

// Close notes what was dropped and closes the file.
func (c *cappedFile) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped > 0 {
		fmt.Fprintf(c.f, "\n[lab: %d more bytes of output dropped]\n", c.dropped)
		c.dropped = 0
	}
	return c.f.Close()
}

// tail returns up to n bytes of the end of the log file at path.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return string(b)
}
