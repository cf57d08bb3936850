package deploy

// The recipes of deploy/, run as an operator would run them: the
// committed files, changed only where a test must (free ports, the
// test's certificate and backend, a small per_ip), in front of
// `wsguard serve` built from this tree.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/wsguard/admin"
	"github.com/wsguard/wsguard/internal/gatewaytest"
	"github.com/wsguard/wsguard/internal/testsupport"
)

// testPerIP replaces the recipes' per_ip of 100, so that a test shows
// the limit with a handful of connections.
const testPerIP = 3

// recipe reads a committed file and makes the replacements, given as
// old, new pairs. Every old string must occur in the file: a recipe
// that no longer says what the test expects fails loudly instead of
// running unchanged.
func recipe(t *testing.T, path string, oldnew ...string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i < len(oldnew); i += 2 {
		if !strings.Contains(s, oldnew[i]) {
			t.Fatalf("%s no longer contains %q, which the test replaces", path, oldnew[i])
		}
	}
	return strings.NewReplacer(oldnew...).Replace(s)
}

// startRecipeGuard runs wsguard serve on the wsguard.yaml of a recipe,
// in front of the echo backend at upstream.
func startRecipeGuard(t *testing.T, path, upstream string) *testsupport.WSGuard {
	t.Helper()
	return testsupport.StartWSGuard(t, func(listen, adminAddr string) string {
		return recipe(t, path,
			"127.0.0.1:8080", listen,
			"127.0.0.1:9090", adminAddr,
			"http://127.0.0.1:8888", upstream,
			"per_ip: 100", "per_ip: "+strconv.Itoa(testPerIP))
	})
}

// wssClient dials wss:// URLs from a chosen loopback source address,
// trusting the test's certificate.
type wssClient struct {
	tls *tls.Config
}

// dial upgrades to url from local. On refusal the error is non-nil and
// the response, if any, carries the status and wsguard's reason.
func (w wssClient) dial(
	ctx context.Context, url, local string, hdr http.Header,
) (*websocket.Conn, *http.Response, error) {
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: w.tls, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	return websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr},
		HTTPHeader: hdr,
	})
}

// checkTrueClient shows that wsguard behind a proxy at front counts the
// true client: testPerIP connections from 127.0.0.5, each claiming
// another address in X-Forwarded-For, fill its per_ip limit, the next
// one is refused with 429 per_ip, 127.0.0.6 still gets in, and the
// admin API lists 127.0.0.5, not the proxy's 127.0.0.1.
func checkTrueClient(t *testing.T, c wssClient, front string, g *testsupport.WSGuard) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	url := "wss://" + front + "/ws"
	spoof := func(i int) http.Header {
		return http.Header{"X-Forwarded-For": {fmt.Sprintf("198.51.100.%d", i+1)}}
	}

	for i := range testPerIP {
		conn, resp, err := c.dial(ctx, url, "127.0.0.5", spoof(i))
		if err != nil {
			t.Fatalf("connection %d from 127.0.0.5: %v (%s)", i+1, err, gatewaytest.Describe(resp))
		}
		defer conn.CloseNow()
		echo(ctx, t, conn, fmt.Sprintf("message %d through %s", i, front))
	}
	_, resp, err := c.dial(ctx, url, "127.0.0.5", spoof(testPerIP))
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("connection %d from 127.0.0.5: %v (%s), want 429",
			testPerIP+1, err, gatewaytest.Describe(resp))
	}
	if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), "per_ip") {
		t.Fatalf("refusal body %q does not name per_ip", b)
	}
	other, resp, err := c.dial(ctx, url, "127.0.0.6", nil)
	if err != nil {
		t.Fatalf("another client, 127.0.0.6, refused: %v (%s)", err, gatewaytest.Describe(resp))
	}
	defer other.CloseNow()

	var top admin.Top
	gatewaytest.GetJSON(t, g.AdminURL("/admin/api/top?k=10"), "", &top)
	open := map[string]int{}
	for _, e := range top.OpenPrefixes {
		open[e.Key] = e.Count
	}
	if open["127.0.0.5/32"] != testPerIP || open["127.0.0.6/32"] != 1 || len(open) != 2 {
		t.Fatalf("open prefixes %v, want 127.0.0.5/32: %d and 127.0.0.6/32: 1 only", open, testPerIP)
	}
	refused := map[string]int{}
	for _, e := range top.RefusedPrefixes {
		refused[e.Key] = e.Count
	}
	if refused["127.0.0.5/32"] != 1 || len(refused) != 1 {
		t.Fatalf("refused prefixes %v, want 127.0.0.5/32: 1 only", refused)
	}
}

