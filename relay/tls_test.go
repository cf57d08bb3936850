package relay

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/frame"
	"github.com/wsguard/wsguard/internal/testsupport"
)

// tlsSetup is a guard listening with TLS and the PKI behind it.
type tlsSetup struct {
	g   *guard
	cfg config.Config
	ca  *testCA
	dir string
	reg *prometheus.Registry
}

// startTLSGuard writes a server certificate named cn, signed by a fresh
// CA, and starts a TLS guard in front of upstream.
func startTLSGuard(t *testing.T, upstream, cn string, mutate func(*config.Config)) *tlsSetup {
	t.Helper()
	ts := &tlsSetup{ca: newTestCA(t, "test CA"), dir: t.TempDir(), reg: prometheus.NewRegistry()}
	certPEM, keyPEM := ts.ca.Issue(t, cn, false)
	ts.cfg = testConfig(t, upstream, func(c *config.Config) {
		c.TLS.CertFile = writeFile(t, ts.dir, "cert.pem", certPEM)
		c.TLS.KeyFile = writeFile(t, ts.dir, "key.pem", keyPEM)
		if mutate != nil {
			mutate(c)
		}
	})
	ts.g = startGuardWith(t, ts.cfg, Options{Registerer: ts.reg})
	return ts
}

// clientTLS returns a client config trusting the setup's CA.
func (ts *tlsSetup) clientTLS(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: ts.ca.Pool(), ServerName: "127.0.0.1", Certificates: certs}
}

// dialWSS opens a WebSocket over TLS with coder/websocket.
func (ts *tlsSetup) dialWSS(t *testing.T, cfg *tls.Config) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	c, resp, err := websocket.Dial(ctx, "wss://"+ts.g.Addr+"/", &websocket.DialOptions{HTTPClient: hc})
	if c != nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

// echo sends msg on c and fails the test unless it comes back.
func echo(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("writing %d bytes: %v", len(msg), err)
	}
	_, got, err := c.Read(ctx)
	if err != nil || string(got) != msg {
		t.Fatalf("echo of %d bytes: got %d bytes, %v", len(msg), len(got), err)
	}
}

// servedName returns the common name of the certificate a new TLS
// handshake with the guard sees.
func (ts *tlsSetup) servedName(t *testing.T) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ts.g.Addr, ts.clientTLS())
	if err != nil {
		return "handshake failed: " + err.Error()
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// handshakes returns the handshake counter for outcome and reason, 0 if
// it was never counted.
func (ts *tlsSetup) handshakes(outcome, reason string) float64 {
	return handshakeCount(ts.reg, outcome, reason)
}

// waitHandshakes waits until the handshake counter for outcome and
// reason reaches want: it is counted just after the socket closes, which
// is all a client sees.
func (ts *tlsSetup) waitHandshakes(t *testing.T, outcome, reason string, want float64) {
	t.Helper()
	testsupport.Poll(t, 5*time.Second, outcome+"/"+reason+" handshakes counted", func() (bool, string) {
		got := ts.handshakes(outcome, reason)
		return got == want, fmt.Sprint("counted ", got)
	})
}

// handshakeCount reads wsguard_handshakes_total{outcome, reason} from reg.
func handshakeCount(reg prometheus.Gatherer, outcome, reason string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "wsguard_handshakes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["outcome"] == outcome && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestTLSListenerRelaysGoAndPythonClients(t *testing.T) {
	var proto atomic.Value
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(r.Header.Get("X-Forwarded-Proto"))
		echoWS(w, r, nil)
	}))
	t.Cleanup(backend.Close)
	ts := startTLSGuard(t, upstreamOf(backend), "guard", nil)

	c, _, err := ts.dialWSS(t, ts.clientTLS())
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	// Messages larger than one TLS record, so that a record boundary
	// falls inside a frame, and many small ones.
	echo(t, c, strings.Repeat("x", 30000))
	for i := range 50 {
		echo(t, c, strings.Repeat("y", i+1))
	}
	if got := proto.Load(); got != "https" {
		t.Errorf("upstream saw X-Forwarded-Proto %q, want https", got)
	}
	c.Close(websocket.StatusNormalClosure, "")

	// Python's websockets with an ssl context, a client independent of Go.
	caFile := writeFile(t, ts.dir, "ca.pem", ts.ca.PEM)
	sum, err := testsupport.RunPyClient(t, "wss://localhost:"+portOf(ts.g.Addr)+"/",
		testsupport.EchoOptions{Count: 20, Size: 20000, CAFile: caFile})
	if err != nil || sum.Echoed != 20 || sum.CloseCode != 1000 {
		t.Fatalf("python wss client: %+v, %v", sum, err)
	}
	ts.g.waitIdle(t)
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

