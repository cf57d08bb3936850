package wsguard_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/wsguard"
	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/frame"
)

// framed runs next behind a Guard with frame policies on, built from
// config.Default() changed by edit. Handler errors arrive on the
// returned channel.
func framed(t *testing.T, edit func(*config.Config), next func(*websocket.Conn) error) (*wsguard.Guard, *prometheus.Registry, string, <-chan error) {
	t.Helper()
	cfg := config.Default()
	cfg.Limits.HandshakeRate, cfg.Limits.HandshakeBurst = 1000, 1000
	cfg.Timeouts.LifetimeJitter = 0
	edit(&cfg)
	reg := prometheus.NewRegistry()
	g, err := wsguard.New(wsguard.Options{Config: cfg, FramePolicies: true, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	errs := make(chan error, 16)
	srv := httptest.NewServer(g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			errs <- err
			return
		}
		defer c.CloseNow()
		errs <- next(c)
	})))
	t.Cleanup(srv.Close)
	return g, reg, srv.URL, errs
}

// echoUntilError echoes messages until reading fails, and returns why.
func echoUntilError(c *websocket.Conn) error {
	for {
		typ, msg, err := c.Read(context.Background())
		if err != nil {
			return err
		}
		if err := c.Write(context.Background(), typ, msg); err != nil {
			return err
		}
	}
}

// wantPolicyError checks that the handler saw the guard's PolicyError.
func wantPolicyError(t *testing.T, errs <-chan error, reason string) {
	t.Helper()
	select {
	case err := <-errs:
		var pe *wsguard.PolicyError
		if !errors.As(err, &pe) || pe.Reason != reason {
			t.Errorf("handler got %v, want a PolicyError %q", err, reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not end")
	}
}

// wantClose reads from c until the guard's close frame arrives.
func wantClose(t *testing.T, c *websocket.Conn, code websocket.StatusCode, reason string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code || ce.Reason != reason {
			t.Fatalf("read: %v, want close %d %q", err, code, reason)
		}
		return
	}
}

func TestFrameIdleCountsDataFramesOnly(t *testing.T) {
	t.Parallel()
	const idle = time.Second
	g, reg, url, errs := framed(t, func(c *config.Config) {
		c.Timeouts.Idle = config.Duration(idle)
	}, echoUntilError)
	c := mustDial(t, url, "")

	// Data frames keep the connection: messages for twice the idle time.
	start := time.Now()
	var quiet time.Time // when the last data frame arrived
	for time.Since(start) < 2*idle {
		if got := roundTrip(t, c, "hi"); got != "hi" {
			t.Fatalf("reply %q", got)
		}
		quiet = time.Now()
		time.Sleep(idle / 10) // pacing a client, not waiting for an event
	}

	// Pings do not: the connection ends although the client pings.
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.Read(context.Background())
		readErr <- err
	}()
	pings := 0
ping:
	for {
		select {
		case err := <-readErr:
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != "idle timeout" {
				t.Fatalf("read: %v, want close 1001 idle timeout", err)
			}
			break ping
		case <-time.After(idle / 10):
			ctx, cancel := context.WithTimeout(context.Background(), idle)
			if c.Ping(ctx) == nil {
				pings++
			}
			cancel()
		}
	}
	if since := time.Since(quiet); since < idle {
		t.Errorf("closed %v after the last data frame, before the idle time", since)
	}
	if pings < 3 {
		t.Errorf("only %d pings answered before the close", pings)
	}
	wantPolicyError(t, errs, "idle timeout")
	waitOpen(t, g, 0)
	if got := gather(t, reg)[`wsguard_middleware_policy_closes_total{rule=idle}`]; got != 1 {
		t.Errorf("policy closes (idle) = %v, want 1", got)
	}
}

func TestFrameSizeCap(t *testing.T) {
	t.Parallel()
	g, reg, url, errs := framed(t, func(c *config.Config) {
		c.Messages.MaxSize = 1024
	}, echoUntilError)
	c := mustDial(t, url, "")
	if got := roundTrip(t, c, strings.Repeat("a", 1024)); len(got) != 1024 {
		t.Fatalf("a message of max_size came back as %d bytes", len(got))
	}
	if err := c.Write(context.Background(), websocket.MessageText, []byte(strings.Repeat("a", 1025))); err != nil {
		t.Fatal(err)
	}
	wantClose(t, c, websocket.StatusMessageTooBig, "message too big")
	wantPolicyError(t, errs, "message too big")
	waitOpen(t, g, 0)
	if got := gather(t, reg)[`wsguard_middleware_policy_closes_total{rule=too_big}`]; got != 1 {
		t.Errorf("policy closes (too_big) = %v, want 1", got)
	}
}

