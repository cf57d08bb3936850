package lab

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/testsupport"
)

// TestBackendGetsItsNofile starts a stand-in backend through backendArgv
// and reads its limit and its command line from /proc.
func TestBackendGetsItsNofile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	o := Options{BackendCmd: "sleep 30 # port {port}", BackendNofile: 777}.withDefaults()
	c, err := startChild("backend", filepath.Join(dir, "b.log"), backendArgv(o, 4242))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()

	// exec replaces the shell: the pid the lab started is the backend's.
	testsupport.Poll(t, 5*time.Second, "the shell to exec the backend", func() (bool, string) {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(c.pid()) + "/cmdline")
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		return strings.HasPrefix(cmdline, "sleep 30"), "pid runs " + strconv.Quote(cmdline)
	})
	b, err := os.ReadFile("/proc/" + strconv.Itoa(c.pid()) + "/limits")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			if f := strings.Fields(line); len(f) < 5 || f[3] != "777" || f[4] != "777" {
				t.Errorf("%q: want soft and hard 777", line)
			}
		}
	}
}

// TestStopEndsTheWholeGroup checks that a child's own children are
// stopped with it, and that a child ignoring SIGTERM gets SIGKILL.
func TestStopEndsTheWholeGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "grandchild.pid")
	script := "trap '' TERM; sleep 60 & echo $! > " + pidFile + "; wait"
	c, err := startChild("stubborn", filepath.Join(dir, "c.log"), []string{"/bin/sh", "-c", script})
	if err != nil {
		t.Fatal(err)
	}
	var grandchild int
	testsupport.Poll(t, 5*time.Second, "the child to start its own child", func() (bool, string) {
		b, _ := os.ReadFile(pidFile)
		grandchild, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return grandchild > 0, "no pid in " + pidFile
	})

	start := time.Now()
	c.Stop()
	if !c.exited() {
		t.Fatal("Stop returned with the child still running")
	}
	if took := time.Since(start); took < stopGrace/2 {
		// The shell ignores SIGTERM, so only the SIGKILL after the grace
		// can have ended it.
		t.Errorf("a child ignoring SIGTERM ended after %v", took)
	}
	// The SIGKILL reached the whole group; the grandchild's death is not
	// announced to this process, which is not its parent.
	testsupport.Poll(t, 5*time.Second, "the grandchild to die", func() (bool, string) {
		if syscall.Kill(grandchild, 0) != nil {
			return true, ""
		}
		// A zombie not yet reaped by its new parent still answers.
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(grandchild) + "/stat")
		_, rest, _ := strings.Cut(string(b), ") ")
		return strings.HasPrefix(rest, "Z"), "still running: " + string(b)
	})
	c.Stop() // a second Stop is harmless
}

func TestCappedFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "log")
	f, err := newCappedFile(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"0123456", "789abc", "def"} {
		if n, err := f.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "0123456789") || !strings.Contains(string(b), "6 more bytes of output dropped") {
		t.Errorf("log %q", b)
	}
	if got := tail(path, 9); got != "dropped]\n" {
		t.Errorf("tail %q", got)
	}
}
