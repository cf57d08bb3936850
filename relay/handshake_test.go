package relay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/frame"
	"github.com/wsguard/wsguard/internal/testsupport"
)

// sampleKey is a valid Sec-WebSocket-Key (the one in RFC 6455 section 1.3).
const sampleKey = "dGhlIHNhbXBsZSBub25jZQ=="

// headerList is an ordered list of header lines, so a test can send
// exactly the head it means, duplicates and odd spellings included.
type headerList [][2]string

// upgradeHeaders returns the header lines of a valid upgrade to host.
func upgradeHeaders(host string) headerList {
	return headerList{
		{"Host", host},
		{"Upgrade", "websocket"},
		{"Connection", "Upgrade"},
		{"Sec-WebSocket-Key", sampleKey},
		{"Sec-WebSocket-Version", "13"},
	}
}

// with returns a copy of h with the lines called name replaced by one
// line name: value, or removed when value is "".
func (h headerList) with(name, value string) headerList {
	out := slices.DeleteFunc(slices.Clone(h), func(f [2]string) bool {
		return strings.EqualFold(f[0], name)
	})
	if value != "" {
		out = append(out, [2]string{name, value})
	}
	return out
}

// requestHead renders a request head.
func requestHead(method, target string, h headerList) string {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\n")
	for _, f := range h {
		b.WriteString(f[0] + ": " + f[1] + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// exchange sends req, as it is, over a new connection to addr from the
// local address local ("" for any), and returns the response and its
// body. The connection stays open until the test ends.
func exchange(t testing.TB, addr, local, req string) (*http.Response, string) {
	t.Helper()
	nc := dialFrom(t, addr, local)
	nc.SetDeadline(time.Now().Add(10 * time.Second))

	// The guard may answer and close before it has read all of req (431);
	// the answer is still there to read, so a failed write is not fatal.
	_, werr := io.WriteString(nc, req)
	resp, body, err := readResponse(bufio.NewReader(nc))
	if err != nil {
		t.Fatalf("reading the response (write error: %v): %v", werr, err)
	}
	return resp, body
}

// dialFrom opens a TCP connection to addr from local ("" for any). It is
// closed when the test ends.
func dialFrom(t testing.TB, addr, local string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialing %s from %q: %v", addr, local, err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// readResponse reads one response and all of its body.
func readResponse(br *bufio.Reader) (*http.Response, string, error) {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, "", nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body), err
}

// checkRefusal fails the test unless resp is a canned refusal: status
// want, a text/plain body of exactly one line containing reason.
func checkRefusal(t testing.TB, resp *http.Response, body string, want int, reason string) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("status %s (body %q), want %d", resp.Status, body, want)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	if strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") || len(body) < 2 {
		t.Errorf("body %q is not one line of text", body)
	}
	if !strings.Contains(body, reason) {
		t.Errorf("body %q does not mention %q", body, reason)
	}
}

// countingListener counts the connections it accepts: for a backend, the
// handshakes the guard forwarded.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// wsBackend is a coder/websocket echo server that counts the TCP
// connections it accepts and hands the headers of each upgrade request
// to Headers.
type wsBackend struct {
	*httptest.Server
	Accepted atomic.Int64
	Headers  chan http.Header
}

// startWSBackend runs a wsBackend accepting with opts (nil: defaults with
// compression off) until the test ends.
func startWSBackend(t testing.TB, opts *websocket.AcceptOptions) *wsBackend {
	t.Helper()
	if opts == nil {
		opts = &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled}
	}
	opts.InsecureSkipVerify = true
	b := &wsBackend{Headers: make(chan http.Header, 64)}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case b.Headers <- r.Header.Clone():
		default:
		}
		echoWS(w, r, opts)
	}))
	b.Listener = countingListener{Listener: b.Listener, n: &b.Accepted}
	b.Start()
	t.Cleanup(b.Close)
	return b
}

// echoText sends msg on a raw client and fails unless it comes back.
func echoText(t testing.TB, c *rawClient, msg string) {
	t.Helper()
	c.write(true, frame.OpText, []byte(msg))
	h, p, err := c.read(10 * time.Second)
	if err != nil || h.Op != frame.OpText || string(p) != msg {
		t.Fatalf("echo of %q: got %v %q, %v", msg, h.Op, p, err)
	}
}

