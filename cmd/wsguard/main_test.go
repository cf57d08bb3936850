package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/wsguard/internal/testsupport"
)

func TestMain(m *testing.M) {
	os.Exit(testsupport.RunTests(m)) // removes the binary WSGuardBinary built
}

// runWSGuard runs the binary to completion in dir and returns its output
// and exit status.
func runWSGuard(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, testsupport.WSGuardBinary(t), args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		code = ee.ExitCode()
	default:
		t.Fatalf("running wsguard %s: %v\nstderr:\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), errOut.String(), code
}

func TestCommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // regexp the output must match
		stderr string
	}{
		{"version", []string{"version"}, 0, `^wsguard \S+\n$`, `^$`},
		{"--version", []string{"--version"}, 0, `^wsguard \S+\n$`, `^$`},
		{"help", []string{"help"}, 0, `usage: wsguard`, `^$`},
		{"unknown command", []string{"frobnicate"}, 2, `^$`, `unknown command "frobnicate"(?s).*usage: wsguard`},
		{"no command", nil, 2, `^$`, `usage: wsguard`},
		{"check without --config", []string{"check"}, 2, `^$`, `--config FILE is required`},
		{"check with a missing file", []string{"check", "--config", "missing.yaml"}, 1, `^$`, `missing\.yaml`},
		{"serve with a stray argument", []string{"serve", "extra"}, 2, `^$`, `unexpected argument "extra"`},
		{"serve without routes", []string{"serve", "--listen", "127.0.0.1:0", "--admin-listen", ""}, 1, `^$`, `no routes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runWSGuard(t, t.TempDir(), tt.args...)
			if code != tt.code {
				t.Errorf("exit status %d, want %d", code, tt.code)
			}
			if !regexp.MustCompile(tt.stdout).MatchString(stdout) {
				t.Errorf("stdout %q does not match %q", stdout, tt.stdout)
			}
			if !regexp.MustCompile(tt.stderr).MatchString(stderr) {
				t.Errorf("stderr %q does not match %q", stderr, tt.stderr)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	type problem struct {
		line int
		key  string
		text string // part of the problem
	}
	tests := []struct {
		name     string
		file     string
		code     int
		problems []problem // on stderr, one line each, in this order
	}{
		{
			name: "unknown key and bad duration",
			file: `listen: 127.0.0.1:8080
limits:
  per_ip: 10
  per_ipp: 3
timeouts:
  idle: 5m
  handshake: 5 parsecs
routes:
  - path: /
    upstream: http://127.0.0.1:9000
`,
			code: 1,
			problems: []problem{
				{4, "limits.per_ipp", `unknown key (did you mean "per_ip"?)`},
				{7, "timeouts.handshake", `invalid duration "5 parsecs"`},
			},
		},
		{
			name: "values that parse but do not validate",
			file: `listen: 127.0.0.1:8080
routes:
  - path: /
    upstream: ftp://127.0.0.1:9000
    limits:
      per_ip: -1
`,
			code: 1,
			problems: []problem{
				{4, "routes[0].upstream", "must use http, https, ws or wss"},
				{6, "routes[0].limits.per_ip", "must be at least 0"},
			},
		},
		{
			name: "good",
			file: `listen: 127.0.0.1:8080
limits:
  per_ip: 10
timeouts:
  handshake: 3s
routes:
  - path: /ws
    upstream: http://127.0.0.1:9000
`,
			code: 0,
		},
	}
	lineRE := regexp.MustCompile(`^conf\.yaml:(\d+): (\S+): (.+)$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "conf.yaml"), []byte(tt.file), 0o644); err != nil {
				t.Fatal(err)
			}
			stdout, stderr, code := runWSGuard(t, dir, "check", "--config", "conf.yaml")
			if code != tt.code {
				t.Fatalf("exit status %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			if tt.code == 0 {
				if stdout != "conf.yaml: ok (1 routes)\n" || stderr != "" {
					t.Fatalf("stdout %q, stderr %q", stdout, stderr)
				}
				return
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if len(lines) != len(tt.problems) {
				t.Fatalf("%d lines on stderr, want %d:\n%s", len(lines), len(tt.problems), stderr)
			}
			for i, p := range tt.problems {
				m := lineRE.FindStringSubmatch(lines[i])
				if m == nil {
					t.Errorf("line %q is not file:line: key: problem", lines[i])
					continue
				}
				if m[1] != strconv.Itoa(p.line) || m[2] != p.key || !strings.Contains(m[3], p.text) {
					t.Errorf("line %q, want conf.yaml:%d: %s: ...%s...", lines[i], p.line, p.key, p.text)
				}
			}
		})
	}
}

