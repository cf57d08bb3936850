package relay

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/frame"
	"github.com/wsguard/wsguard/internal/httphead"
	"github.com/wsguard/wsguard/internal/testsupport"
)

// testConfig returns a valid config with one route "/" to upstream, after
// mutate had its say.
func testConfig(t testing.TB, upstream string, mutate func(*config.Config)) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminListen = ""
	if mutate != nil {
		mutate(&cfg)
	}
	if len(cfg.Routes) == 0 {
		// After mutate, so that the route copies the top-level sections.
		cfg.Routes = []config.Route{cfg.NewRoute("/", upstream)}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	return cfg
}

// guard is a relay.Server under test on a loopback port.
type guard struct {
	*Server
	Addr string
}

// startGuardWith runs a Server for cfg with opts until the test ends.
func startGuardWith(t testing.TB, cfg config.Config, opts Options) *guard {
	t.Helper()
	srv, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return &guard{Server: srv, Addr: ln.Addr().String()}
}

// waitIdle waits until the guard holds no connection, no pending
// handshake and no admission counter, failing the test after 5 s.
func (g *guard) waitIdle(t testing.TB) {
	t.Helper()
	waitStats(t, g, "the guard to return to idle", func(st Stats) bool {
		return st.Open == 0 && st.Pending == 0 && st.Counters == 0
	})
}

// waitStats polls the guard's stats until ok accepts them.
func waitStats(t testing.TB, g *guard, what string, ok func(Stats) bool) {
	t.Helper()
	testsupport.Poll(t, 10*time.Second, what, func() (bool, string) {
		st := g.Stats()
		return ok(st), fmt.Sprintf("stats %+v", st)
	})
}

// startGuard runs a Server for cfg until the test ends.
func startGuard(t testing.TB, cfg config.Config) *guard {
	t.Helper()
	return startGuardWith(t, cfg, Options{})
}

// echoBackend is a Go WebSocket server (coder/websocket) that echoes
// every message; handler, if set, replaces the echo loop.
func echoBackend(t testing.TB, handler func(ctx context.Context, c *websocket.Conn)) *httptest.Server {
	t.Helper()
	if handler == nil {
		handler = echoLoop
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			InsecureSkipVerify: true,
			CompressionMode:    websocket.CompressionDisabled,
		})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(-1)
		handler(r.Context(), c)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// echoWS accepts a WebSocket with opts and echoes every message, of any
// size, until the client goes.
func echoWS(w http.ResponseWriter, r *http.Request, opts *websocket.AcceptOptions) {
	c, err := websocket.Accept(w, r, opts)
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(-1)
	echoLoop(r.Context(), c)
}

// echoLoop sends every message read on c back, until reading or writing
// fails.
func echoLoop(ctx context.Context, c *websocket.Conn) {
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}

// rawClient speaks WebSocket by hand, so tests can break the rules and
// see exactly which frames the guard sends.
type rawClient struct {
	t    testing.TB
	nc   net.Conn
	br   *bufio.Reader
	resp *http.Response
}