func TestHandshakeValidation(t *testing.T) {
	t.Parallel()
	backend := startWSBackend(t, nil)
	g := startGuard(t, testConfig(t, "", func(c *config.Config) {
		c.AllowedOrigins = []string{"https://good.example"}
		c.Routes = []config.Route{c.NewRoute("/ws", upstreamOf(backend.Server))}
	}))
	up := upgradeHeaders(g.Addr)
	bigHead := up.with("X-Padding", strings.Repeat("p", 9<<10))

	tests := []struct {
		name   string
		req    string
		status int
		reason string // expected in the body of a refusal
		header string // expected response header "Name: value", or ""
	}{
		{"plain GET", requestHead("GET", "/ws", headerList{{"Host", g.Addr}}),
			400, "not a websocket upgrade", ""},
		{"POST upgrade", requestHead("POST", "/ws", up), 400, "method must be GET", ""},
		{"missing key", requestHead("GET", "/ws", up.with("Sec-WebSocket-Key", "")),
			400, "Sec-WebSocket-Key", ""},
		{"key not base64", requestHead("GET", "/ws", up.with("Sec-WebSocket-Key", "not a key")),
			400, "Sec-WebSocket-Key", ""},
		{"key of 15 bytes", requestHead("GET", "/ws", up.with("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA")),
			400, "Sec-WebSocket-Key", ""},
		{"version 12", requestHead("GET", "/ws", up.with("Sec-WebSocket-Version", "12")),
			426, "version", "Sec-WebSocket-Version: 13"},
		{"head over 8 KiB", requestHead("GET", "/ws", bigHead), 431, "too large", ""},
		{"body on the upgrade", requestHead("GET", "/ws", up.with("Content-Length", "5")) + "hello",
			400, "body", ""},
		{"unknown route", requestHead("GET", "/other", up), 404, "route", ""},
		{"foreign origin", requestHead("GET", "/ws", up.with("Origin", "https://evil.example")),
			403, "origin", ""},
		{"allowed origin", requestHead("GET", "/ws", up.with("Origin", "https://good.example")), 101, "", ""},
		{"no origin", requestHead("GET", "/ws", up), 101, "", ""},
		{"route subpath", requestHead("GET", "/ws/room?x=1", up), 101, "", ""},
	}
	upgrades := 0
	t.Run("cases", func(t *testing.T) {
		for _, tt := range tests {
			if tt.status == http.StatusSwitchingProtocols {
				upgrades++
			}
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				resp, body := exchange(t, g.Addr, "", tt.req)
				if tt.status == http.StatusSwitchingProtocols {
					if resp.StatusCode != tt.status {
						t.Fatalf("status %s (body %q), want 101", resp.Status, body)
					}
					if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
						t.Fatalf("Sec-WebSocket-Accept %q", got)
					}
					return
				}
				checkRefusal(t, resp, body, tt.status, tt.reason)
				if tt.header != "" {
					name, value, _ := strings.Cut(tt.header, ": ")
					if got := resp.Header.Values(name); !slices.Equal(got, []string{value}) {
						t.Errorf("%s: %q, want %q", name, got, value)
					}
				}
			})
		}
	})

	// Only the upgrades reached the backend: every refusal came first.
	if n := backend.Accepted.Load(); n != int64(upgrades) {
		t.Errorf("backend accepted %d connections, want %d (one per upgrade)", n, upgrades)
	}
	g.waitIdle(t)
}

func TestHandshakeTimeoutTricklingHead(t *testing.T) {
	t.Parallel()
	backend := startWSBackend(t, nil)
	const limit = 300 * time.Millisecond
	g := startGuard(t, testConfig(t, upstreamOf(backend.Server), func(c *config.Config) {
		c.Timeouts.Handshake = config.Duration(limit)
	}))

	start := time.Now()
	nc := dialFrom(t, g.Addr, "")
	if _, err := io.WriteString(nc, "GET / HTTP/1.1\r\nHost: "+g.Addr+"\r\n"); err != nil {
		t.Fatal(err)
	}
	// Then silence, until the guard gives up.
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(nc)
	resp, body, err := readResponse(br)
	if err != nil {
		t.Fatal(err)
	}
	checkRefusal(t, resp, body, http.StatusRequestTimeout, "timeout")
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the 408: %v, want EOF", err)
	}
	if age := time.Since(start); age < limit {
		t.Fatalf("closed %v after connect, before timeouts.handshake (%v)", age, limit)
	}
	if n := backend.Accepted.Load(); n != 0 {
		t.Errorf("backend accepted %d connections, want 0", n)
	}
	g.waitIdle(t)
}

func TestHandshakeForwardsHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		local  string // source address; "" dials from 127.0.0.1
		client string // address the backend must be told
	}{
		{"default source", "", "127.0.0.1"},
		{"chosen source", "127.0.0.9", "127.0.0.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			backend := startWSBackend(t, &websocket.AcceptOptions{Subprotocols: []string{"superchat"}})
			g := startGuard(t, testConfig(t, upstreamOf(backend.Server), nil))

			const cookie, origin = "session=abc123; theme=dark", "https://app.example"
			c, resp := dialRaw(t, g.Addr, tt.local, "/chat?room=1",
				"X-Forwarded-For: 6.6.6.6",
				"X-Forwarded-For: 7.7.7.7",
				"X-Real-IP: 6.6.6.6",
				"X-Forwarded-Proto: https",
				"Forwarded: for=6.6.6.6",
				"Cookie: "+cookie,
				"Origin: "+origin,
				"Sec-WebSocket-Protocol: chat, superchat")
			if c == nil {
				t.Fatalf("upgrade refused: %s", resp.Status)
			}
			if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "superchat" {
				t.Errorf("client got subprotocol %q, want superchat", got)
			}
			echoText(t, c, "hello through the guard")

			var h http.Header
			select {
			case h = <-backend.Headers:
			case <-time.After(10 * time.Second):
				t.Fatal("backend saw no request")
			}
			want := map[string][]string{
				"X-Forwarded-For":        {tt.client},
				"X-Real-Ip":              {tt.client},
				"X-Forwarded-Proto":      {"http"},
				"X-Forwarded-Host":       {g.Addr},
				"Forwarded":              nil,
				"Cookie":                 {cookie},
				"Origin":                 {origin},
				"Sec-Websocket-Protocol": {"chat, superchat"},
			}
			for name, values := range want {
				if got := h.Values(name); !slices.Equal(got, values) {
					t.Errorf("backend saw %s %q, want %q", name, got, values)
				}
			}
		})
	}
}

func TestHandshakePermessageDeflate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		mode  websocket.CompressionMode
		param string // expected in the negotiated extension, or ""
	}{
		{"context takeover", websocket.CompressionContextTakeover, ""},
		{"no context takeover", websocket.CompressionNoContextTakeover, "no_context_takeover"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			backend := startWSBackend(t, &websocket.AcceptOptions{
				CompressionMode:      tt.mode,
				CompressionThreshold: 1,
			})
			reg := prometheus.NewRegistry()
			g := startGuardWith(t, testConfig(t, upstreamOf(backend.Server), nil), Options{Registerer: reg})

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, wsURL(g.Addr, "/"), &websocket.DialOptions{
				CompressionMode:      tt.mode,
				CompressionThreshold: 1,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			c.SetReadLimit(-1)
			ext := resp.Header.Get("Sec-WebSocket-Extensions")
			if !strings.Contains(ext, "permessage-deflate") || !strings.Contains(ext, tt.param) {
				t.Fatalf("negotiated extensions %q, want permessage-deflate with %q", ext, tt.param)
			}

			// Repetitive text compresses to almost nothing; random bytes
			// do not compress, and check that the guard passes frames
			// whose compressed size it cannot predict.
			random := make([]byte, 3000)
			rand.Read(random)
			msgs := [][]byte{
				[]byte("a"),
				bytes.Repeat([]byte("hello guard "), 20),
				bytes.Repeat([]byte("compress me please "), 10_000),
				random,
				bytes.Repeat([]byte("hello guard "), 20),
			}
			sent := 0
			for i, msg := range msgs {
				typ := websocket.MessageText
				if i == 3 {
					typ = websocket.MessageBinary
				}
				if err := c.Write(ctx, typ, msg); err != nil {
					t.Fatalf("message %d: write: %v", i, err)
				}
				gotTyp, got, err := c.Read(ctx)
				if err != nil || gotTyp != typ || !bytes.Equal(got, msg) {
					t.Fatalf("message %d (%d bytes): echo %v of %d bytes, %v", i, len(msg), gotTyp, len(got), err)
				}
				sent += len(msg)
			}
			c.Close(websocket.StatusNormalClosure, "")

			// The guard saw compressed frames, far fewer bytes than the
			// messages hold.
			read := counterValue(t, reg, "wsguard_bytes_total", "direction", "client")
			if read <= 0 || read > float64(sent)/4 {
				t.Errorf("guard read %v bytes from the client for %d bytes of messages; compression seems off", read, sent)
			}
			g.waitIdle(t)
		})
	}
}