func TestTLSRefusalsAreHTTPOverTLS(t *testing.T) {
	backend := echoBackend(t, nil)
	ts := startTLSGuard(t, upstreamOf(backend), "guard", func(c *config.Config) {
		c.Limits.PerIP = 1
	})
	held, _, err := ts.dialWSS(t, ts.clientTLS())
	if err != nil {
		t.Fatalf("first wss dial: %v", err)
	}
	echo(t, held, "held")

	_, resp, err := ts.dialWSS(t, ts.clientTLS())
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second connection from the same address: resp %v, err %v; want 429 over TLS", resp, err)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

func TestTLSHandshakeDeadline(t *testing.T) {
	ts := startTLSGuard(t, upstreamOf(echoBackend(t, nil)), "guard", func(c *config.Config) {
		c.TLS.HandshakeTimeout = config.Duration(300 * time.Millisecond)
	})
	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"silent", nil},
		{"partial ClientHello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", ts.g.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.Write(tc.send)
			// The guard closes long before this deadline, or the read
			// times out and the test fails.
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := nc.Read(make([]byte, 1))
			if n != 0 || isTimeout(err) {
				t.Fatalf("read %d bytes, %v; want the guard to close the connection", n, err)
			}
		})
	}
	ts.waitHandshakes(t, "failed", "tls_handshake_timeout", 2)
	waitStats(t, ts.g, "no pending handshake", func(st Stats) bool { return st.Pending == 0 })
}

