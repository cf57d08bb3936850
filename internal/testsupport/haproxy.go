package testsupport

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// haproxyPortTries is how many free ports StartHAProxy tries when another
// process takes the chosen port before HAProxy binds it.
const haproxyPortTries = 3

// StartHAProxy runs HAProxy in the foreground (-W -db) on the configuration
// that conf returns for a free port of 127.0.0.1, which its frontend must
// bind, and returns once HAProxy accepts connections there; Process.Addr
// is that address. The configuration is written to haproxy.cfg in a
// fresh temporary directory, which is also HAProxy's working directory.
// Before it starts HAProxy, StartHAProxy checks the configuration with
// haproxy -c and fails the test, showing HAProxy's output, if the check
// fails.
//
// It calls [Require] if haproxy is not installed. HAProxy is stopped by
// PID (SIGTERM to the master, which stops its worker) when the test ends.
func StartHAProxy(t testing.TB, conf func(port int) string) *Process {
	t.Helper()
	bin := LookPath(t, "haproxy")

	for try := 1; ; try++ {
		dir := t.TempDir()
		port := FreePort(t)
		file := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(file, []byte(conf(port)), 0o644); err != nil {
			t.Fatalf("writing HAProxy configuration: %v", err)
		}
		if out, err := HAProxyCheck(bin, file); err != nil {
			t.Fatalf("haproxy -c rejects the configuration: %v\n%s\nconfiguration:\n%s",
				err, out, numberLines(conf(port)))
		}

		// Master-worker mode (-W), as Debian's unit runs it: the master
		// stops its worker and exits 0 on SIGTERM.
		p := start(t, "haproxy", bin, "-W", "-db", "-f", file)
		p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		err := p.waitProbe(10*time.Millisecond, func(ctx context.Context) error {
			return dialOnce(ctx, p.Addr)
		})
		if err == nil {
			return p
		}
		// The port was free when FreePort looked; someone may have taken it.
		if errors.Is(err, errExited) && try < haproxyPortTries &&
			strings.Contains(p.Output(), "Address already in use") {
			t.Logf("haproxy lost port %d to another process, retrying", port)
			continue
		}
		t.Fatalf("waiting for haproxy on %s: %v\noutput:\n%s", p.Addr, err, p.Output())
	}
}

// HAProxyCheck runs haproxy -c -f file (a configuration check) with the
// haproxy binary bin and returns its output.
func HAProxyCheck(bin, file string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-c", "-f", file).CombinedOutput()
	return string(out), err
}