// echo sends msg on c and fails the test unless it comes back.
func echo(ctx context.Context, t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, b, err := c.Read(ctx)
	if err != nil || string(b) != msg {
		t.Fatalf("echo of %q: %q, %v", msg, b, err)
	}
}

// nginxFront is what nginx/wsguard-front.conf.tmpl is rendered with.
type nginxFront struct {
	Listen, Guard, ProxyBind, TLSCert, TLSKey string
}

func TestRecipeNginxTLS(t *testing.T) {
	t.Parallel()
	testsupport.LookPath(t, "nginx") // skip or fail before building anything
	cert := testsupport.NewTestCert(t)
	tornado := testsupport.StartTornado(t, "--deflate")
	g := startRecipeGuard(t, "nginx/wsguard.yaml", tornado.HTTPURL(""))

	tmpl, err := template.ParseFiles("nginx/wsguard-front.conf.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	front := testsupport.StartNginx(t, func(port int) string {
		var b strings.Builder
		err := tmpl.Execute(&b, nginxFront{
			Listen:  "127.0.0.1:" + strconv.Itoa(port),
			Guard:   g.Addr,
			TLSCert: cert.CertFile,
			TLSKey:  cert.KeyFile,
		})
		if err != nil {
			t.Fatal(err)
		}
		return testsupport.NginxHTTP(b.String())
	})
	c := wssClient{tls: cert.ClientConfig()}
	checkTrueClient(t, c, front.Addr, g)
	checkPythonThrough(t, "wss://"+front.Addr+"/ws", cert)

	// Straight to wsguard, around nginx, a client is not believed: its
	// X-Forwarded-For names 127.0.0.5, which is full, and it gets in as
	// itself.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	direct, resp, err := gatewaytest.Dial(ctx, g.Addr, "/ws", gatewaytest.DialOptions{
		Local:  "127.0.0.7",
		Header: http.Header{"X-Forwarded-For": {"127.0.0.5"}},
	})
	if err != nil {
		t.Fatalf("a client around nginx, naming a full address: %v (%s)", err, gatewaytest.Describe(resp))
	}
	direct.CloseNow()

	// Plain HTTP to nginx's TLS port is not a WebSocket.
	_, resp, err = gatewaytest.Dial(ctx, front.Addr, "/", gatewaytest.DialOptions{Local: "127.0.0.8"})
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain HTTP to the TLS port: %v (%s), want nginx's 400", err, gatewaytest.Describe(resp))
	}
}

func TestRecipeHAProxy(t *testing.T) {
	t.Parallel()
	testsupport.LookPath(t, "haproxy")
	cert := testsupport.NewTestCert(t)
	g := startRecipeGuard(t, "haproxy/wsguard.yaml", gatewaytest.StartBackend(t).URL)
	_, guardPort, _ := net.SplitHostPort(g.Addr)
	_, adminPort, _ := net.SplitHostPort(g.Admin)

	front := testsupport.StartHAProxy(t, func(port int) string {
		return recipe(t, "haproxy/haproxy.cfg",
			"bind :443 ", "bind 127.0.0.1:"+strconv.Itoa(port)+" ",
			"/etc/haproxy/certs/wsguard.pem", cert.CombinedFile,
			"127.0.0.1:8080", "127.0.0.1:"+guardPort,
			"check port 9090", "check port "+adminPort)
	})
	c := wssClient{tls: cert.ClientConfig()}
	checkTrueClient(t, c, front.Addr, g)

	// Straight to wsguard, without a PROXY header, a connection is
	// closed unanswered (proxy_protocol: required).
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, resp, err := gatewaytest.Dial(ctx, g.Addr, "/", gatewaytest.DialOptions{Local: "127.0.0.7"})
	if err == nil || resp != nil {
		t.Fatalf("a client around HAProxy: %v (%s), want the connection closed",
			err, gatewaytest.Describe(resp))
	}
}

