package testsupport

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"
)

// listeningLine matches the line the Tornado example prints once bound.
var listeningLine = regexp.MustCompile(`(?m)^listening on (\S+:\d+)$`)

// StartTornado runs examples/tornado/app.py on a free port of 127.0.0.1 and
// returns once it has printed its "listening on" line. The app binds port 0
// and reports the port it got, so no other process can take the port in
// between. args are passed on to app.py, for example "--ping-interval", "1".
// It fails the test, showing the app's output, if the app is not listening
// within 10 seconds.
func StartTornado(t testing.TB, args ...string) *Process {
	t.Helper()
	py := Python(t)
	app := filepath.Join(RepoRoot(t), "examples", "tornado", "app.py")
	argv := append([]string{app, "--port", "0", "--host", "127.0.0.1"}, args...)
	p := start(t, "tornado", py, argv...)

	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	var addr string
	err := p.waitFor(ctx, func(s string) bool {
		m := listeningLine.FindStringSubmatch(s)
		if m == nil {
			return false
		}
		addr = m[1]
		return true
	})
	if err != nil {
		t.Fatalf("waiting for tornado to listen: %v\noutput:\n%s", err, p.Output())
	}
	p.Addr = addr
	return p
}

// HTTPURL returns the http URL of path on the process, such as
// "http://127.0.0.1:41234/stats".
func (p *Process) HTTPURL(path string) string {
	return "http://" + p.Addr + path
}

// WSURL returns the WebSocket URL of path on the process, such as
// "ws://127.0.0.1:41234/ws".
func (p *Process) WSURL(path string) string {
	return "ws://" + p.Addr + path
}