// counterValue returns the value of the counter called name whose label
// has value, from reg.
func counterValue(t testing.TB, reg prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

// deadUpstream returns an upstream URL where nothing listens.
func deadUpstream(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestHandshakeUpstreamFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		upstream  func(t testing.TB) string
		handshake time.Duration // the route's timeouts.handshake; 0 keeps the default
		status    int
		body      string // the exact body, or a substring for canned refusals
	}{
		{"nothing listening", deadUpstream, 0, http.StatusBadGateway, "upstream"},
		{"never answers", func(t testing.TB) string { return "http://" + testsupport.Blackhole(t) }, 300 * time.Millisecond, http.StatusGatewayTimeout, "timeout"},
		{"answers 403", func(t testing.TB) string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("X-Backend", "yes")
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, "nope")
			}))
			t.Cleanup(srv.Close)
			return upstreamOf(srv)
		}, 0, http.StatusForbidden, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A route's handshake timeout bounds the upstream's answer;
			// the client's head stays under the default, so that a
			// loaded machine cannot turn the 504 into a 408.
			g := startGuard(t, testConfig(t, "", func(c *config.Config) {
				c.Routes = []config.Route{c.NewRoute("/", tt.upstream(t))}
				if tt.handshake > 0 {
					c.Routes[0].Timeouts.Handshake = config.Duration(tt.handshake)
				}
			}))
			resp, body := exchange(t, g.Addr, "", requestHead("GET", "/", upgradeHeaders(g.Addr)))
			if resp.StatusCode == http.StatusForbidden {
				// Relayed as the upstream sent it.
				if body != tt.body || resp.Header.Get("X-Backend") != "yes" {
					t.Fatalf("403 with body %q and X-Backend %q, want the upstream's %q",
						body, resp.Header.Get("X-Backend"), tt.body)
				}
			} else {
				checkRefusal(t, resp, body, tt.status, tt.body)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			g.waitIdle(t)
		})
	}
}

func TestHandshakeMaxPending(t *testing.T) {
	t.Parallel()
	backend := startWSBackend(t, nil)
	g := startGuard(t, testConfig(t, upstreamOf(backend.Server), func(c *config.Config) {
		c.Limits.MaxPendingHandshakes = 2
		c.Timeouts.Handshake = config.Duration(time.Minute)
	}))

	// Two connections that send nothing hold both slots.
	silent := []net.Conn{dialFrom(t, g.Addr, ""), dialFrom(t, g.Addr, "")}
	waitStats(t, g, "two pending handshakes", func(st Stats) bool { return st.Pending == 2 })

	// A third is refused at once, without a byte from it.
	nc := dialFrom(t, g.Addr, "")
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	resp, body, err := readResponse(bufio.NewReader(nc))
	if err != nil {
		t.Fatal(err)
	}
	checkRefusal(t, resp, body, http.StatusServiceUnavailable, "max_pending_handshakes")
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q, want whole seconds >= 1", resp.Header.Get("Retry-After"))
	}
	if st := g.Stats(); st.Pending != 2 {
		t.Fatalf("pending %d after the refusal, want the first two still pending", st.Pending)
	}

	for _, c := range silent {
		c.Close()
	}
	g.waitIdle(t)

	// The slots are free again.
	c := mustDialRaw(t, g.Addr)
	echoText(t, c, "after the pending ones left")
}

// totalsHandler sums the total attribute of the records it gets.
type totalsHandler struct {
	mu    sync.Mutex // guards total
	total int64
}

func (h *totalsHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *totalsHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *totalsHandler) WithGroup(string) slog.Handler            { return h }

func (h *totalsHandler) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "total" {
			h.mu.Lock()
			h.total += a.Value.Int64()
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

func TestRefusalLogCountsEveryRefusalOnce(t *testing.T) {
	t.Parallel()
	h := &totalsHandler{}
	l := newRefusalLog(slog.New(h))
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		l.run(done, time.Millisecond) // flushes race with adds
	}()

	const writers, each = 4, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				l.add([]string{"per_ip", "handshake_rate", "bad_request"}[(w+i)%3])
			}
		})
	}
	wg.Wait()
	close(done)
	<-stopped
	if h.total != writers*each {
		t.Fatalf("summaries total %d refusals, want %d", h.total, writers*each)
	}
}
