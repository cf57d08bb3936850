package testsupport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// redisPortTries is how many free ports StartRedis tries when another
// process takes the chosen port before redis-server binds it.
const redisPortTries = 3

// StartRedis runs redis-server on a free port of 127.0.0.1, with no config
// file, persistence off and a scratch working directory, and returns once it
// answers PING. It calls [Require] if redis-server is not installed and
// fails the test, showing the server's output, if it is not ready within
// 10 seconds.
func StartRedis(t testing.TB) *Process {
	t.Helper()
	bin := LookPath(t, "redis-server")
	dir := t.TempDir()

	for try := 1; ; try++ {
		port := FreePort(t)
		p := start(t, "redis-server", bin,
			"--save", "", "--appendonly", "no",
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--protected-mode", "no", "--dir", dir)
		p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

		err := waitRedis(p)
		if err == nil {
			return p
		}
		// The port was free when FreePort looked; someone may have taken it.
		if errors.Is(err, errExited) && try < redisPortTries &&
			strings.Contains(p.Output(), "Address already in use") {
			t.Logf("redis-server lost port %d to another process, retrying", port)
			continue
		}
		t.Fatalf("waiting for redis-server on %s: %v\noutput:\n%s", p.Addr, err, p.Output())
	}
}

// waitRedis polls p.Addr with PING until it answers +PONG, p exits, or
// readyTimeout passes.
func waitRedis(p *Process) error {
	return p.waitProbe(20*time.Millisecond, func(ctx context.Context) error {
		return pingRedis(ctx, p.Addr)
	})
}

// pingRedis sends one RESP PING to addr and checks for +PONG.
func pingRedis(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close()

	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return fmt.Errorf("setting deadline: %w", err)
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return fmt.Errorf("sending PING: %w", err)
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading PING reply: %w", err)
	}
	if reply != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(reply))
	}
	return nil
}