// process is a wsguard serve run. It is killed when the test ends if it
// is still running, and its stderr goes to the test log on failure.
type process struct {
	cmd    *exec.Cmd
	stderr *watchedBuffer
	done   chan struct{} // closed once the process has exited
	err    error         // from Wait; read after done
}

// watchedBuffer collects output and wakes waiters on every write.
type watchedBuffer struct {
	mu      sync.Mutex // guards buf and changed
	buf     bytes.Buffer
	changed chan struct{} // closed by the next Write
}

func (b *watchedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	close(b.changed)
	b.changed = make(chan struct{})
	return len(p), nil
}

func (b *watchedBuffer) snapshot() (string, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String(), b.changed
}

// startServe runs wsguard serve with args.
func startServe(t *testing.T, args ...string) *process {
	t.Helper()
	p := &process{
		cmd:    exec.Command(testsupport.WSGuardBinary(t), append([]string{"serve"}, args...)...),
		stderr: &watchedBuffer{changed: make(chan struct{})},
		done:   make(chan struct{}),
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stderr, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			out, _ := p.stderr.snapshot()
			t.Logf("wsguard output:\n%s", out)
		}
	})
	return p
}

// waitOutput waits until substr appears n times in the output, failing
// if the process exits first or after timeout; it returns the output.
func (p *process) waitOutput(t *testing.T, substr string, n int, timeout time.Duration) string {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		out, changed := p.stderr.snapshot()
		if strings.Count(out, substr) >= n {
			return out
		}
		select {
		case <-changed:
		case <-p.done:
			if out, _ := p.stderr.snapshot(); strings.Count(out, substr) >= n {
				return out
			}
			t.Fatalf("wsguard exited (%v) before printing %q %d times", p.err, substr, n)
		case <-timer.C:
			t.Fatalf("wsguard did not print %q %d times within %v", substr, n, timeout)
		}
	}
}

// signal sends sig to the process.
func (p *process) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("sending %v: %v", sig, err)
	}
}

// exitCode waits for the process to exit and returns its status, failing
// after timeout.
func (p *process) exitCode(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("wsguard still running %v after being told to stop", timeout)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee) && ee.Exited():
		return ee.ExitCode()
	}
	t.Fatalf("wsguard ended abnormally: %v", p.err)
	return -1
}

