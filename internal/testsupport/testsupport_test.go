package testsupport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// testTimeout bounds each test's network calls.
const testTimeout = 20 * time.Second

// stats mirrors the JSON served by the Tornado example's /stats.
type stats struct {
	Connections map[string]int `json:"connections"`
	Closes      map[string]int `json:"closes"`
	OpenFDs     int            `json:"open_fds"`
}

func getStats(ctx context.Context, t *testing.T, p *Process) stats {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.HTTPURL("/stats"), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /stats: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /stats: status %d", resp.StatusCode)
	}
	var s stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("decoding /stats: %v", err)
	}
	return s
}

func dial(ctx context.Context, t *testing.T, url string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dialing %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func TestTornadoEchoAndStats(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	backend := StartTornado(t)

	// The app sits behind the proxy, which checks origins, so it must
	// accept a foreign Origin itself.
	c := dial(ctx, t, backend.WSURL("/ws"), &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"http://elsewhere.example"}},
	})

	for _, msg := range []struct {
		typ  websocket.MessageType
		data []byte
	}{
		{websocket.MessageText, []byte("hello tornado")},
		{websocket.MessageBinary, []byte{0, 1, 2, 0xff, 0xfe}},
	} {
		if err := c.Write(ctx, msg.typ, msg.data); err != nil {
			t.Fatalf("writing %v: %v", msg.typ, err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("reading echo of %v: %v", msg.typ, err)
		}
		if typ != msg.typ || !bytes.Equal(got, msg.data) {
			t.Fatalf("echo = %v %q, want %v %q", typ, got, msg.typ, msg.data)
		}
	}

	s := getStats(ctx, t, backend)
	if s.Connections["/ws"] != 1 || s.Connections["/broadcast"] != 0 {
		t.Errorf("open connections = %v, want 1 on /ws and 0 on /broadcast", s.Connections)
	}
	if s.OpenFDs < 4 {
		t.Errorf("open_fds = %d, want at least stdio, listener and the websocket", s.OpenFDs)
	}

	// After a normal close the app runs on_close and counts code 1000.
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatalf("closing: %v", err)
	}
	if err := backend.WaitOutput(ctx, "ws close path=/ws code=1000", 1); err != nil {
		t.Fatal(err)
	}
	s = getStats(ctx, t, backend)
	if s.Connections["/ws"] != 0 || s.Closes["1000"] != 1 {
		t.Errorf("after close: connections %v, closes %v; want 0 open and one 1000",
			s.Connections, s.Closes)
	}
}

func TestTornadoHealthz(t *testing.T) {
	t.Parallel()
	backend := StartTornado(t)

	resp, err := http.Get(backend.HTTPURL("/healthz"))
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatalf("reading /healthz: %v", err)
	}
	if resp.StatusCode != http.StatusOK || body.String() != "ok" {
		t.Errorf("GET /healthz = %d %q, want 200 \"ok\"", resp.StatusCode, body.String())
	}
}

func TestTornadoBroadcast(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	backend := StartTornado(t)

	sender := dial(ctx, t, backend.WSURL("/broadcast"), nil)
	other := dial(ctx, t, backend.WSURL("/broadcast"), nil)
	// Both must be registered before the message is sent.
	if err := backend.WaitOutput(ctx, "ws open path=/broadcast", 2); err != nil {
		t.Fatal(err)
	}

	if err := sender.Write(ctx, websocket.MessageText, []byte("to everyone")); err != nil {
		t.Fatalf("writing: %v", err)
	}
	for name, c := range map[string]*websocket.Conn{"sender": sender, "other": other} {
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("%s reading broadcast: %v", name, err)
		}
		if string(got) != "to everyone" {
			t.Errorf("%s got %q, want %q", name, got, "to everyone")
		}
	}
}

func TestTornadoPingInterval(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	backend := StartTornado(t, "--ping-interval", "0.05")

	pinged := make(chan struct{}, 1)
	c := dial(ctx, t, backend.WSURL("/ws"), &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool {
			select {
			case pinged <- struct{}{}:
			default:
			}
			return true
		},
	})
	// Control frames are handled only while something reads.
	c.CloseRead(ctx)

	select {
	case <-pinged:
	case <-ctx.Done():
		t.Fatal("no ping from a backend started with --ping-interval")
	}
}