func TestTLSHandshakeTakesRateTokenFirst(t *testing.T) {
	ts := startTLSGuard(t, upstreamOf(echoBackend(t, nil)), "guard", func(c *config.Config) {
		c.Limits.HandshakeRate = config.Rate(1.0 / 3600)
		c.Limits.HandshakeBurst = 2
		// Far beyond the test: a close can only come from the rate.
		c.TLS.HandshakeTimeout = config.Duration(time.Minute)
	})
	// Two upgrades spend the burst of two: one token each, not one for
	// the TLS handshake and another for the request.
	for i := range 2 {
		c, _, err := ts.dialWSS(t, ts.clientTLS())
		if err != nil {
			t.Fatalf("upgrade %d: %v", i, err)
		}
		echo(t, c, "ok")
	}
	// The third is closed before any TLS work: a client that sends
	// nothing gets no ServerHello and no wait.
	nc, err := net.Dial("tcp", ts.g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := nc.Read(make([]byte, 1)); n != 0 || isTimeout(err) {
		t.Fatalf("read %d bytes, %v; want the guard to close at once", n, err)
	}
	ts.waitHandshakes(t, "refused", "handshake_rate", 1)
}

func TestTLSClientCertificates(t *testing.T) {
	clientCA := newTestCA(t, "client CA")
	ts := startTLSGuard(t, upstreamOf(echoBackend(t, nil)), "guard", func(c *config.Config) {
		c.TLS.ClientCAFile = writeFile(t, t.TempDir(), "clients.pem", clientCA.PEM)
	})

	good := clientCA.KeyPair(t, "alice", true)
	c, _, err := ts.dialWSS(t, ts.clientTLS(good))
	if err != nil {
		t.Fatalf("with a client certificate from the CA: %v", err)
	}
	echo(t, c, "alice")

	stranger := newTestCA(t, "other CA").KeyPair(t, "mallory", true)
	for name, cfg := range map[string]*tls.Config{
		"no certificate":         ts.clientTLS(),
		"certificate of another": ts.clientTLS(stranger),
	} {
		if _, resp, err := ts.dialWSS(t, cfg); err == nil {
			t.Errorf("%s: upgrade succeeded (%v), want the TLS handshake refused", name, resp.Status)
		}
	}
	ts.waitHandshakes(t, "failed", "tls_handshake", 2)
}

func TestTLSCertificateReload(t *testing.T) {
	ts := startTLSGuard(t, upstreamOf(echoBackend(t, nil)), "first", func(c *config.Config) {
		c.TLS.WatchInterval = config.Duration(50 * time.Millisecond)
	})
	held, _, err := ts.dialWSS(t, ts.clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	echo(t, held, "before")
	if got := ts.servedName(t); got != "first" {
		t.Fatalf("served %q, want first", got)
	}

	// SIGHUP's path: Reload reads the files again before it returns.
	cert, key := ts.ca.Issue(t, "second", false)
	replaceFile(t, ts.dir, "cert.pem", cert)
	replaceFile(t, ts.dir, "key.pem", key)
	if err := ts.g.Reload(ts.cfg); err != nil {
		t.Fatal(err)
	}
	if got := ts.servedName(t); got != "second" {
		t.Fatalf("after Reload served %q, want second", got)
	}
	echo(t, held, "after reload")

	// A key that does not load fails the reload; the certificate in
	// force stays.
	replaceFile(t, ts.dir, "key.pem", []byte("not a key"))
	if err := ts.g.Reload(ts.cfg); err == nil {
		t.Fatal("Reload with a broken key succeeded")
	}
	if got := ts.servedName(t); got != "second" {
		t.Fatalf("after a failed reload served %q, want second", got)
	}

	// The file watch picks up new files by itself.
	cert, key = ts.ca.Issue(t, "third", false)
	replaceFile(t, ts.dir, "cert.pem", cert)
	replaceFile(t, ts.dir, "key.pem", key)
	testsupport.Poll(t, 10*time.Second, "the watched files to be reloaded", func() (bool, string) {
		got := ts.servedName(t)
		return got == "third", "served " + got
	})
	echo(t, held, "after the file watch")
}

// tlsEchoBackend is a WebSocket echo server over TLS with httptest's
// certificate (valid for 127.0.0.1), and that certificate as PEM.
func tlsEchoBackend(t *testing.T, clientCAs *x509.CertPool) (*httptest.Server, []byte) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		echoWS(w, r, nil)
	}))
	srv.EnableHTTP2 = false
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	srv.StartTLS()
	if clientCAs != nil {
		srv.TLS.ClientCAs = clientCAs
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	t.Cleanup(srv.Close)
	return srv, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

func TestUpstreamWSSVerification(t *testing.T) {
	backend, backendCA := tlsEchoBackend(t, nil)
	upstream := "wss://" + strings.TrimPrefix(backend.URL, "https://")
	dir := t.TempDir()
	rightCA := writeFile(t, dir, "right.pem", backendCA)
	wrongCA := writeFile(t, dir, "wrong.pem", newTestCA(t, "other").PEM)

	cfg := testConfig(t, "", func(c *config.Config) {
		right := c.NewRoute("/right", upstream)
		right.UpstreamTLS.CAFile = rightCA
		wrong := c.NewRoute("/wrong", upstream)
		wrong.UpstreamTLS.CAFile = wrongCA
		name := c.NewRoute("/name", upstream)
		name.UpstreamTLS.CAFile = rightCA
		name.UpstreamTLS.ServerName = "not-the-backend.test"
		system := c.NewRoute("/system", upstream) // system roots do not know httptest's CA
		insecure := c.NewRoute("/insecure", upstream)
		insecure.UpstreamTLS.InsecureSkipVerify = true
		c.Routes = []config.Route{right, wrong, name, system, insecure}
	})
	g := startGuard(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL(g.Addr, "/right"), nil)
	if err != nil {
		t.Fatalf("through a wss upstream verified with its CA: %v", err)
	}
	c.SetReadLimit(-1)
	for _, n := range []int{10, 20000, 70000} {
		msg := strings.Repeat("z", n)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.Read(ctx); err != nil || string(got) != msg {
			t.Fatalf("echo of %d bytes: %d bytes, %v", n, len(got), err)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")

	insecure := mustDialRawPath(t, g.Addr, "/insecure") // verification off: any certificate
	insecure.nc.Close()
	for _, path := range []string{"/wrong", "/name", "/system"} {
		_, resp := dialRaw(t, g.Addr, "", path)
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("%s: status %d, want 502", path, resp.StatusCode)
		}
	}
	g.waitIdle(t)
}

func TestUpstreamMutualTLS(t *testing.T) {
	clientCA := newTestCA(t, "guard clients")
	backend, backendCA := tlsEchoBackend(t, clientCA.Pool())
	upstream := "wss://" + strings.TrimPrefix(backend.URL, "https://")
	dir := t.TempDir()
	cert, key := clientCA.Issue(t, "guard", true)
	cfg := testConfig(t, "", func(c *config.Config) {
		with := c.NewRoute("/with", upstream)
		with.UpstreamTLS.CAFile = writeFile(t, dir, "ca.pem", backendCA)
		with.UpstreamTLS.CertFile = writeFile(t, dir, "cert.pem", cert)
		with.UpstreamTLS.KeyFile = writeFile(t, dir, "key.pem", key)
		without := c.NewRoute("/without", upstream)
		without.UpstreamTLS.CAFile = with.UpstreamTLS.CAFile
		c.Routes = []config.Route{with, without}
	})
	g := startGuard(t, cfg)
	rc := mustDialRawPath(t, g.Addr, "/with")
	rc.nc.Close()
	// Over TLS 1.3 the backend refuses a missing client certificate
	// after the guard's handshake has finished: the refusal arrives when
	// the upgrade response is awaited.
	if _, resp := dialRaw(t, g.Addr, "", "/without"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("without a client certificate: status %d, want 502", resp.StatusCode)
	}
}

// mustDialRawPath is mustDialRaw on path.
func mustDialRawPath(t *testing.T, addr, path string) *rawClient {
	t.Helper()
	c, resp := dialRaw(t, addr, "", path)
	if c == nil {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("upgrade on %s refused: %s %s", path, resp.Status, body)
	}
	return c
}

// TestTLSRecordConnStopsAtRecordEnds checks the property the epoll relay
// relies on: crypto/tls never reads past the record it needs.
func TestTLSRecordConnStopsAtRecordEnds(t *testing.T) {
	// Three records back to back: 5-byte headers, bodies of 3, 0 and 2.
	stream := []byte{23, 3, 3, 0, 3, 'a', 'b', 'c', 23, 3, 3, 0, 0, 23, 3, 3, 0, 2, 'd', 'e'}
	rc := &recordConn{r: strings.NewReader(string(stream))}
	var got [][]byte
	for {
		buf := make([]byte, 64)
		n, err := rc.Read(buf)
		if n > 0 {
			got = append(got, buf[:n])
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"\x17\x03\x03\x00\x03", "abc", "\x17\x03\x03\x00\x00", "\x17\x03\x03\x00\x02", "de"}
	if len(got) != len(want) {
		t.Fatalf("reads %q, want %q", got, want)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Fatalf("read %d: %q, want %q", i, got[i], want[i])
		}
	}
}

// TestTLSFramesWithTheHeadAndThrottled sends the upgrade request and the
// first frames in one TLS record, over a message rate that throttles
// them: the bytes that arrive with the head and the throttled ones are
// held by the pump, which must then wait on the socket again, not lose
// them or stall.
func TestTLSFramesWithTheHeadAndThrottled(t *testing.T) {
	ts := startTLSGuard(t, upstreamOf(echoBackend(t, nil)), "guard", func(c *config.Config) {
		c.Messages.Rate = 20
		c.Messages.Burst = 1
	})
	tc, err := tls.Dial("tcp", ts.g.Addr, ts.clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET / HTTP/1.1\r\nHost: guard\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	b := []byte(req)
	for i := range 3 {
		b = frame.AppendFrame(b, true, frame.OpText, &[4]byte{1, 2, 3, 4}, []byte(fmt.Sprint("m", i)))
	}
	if _, err := tc.Write(b); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(tc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, %v", resp, err)
	}
	rc := &rawClient{t: t, nc: tc, br: br}
	for i := range 3 {
		_, payload, err := rc.read(10 * time.Second)
		if want := fmt.Sprint("m", i); err != nil || string(payload) != want {
			t.Fatalf("echo %d: %q, %v; want %q", i, payload, err, want)
		}
	}
	// Sent after the pump went back to waiting on the socket.
	rc.write(true, frame.OpText, []byte("later"))
	if _, payload, err := rc.read(10 * time.Second); err != nil || string(payload) != "later" {
		t.Fatalf("echo after the held bytes: %q, %v", payload, err)
	}
}

// TestTLSPartialRecordAfterUpgrade: a client that sends the start of a
// TLS record and then nothing leaves a pump waiting inside crypto/tls for
// the rest. The guard's pong timeout must still end the connection, and
// the wait with it.
func TestTLSPartialRecordAfterUpgrade(t *testing.T) {
	ts := startTLSGuard(t, upstreamOf(echoBackend(t, nil)), "guard", func(c *config.Config) {
		c.Timeouts.PingInterval = config.Duration(100 * time.Millisecond)
		c.Timeouts.PongTimeout = config.Duration(200 * time.Millisecond)
	})
	sock, err := net.Dial("tcp", ts.g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	tc := tls.Client(sock, ts.clientTLS())
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(tc, "GET / HTTP/1.1\r\nHost: guard\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(tc)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, %v", resp, err)
	}
	waitStats(t, ts.g, "the connection to open", func(st Stats) bool { return st.Open == 1 })
	// Application data record header announcing 64 bytes, then 3 of them.
	sock.Write([]byte{23, 3, 3, 0, 64, 1, 2, 3})
	testsupport.Poll(t, 5*time.Second, "a pump waiting in crypto/tls", func() (bool, string) {
		return pumpsRunning() > 0, "no pump running"
	})
	ts.g.waitIdle(t)
	testsupport.Poll(t, 5*time.Second, "every pump to end", func() (bool, string) {
		n := pumpsRunning()
		return n == 0, fmt.Sprint(n, " pumps still running")
	})
}

// pumpsRunning counts the goroutines inside a pump's run.
func pumpsRunning() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "relay.(*pump).run(")
}

func TestTLSPortAnswersPlainHTTP(t *testing.T) {
	ts := startTLSGuard(t, upstreamOf(echoBackend(t, nil)), "guard", nil)
	c, resp := dialRaw(t, ts.g.Addr, "", "/")
	if c != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain upgrade on the TLS port: %v, want 400", resp.Status)
	}
	ts.waitHandshakes(t, "failed", "not_tls", 1)
}

