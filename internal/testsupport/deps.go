package testsupport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing dependency
// from a skip into a failure when set to "1". CI sets it.
const RequireEnv = "WSGUARD_REQUIRE_DEPS"

// modulePath identifies this repository's go.mod when walking up to it.
const modulePath = "github.com/wsguard/wsguard"

// installHints maps a word in a dependency's description to the command
// that installs it, checked in order.
var installHints = []struct{ keyword, command string }{
	{"tornado", "apt-get install python3-tornado python3-websockets"},
	{"websockets", "apt-get install python3-tornado python3-websockets"},
	{"redis", "apt-get install redis-server"},
	{"nginx", "apt-get install nginx"},
	{"haproxy", "apt-get install haproxy"},
	{"chromium", "apt-get install chromium"},
	{"promtool", "apt-get install prometheus"},
	{"systemd-analyze", "apt-get install systemd"},
	{"npm ci", "cd internal/testsupport/nodeclient && npm ci"},
	{"node", "apt-get install nodejs npm"},
}

// Require reports that the dependency what is unavailable for the reason
// why. It skips the test, or fails it when WSGUARD_REQUIRE_DEPS=1, naming
// the package to install. Like t.Skip and t.Fatal it does not return.
func Require(t testing.TB, what, why string) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s is required but not available: %s\n"+
			"install it with `%s` (as root), or run .ci/run, which installs "+
			"every test dependency; unset %s to skip such tests instead",
			what, why, installHint(what), RequireEnv)
		return
	}
	t.Skipf("skipping: %s not available: %s (set %s=1 to fail instead)",
		what, why, RequireEnv)
}

// installHint returns the install command for a dependency description.
func installHint(what string) string {
	lower := strings.ToLower(what)
	for _, h := range installHints {
		if strings.Contains(lower, h.keyword) {
			return h.command
		}
	}
	return "apt-get install <the Debian package providing " + what + ">"
}

// LookPath returns the absolute path of the program name, searching PATH and
// then /usr/sbin and /sbin (where nginx and haproxy live on Debian). When it
// is not found it calls [Require].
func LookPath(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return p
		}
	}
	Require(t, name, err.Error())
	return ""
}

var python struct {
	once sync.Once
	path string // interpreter that imports tornado and websockets, or ""
	why  string // why no interpreter qualified, when path is ""
}

// Python returns the path of a Python interpreter that can import tornado
// and websockets: /usr/bin/python3 (where Debian's packages go) first, then
// python3 on PATH. The search runs once per test binary. When no interpreter
// qualifies it calls [Require].
func Python(t testing.TB) string {
	t.Helper()
	python.once.Do(func() { python.path, python.why = findPython() })
	if python.path == "" {
		Require(t, "python3 with tornado and websockets", python.why)
	}
	return python.path
}

// findPython returns the first candidate interpreter that imports tornado
// and websockets, or "" and what went wrong with each candidate.
func findPython() (path, why string) {
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil && p != candidates[0] {
		candidates = append(candidates, p)
	}

	var problems []string
	for _, py := range candidates {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, py, "-c", "import tornado, websockets").
			CombinedOutput()
		cancel()
		if err == nil {
			return py, ""
		}
		problems = append(problems, fmt.Sprintf("%s: %v: %s", py, err, lastLine(out)))
	}
	return "", strings.Join(problems, "; ")
}

// lastLine returns the last non-empty line of out, where Python puts the
// exception of a failed import.
func lastLine(out []byte) string {
	var last string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			last = line
		}
	}
	return last
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before the caller binds it; prefer letting a
// server bind port 0 and report its port when the server can do that.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatalf("releasing port %d: %v", port, err)
	}
	return port
}

// RepoRoot returns the root of the wsguard repository: the directory whose
// go.mod declares module github.com/wsguard/wsguard, found by walking up
// from this package's source directory, or from the working directory when
// the source path is not known (a -trimpath build).
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := findRepoRoot()
	if err != nil {
		t.Fatalf("finding repository root: %v", err)
	}
	return root
}

func findRepoRoot() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}

	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			if declaresModule(filepath.Join(d, "go.mod")) {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", errors.New("no go.mod declaring module " + modulePath +
		" above " + strings.Join(starts, " or "))
}

// declaresModule reports whether the go.mod file at path declares this
// repository's module.
func declaresModule(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == modulePath
		}
	}
	return false
}