func TestFrameLifetime(t *testing.T) {
	t.Parallel()
	g, _, url, errs := framed(t, func(c *config.Config) {
		c.Timeouts.MaxLifetime = config.Duration(500 * time.Millisecond)
	}, echoUntilError)
	c := mustDial(t, url, "")
	roundTrip(t, c, "hi")
	wantClose(t, c, websocket.StatusGoingAway, "max lifetime")
	wantPolicyError(t, errs, "max lifetime")
	waitOpen(t, g, 0)
}

// rawClient is a WebSocket client written by hand, for what libraries
// will not send: fragments, unmasked frames, frames in the handshake's
// packet, or a client that never reads.
type rawClient struct {
	net.Conn
	br *bufio.Reader
}

// dialRaw sends the handshake followed by early, and reads the 101.
func dialRaw(t *testing.T, base string, early []byte) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	req := "GET / HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := nc.Write(append([]byte(req), early...)); err != nil {
		t.Fatal(err)
	}
	c := &rawClient{Conn: nc, br: bufio.NewReader(nc)}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return c
}

// clientFrame builds a masked client frame.
func clientFrame(fin bool, op frame.Opcode, payload string) []byte {
	return frame.AppendFrame(nil, fin, op, &[4]byte{1, 2, 3, 4}, []byte(payload))
}

// readFrame reads one server frame (unmasked, payload under 126 bytes
// or 16-bit length).
func (c *rawClient) readFrame(t *testing.T) (frame.Opcode, []byte) {
	t.Helper()
	var p frame.Parser
	for {
		b, err := c.br.Peek(1)
		if err != nil {
			t.Fatalf("reading a frame: %v", err)
		}
		n, ev, err := p.Feed(b)
		if err != nil {
			t.Fatal(err)
		}
		c.br.Discard(n)
		if ev == frame.EventHeader {
			break
		}
	}
	payload := make([]byte, p.Header().Length)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		t.Fatal(err)
	}
	return p.Header().Op, payload
}

// wantCloseFrame skips data frames until a close frame, and checks it.
func (c *rawClient) wantCloseFrame(t *testing.T, code uint16, reason string) {
	t.Helper()
	for {
		op, payload := c.readFrame(t)
		if op != frame.OpClose {
			continue
		}
		gotCode, gotReason, err := frame.ParseClosePayload(payload)
		if err != nil || gotCode != code || gotReason != reason {
			t.Fatalf("close %d %q (%v), want %d %q", gotCode, gotReason, err, code, reason)
		}
		return
	}
}

func TestFrameEarlyBytesReachTheLibrary(t *testing.T) {
	t.Parallel()
	// The first message shares the handshake's packet, so the server has
	// it buffered before the hijack: it must pass through the guard too.
	_, _, url, _ := framed(t, func(*config.Config) {}, echoUntilError)
	c := dialRaw(t, url, clientFrame(true, frame.OpText, "early"))
	if op, payload := c.readFrame(t); op != frame.OpText || string(payload) != "early" {
		t.Fatalf("got %v %q, want the echo of the early message", op, payload)
	}
}

func TestFrameFragmentCap(t *testing.T) {
	t.Parallel()
	g, _, url, errs := framed(t, func(c *config.Config) {
		c.Messages.MaxFragments = 3
	}, echoUntilError)
	c := dialRaw(t, url, nil)
	msg := clientFrame(false, frame.OpText, "a")
	for range 3 {
		msg = append(msg, clientFrame(false, frame.OpContinuation, "a")...)
	}
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	c.wantCloseFrame(t, frame.ClosePolicyViolation, "too many fragments")
	wantPolicyError(t, errs, "too many fragments")
	waitOpen(t, g, 0)
}

func TestFrameProtocolError(t *testing.T) {
	t.Parallel()
	g, _, url, errs := framed(t, func(*config.Config) {}, echoUntilError)
	c := dialRaw(t, url, nil)
	if _, err := c.Write(frame.AppendFrame(nil, true, frame.OpText, nil, []byte("bare"))); err != nil {
		t.Fatal(err)
	}
	c.wantCloseFrame(t, frame.CloseProtocolError, frame.ErrUnmasked.Reason)
	wantPolicyError(t, errs, frame.ErrUnmasked.Reason)
	waitOpen(t, g, 0)
}

func TestFrameWriteTimeout(t *testing.T) {
	t.Parallel()
	// The handler writes to a client that never reads: once the socket
	// buffers are full, a write outlasts timeouts.write.
	g, reg, url, errs := framed(t, func(c *config.Config) {
		c.Timeouts.Write = config.Duration(300 * time.Millisecond)
	}, func(c *websocket.Conn) error {
		big := make([]byte, 64<<10)
		for {
			if err := c.Write(context.Background(), websocket.MessageBinary, big); err != nil {
				return err
			}
		}
	})
	dialRaw(t, url, nil)
	wantPolicyError(t, errs, "write timeout")
	waitOpen(t, g, 0)
	if got := gather(t, reg)[`wsguard_middleware_policy_closes_total{rule=write_timeout}`]; got != 1 {
		t.Errorf("policy closes (write_timeout) = %v, want 1", got)
	}
}
