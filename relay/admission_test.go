package relay_test

// These tests see the guard as an outsider does: through relay's exported
// API, real sockets from chosen loopback source addresses, and the admin
// handler (which imports relay, hence the external test package). Every
// refusal must come before the upstream dial, which the backend's count
// of accepted TCP connections shows.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/wsguard/admin"
	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/internal/testsupport"
	"github.com/wsguard/wsguard/relay"
)

// admissionConfig returns a valid config with route "/" to upstream and
// the handshake rate off, after mutate had its say.
func admissionConfig(t testing.TB, upstream string, mutate func(*config.Config)) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", ""
	cfg.Limits.HandshakeRate = 0
	if mutate != nil {
		mutate(&cfg)
	}
	if len(cfg.Routes) == 0 {
		cfg.Routes = []config.Route{cfg.NewRoute("/", upstream)}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	return cfg
}

// gateway is a relay.Server serving on a loopback port.
type gateway struct {
	*relay.Server
	addr string
}

// runGateway serves cfg until the test ends, registering metrics on reg
// (nil: none).
func runGateway(t testing.TB, cfg config.Config, reg prometheus.Registerer) *gateway {
	t.Helper()
	srv, err := relay.New(cfg, relay.Options{Registerer: reg})
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
	return &gateway{Server: srv, addr: ln.Addr().String()}
}

// waitFor polls the gateway's stats until ok accepts them.
func (g *gateway) waitFor(t testing.TB, what string, ok func(relay.Stats) bool) {
	t.Helper()
	testsupport.Poll(t, 15*time.Second, what, func() (bool, string) {
		st := g.Stats()
		return ok(st), fmt.Sprintf("stats %+v", st)
	})
}

// echoServer is a coder/websocket echo backend that counts the TCP
// connections it accepts.
type echoServer struct {
	*httptest.Server
	accepted atomic.Int64
}

type countAccepts struct {
	net.Listener
	n *atomic.Int64
}

func (l countAccepts) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func startEchoServer(t testing.TB) *echoServer {
	t.Helper()
	e := &echoServer{}
	e.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	}))
	e.Listener = countAccepts{Listener: e.Listener, n: &e.accepted}
	e.Start()
	t.Cleanup(e.Close)
	return e
}

// upstream returns the URL the config takes.
func (e *echoServer) upstream() string { return e.URL }

// expectAccepted fails the test unless the backend accepted exactly n
// connections.
func (e *echoServer) expectAccepted(t testing.TB, n int) {
	t.Helper()
	if got := e.accepted.Load(); got != int64(n) {
		t.Fatalf("backend accepted %d connections, want %d: a refused handshake reached the upstream", got, n)
	}
}

// wsDial upgrades to ws://addr/path from the local address local ("" for
// any) with coder/websocket. On refusal it returns the response, whose
// body holds the guard's reason.
func wsDial(ctx context.Context, addr, local, path string) (*websocket.Conn, *http.Response, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	return websocket.Dial(ctx, "ws://"+addr+path, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr},
	})
}