// dialRaw opens a connection to addr from the given local address (""
// for any) and sends an upgrade request for path with extra header lines.
// It returns the client and the response; the client is nil unless the
// answer was 101.
func dialRaw(t testing.TB, addr, local, path string, extra ...string) (*rawClient, *http.Response) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialing guard: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	var key [16]byte
	rand.Read(key[:])
	k := base64.StdEncoding.EncodeToString(key[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + k + "\r\nSec-WebSocket-Version: 13\r\n"
	for _, h := range extra {
		req += h + "\r\n"
	}
	req += "\r\n"
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatalf("writing handshake: %v", err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading handshake response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, resp
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != httphead.AcceptKey([]byte(k)) {
		t.Fatalf("Sec-WebSocket-Accept %q is wrong", got)
	}
	nc.SetDeadline(time.Time{})
	return &rawClient{t: t, nc: nc, br: br, resp: resp}, resp
}

// mustDialRaw is dialRaw that fails the test unless the upgrade succeeds.
func mustDialRaw(t testing.TB, addr string, extra ...string) *rawClient {
	t.Helper()
	c, resp := dialRaw(t, addr, "", "/", extra...)
	if c == nil {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("upgrade refused: %s %s", resp.Status, body)
	}
	return c
}

// write sends one masked frame.
func (c *rawClient) write(fin bool, op frame.Opcode, payload []byte) {
	c.t.Helper()
	c.writeRaw(frame.AppendFrame(nil, fin, op, &[4]byte{0x11, 0x22, 0x33, 0x44}, payload))
}

// writeRaw sends bytes as they are.
func (c *rawClient) writeRaw(b []byte) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

// read returns the next frame, waiting at most timeout.
func (c *rawClient) read(timeout time.Duration) (frame.Header, []byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	var p frame.Parser
	var hdr [frame.MaxHeaderSize]byte
	for {
		b, err := c.br.ReadByte()
		if err != nil {
			return frame.Header{}, nil, err
		}
		hdr[0] = b
		_, ev, err := p.Feed(hdr[:1])
		if err != nil {
			return frame.Header{}, nil, err
		}
		if ev == frame.EventHeader {
			break
		}
	}
	h := p.Header()
	payload := make([]byte, h.Length)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return h, nil, err
	}
	return h, payload, nil
}

// closeFrame is a close frame the client received.
type closeFrame struct {
	code   uint16
	reason string
	at     time.Time
}

// readUntilClose reads frames until a close frame, answering nothing,
// and returns it; other frames are passed to seen (may be nil).
func (c *rawClient) readUntilClose(timeout time.Duration, seen func(frame.Header, []byte)) (closeFrame, error) {
	deadline := time.Now().Add(timeout)
	for {
		h, payload, err := c.read(time.Until(deadline))
		if err != nil {
			return closeFrame{}, err
		}
		if h.Op == frame.OpClose {
			code, reason, err := frame.ParseClosePayload(payload)
			return closeFrame{code, reason, time.Now()}, err
		}
		if seen != nil {
			seen(h, payload)
		}
	}
}

// expectClose fails the test unless the next close frame carries code and
// reason, before timeout.
func (c *rawClient) expectClose(code uint16, reason string, timeout time.Duration) closeFrame {
	c.t.Helper()
	cf, err := c.readUntilClose(timeout, nil)
	if err != nil {
		c.t.Fatalf("waiting for close %d: %v", code, err)
	}
	if cf.code != code || (reason != "" && cf.reason != reason) {
		c.t.Fatalf("close %d %q, want %d %q", cf.code, cf.reason, code, reason)
	}
	return cf
}

// expectEOF fails unless the guard closes the socket before timeout.
func (c *rawClient) expectEOF(timeout time.Duration) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	for {
		_, err := c.br.ReadByte()
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("socket still open after %v", timeout)
		}
		return
	}
}

// wsURL returns the ws:// URL of path on addr.
func wsURL(addr, path string) string { return fmt.Sprintf("ws://%s%s", addr, path) }

// httpToWS turns an httptest URL into the upstream form the config takes.
func upstreamOf(srv *httptest.Server) string { return strings.TrimSuffix(srv.URL, "/") }

// rawBackend is a WebSocket backend written by hand on a loopback TCP
// listener, for tests that need what a library would not do (drop the
// connection, show every frame as it came). It answers each upgrade
// request with a valid 101 and then calls serve on a goroutine of its
// own; the connection is closed when serve returns or the test ends.
// It returns the upstream URL.
func rawBackend(t testing.TB, serve func(nc net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex // guards conns and closed
		conns  []net.Conn
		closed bool
		wg     sync.WaitGroup
	)
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			if closed {
				nc.Close() // the test ended as this one came in
			}
			mu.Unlock()
			wg.Go(func() {
				defer nc.Close()
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(nc)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				accept := httphead.AcceptKey([]byte(req.Header.Get("Sec-WebSocket-Key")))
				resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
					"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n"
				if _, err := io.WriteString(nc, resp); err != nil {
					return
				}
				nc.SetDeadline(time.Time{})
				serve(nc, br)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}