// waitHealthy polls the admin /healthz until it answers 200.
func (p *process) waitHealthy(t *testing.T, adminAddr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		resp, err := client.Get("http://" + adminAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("wsguard exited (%v) before it was healthy", p.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin %s not healthy: %v", adminAddr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a state, not a guess at timing
	}
}

// dialWS upgrades to ws://addr/ws. On refusal it returns the status and
// body instead of a connection.
func dialWS(t *testing.T, addr string) (*websocket.Conn, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
	if err == nil {
		t.Cleanup(func() { c.CloseNow() })
		return c, http.StatusSwitchingProtocols, ""
	}
	if resp == nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return nil, resp.StatusCode, string(body)
}

func mustDialWS(t *testing.T, addr string) *websocket.Conn {
	t.Helper()
	c, status, body := dialWS(t, addr)
	if c == nil {
		t.Fatalf("upgrade refused: %d %q", status, body)
	}
	return c
}

func expectRefused(t *testing.T, addr string, status int, reason string) {
	t.Helper()
	c, got, body := dialWS(t, addr)
	if c != nil {
		t.Fatalf("upgraded, want %d %s", status, reason)
	}
	if got != status || !strings.Contains(body, reason) {
		t.Fatalf("refused with %d %q, want %d %s", got, body, status, reason)
	}
}

// echo fails the test unless msg comes back on c.
func echo(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	if _, got, err := c.Read(ctx); err != nil || string(got) != msg {
		t.Fatalf("echo of %q: %q, %v", msg, got, err)
	}
}

// expectGoingAway fails the test unless c's next read is a close 1001.
func expectGoingAway(t *testing.T, c *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, _, err := c.Read(ctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
		t.Fatalf("read after SIGTERM: %v, want close 1001", err)
	}
}

// loopbackAddr returns 127.0.0.1 and a port that was free a moment ago.
func loopbackAddr(t *testing.T) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(testsupport.FreePort(t)))
}