// proxyFirst writes a PROXY protocol header in the same segment as the
// first bytes written through it (the ClientHello), so that the guard
// reads part of the TLS handshake while it reads the PROXY header.
type proxyFirst struct {
	net.Conn
	header []byte
}

func (p *proxyFirst) Write(b []byte) (int, error) {
	if p.header != nil {
		h := p.header
		p.header = nil
		if _, err := p.Conn.Write(append(h, b...)); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return p.Conn.Write(b)
}

func TestTLSBehindProxyProtocol(t *testing.T) {
	var realIP atomic.Value
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		realIP.Store(r.Header.Get("X-Real-IP"))
		echoWS(w, r, nil)
	}))
	t.Cleanup(backend.Close)
	ts := startTLSGuard(t, upstreamOf(backend), "guard", func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1"}
		c.ProxyProtocol = "required"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{
		TLSClientConfig: ts.clientTLS(),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &proxyFirst{Conn: nc, header: []byte("PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n")}, nil
		},
	}}
	c, _, err := websocket.Dial(ctx, "wss://"+ts.g.Addr+"/", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("wss through a PROXY header: %v", err)
	}
	defer c.CloseNow()
	echo(t, c, "proxied")
	if got := realIP.Load(); got != "203.0.113.7" {
		t.Errorf("upstream saw X-Real-IP %v, want the PROXY header's source", got)
	}
}