// mustUpgrade upgrades from local and fails the test otherwise. The
// connection is dropped when the test ends.
func mustUpgrade(t testing.TB, g *gateway, local string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, resp, err := wsDial(ctx, g.addr, local, "/")
	if err != nil {
		t.Fatalf("upgrade from %s: %v (%s)", local, err, describeResponse(resp))
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// refusal is what a refused handshake looked like.
type refusal struct {
	status     int
	retryAfter string
	body       string
}

// tryUpgrade upgrades from local; a refusal is returned, an upgrade is
// closed at once and reported as a nil refusal.
func tryUpgrade(t testing.TB, g *gateway, local string) *refusal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, resp, err := wsDial(ctx, g.addr, local, "/")
	if err == nil {
		c.CloseNow()
		return nil
	}
	if resp == nil {
		t.Fatalf("handshake from %s: %v", local, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return &refusal{resp.StatusCode, resp.Header.Get("Retry-After"), string(body)}
}

// expectRefusal fails the test unless a handshake from local is refused
// with status, a Retry-After of whole seconds >= 1 and a body naming
// limit.
func expectRefusal(t testing.TB, g *gateway, local string, status int, limit string) {
	t.Helper()
	r := tryUpgrade(t, g, local)
	if r == nil {
		t.Fatalf("handshake from %s upgraded, want %d %s", local, status, limit)
	}
	r.check(t, status, limit)
}

func (r *refusal) check(t testing.TB, status int, limit string) {
	t.Helper()
	if r.status != status || !strings.Contains(r.body, limit) {
		t.Fatalf("refused with %d %q, want %d naming %s", r.status, r.body, status, limit)
	}
	if n, err := strconv.Atoi(r.retryAfter); err != nil || n < 1 {
		t.Fatalf("Retry-After %q, want whole seconds >= 1", r.retryAfter)
	}
}

func describeResponse(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	body, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%s %q", resp.Status, body)
}

// echo fails the test unless msg comes back on c.
func echo(t testing.TB, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	_, got, err := c.Read(ctx)
	if err != nil || string(got) != msg {
		t.Fatalf("echo of %q: %q, %v", msg, got, err)
	}
}

func TestAdmissionPerIP(t *testing.T) {
	t.Parallel()
	backend := startEchoServer(t)
	g := runGateway(t, admissionConfig(t, backend.upstream(), func(c *config.Config) {
		c.Limits.PerIP = 2
	}), nil)

	first := mustUpgrade(t, g, "127.0.0.2")
	mustUpgrade(t, g, "127.0.0.2")
	expectRefusal(t, g, "127.0.0.2", http.StatusTooManyRequests, "per_ip")
	backend.expectAccepted(t, 2)

	// Another address has its own budget, and the full one still works.
	other := mustUpgrade(t, g, "127.0.0.3")
	echo(t, other, "from .3")
	echo(t, first, "from .2")

	// Once one of the first two is gone, its slot is free again.
	first.Close(websocket.StatusNormalClosure, "")
	g.waitFor(t, "the closed connection to be released", func(st relay.Stats) bool { return st.Open == 2 })
	again := mustUpgrade(t, g, "127.0.0.2")
	echo(t, again, "from .2 again")
	backend.expectAccepted(t, 4)
}

func TestAdmissionMaxConnections(t *testing.T) {
	t.Parallel()
	backend := startEchoServer(t)
	g := runGateway(t, admissionConfig(t, backend.upstream(), func(c *config.Config) {
		c.Limits.MaxConnections = 3
		c.Limits.PerIP = 0
	}), nil)

	for _, src := range []string{"127.0.0.10", "127.0.0.11", "127.0.0.10"} {
		mustUpgrade(t, g, src)
	}
	for _, src := range []string{"127.0.0.12", "127.0.0.10"} {
		expectRefusal(t, g, src, http.StatusServiceUnavailable, "max_connections")
	}
	backend.expectAccepted(t, 3)
	if st := g.Stats(); st.Open != 3 || st.MaxConnections != 3 {
		t.Fatalf("stats %+v, want 3 open of max_connections 3", st)
	}
}

func TestAdmissionHandshakeRate(t *testing.T) {
	t.Parallel()
	backend := startEchoServer(t)
	const rate, burst = 2, 2
	g := runGateway(t, admissionConfig(t, backend.upstream(), func(c *config.Config) {
		c.Limits.HandshakeRate = rate
		c.Limits.HandshakeBurst = burst
	}), nil)

	// A token comes back every 1/rate seconds. When the three handshakes
	// take longer than that, the third may rightly pass; then nothing can
	// be concluded, and a fresh address (a fresh bucket) tries again.
	refill := time.Second / rate
	upgrades := 0
	for _, src := range []string{"127.0.0.4", "127.0.4.1", "127.0.4.2", "127.0.4.3"} {
		start := time.Now()
		for range burst {
			mustUpgrade(t, g, src)
			upgrades++
		}
		r := tryUpgrade(t, g, src)
		elapsed := time.Since(start)
		if r != nil {
			r.check(t, http.StatusTooManyRequests, "handshake_rate")
			backend.expectAccepted(t, upgrades)
			return
		}
		upgrades++
		if elapsed < refill {
			t.Fatalf("handshake %d from %s within %v upgraded, over handshake_rate %d/s burst %d",
				burst+1, src, elapsed, rate, burst)
		}
		t.Logf("%d handshakes took %v, more than a refill; trying again from another address", burst+1, elapsed)
	}
	t.Fatal("every attempt was slower than a token refill; the machine is too loaded to test the rate")
}

func TestAdmissionIPv4Prefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		prefix     int
		secondOpen bool // whether 127.0.0.6 gets in while 127.0.0.5 is connected
	}{
		{"/24 shares a budget", 24, false},
		{"/32 separates addresses", 32, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			backend := startEchoServer(t)
			g := runGateway(t, admissionConfig(t, backend.upstream(), func(c *config.Config) {
				c.Limits.PerIP = 1
				c.Limits.IPv4Prefix = tt.prefix
			}), nil)

			mustUpgrade(t, g, "127.0.0.5")
			if tt.secondOpen {
				mustUpgrade(t, g, "127.0.0.6")
				backend.expectAccepted(t, 2)
			} else {
				expectRefusal(t, g, "127.0.0.6", http.StatusTooManyRequests, "per_ip")
				backend.expectAccepted(t, 1)
			}
		})
	}
}