func TestTornadoStopIsGraceful(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	backend := StartTornado(t)

	c := dial(ctx, t, backend.WSURL("/ws"), nil)
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.Read(ctx)
		readErr <- err
	}()

	if err := backend.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := backend.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if got := websocket.CloseStatus(<-readErr); got != websocket.StatusGoingAway {
		t.Errorf("client saw close status %v, want %v", got, websocket.StatusGoingAway)
	}
	if err := syscall.Kill(backend.PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d after Stop: kill -0 = %v, want ESRCH", backend.PID, err)
	}
	if !strings.Contains(backend.Output(), "ws close path=/ws code=1001") {
		t.Errorf("shutdown did not log the 1001 close; output:\n%s", backend.Output())
	}
}

func TestStopKillsProcessIgnoringSIGTERM(t *testing.T) {
	t.Parallel()
	py := Python(t)
	p := start(t, "stubborn", py, "-c",
		"import signal\n"+
			"signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"+
			"print('ready', flush=True)\n"+
			"signal.pause()\n")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := p.WaitOutput(ctx, "ready", 1); err != nil {
		t.Fatal(err)
	}

	begin := time.Now()
	err := p.Stop()
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Stop = %v, want an error saying the process was killed", err)
	}
	if elapsed := time.Since(begin); elapsed < stopGrace {
		t.Errorf("Stop killed after %v, before the %v grace period", elapsed, stopGrace)
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed after Stop returned")
	}
}

func TestWaitOutputFailsWhenProcessExits(t *testing.T) {
	t.Parallel()
	p := start(t, "short", Python(t), "-c", "print('bye')")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	if err := p.WaitOutput(ctx, "bye", 1); err != nil {
		t.Fatalf("output written just before exit was missed: %v", err)
	}
	if err := p.WaitOutput(ctx, "never printed", 1); !errors.Is(err, errExited) {
		t.Fatalf("WaitOutput = %v, want an error wrapping errExited", err)
	}
	if err := p.Stop(); err == nil {
		t.Error("Stop of a process that had already exited returned nil")
	}
}

func TestPyEcho(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	backend := StartTornado(t)

	sum := PyEcho(t, backend.WSURL("/ws"), 20)
	if sum.Sent != 20 || sum.Echoed != 20 || sum.CloseCode != 1000 || sum.Subprotocol != "" {
		t.Errorf("PyEcho summary = %+v, want 20 sent and echoed, close 1000, no subprotocol", sum)
	}

	sum, err := RunPyClient(t, backend.WSURL("/ws"),
		EchoOptions{Count: 3, Size: 70000, Subprotocol: "chat.v1"})
	if err != nil {
		t.Fatalf("RunPyClient: %v", err)
	}
	if sum.Echoed != 3 || sum.Subprotocol != "chat.v1" {
		t.Errorf("summary = %+v, want 3 echoed and subprotocol chat.v1", sum)
	}

	// The backend saw both clients close with 1000.
	if err := backend.WaitOutput(ctx, "ws close path=/ws code=1000", 2); err != nil {
		t.Fatal(err)
	}
	if s := getStats(ctx, t, backend); s.Closes["1000"] != 2 {
		t.Errorf("closes = %v, want two 1000", s.Closes)
	}
}

func TestPyClientReportsRefusedHandshake(t *testing.T) {
	t.Parallel()
	backend := StartTornado(t)

	// /healthz answers 200 instead of switching protocols.
	sum, err := RunPyClient(t, backend.WSURL("/healthz"), EchoOptions{Count: 1})
	if err == nil {
		t.Fatalf("RunPyClient against a non-websocket path succeeded: %+v", sum)
	}
	if sum.Status != http.StatusOK || sum.Sent != 0 || sum.Error == "" {
		t.Errorf("summary = %+v, want status 200, nothing sent, an error", sum)
	}
}

func TestRunPython(t *testing.T) {
	t.Parallel()
	script := filepath.Join(t.TempDir(), "exit3.py")
	src := "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\nsys.exit(3)\n"
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := RunPython(t, script)
	if out != "to stdout\n" {
		t.Errorf("stdout = %q, want %q", out, "to stdout\n")
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("err = %v, want exit status 3", err)
	}
	if !strings.Contains(err.Error(), "to stderr") {
		t.Errorf("error %q does not carry the script's stderr", err)
	}
}