func TestRecipeRedisTwoInstances(t *testing.T) {
	t.Parallel()
	redis := testsupport.StartRedis(t)
	backend := gatewaytest.StartBackend(t)
	start := func(file, listen, adminAddr string) *testsupport.WSGuard {
		g := testsupport.StartWSGuard(t, func(l, a string) string {
			return recipe(t, file,
				"listen: "+listen, "listen: "+l,
				"admin_listen: "+adminAddr, "admin_listen: "+a,
				"addr: 127.0.0.1:6379", "addr: "+redis.Addr,
				"http://127.0.0.1:8888", backend.URL,
				"per_ip: 100", "per_ip: "+strconv.Itoa(testPerIP))
		})
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if err := g.WaitOutput(ctx, "store up", 1); err != nil {
			t.Fatal(err)
		}
		return g
	}
	a := start("redis-two-instances/a.yaml", ":8080", "127.0.0.1:9090")
	b := start("redis-two-instances/b.yaml", ":8081", "127.0.0.1:9091")

	// One client's connections, spread over both instances, count
	// against one per_ip: the instance that holds none refuses too.
	from5 := gatewaytest.DialOptions{Local: "127.0.0.5"}
	var conns []*websocket.Conn
	for i := range testPerIP {
		g := a
		if i > 0 {
			g = b
		}
		conns = append(conns, gatewaytest.MustDial(t, g.Addr, "/", from5))
	}
	for _, g := range []*testsupport.WSGuard{a, b} {
		status, body := gatewaytest.Refused(t, g.Addr, "/", from5)
		if status != http.StatusTooManyRequests || !strings.Contains(body, "per_ip") {
			t.Fatalf("a full client at %s: %d %q, want 429 per_ip", g.Addr, status, body)
		}
	}
	conns = append(conns, gatewaytest.MustDial(t, a.Addr, "/", gatewaytest.DialOptions{Local: "127.0.0.6"}))

	// Leaving frees a shared slot: a, which held the client's first
	// connection, admits it again after b's second one closed.
	if err := conns[1].Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("closing: %v", err)
	}
	waitOpen(t, b, testPerIP-2)
	conns = append(conns, gatewaytest.MustDial(t, a.Addr, "/", from5))
	for _, c := range conns {
		c.Close(websocket.StatusNormalClosure, "")
	}
	waitOpen(t, a, 0)
	waitOpen(t, b, 0)
}

// waitOpen polls the admin API of g until it holds open connections.
func waitOpen(t *testing.T, g *testsupport.WSGuard, open int) {
	t.Helper()
	testsupport.Poll(t, 20*time.Second, "open connections at "+g.Addr, func() (bool, string) {
		var st struct{ Open int }
		gatewaytest.GetJSON(t, g.AdminURL("/admin/api/stats"), "", &st)
		return st.Open == open, fmt.Sprintf("%d open, want %d", st.Open, open)
	})
}

// checkPythonThrough runs a session of the Python websockets client at
// url, a proxy in front of wsguard in front of app.py --deflate, and
// checks that the subprotocol Tornado selected and permessage-deflate
// come through both, with a 64 KiB message echoed whole.
func checkPythonThrough(t *testing.T, url string, cert *testsupport.TestCert) {
	t.Helper()
	msgs := []string{"hello through the proxy", strings.Repeat("wsguard ", 8<<10)}
	spec, err := json.Marshal(map[string]any{
		"url": url, "protocols": []string{"chat.v2", "chat.v1"}, "headers": map[string]string{},
		"messages": msgs, "deflate": true, "ca_file": cert.CAFile, "local": "127.0.0.9",
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := testsupport.RunPython(t, testsupport.RealClientScript, "websockets", string(spec))
	var r struct {
		Subprotocol, Extensions, Error string
		Echoed                         int
		CloseCode                      int `json:"close_code"`
	}
	if jerr := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); jerr != nil || err != nil {
		t.Fatalf("python client: %v; output %q (%v)", err, out, jerr)
	}
	if r.Subprotocol != "chat.v2" || !strings.HasPrefix(r.Extensions, "permessage-deflate") ||
		r.Echoed != len(msgs) || r.CloseCode != 1000 {
		t.Fatalf("python client through %s: %+v; want chat.v2, permessage-deflate, %d echoes, close 1000",
			url, r, len(msgs))
	}
}
