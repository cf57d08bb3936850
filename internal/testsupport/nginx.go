package testsupport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nginxGlobals are the directives StartNginx adds with -g. A configuration
// passed to StartNginx must not set them itself. The pid file is relative
// to the prefix directory, and nginx writes it only once its listening
// sockets are bound, which makes it the readiness signal.
const nginxGlobals = "daemon off; pid nginx.pid;"

// NginxHTTP returns a whole nginx.conf for [StartNginx] around http, a
// configuration of the http context (map, upstream and server blocks).
// It runs one worker, logs errors at level notice to stderr, where the
// Process collects them, keeps no access log, and puts every temporary
// path in the prefix directory, so nothing outside it is written.
func NginxHTTP(http string) string {
	return `worker_processes 1;
error_log stderr notice;
events {
	worker_connections 512;
}
http {
	access_log off;
	client_body_temp_path client_body_temp;
	proxy_temp_path proxy_temp;
	fastcgi_temp_path fastcgi_temp;
	uwsgi_temp_path uwsgi_temp;
	scgi_temp_path scgi_temp;

` + http + `
}
`
}

// StartNginx runs nginx on the configuration that conf returns for a free
// port of 127.0.0.1, which the configuration must listen on, and returns
// once nginx is ready to accept on it; Process.Addr is that address.
//
// The configuration is written to nginx.conf in a fresh temporary
// directory, which is also nginx's prefix (-p), so relative paths in it
// (logs, temporary files) stay inside; [NginxHTTP] builds one that does.
// Startup errors go to stderr (-e stderr). The configuration must not set
// daemon or pid: StartNginx runs nginx in the foreground with its pid file
// in the prefix directory. Before it starts nginx, StartNginx checks the
// configuration with nginx -t and fails the test, showing nginx's output,
// if the check fails.
//
// It calls [Require] if nginx is not installed. nginx is stopped by PID
// (SIGTERM, a fast shutdown) when the test ends.
func StartNginx(t testing.TB, conf func(port int) string) *Process {
	t.Helper()
	args := func(dir, file string) []string {
		return []string{"-p", dir + "/", "-c", file, "-e", "stderr", "-g", nginxGlobals}
	}
	bin := LookPath(t, "nginx")
	return startProxy(t, proxySpec{
		name: "nginx", bin: bin, confName: "nginx.conf", checkName: "nginx -t",
		args:  args,
		check: func(dir, file string) (string, error) { return nginxCheck(bin, args(dir, file)) },
		ready: func(p *Process, dir string) error { return waitNginx(p, filepath.Join(dir, "nginx.pid")) },
	}, conf)
}

// proxySpec says how startProxy checks, starts and waits for a proxy.
type proxySpec struct {
	name      string // the process's name in messages
	bin       string
	confName  string // file name of the configuration
	checkName string // the proxy's configuration check, in messages
	args      func(dir, file string) []string
	check     func(dir, file string) (output string, err error)
	ready     func(p *Process, dir string) error
}

// proxyPortTries is how many free ports startProxy tries when another
// process takes the chosen port before the proxy binds it.
const proxyPortTries = 3

// startProxy writes the configuration conf returns for a free port of
// 127.0.0.1 into a fresh temporary directory, checks it with the proxy's
// own check (failing the test with its output), starts the proxy and
// waits until it is ready, on another port if the chosen one was taken.
func startProxy(t testing.TB, s proxySpec, conf func(port int) string) *Process {
	t.Helper()
	for try := 1; ; try++ {
		dir := t.TempDir()
		port := FreePort(t)
		file := filepath.Join(dir, s.confName)
		if err := os.WriteFile(file, []byte(conf(port)), 0o644); err != nil {
			t.Fatalf("writing %s configuration: %v", s.name, err)
		}
		if out, err := s.check(dir, file); err != nil {
			t.Fatalf("%s rejects the configuration: %v\n%s\nconfiguration:\n%s",
				s.checkName, err, out, numberLines(conf(port)))
		}

		p := start(t, s.name, s.bin, s.args(dir, file)...)
		p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		err := s.ready(p, dir)
		if err == nil {
			return p
		}
		// The port was free when FreePort looked; someone may have taken it.
		if errors.Is(err, errExited) && try < proxyPortTries &&
			strings.Contains(p.Output(), "Address already in use") {
			t.Logf("%s lost port %d to another process, retrying", s.name, port)
			continue
		}
		t.Fatalf("waiting for %s on %s: %v\noutput:\n%s", s.name, p.Addr, err, p.Output())
	}
}

// nginxCheck runs nginx -t with args and returns its output.
func nginxCheck(bin string, args []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"-t"}, args...)...).CombinedOutput()
	return string(out), err
}

// waitNginx waits until nginx has written its own PID to pidFile, which it
// does after binding its listening sockets, and then accepts a connection
// on p.Addr. It fails if p exits first or readyTimeout passes.
func waitNginx(p *Process, pidFile string) error {
	want := []byte(strconv.Itoa(p.PID))
	return p.waitProbe(10*time.Millisecond, func(ctx context.Context) error {
		b, err := os.ReadFile(pidFile)
		if err != nil || !bytes.Equal(bytes.TrimSpace(b), want) {
			return errors.New("no pid file yet")
		}
		return dialOnce(ctx, p.Addr)
	})
}

// dialOnce connects to addr and hangs up.
func dialOnce(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// numberLines prefixes each line of s with its number, as nginx's error
// messages refer to lines.
func numberLines(s string) string {
	var b strings.Builder
	for i, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		fmt.Fprintf(&b, "%3d  %s\n", i+1, line)
	}
	return b.String()
}
