package relay

// Client identity end to end: which address a connection counts under
// (trusted proxies, forwarding headers, PROXY protocol), seen from real
// sockets with chosen loopback source addresses and from a backend that
// records what the guard forwarded. identity_auth_test.go does the same
// for users (JWT), identity_e2e_test.go with a browser and nginx; the
// helpers here serve all three.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
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
	"github.com/pires/go-proxyproto"

	"github.com/wsguard/wsguard/config"
)

// forwarded is what a backend was sent for one upgrade.
type forwarded struct {
	target string
	header http.Header
}

// recordingBackend is a coder/websocket echo server that records the
// target and header of every upgrade request it gets and counts the TCP
// connections it accepts: a refusal must never reach it.
type recordingBackend struct {
	*httptest.Server
	accepted atomic.Int64
	seen     chan forwarded
}

// startRecordingBackend runs a recordingBackend until the test ends. It
// selects the first of subprotocols that the client offers, if any.
func startRecordingBackend(t testing.TB, subprotocols ...string) *recordingBackend {
	t.Helper()
	b := &recordingBackend{seen: make(chan forwarded, 64)}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case b.seen <- forwarded{r.RequestURI, r.Header.Clone()}:
		default:
		}
		echoWS(w, r, &websocket.AcceptOptions{
			InsecureSkipVerify: true,
			Subprotocols:       subprotocols,
			CompressionMode:    websocket.CompressionDisabled,
		})
	}))
	b.Listener = countingListener{Listener: b.Listener, n: &b.accepted}
	b.Start()
	t.Cleanup(b.Close)
	return b
}

// next returns what the backend was sent for the next upgrade. The
// backend records a request before it answers, and the guard answers the
// client only after the backend, so after a 101 it is already there.
func (b *recordingBackend) next(t testing.TB) forwarded {
	t.Helper()
	select {
	case f := <-b.seen:
		return f
	default:
		t.Fatal("the client got a 101, but the backend recorded no request")
		return forwarded{}
	}
}

// expectAccepted fails unless the backend accepted exactly n connections
// and recorded no request that a step did not look at.
func (b *recordingBackend) expectAccepted(t testing.TB, n int) {
	t.Helper()
	if got := b.accepted.Load(); got != int64(n) {
		t.Errorf("backend accepted %d connections, want %d: a refused handshake reached it", got, n)
	}
	if len(b.seen) != 0 {
		t.Errorf("backend recorded %d requests no step accounts for", len(b.seen))
	}
}

// idStep is one handshake of an identity scenario and what must come of
// it.
type idStep struct {
	name   string     // what the step shows
	local  string     // source address; "" is 127.0.0.1
	proxy  []byte     // sent before the request: a PROXY protocol header
	target string     // request target; "" is "/"
	hdr    headerList // header lines added to a valid upgrade
	status int        // 101, the refusal's status, or 0: closed without an answer
	reason string     // what a refusal's body names
	auth   string     // the WWW-Authenticate a refusal carries, if not ""
	sent   sentView   // what the backend must get, for a 101
}

// sentView is what the backend must be sent.
type sentView struct {
	target string              // request target; "" is not checked
	header map[string][]string // every value of each named field; nil: absent
}

// via is the sentView of a client decided as realIP, with chain as the
// X-Forwarded-For value: exactly one line of each, and no Forwarded line.
func via(realIP, chain string) sentView {
	return sentView{header: map[string][]string{
		"X-Real-Ip":       {realIP},
		"X-Forwarded-For": {chain},
		"Forwarded":       nil,
	}}
}

// runSteps runs steps in order against the guard at addr and checks each
// outcome, then that only the upgrades reached the backend (the earlier
// ones counted in).
func runSteps(t *testing.T, addr string, b *recordingBackend, steps []idStep) {
	t.Helper()
	upgrades := int(b.accepted.Load())
	for i, st := range steps {
		what := fmt.Sprintf("step %d (%s)", i+1, st.name)
		resp, body := st.send(t, addr)
		switch {
		case st.status == 0:
			if resp != nil {
				t.Fatalf("%s: answered %s %q, want the connection closed without an answer",
					what, resp.Status, body)
			}
		case resp == nil:
			t.Fatalf("%s: connection closed without an answer, want %d", what, st.status)
		case st.status == http.StatusSwitchingProtocols:
			if resp.StatusCode != st.status {
				t.Fatalf("%s: %s %q, want 101", what, resp.Status, body)
			}
			upgrades++
			st.sent.check(t, what, b.next(t))
		default:
			st.checkRefusal(t, what, resp, body)
		}
	}
	b.expectAccepted(t, upgrades)
}

