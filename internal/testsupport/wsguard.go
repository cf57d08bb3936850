package testsupport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// wsguardPortTries is how many pairs of free ports StartWSGuard tries
// when another process takes one before wsguard binds it.
const wsguardPortTries = 3

// wsguardBuildTimeout bounds building the binary; a race build on a
// busy two-core machine can take a while.
const wsguardBuildTimeout = 5 * time.Minute

var wsguardBuild struct {
	once sync.Once
	dir  string // holds the binary; removed by [RunTests]
	path string // the binary, or "" when the build failed
	err  error
}

// WSGuardBinary builds cmd/wsguard once per test binary, with the race
// detector when the test binary has it, and returns its path. Packages
// that use it run their tests through [RunTests], which removes the
// binary at the end.
func WSGuardBinary(t testing.TB) string {
	t.Helper()
	wsguardBuild.once.Do(buildWSGuard)
	if wsguardBuild.err != nil {
		t.Fatalf("building wsguard: %v", wsguardBuild.err)
	}
	return wsguardBuild.path
}

func buildWSGuard() {
	b := &wsguardBuild
	root, err := findRepoRoot()
	if err != nil {
		b.err = err
		return
	}
	if b.dir, err = os.MkdirTemp("", "wsguard-bin-"); err != nil {
		b.err = err
		return
	}
	path := filepath.Join(b.dir, "wsguard")
	args := []string{"build", "-o", path}
	if raceEnabled() {
		args = append(args, "-race")
	}
	// go test puts its own go command first on PATH.
	ctx, cancel := context.WithTimeout(context.Background(), wsguardBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/wsguard")...)
	cmd.Dir = root
	cmd.WaitDelay = pipeGrace
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.err = fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		return
	}
	b.path = path
}

// raceEnabled reports whether this test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// RunTests runs m and then removes the binary [WSGuardBinary] built, if
// any. Call it from TestMain: os.Exit(testsupport.RunTests(m)).
func RunTests(m *testing.M) int {
	code := m.Run()
	if wsguardBuild.dir != "" {
		os.RemoveAll(wsguardBuild.dir)
	}
	return code
}

// WSGuard is a wsguard serve process started by [StartWSGuard].
type WSGuard struct {
	*Process        // Addr is the public listener
	Admin    string // host:port of the admin listener
	Config   string // path of the config file it runs on
}

// AdminURL returns the http URL of path on the admin listener.
func (g *WSGuard) AdminURL(path string) string {
	return "http://" + g.Admin + path
}

// StartWSGuard runs `wsguard serve --config FILE` on the configuration
// that conf returns for a public and an admin address on free ports of
// 127.0.0.1, which the configuration must listen on, and returns once
// wsguard has logged that it listens. The file is written to a fresh
// temporary directory. It fails the test, showing wsguard's output, if
// wsguard is not listening within 10 seconds. wsguard is stopped by PID
// (SIGTERM, a drain) when the test ends.
func StartWSGuard(t testing.TB, conf func(listen, admin string) string) *WSGuard {
	t.Helper()
	bin := WSGuardBinary(t)
	for try := 1; ; try++ {
		listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
		admin := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
		file := filepath.Join(t.TempDir(), "wsguard.yaml")
		if err := os.WriteFile(file, []byte(conf(listen, admin)), 0o644); err != nil {
			t.Fatalf("writing wsguard configuration: %v", err)
		}
		p := start(t, "wsguard", bin, "serve", "--config", file)
		p.Addr = listen
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		err := p.waitFor(ctx, func(s string) bool { return strings.Contains(s, "wsguard listening") })
		cancel()
		if err == nil {
			return &WSGuard{Process: p, Admin: admin, Config: file}
		}
		if errors.Is(err, errExited) && try < wsguardPortTries &&
			strings.Contains(p.Output(), "address already in use") {
			t.Logf("wsguard lost port %s or %s to another process, retrying", listen, admin)
			continue
		}
		t.Fatalf("waiting for wsguard on %s: %v\noutput:\n%s", listen, err, p.Output())
	}
}