// TestAdmissionNoSlotLeak runs every way a handshake can end at once,
// from many addresses, and checks through the admin API that the gateway
// returns to zero: no connection, no pending handshake, no counter.
func TestAdmissionNoSlotLeak(t *testing.T) {
	t.Parallel()
	backend := startEchoServer(t)
	down := testsupport.DeadAddr(t)
	hole := testsupport.Blackhole(t)
	const rateBurst = 6
	cfg := admissionConfig(t, "", func(c *config.Config) {
		c.Limits.PerIP = 2
		// A token a minute: each address gets rateBurst handshakes.
		c.Limits.HandshakeRate = 1.0 / 60
		c.Limits.HandshakeBurst = rateBurst
		// The whole head within 3 s (408 after); the upstream's answer
		// within 30 s, so that load cannot fail a good handshake, but
		// within 300 ms on the silent upstream's route (504 after).
		c.Timeouts.Handshake = config.Duration(3 * time.Second)
		c.Routes = []config.Route{
			c.NewRoute("/", backend.upstream()),
			c.NewRoute("/down", "http://"+down),
			c.NewRoute("/hole", "http://"+hole),
		}
		c.Routes[0].Timeouts.Handshake = config.Duration(30 * time.Second)
		c.Routes[2].Timeouts.Handshake = config.Duration(300 * time.Millisecond)
	})
	reg := prometheus.NewRegistry()
	g := runGateway(t, cfg, reg)
	adminSrv := httptest.NewServer(admin.Handler(g.Server, admin.Options{Gatherer: reg, Open: true}))
	t.Cleanup(adminSrv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	run := func(name string, f func() error) {
		wg.Go(func() {
			if err := f(); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		})
	}
	src := func(group, i int) string { return fmt.Sprintf("127.0.%d.%d", group, i+1) }

	for i := range 4 {
		run("normal close", func() error {
			c, _, err := wsDial(ctx, g.addr, src(1, i), "/")
			if err != nil {
				return err
			}
			if err := echoCtx(ctx, c); err != nil {
				return err
			}
			return c.Close(websocket.StatusNormalClosure, "done")
		})
		run("abrupt drop", func() error {
			c, _, err := wsDial(ctx, g.addr, src(2, i), "/")
			if err != nil {
				return err
			}
			if err := echoCtx(ctx, c); err != nil {
				return err
			}
			return c.CloseNow()
		})
	}
	for i := range 2 {
		run("per_ip", func() error {
			var held []*websocket.Conn
			defer func() {
				for _, c := range held {
					c.CloseNow()
				}
			}()
			for range 2 {
				c, _, err := wsDial(ctx, g.addr, src(3, i), "/")
				if err != nil {
					return err
				}
				held = append(held, c)
			}
			return expectStatus(ctx, g.addr, src(3, i), "/", http.StatusTooManyRequests, "per_ip")
		})
	}
	run("handshake_rate", func() error {
		limited := 0
		for range rateBurst + 4 {
			c, resp, err := wsDial(ctx, g.addr, src(4, 0), "/")
			switch {
			case err == nil:
				c.CloseNow()
			case resp == nil:
				return err
			case resp.StatusCode != http.StatusTooManyRequests:
				return fmt.Errorf("status %d", resp.StatusCode)
			default:
				if b, _ := io.ReadAll(resp.Body); strings.Contains(string(b), "handshake_rate") {
					limited++
				}
			}
		}
		if limited == 0 {
			return fmt.Errorf("%d handshakes at a burst of %d, none refused for the rate", rateBurst+4, rateBurst)
		}
		return nil
	})
	for i := range 3 {
		run("upstream down", func() error {
			return expectStatus(ctx, g.addr, src(5, i), "/down", http.StatusBadGateway, "upstream")
		})
		run("upstream silent", func() error {
			return expectStatus(ctx, g.addr, src(6, i), "/hole", http.StatusGatewayTimeout, "timeout")
		})
	}
	head := func(method, version, pad string) string {
		return method + " / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: " + version + "\r\n" +
			"X-Pad: " + pad + "\r\n\r\n"
	}
	bad := []struct {
		req    string
		status int
	}{
		{head("POST", "13", ""), http.StatusBadRequest},
		{head("GET", "12", ""), http.StatusUpgradeRequired},
		{head("GET", "13", strings.Repeat("x", 9<<10)), http.StatusRequestHeaderFieldsTooLarge},
		{"hello\r\n\r\n", http.StatusBadRequest},
	}
	for i, b := range bad {
		run("bad request", func() error { return rawStatus(ctx, g.addr, src(7, i), b.req, b.status) })
	}
	for i := range 2 {
		run("handshake timeout", func() error {
			return rawStatus(ctx, g.addr, src(8, i), "GET / HTTP/1.1\r\nHost: x\r\n", http.StatusRequestTimeout)
		})
	}
	vanish := []string{
		"",                              // connect and go
		"GET / HTTP/1.1\r\nHost: x\r\n", // half a head
		head("GET", "13", ""),           // a whole request, then gone before the 101
		strings.Replace(head("GET", "13", ""), "GET /", "GET /hole", 1), // gone while the upstream is silent
	}
	for i, req := range vanish {
		run("vanish", func() error { return sendAndVanish(g.addr, src(9, i), req) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Everything returns to zero, as the admin API reports it.
	testsupport.Poll(t, 15*time.Second, "the gateway to return to zero", func() (bool, string) {
		var st relay.Stats
		getJSON(t, adminSrv.URL+"/admin/api/stats", &st)
		return st.Open == 0 && st.Pending == 0 && st.Counters == 0, fmt.Sprintf("stats %+v", st)
	})
	metrics := getText(t, adminSrv.URL+"/metrics")
	for _, reason := range []string{
		`outcome="accepted",reason="ok"`,
		`outcome="refused",reason="per_ip"`,
		`outcome="refused",reason="handshake_rate"`,
		`outcome="failed",reason="upstream_error"`,
		`outcome="failed",reason="upstream_timeout"`,
		`outcome="failed",reason="bad_request"`,
		`outcome="failed",reason="head_too_large"`,
		`outcome="failed",reason="handshake_timeout"`,
		`outcome="failed",reason="client_gone"`,
	} {
		if !strings.Contains(metrics, "wsguard_handshakes_total{"+reason+"}") {
			t.Errorf("/metrics has no wsguard_handshakes_total{%s}", reason)
		}
	}
}

// echoCtx sends a message on c and checks that it comes back.
func echoCtx(ctx context.Context, c *websocket.Conn) error {
	if err := c.Write(ctx, websocket.MessageText, []byte("ping?")); err != nil {
		return err
	}
	if _, got, err := c.Read(ctx); err != nil || string(got) != "ping?" {
		return fmt.Errorf("echo: %q, %v", got, err)
	}
	return nil
}

// expectStatus upgrades to path from local and returns an error unless
// the handshake is refused with status and a body containing reason.
func expectStatus(ctx context.Context, addr, local, path string, status int, reason string) error {
	c, resp, err := wsDial(ctx, addr, local, path)
	if err == nil {
		c.CloseNow()
		return fmt.Errorf("upgraded, want %d", status)
	}
	if resp == nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status || !strings.Contains(string(body), reason) {
		return fmt.Errorf("%d %q, want %d %s", resp.StatusCode, body, status, reason)
	}
	return nil
}

// rawStatus sends req from local and returns an error unless the answer
// has status.
func rawStatus(ctx context.Context, addr, local, req string, status int) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	_, werr := io.WriteString(nc, req)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		return fmt.Errorf("reading response (write error %v): %w", werr, err)
	}
	resp.Body.Close()
	if resp.StatusCode != status {
		return fmt.Errorf("status %d, want %d", resp.StatusCode, status)
	}
	return nil
}

// sendAndVanish connects from local, sends req and closes at once.
func sendAndVanish(addr, local, req string) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	if req != "" {
		if _, err := io.WriteString(nc, req); err != nil {
			nc.Close()
			return err
		}
	}
	return nc.Close()
}

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(getText(t, url)), v); err != nil {
		t.Fatalf("decoding %s: %v", url, err)
	}
}

func getText(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return string(b)
}