// send sends the step's PROXY header, if any, and upgrade request to addr
// in one write, and reads the answer. It returns a nil response if the
// guard closed the connection without one. The connection stays open, an
// upgraded one holding its slot, until the test ends.
func (st idStep) send(t testing.TB, addr string) (*http.Response, string) {
	t.Helper()
	local := st.local
	if local == "" {
		local = "127.0.0.1"
	}
	target := st.target
	if target == "" {
		target = "/"
	}
	h := upgradeHeaders(addr)
	h = append(h, st.hdr...)
	req := append(slices.Clone(st.proxy), requestHead("GET", target, h)...)

	nc := dialFrom(t, addr, local)
	nc.SetDeadline(time.Now().Add(15 * time.Second))
	// A guard that refuses the PROXY header closes at once; what it says,
	// if anything, is read below either way.
	nc.Write(req)
	resp, body, err := readResponse(bufio.NewReader(nc))
	if err == nil {
		return resp, body
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s from %s: no answer and the connection still open after 15s", st.name, local)
	}
	return nil, "" // EOF or reset: closed without an answer
}

// checkRefusal checks a refused step's status, body, Retry-After and
// WWW-Authenticate.
func (st idStep) checkRefusal(t testing.TB, what string, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode != st.status || !strings.Contains(body, st.reason) {
		t.Fatalf("%s: %s %q, want %d naming %q", what, resp.Status, body, st.status, st.reason)
	}
	if st.status == http.StatusTooManyRequests || st.status == http.StatusServiceUnavailable {
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
			t.Errorf("%s: Retry-After %q, want whole seconds >= 1", what, resp.Header.Get("Retry-After"))
		}
	}
	if st.auth != "" {
		if got := resp.Header.Values("WWW-Authenticate"); !slices.Equal(got, []string{st.auth}) {
			t.Errorf("%s: WWW-Authenticate %q, want %q", what, got, st.auth)
		}
	}
}

// check compares what the backend was sent with v.
func (v sentView) check(t testing.TB, what string, f forwarded) {
	t.Helper()
	if v.target != "" && f.target != v.target {
		t.Errorf("%s: backend got target %q, want %q", what, f.target, v.target)
	}
	for name, want := range v.header {
		if got := f.header.Values(name); !slices.Equal(got, want) {
			t.Errorf("%s: backend got %s %q, want %q", what, name, got, want)
		}
	}
}

// identityConfig is testConfig with the handshake rate off, so that only
// the limits under test refuse, and per_ip 1.
func identityConfig(t testing.TB, upstream string, mutate func(*config.Config)) config.Config {
	t.Helper()
	return testConfig(t, upstream, func(c *config.Config) {
		c.Limits.HandshakeRate = 0
		c.Limits.PerIP = 1
		if mutate != nil {
			mutate(c)
		}
	})
}

// spoofHeaders are forwarding headers of every kind, naming addr.
func spoofHeaders(addr string) headerList {
	return headerList{
		{"X-Forwarded-For", addr},
		{"Forwarded", "for=" + strconv.Quote(addr)},
		{"X-Real-IP", addr},
	}
}

func TestIdentityUntrustedPeerCannotSpoof(t *testing.T) {
	t.Parallel()
	// Whichever header the trusted proxies use, a peer outside
	// trusted_proxies (10.0.0.0/8; loopback is not in it) counts as
	// itself, and the backend hears only its TCP address.
	for _, header := range []string{"x-forwarded-for", "forwarded", "x-real-ip"} {
		t.Run(header, func(t *testing.T) {
			t.Parallel()
			b := startRecordingBackend(t)
			g := startGuard(t, identityConfig(t, b.URL, func(c *config.Config) {
				c.TrustedProxies = []string{"10.0.0.0/8"}
				c.ClientIPHeader = header
			}))
			runSteps(t, g.Addr, b, []idStep{
				{name: "headers name another client", local: "127.0.0.2",
					hdr: spoofHeaders("203.0.113.1"), status: 101, sent: via("127.0.0.2", "127.0.0.2")},
				{name: "headers name a fresh client", local: "127.0.0.2",
					hdr: spoofHeaders("198.51.100.2"), status: 429, reason: "per_ip"},
				{name: "a chain ending in a trusted proxy", local: "127.0.0.2",
					hdr: headerList{
						{"X-Forwarded-For", "198.51.100.3, 10.0.0.1"},
						{"Forwarded", `for="[2001:db8::3]";by=10.0.0.1, for=10.0.0.1`},
						{"X-Real-IP", "10.0.0.1"},
					}, status: 429, reason: "per_ip"},
				{name: "no header", local: "127.0.0.2", status: 429, reason: "per_ip"},
				{name: "another peer naming the first cannot take its slot", local: "127.0.0.3",
					hdr: spoofHeaders("127.0.0.2"), status: 101, sent: via("127.0.0.3", "127.0.0.3")},
			})
		})
	}
}