func TestTLSMinVersion(t *testing.T) {
	backend := upstreamOf(echoBackend(t, nil))
	for _, tc := range []struct {
		min   string
		tls12 bool // a TLS 1.2 client gets in
	}{{"1.2", true}, {"1.3", false}} {
		t.Run(tc.min, func(t *testing.T) {
			ts := startTLSGuard(t, backend, "guard", func(c *config.Config) { c.TLS.MinVersion = tc.min })
			cfg := ts.clientTLS()
			cfg.MaxVersion = tls.VersionTLS12
			c, err := tls.Dial("tcp", ts.g.Addr, cfg)
			if err == nil {
				c.Close()
			}
			if (err == nil) != tc.tls12 {
				t.Fatalf("TLS 1.2 client with min_version %s: %v", tc.min, err)
			}
		})
	}
}

// TestTLSSlowReaderClosed: a TLS client that stops reading is closed
// after timeouts.write, as a plain one is; crypto/tls's writes carry the
// same deadline.
func TestTLSSlowReaderClosed(t *testing.T) {
	done := make(chan error, 1)
	backend := echoBackend(t, func(ctx context.Context, c *websocket.Conn) {
		msg := make([]byte, 64<<10)
		for written := 0; written < 64<<20; written += len(msg) {
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			err := c.Write(wctx, websocket.MessageBinary, msg)
			cancel()
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	})
	ts := startTLSGuard(t, upstreamOf(backend), "guard", func(c *config.Config) {
		c.Timeouts.Write = config.Duration(300 * time.Millisecond)
		c.Timeouts.PingInterval = 0
	})
	tc, err := tls.Dial("tcp", ts.g.Addr, ts.clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(tc, "GET / HTTP/1.1\r\nHost: guard\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(tc), nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v, %v", resp, err)
	}
	// From here the client reads nothing.
	select {
	case err := <-done:
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("backend write ended with %v; want the guard to give up on the client first", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("backend still writing after 60s: the guard neither closed nor pushed back")
	}
	ts.g.waitIdle(t)
}