func TestRunPythonContextTimeout(t *testing.T) {
	t.Parallel()
	script := filepath.Join(t.TempDir(), "hang.py")
	if err := os.WriteFile(script, []byte("import time\ntime.sleep(60)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()

	begin := time.Now()
	_, err := RunPythonContext(ctx, t, script)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if elapsed := time.Since(begin); elapsed > 10*time.Second {
		t.Errorf("hung script was stopped after %v, want soon after the deadline", elapsed)
	}
}

// redisCmd sends one command as a RESP array and returns the first reply
// line without its CRLF.
func redisCmd(t *testing.T, rw *bufio.ReadWriter, args ...string) string {
	t.Helper()
	fmt.Fprintf(rw, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(rw, "$%d\r\n%s\r\n", len(a), a)
	}
	if err := rw.Flush(); err != nil {
		t.Fatalf("sending %v: %v", args, err)
	}
	line, err := rw.ReadString('\n')
	if err != nil {
		t.Fatalf("reading reply to %v: %v", args, err)
	}
	return strings.TrimSuffix(line, "\r\n")
}

func TestRedis(t *testing.T) {
	t.Parallel()
	r := StartRedis(t)

	conn, err := net.DialTimeout("tcp", r.Addr, 5*time.Second)
	if err != nil {
		t.Fatalf("connecting to redis at %s: %v", r.Addr, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	rw := bufio.NewReadWriter(bufio.NewReader(conn), bufio.NewWriter(conn))

	if got := redisCmd(t, rw, "PING"); got != "+PONG" {
		t.Errorf("PING = %q, want +PONG", got)
	}
	if got := redisCmd(t, rw, "SET", "wsguard:test", "v1"); got != "+OK" {
		t.Errorf("SET = %q, want +OK", got)
	}
	if got := redisCmd(t, rw, "GET", "wsguard:test"); got != "$2" {
		t.Fatalf("GET length line = %q, want $2", got)
	}
	if got, _ := rw.ReadString('\n'); got != "v1\r\n" {
		t.Errorf("GET value = %q, want v1", got)
	}
	conn.Close()

	if err := r.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

// recordingTB captures what Require reports instead of ending the test.
type recordingTB struct {
	testing.TB
	fatal, skip string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.skip = fmt.Sprintf(format, args...)
}

func TestRequire(t *testing.T) {
	tests := []struct {
		name      string
		env       string
		what      string
		wantFatal string // substring of the failure; "" means a skip
	}{
		{"skips by default", "", "redis-server", ""},
		{"skips unless exactly 1", "true", "redis-server", ""},
		{"fails for redis", "1", "redis-server", "apt-get install redis-server"},
		{"fails for python", "1", "python3 with tornado and websockets",
			"apt-get install python3-tornado python3-websockets"},
		{"fails for nginx", "1", "nginx", "apt-get install nginx"},
		{"fails for chromium", "1", "chromium", "apt-get install chromium"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(RequireEnv, tt.env)
			rec := &recordingTB{TB: t}
			Require(rec, tt.what, "not on PATH")

			if tt.wantFatal == "" {
				if rec.fatal != "" || !strings.Contains(rec.skip, "not on PATH") {
					t.Errorf("fatal %q, skip %q; want a skip giving the reason", rec.fatal, rec.skip)
				}
				return
			}
			if rec.skip != "" || !strings.Contains(rec.fatal, tt.wantFatal) ||
				!strings.Contains(rec.fatal, tt.what) {
				t.Errorf("fatal %q, skip %q; want a failure naming %q and %q",
					rec.fatal, rec.skip, tt.what, tt.wantFatal)
			}
		})
	}
}

func TestFreePort(t *testing.T) {
	t.Parallel()
	port := FreePort(t)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("port %d from FreePort is not free: %v", port, err)
	}
	ln.Close()
}

func TestRepoRoot(t *testing.T) {
	t.Parallel()
	root := RepoRoot(t)
	for _, f := range []string{"go.mod", "examples/tornado/app.py", pyclientScript} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("%s under repo root %s: %v", f, root, err)
		}
	}
}