// proxyV2 returns a PROXY protocol v2 header of command cmd from src to
// 127.0.0.1:443.
func proxyV2(t testing.TB, cmd proxyproto.ProtocolVersionAndCommand, src string) []byte {
	t.Helper()
	ip := net.ParseIP(src)
	fam, dst := proxyproto.TCPv4, net.ParseIP("127.0.0.1")
	if ip.To4() == nil {
		fam, dst = proxyproto.TCPv6, net.ParseIP("::1")
	}
	h := &proxyproto.Header{
		Version:           2,
		Command:           cmd,
		TransportProtocol: fam,
		SourceAddr:        &net.TCPAddr{IP: ip, Port: 50123},
		DestinationAddr:   &net.TCPAddr{IP: dst, Port: 443},
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// proxyV1 returns a PROXY protocol v1 header from src to the loopback
// address of its family.
func proxyV1(src string) []byte {
	if strings.Contains(src, ":") {
		return []byte("PROXY TCP6 " + src + " ::1 50123 443\r\n")
	}
	return []byte("PROXY TCP4 " + src + " 127.0.0.1 50123 443\r\n")
}

func TestIdentityProxyHeaderFromUntrustedPeer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mode    string
		version int // of the PROXY header
		plain   int // what a plain upgrade from the same peer gets afterwards
	}{
		{"optional, v2", "optional", 2, 101},
		{"optional, v1", "optional", 1, 101},
		{"required, v2", "required", 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := startRecordingBackend(t)
			g := startGuard(t, identityConfig(t, b.URL, func(c *config.Config) {
				c.TrustedProxies = []string{"10.0.0.0/8"}
				c.ProxyProtocol = tt.mode
			}))
			header := proxyV1("192.0.2.10")
			if tt.version == 2 {
				header = proxyV2(t, proxyproto.PROXY, "192.0.2.10")
			}
			// With per_ip 1, the plain upgrade after the refused header
			// also shows that the refusal left no slot taken.
			steps := []idStep{
				{name: "PROXY header from an untrusted peer", local: "127.0.0.2", proxy: header, status: 0},
				{name: "plain upgrade from the same peer", local: "127.0.0.2", status: tt.plain},
			}
			if tt.plain == 101 {
				steps[1].sent = via("127.0.0.2", "127.0.0.2")
			}
			runSteps(t, g.Addr, b, steps)
			g.waitIdleExcept(t, tt.plain == 101)
		})
	}
}