// writeConfig writes the serve config used by these tests.
func writeConfig(t *testing.T, path, listen, adminListen, upstream string, perIP int) {
	t.Helper()
	cfg := fmt.Sprintf(`listen: %s
admin_listen: %s
limits:
  per_ip: %d
timeouts:
  drain: 1s
routes:
  - path: /
    upstream: http://%s
`, listen, adminListen, perIP, upstream)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestServe runs the serve command against one Tornado backend, which
// its parallel subtests share: a Python start-up is the slow part.
func TestServe(t *testing.T) {
	t.Parallel()
	tornado := testsupport.StartTornado(t)
	t.Run("reload and drain", func(t *testing.T) {
		t.Parallel()
		testReloadAndDrain(t, tornado.Addr)
	})
	t.Run("flags", func(t *testing.T) {
		t.Parallel()
		testFlags(t, tornado.Addr)
	})
	t.Run("signals as soon as it listens", func(t *testing.T) {
		t.Parallel()
		testEarlySignals(t, tornado.Addr)
	})
}

// testEarlySignals sends SIGHUP the moment the admin port takes a TCP
// connection, before the admin server may have answered anything: the
// reload must happen, not the default action of SIGHUP (exit).
func testEarlySignals(t *testing.T, upstream string) {
	listen, adminAddr := loopbackAddr(t), loopbackAddr(t)
	p := startServe(t, "--upstream", "http://"+upstream, "--listen", listen, "--admin-listen", adminAddr)
	deadline := time.Now().Add(30 * time.Second)
	for {
		nc, err := net.Dial("tcp", adminAddr)
		if err == nil {
			nc.Close()
			break
		}
		select {
		case <-p.done:
			t.Fatalf("wsguard exited (%v) before listening", p.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin %s not listening: %v", adminAddr, err)
		}
		time.Sleep(time.Millisecond) // polling a state, not a guess at timing
	}
	p.signal(t, syscall.SIGHUP)
	p.waitOutput(t, "config reloaded", 1, 30*time.Second)
	echo(t, mustDialWS(t, listen), "after an early SIGHUP")
	p.signal(t, syscall.SIGTERM)
	if code := p.exitCode(t, 30*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
}

// testReloadAndDrain checks SIGHUP with a good and a broken file, then
// SIGTERM, with upstream as the backend.
func testReloadAndDrain(t *testing.T, upstream string) {
	listen, adminAddr := loopbackAddr(t), loopbackAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "wsguard.yaml")
	writeConfig(t, cfgPath, listen, adminAddr, upstream, 1)

	p := startServe(t, "--config", cfgPath)
	p.waitHealthy(t, adminAddr)

	// per_ip 1: one connection, and no second.
	first := mustDialWS(t, listen)
	echo(t, first, "hello")
	expectRefused(t, listen, http.StatusTooManyRequests, "per_ip")

	// Reload with per_ip 2: a second connection gets in, the first is
	// untouched.
	writeConfig(t, cfgPath, listen, adminAddr, upstream, 2)
	p.signal(t, syscall.SIGHUP)
	p.waitOutput(t, "config reloaded", 1, 30*time.Second)
	second := mustDialWS(t, listen)
	echo(t, second, "second")
	echo(t, first, "first still here")

	// A broken file is refused, naming the file, and per_ip 2 stays.
	if err := os.WriteFile(cfgPath, []byte("limits:\n\tper_ip: 50\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	out := p.waitOutput(t, "reload refused", 1, 30*time.Second)
	if !regexp.MustCompile(`reload refused.*` + regexp.QuoteMeta(cfgPath) + `:\d+`).MatchString(out) {
		t.Fatalf("the reload error does not name %s:LINE:\n%s", cfgPath, out)
	}
	expectRefused(t, listen, http.StatusTooManyRequests, "per_ip")
	echo(t, first, "first after the bad reload")

	// SIGTERM drains: both clients get 1001 and the process exits 0.
	p.signal(t, syscall.SIGTERM)
	expectGoingAway(t, first)
	// The second client has not answered its close yet, so the drain
	// is still under way; if the admin listener answers, it must say
	// not ready.
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + adminAddr + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("/readyz answered %d while draining, want 503", resp.StatusCode)
		}
	} else {
		t.Logf("/readyz not reachable during the drain: %v", err)
	}
	expectGoingAway(t, second)
	if code := p.exitCode(t, 30*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
	p.waitOutput(t, "stopped", 1, time.Second)
}

// testFlags checks that serve runs from flags alone and that flags
// override the file, with upstream as the backend.
func testFlags(t *testing.T, upstream string) {
	tests := []struct {
		name string
		// args builds the command line; file is the config path, or ""
		// when the case writes none.
		args      func(file, listen, adminAddr, upstream string) []string
		writeFile bool
	}{
		{
			name: "--upstream without a file",
			args: func(_, listen, adminAddr, upstream string) []string {
				return []string{"--upstream", "http://" + upstream, "--listen", listen, "--admin-listen", adminAddr}
			},
		},
		{
			name: "--listen overrides the file",
			args: func(file, listen, _, _ string) []string {
				return []string{"--config", file, "--listen", listen}
			},
			writeFile: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			listen, adminAddr, fileListen := loopbackAddr(t), loopbackAddr(t), loopbackAddr(t)
			file := ""
			if tt.writeFile {
				file = filepath.Join(t.TempDir(), "wsguard.yaml")
				writeConfig(t, file, fileListen, adminAddr, upstream, 5)
			}

			p := startServe(t, tt.args(file, listen, adminAddr, upstream)...)
			p.waitHealthy(t, adminAddr)
			echo(t, mustDialWS(t, listen), "through the flags")
			if tt.writeFile {
				if nc, err := net.Dial("tcp", fileListen); err == nil {
					nc.Close()
					t.Fatalf("something listens on the file's address %s, which --listen replaced", fileListen)
				}
			}

			p.signal(t, syscall.SIGTERM)
			if code := p.exitCode(t, 30*time.Second); code != 0 {
				t.Fatalf("exit status %d after SIGTERM, want 0", code)
			}
		})
	}
}

func TestCheckLoadsTLSFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "conf.yaml")
	file := `listen: 127.0.0.1:8443
tls:
  cert_file: ` + filepath.Join(dir, "missing-cert.pem") + `
  key_file: ` + filepath.Join(dir, "missing-key.pem") + `
routes:
  - path: /
    upstream: http://127.0.0.1:9000
`
	if err := os.WriteFile(conf, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	if code := check([]string{"--config", conf}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit status %d, want 1 (stdout %q)", code, stdout.String())
	}
	if !strings.Contains(stderr.String(), "tls: loading cert_file and key_file") ||
		!strings.Contains(stderr.String(), "missing-cert.pem") {
		t.Errorf("stderr %q does not name the unreadable certificate", stderr.String())
	}
}
