package testsupport

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

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
	return startProxy(t, proxySpec{
		name: "haproxy", bin: bin, confName: "haproxy.cfg", checkName: "haproxy -c",
		// Master-worker mode (-W), as Debian's unit runs it: the master
		// stops its worker and exits 0 on SIGTERM.
		args:  func(_, file string) []string { return []string{"-W", "-db", "-f", file} },
		check: func(_, file string) (string, error) { return HAProxyCheck(bin, file) },
		ready: func(p *Process, _ string) error {
			return p.waitProbe(10*time.Millisecond, func(ctx context.Context) error {
				return dialOnce(ctx, p.Addr)
			})
		},
	}, conf)
}

// HAProxyCheck runs haproxy -c -f file (a configuration check) with the
// haproxy binary bin and returns its output.
func HAProxyCheck(bin, file string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-c", "-f", file).CombinedOutput()
	return string(out), err
}