// waitIdleExcept is waitIdle, or, when one upgrade is meant to stay open,
// a wait for exactly that one and no pending handshake.
func (g *guard) waitIdleExcept(t testing.TB, oneOpen bool) {
	t.Helper()
	if !oneOpen {
		g.waitIdle(t)
		return
	}
	waitStats(t, g, "one open connection and nothing pending", func(st Stats) bool {
		return st.Open == 1 && st.Pending == 0
	})
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestIdentityTrustedProxy(t *testing.T) {
	t.Parallel()
	const proxy = "127.0.0.1" // the trusted proxy; 127.0.0.2 is a client
	xff := func(v string) headerList { return headerList{{"X-Forwarded-For", v}} }
	tests := []struct {
		name   string
		header string // client_ip_header
		warn   string // what the guard's log must hold afterwards, if not ""
		steps  []idStep
	}{
		{"each forwarded client counts, the proxy does not", "x-forwarded-for", "", []idStep{
			{name: "first client", hdr: xff("203.0.113.5"), status: 101,
				sent: via("203.0.113.5", "203.0.113.5, "+proxy)},
			{name: "same client again", hdr: xff("203.0.113.5"), status: 429, reason: "per_ip"},
			{name: "another client", hdr: xff("203.0.113.6"), status: 101,
				sent: via("203.0.113.6", "203.0.113.6, "+proxy)},
			{name: "the proxy itself, no header", status: 101, sent: via(proxy, proxy)},
			{name: "the proxy itself again", status: 429, reason: "per_ip"},
		}},
		{"the chain is walked from the right past trusted entries", "x-forwarded-for", "", []idStep{
			// 203.0.113.7 came through one trusted proxy (the 127.0.0.1
			// entry) and then through the peer; what lies left of it was
			// written by the client.
			{name: "spoofed entry left of the client", hdr: xff("198.51.100.9, 203.0.113.7, " + proxy),
				status: 101, sent: via("203.0.113.7", "203.0.113.7, "+proxy+", "+proxy)},
			{name: "same client, other spoofed entry", hdr: xff("198.51.100.10, 203.0.113.7"),
				status: 429, reason: "per_ip"},
			{name: "lines are one chain, the last line rightmost",
				hdr:    headerList{{"X-Forwarded-For", "203.0.113.7"}, {"X-Forwarded-For", "198.51.100.9"}},
				status: 101, sent: via("198.51.100.9", "198.51.100.9, "+proxy)},
			{name: "garbage left of the client is never read", hdr: xff("not an address, 203.0.113.10"),
				status: 101, sent: via("203.0.113.10", "203.0.113.10, "+proxy)},
			{name: "an untrusted peer's header is ignored", local: "127.0.0.2", hdr: xff("203.0.113.8"),
				status: 101, sent: via("127.0.0.2", "127.0.0.2")},
		}},
		{"IPv6 clients count by /64", "x-forwarded-for", "", []idStep{
			{name: "first address", hdr: xff("2001:db8::1"), status: 101,
				sent: via("2001:db8::1", "2001:db8::1, "+proxy)},
			{name: "same /64", hdr: xff("2001:db8::2"), status: 429, reason: "per_ip"},
			{name: "same /64, bracketed with a port", hdr: xff("[2001:db8::3]:443"), status: 429, reason: "per_ip"},
			{name: "next /64", hdr: xff("2001:db8:0:1::1"), status: 101,
				sent: via("2001:db8:0:1::1", "2001:db8:0:1::1, "+proxy)},
			{name: "IPv4-mapped counts as IPv4", hdr: xff("::ffff:203.0.113.9"), status: 101,
				sent: via("203.0.113.9", "203.0.113.9, "+proxy)},
			{name: "the same IPv4 address", hdr: xff("203.0.113.9"), status: 429, reason: "per_ip"},
		}},
		{"an unusable entry counts as the proxy", "x-forwarded-for", "entry=unknown", []idStep{
			{name: "unknown", hdr: xff("unknown"), status: 101, sent: via(proxy, proxy)},
			{name: "the proxy without a header", status: 429, reason: "per_ip"},
			{name: "obfuscated", hdr: xff("_hidden"), status: 429, reason: "per_ip"},
			{name: "unknown left of a client", hdr: xff("unknown, 203.0.113.11"), status: 101,
				sent: via("203.0.113.11", "203.0.113.11, "+proxy)},
		}},
		{"Forwarded", "forwarded", "", []idStep{
			{name: "bracketed IPv6 with a port", hdr: headerList{{"Forwarded", `for="[2001:db8::5]:443"`}},
				status: 101, sent: via("2001:db8::5", "2001:db8::5, "+proxy)},
			{name: "same /64", hdr: headerList{{"Forwarded", `for="[2001:db8::6]"`}}, status: 429, reason: "per_ip"},
			{name: "two elements, the right one decides",
				hdr:    headerList{{"Forwarded", "for=203.0.113.20;proto=https, for=198.51.100.21"}},
				status: 101, sent: via("198.51.100.21", "198.51.100.21, "+proxy)},
			{name: "X-Forwarded-For is not the configured header", hdr: xff("203.0.113.30"),
				status: 101, sent: via(proxy, proxy)},
			{name: "for=unknown counts as the proxy", hdr: headerList{{"Forwarded", "for=unknown"}},
				status: 429, reason: "per_ip"},
		}},
		{"X-Real-IP", "x-real-ip", "", []idStep{
			{name: "names the client",
				hdr:    headerList{{"X-Real-IP", "203.0.113.40"}, {"X-Forwarded-For", "198.51.100.40"}},
				status: 101, sent: via("203.0.113.40", "203.0.113.40, "+proxy)},
			{name: "same client", hdr: headerList{{"X-Real-IP", "203.0.113.40"}}, status: 429, reason: "per_ip"},
			{name: "from an untrusted peer", local: "127.0.0.2", hdr: headerList{{"X-Real-IP", "203.0.113.41"}},
				status: 101, sent: via("127.0.0.2", "127.0.0.2")},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := startRecordingBackend(t)
			var logs syncBuffer
			g := startGuardWith(t, identityConfig(t, b.URL, func(c *config.Config) {
				c.TrustedProxies = []string{proxy + "/32"}
				c.ClientIPHeader = tt.header
			}), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			runSteps(t, g.Addr, b, tt.steps)

			// Such as the warning about the first unusable entry (later
			// ones are throttled).
			if tt.warn != "" && !strings.Contains(logs.String(), tt.warn) {
				t.Errorf("the log lacks %q:\n%s", tt.warn, logs.String())
			}
		})
	}
}

func TestIdentityProxyProtocol(t *testing.T) {
	t.Parallel()
	v2 := func(src string) []byte { return proxyV2(t, proxyproto.PROXY, src) }
	// A v2 header of a PROXY command whose address block is too short
	// for two IPv4 addresses and ports.
	shortV2 := append(slices.Clone(proxyproto.SIGV2), 0x21, 0x11, 0x00, 0x05, 192, 0, 2, 10, 0)
	tests := []struct {
		name  string
		mode  string
		steps []idStep
	}{
		{"required", "required", []idStep{
			{name: "v1 names the client", proxy: proxyV1("192.0.2.10"), status: 101,
				sent: via("192.0.2.10", "192.0.2.10")},
			{name: "v2 naming the same client", proxy: v2("192.0.2.10"), status: 429, reason: "per_ip"},
			{name: "v2 names another client", proxy: v2("192.0.2.11"), status: 101,
				sent: via("192.0.2.11", "192.0.2.11")},
			{name: "v1 naming that one", proxy: proxyV1("192.0.2.11"), status: 429, reason: "per_ip"},
			{name: "v2 IPv6", proxy: v2("2001:db8::10"), status: 101,
				sent: via("2001:db8::10", "2001:db8::10")},
			{name: "v1 IPv6, same /64", proxy: proxyV1("2001:db8::11"), status: 429, reason: "per_ip"},
			{name: "the source's own header is not believed", proxy: v2("192.0.2.12"),
				hdr: headerList{{"X-Forwarded-For", "203.0.113.50"}}, status: 101,
				sent: via("192.0.2.12", "192.0.2.12")},
			{name: "a trusted source's header is", proxy: v2("127.0.0.1"),
				hdr: headerList{{"X-Forwarded-For", "203.0.113.51"}}, status: 101,
				sent: via("203.0.113.51", "203.0.113.51, 127.0.0.1")},
			{name: "v2 LOCAL speaks for the peer", proxy: proxyV2(t, proxyproto.LOCAL, "192.0.2.13"),
				status: 101, sent: via("127.0.0.1", "127.0.0.1")},
			{name: "v1 UNKNOWN speaks for the peer", proxy: []byte("PROXY UNKNOWN\r\n"),
				status: 429, reason: "per_ip"},
			{name: "no header", status: 0},
			{name: "malformed v1", proxy: proxyV1("192.0.2.300"), status: 0},
			{name: "truncated v1", proxy: []byte("PROXY TCP4 192.0.2.14\r\n"), status: 0},
			{name: "malformed v2", proxy: shortV2, status: 0},
			{name: "valid header from an untrusted peer", local: "127.0.0.2", proxy: v2("192.0.2.15"), status: 0},
		}},
		{"optional", "optional", []idStep{
			{name: "no header is the peer", status: 101, sent: via("127.0.0.1", "127.0.0.1")},
			{name: "v2 names a client", proxy: v2("192.0.2.10"), status: 101,
				sent: via("192.0.2.10", "192.0.2.10")},
			{name: "the peer again", status: 429, reason: "per_ip"},
			{name: "malformed v1", proxy: proxyV1("192.0.2.300"), status: 0},
			{name: "header from an untrusted peer", local: "127.0.0.2", proxy: proxyV1("192.0.2.16"), status: 0},
			{name: "that peer without one", local: "127.0.0.2", status: 101,
				sent: via("127.0.0.2", "127.0.0.2")},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := startRecordingBackend(t)
			g := startGuard(t, identityConfig(t, b.URL, func(c *config.Config) {
				c.TrustedProxies = []string{"127.0.0.1/32"}
				c.ProxyProtocol = tt.mode
			}))
			runSteps(t, g.Addr, b, tt.steps)
		})
	}
}
