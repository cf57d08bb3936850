package relay

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/frame"
	"github.com/wsguard/wsguard/internal/testsupport"
)

func TestEchoThroughGuardToTornado(t *testing.T) {
	t.Parallel()
	tornado := testsupport.StartTornado(t)
	g := startGuard(t, testConfig(t, "http://"+tornado.Addr, nil))

	// A Go client (coder/websocket), several sizes across the 125 and
	// 65535 length encodings and across read buffer boundaries.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL(g.Addr, "/ws"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(-1)
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 200_000} {
		msg := bytes.Repeat([]byte{byte(n)}, n)
		if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
			t.Fatalf("write %d bytes: %v", n, err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageBinary || !bytes.Equal(got, msg) {
			t.Fatalf("echo of %d bytes: type %v, %d bytes, %v", n, typ, len(got), err)
		}
	}
	c.Close(websocket.StatusNormalClosure, "bye")

	// The Python websockets client, through the same guard.
	sum := testsupport.PyEcho(t, wsURL(g.Addr, "/ws"), 50)
	if sum.Echoed != 50 || sum.CloseCode != 1000 {
		t.Fatalf("python client: %+v", sum)
	}
	g.waitIdle(t)
}

func TestIdleTimeoutIgnoresPings(t *testing.T) {
	t.Parallel()
	backend := echoBackend(t, nil)
	const idle = 400 * time.Millisecond
	g := startGuard(t, testConfig(t, upstreamOf(backend), func(c *config.Config) {
		c.Timeouts.Idle = config.Duration(idle)
		c.Timeouts.PingInterval = 0
	}))
	start := time.Now() // before the dial: the guard's clock starts after it
	c := mustDialRaw(t, g.Addr)

	// A ping every 50 ms, and no data: the guard must not count them.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				c.nc.Write(frame.AppendFrame(nil, true, frame.OpPing, &[4]byte{1, 2, 3, 4}, []byte("hi")))
			}
		}
	}()
	cf := c.expectClose(frame.CloseGoingAway, "idle timeout", 10*time.Second)
	if age := cf.at.Sub(start); age < idle {
		t.Fatalf("closed after %v, before the idle timeout of %v", age, idle)
	}
	g.waitIdle(t)
}

func TestIdleTimeoutResetByData(t *testing.T) {
	t.Parallel()
	backend := echoBackend(t, nil)
	// Generous against stalls of a loaded machine: data every idle/10.
	const idle = 2 * time.Second
	g := startGuard(t, testConfig(t, upstreamOf(backend), func(c *config.Config) {
		c.Timeouts.Idle = config.Duration(idle)
		c.Timeouts.PingInterval = 0
	}))
	c := mustDialRaw(t, g.Addr)

	// Data for two and a half idle periods keeps the connection open:
	// every echo comes back.
	end := time.Now().Add(5 * idle / 2)
	for time.Now().Before(end) {
		c.write(true, frame.OpText, []byte("x"))
		h, _, err := c.read(5 * time.Second)
		if err != nil || h.Op != frame.OpText {
			t.Fatalf("echo while active: %v %v", h.Op, err)
		}
		time.Sleep(idle / 10) // pacing the client, not synchronisation
	}
	c.expectClose(frame.CloseGoingAway, "idle timeout", 10*time.Second)
}

func TestPongTimeoutClosesSilentClient(t *testing.T) {
	t.Parallel()
	backend := echoBackend(t, nil)
	const interval, timeout = 200 * time.Millisecond, 200 * time.Millisecond
	g := startGuard(t, testConfig(t, upstreamOf(backend), func(c *config.Config) {
		c.Timeouts.PingInterval = config.Duration(interval)
		c.Timeouts.PongTimeout = config.Duration(timeout)
	}))
	start := time.Now() // before the dial: the guard's clock starts after it
	c := mustDialRaw(t, g.Addr)
	pings := 0
	cf, err := c.readUntilClose(10*time.Second, func(h frame.Header, p []byte) {
		if h.Op == frame.OpPing && strings.HasPrefix(string(p), pingPrefix) {
			pings++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if cf.code != frame.CloseGoingAway || cf.reason != "pong timeout" {
		t.Fatalf("close %d %q, want 1001 pong timeout", cf.code, cf.reason)
	}
	if pings != 1 {
		t.Fatalf("saw %d guard pings before the close, want 1", pings)
	}
	if age := cf.at.Sub(start); age < interval+timeout {
		t.Fatalf("closed after %v, before ping_interval + pong_timeout", age)
	}
	c.expectEOF(5 * time.Second)
	g.waitIdle(t)
}

func TestAnsweredPingsKeepClient(t *testing.T) {
	t.Parallel()
	// That the answers stay hidden from the backend is asserted by
	// TestPingsAndPongsThroughGuard; here the client answers five pings
	// and must stay connected.
	backend := echoBackend(t, nil)
	const interval = 100 * time.Millisecond
	g := startGuard(t, testConfig(t, upstreamOf(backend), func(c *config.Config) {
		c.Timeouts.PingInterval = config.Duration(interval)
		c.Timeouts.PongTimeout = config.Duration(5 * time.Second)
	}))
	c := mustDialRaw(t, g.Addr)
	answered := 0
	for answered < 5 {
		h, p, err := c.read(5 * time.Second)
		if err != nil {
			t.Fatalf("after %d answered pings: %v", answered, err)
		}
		if h.Op != frame.OpPing {
			t.Fatalf("unexpected %v frame", h.Op)
		}
		c.write(true, frame.OpPong, p)
		answered++
	}
	// Still open and relaying.
	c.write(true, frame.OpText, []byte("still here"))
	for {
		h, p, err := c.read(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if h.Op == frame.OpPing {
			c.write(true, frame.OpPong, p)
			continue
		}
		if h.Op != frame.OpText || string(p) != "still here" {
			t.Fatalf("got %v %q", h.Op, p)
		}
		break
	}
}

func TestBackendPingsPassThrough(t *testing.T) {
	t.Parallel()
	result := make(chan error, 1)
	backend := echoBackend(t, func(ctx context.Context, c *websocket.Conn) {
		// Ping returns once the pong came back through the guard. A
		// reader must run for coder/websocket to see the pong.
		go c.Read(ctx)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		result <- c.Ping(pctx)
		<-ctx.Done()
	})
	g := startGuard(t, testConfig(t, upstreamOf(backend), nil))
	c := mustDialRaw(t, g.Addr)
	h, p, err := c.read(5 * time.Second)
	if err != nil || h.Op != frame.OpPing {
		t.Fatalf("expected the backend's ping, got %v %v", h.Op, err)
	}
	if strings.HasPrefix(string(p), pingPrefix) {
		t.Fatalf("got the guard's ping, not the backend's")
	}
	c.write(true, frame.OpPong, p)
	if err := <-result; err != nil {
		t.Fatalf("backend ping: %v", err)
	}
}
