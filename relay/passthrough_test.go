package relay

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/frame"
	"github.com/wsguard/wsguard/internal/testsupport"
)

// pageBackend serves pages beside a WebSocket echo, as an app on one
// origin does: /page, /headers (the request's forwarding fields as
// JSON), /body (POST: the body's size and SHA-256), /stream (two chunks,
// the second only once the test says so), /slow (no answer at all), and
// WebSockets anywhere else.
type pageBackend struct {
	*httptest.Server
	release   chan struct{} // closed by the test to let /stream finish
	firstPart chan struct{} // closed by /body once it read the first byte
}

func newPageBackend(t *testing.T) *pageBackend {
	t.Helper()
	pb := &pageBackend{release: make(chan struct{}), firstPart: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<p>hello page</p>")
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{
			"xff":        r.Header.Get("X-Forwarded-For"),
			"proto":      r.Header.Get("X-Forwarded-Proto"),
			"real":       r.Header.Get("X-Real-IP"),
			"connection": r.Header.Get("Connection"),
			"secret":     r.Header.Get("X-Hop"),
			"host":       r.Host,
		})
	})
	mux.HandleFunc("/body", func(w http.ResponseWriter, r *http.Request) {
		var first [1]byte
		if _, err := io.ReadFull(r.Body, first[:]); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		close(pb.firstPart)
		h := sha256.New()
		h.Write(first[:])
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		fmt.Fprintf(w, "%d %s", n+1, hex.EncodeToString(h.Sum(nil)))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // answers never; the guard gives up first
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first;")
		w.(http.Flusher).Flush()
		<-pb.release
		io.WriteString(w, "second")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		echoWS(w, r, nil)
	})
	pb.Server = httptest.NewServer(mux)
	t.Cleanup(pb.Server.Close)
	return pb
}

// passthroughGuard starts a guard whose one route passes plain requests
// to upstream.
func passthroughGuard(t *testing.T, upstream string, mutate func(*config.Route)) *guard {
	t.Helper()
	cfg := testConfig(t, "", func(c *config.Config) {
		r := c.NewRoute("/", upstream)
		r.HTTP = "passthrough"
		if mutate != nil {
			mutate(&r)
		}
		c.Routes = []config.Route{r}
	})
	return startGuard(t, cfg)
}

// plainClient sends one request per connection, as the guard answers.
func plainClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
}

// dialPlain opens a TCP connection to addr for a hand-written HTTP
// exchange, with a 10 s deadline; it is closed when the test ends.
func dialPlain(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc
}

// plainStatus GETs url with plainClient and returns the status.
func plainStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := plainClient().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestPlainRequestsRefusedByDefault(t *testing.T) {
	g := startGuard(t, testConfig(t, upstreamOf(newPageBackend(t).Server), nil))
	if got := plainStatus(t, "http://"+g.Addr+"/page"); got != http.StatusBadRequest {
		t.Fatalf("plain GET on a WebSocket route: %d, want 400", got)
	}
}

func TestPassthroughPagesBesideSockets(t *testing.T) {
	pb := newPageBackend(t)
	g := passthroughGuard(t, upstreamOf(pb.Server), nil)
	base := "http://" + g.Addr

	resp, err := plainClient().Get(base + "/page")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "<p>hello page</p>" || !resp.Close {
		t.Fatalf("GET /page: %d %q (close %v), want 200, the page, Connection: close", resp.StatusCode, body, resp.Close)
	}

	// Forwarding fields are the guard's; hop-by-hop ones are dropped.
	req, _ := http.NewRequest("GET", base+"/headers", nil)
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "for the guard only")
	resp, err = plainClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var seen map[string]string
	json.NewDecoder(resp.Body).Decode(&seen)
	resp.Body.Close()
	want := map[string]string{"xff": "127.0.0.1", "proto": "http", "real": "127.0.0.1",
		"connection": "", "secret": "", "host": g.Addr}
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("upstream saw %s %q, want %q (all: %v)", k, seen[k], v, seen)
		}
	}

	// The response streams: the first chunk arrives while the upstream
	// still holds the second.
	resp, err = plainClient().Get(base + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len("first;"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first;" {
		t.Fatalf("first chunk: %q, %v", first, err)
	}
	close(pb.release)
	rest, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(rest) != "second" {
		t.Fatalf("second chunk: %q", rest)
	}

	// Upgrades on the same route still get the WebSocket treatment.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL(g.Addr, "/chat"), nil)
	if err != nil {
		t.Fatalf("upgrade on a passthrough route: %v", err)
	}
	echo(t, c, "beside the page")
	c.Close(websocket.StatusNormalClosure, "")
	g.waitIdle(t)
}

func TestPassthroughStreamsRequestBodies(t *testing.T) {
	pb := newPageBackend(t)
	g := passthroughGuard(t, upstreamOf(pb.Server), nil)

	// A chunked body whose second part is written only after the
	// upstream has read the first: no buffering of the whole body.
	pr, pw := io.Pipe()
	part := strings.Repeat("a", 100000)
	go func() {
		pw.Write([]byte(part))
		select {
		case <-pb.firstPart:
			pw.Write([]byte(part))
			pw.Close()
		case <-time.After(15 * time.Second):
			pw.CloseWithError(fmt.Errorf("upstream never saw the first part"))
		}
	}()
	resp, err := plainClient().Post("http://"+g.Addr+"/body", "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := sha256.Sum256([]byte(part + part))
	if want := fmt.Sprintf("%d %s", 2*len(part), hex.EncodeToString(sum[:])); string(got) != want {
		t.Fatalf("upstream read %q, want %q", got, want)
	}
}

func TestPassthroughBodyCap(t *testing.T) {
	pb := newPageBackend(t)
	g := passthroughGuard(t, upstreamOf(pb.Server), func(r *config.Route) {
		r.Passthrough.MaxBody = 1 * config.KiB
	})
	url := "http://" + g.Addr + "/body"

	// At the cap: passes.
	resp, err := plainClient().Post(url, "text/plain", strings.NewReader(strings.Repeat("b", 1024)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("body at the cap: %d, want 200", resp.StatusCode)
	}

	// Content-Length over the cap: 413 before anything goes upstream.
	resp, err = plainClient().Post(url, "text/plain", strings.NewReader(strings.Repeat("b", 1025)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("Content-Length over the cap: %d, want 413", resp.StatusCode)
	}

	// A chunked body is cut off where it passes the cap.
	nc := dialPlain(t, g.Addr)
	fmt.Fprintf(nc, "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	for range 4 {
		fmt.Fprintf(nc, "200\r\n%s\r\n", strings.Repeat("c", 512))
	}
	nc.Write([]byte("0\r\n\r\n"))
	r, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("chunked body over the cap: %v", err)
	}
	if r.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked body over the cap: %d, want 413", r.StatusCode)
	}
}

func TestPassthroughRateAndUpstreamFailure(t *testing.T) {
	g := passthroughGuard(t, deadUpstream(t), func(r *config.Route) {
		r.Limits.HandshakeRate = config.Rate(1.0 / 3600)
		r.Limits.HandshakeBurst = 1
	})
	if got := plainStatus(t, "http://"+g.Addr+"/page"); got != http.StatusBadGateway {
		t.Fatalf("dead upstream: %d, want 502", got)
	}
	if got := plainStatus(t, "http://"+g.Addr+"/page"); got != http.StatusTooManyRequests {
		t.Fatalf("second request over the route's handshake rate: %d, want 429", got)
	}
}

// TestPassthroughTornado serves the Tornado example's page, its streamed
// body handler and its WebSocket through one route, over TLS.
func TestPassthroughTornado(t *testing.T) {
	tornado := testsupport.StartTornado(t)
	ts := startTLSGuard(t, "", "guard", func(c *config.Config) {
		r := c.NewRoute("/", "http://"+tornado.Addr)
		r.HTTP = "passthrough"
		c.Routes = []config.Route{r}
	})
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ts.clientTLS(), DisableKeepAlives: true},
		Timeout: 20 * time.Second}
	base := "https://" + ts.g.Addr

	resp, err := hc.Get(base + "/page")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "new WebSocket") {
		t.Fatalf("GET /page: %d %.80q", resp.StatusCode, page)
	}

	// Pages over one kept-alive TLS connection.
	kc := &http.Client{Transport: &http.Transport{TLSClientConfig: ts.clientTLS()}, Timeout: 20 * time.Second}
	for i := range 3 {
		var reused bool
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", base+"/page", nil)
		resp, err := kc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || reused != (i > 0) {
			t.Fatalf("page %d: %d, connection reused %v", i, resp.StatusCode, reused)
		}
	}
	kc.CloseIdleConnections()

	body := strings.Repeat("tornado", 50000)
	resp, err = hc.Post(base+"/body", "application/octet-stream", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Size   int    `json:"size"`
		SHA256 string `json:"sha256"`
	}
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	sum := sha256.Sum256([]byte(body))
	if got.Size != len(body) || got.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("tornado read %+v, want %d bytes", got, len(body))
	}

	c, _, err := websocket.Dial(context.Background(), "wss://"+ts.g.Addr+"/ws",
		&websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("wss to tornado: %v", err)
	}
	echo(t, c, "page and socket, one origin")
	c.Close(websocket.StatusNormalClosure, "")
	ts.g.waitIdle(t)
}

// TestPassthroughAmbiguousFraming sends a body framed two ways at once
// and a second request behind it, the start of request smuggling: the
// body is read as chunked (Transfer-Encoding wins, RFC 9112 section
// 6.3), and the request behind it is never served: the connection closes
// after such a request (RFC 9112 section 6.1).
func TestPassthroughAmbiguousFraming(t *testing.T) {
	pb := newPageBackend(t)
	g := passthroughGuard(t, upstreamOf(pb.Server), nil)
	nc := dialPlain(t, g.Addr)
	fmt.Fprintf(nc, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"3\r\nabc\r\n0\r\n\r\nGET /page HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(nc)
	r, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	sum := sha256.Sum256([]byte("abc"))
	if want := "3 " + hex.EncodeToString(sum[:]); r.StatusCode != 200 || string(body) != want {
		t.Fatalf("answer %d %q, want 200 %q", r.StatusCode, body, want)
	}
	if extra, err := br.ReadString('\n'); err != io.EOF {
		t.Fatalf("after the answer: %q, %v; want the connection closed", extra, err)
	}
}

// TestPassthroughExpectContinue: a client that waits for 100 Continue
// before its body gets it from the guard, then its answer.
func TestPassthroughExpectContinue(t *testing.T) {
	pb := newPageBackend(t)
	g := passthroughGuard(t, upstreamOf(pb.Server), nil)
	nc := dialPlain(t, g.Addr)
	fmt.Fprintf(nc, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(nc)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("interim answer %q, %v; want 100 Continue", line, err)
	}
	br.ReadString('\n') // the empty line
	io.WriteString(nc, "hello")
	r, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	sum := sha256.Sum256([]byte("hello"))
	if want := "5 " + hex.EncodeToString(sum[:]); string(body) != want {
		t.Fatalf("answer %d %q, want %q", r.StatusCode, body, want)
	}
}

// TestPassthroughToHTTPSUpstream passes a plain request to an https
// upstream, verified with the route's upstream_tls.
func TestPassthroughToHTTPSUpstream(t *testing.T) {
	backend := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secure page")
	}))
	t.Cleanup(backend.Close)
	dir := t.TempDir()
	right := writeFile(t, dir, "right.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: backend.Certificate().Raw}))
	wrong := writeFile(t, dir, "wrong.pem", newTestCA(t, "other").PEM)
	cfg := testConfig(t, "", func(c *config.Config) {
		for _, r := range []struct{ path, ca string }{{"/right", right}, {"/wrong", wrong}} {
			route := c.NewRoute(r.path, backend.URL)
			route.HTTP = "passthrough"
			route.UpstreamTLS.CAFile = r.ca
			c.Routes = append(c.Routes, route)
		}
	})
	g := startGuard(t, cfg)
	for path, want := range map[string]int{"/right": 200, "/wrong": 502} {
		resp, err := plainClient().Get("http://" + g.Addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == 200 && string(body) != "secure page") {
			t.Errorf("%s: %d %q, want %d", path, resp.StatusCode, body, want)
		}
	}
}

// TestPassthroughHTTP10 streams a body of unknown length to an HTTP/1.0
// client, which knows no chunked encoding: the close delimits it.
func TestPassthroughHTTP10(t *testing.T) {
	pb := newPageBackend(t)
	close(pb.release)
	g := passthroughGuard(t, upstreamOf(pb.Server), nil)
	nc := dialPlain(t, g.Addr)
	io.WriteString(nc, "GET /stream HTTP/1.0\r\nHost: x\r\n\r\n")
	all, err := io.ReadAll(nc)
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := strings.Cut(string(all), "\r\n\r\n")
	if strings.Contains(strings.ToLower(head), "chunked") || body != "first;second" {
		t.Fatalf("answer to HTTP/1.0:\n%s\n\nbody %q, want no chunking and %q", head, body, "first;second")
	}
}

func TestPassthroughResponseHeaderTimeout(t *testing.T) {
	pb := newPageBackend(t)
	g := passthroughGuard(t, upstreamOf(pb.Server), func(r *config.Route) {
		r.Passthrough.ResponseHeaderTimeout = config.Duration(200 * time.Millisecond)
	})
	if got := plainStatus(t, "http://"+g.Addr+"/slow"); got != http.StatusGatewayTimeout {
		t.Fatalf("upstream that never answers: %d, want 504", got)
	}
}

// TestPassthroughIdleTimeout: an upstream that stops in the middle of a
// streamed body is given up after passthrough.idle_timeout, and the
// client sees a cut body (no final chunk), not a complete one.
func TestPassthroughIdleTimeout(t *testing.T) {
	pb := newPageBackend(t)
	t.Cleanup(func() { close(pb.release) })
	g := passthroughGuard(t, upstreamOf(pb.Server), func(r *config.Route) {
		r.Passthrough.IdleTimeout = config.Duration(200 * time.Millisecond)
	})
	resp, err := plainClient().Get("http://" + g.Addr + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil || string(body) != "first;" {
		t.Fatalf("stalled stream: %q, %v; want the first chunk and then an error", body, err)
	}
}

// TestPassthroughEndlessChunkedBody: a chunked body that never ends is
// cut off at the cap and answered 413 while the client still sends; the
// guard does not read the rest of it first.
func TestPassthroughEndlessChunkedBody(t *testing.T) {
	pb := newPageBackend(t)
	g := passthroughGuard(t, upstreamOf(pb.Server), func(r *config.Route) {
		r.Passthrough.MaxBody = 4 * config.KiB
	})
	nc, err := net.Dial("tcp", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		chunk := fmt.Sprintf("400\r\n%s\r\n", strings.Repeat("e", 1024))
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if _, err := io.WriteString(nc, chunk); err != nil {
				return
			}
		}
	}()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	r, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("no answer while the body went on: %v", err)
	}
	if r.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("endless chunked body: %d, want 413", r.StatusCode)
	}
}

const upgradeHead = "GET /chat HTTP/1.1\r\nHost: guard\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// TestPassthroughKeepAliveThenUpgrade: plain requests follow one another
// on a connection, spending one handshake-rate token between them, and
// an upgrade request after them takes the WebSocket path (and a token of
// its own).
func TestPassthroughKeepAliveThenUpgrade(t *testing.T) {
	pb := newPageBackend(t)
	g := passthroughGuard(t, upstreamOf(pb.Server), func(r *config.Route) {
		r.Limits.HandshakeRate = config.Rate(1.0 / 3600)
		r.Limits.HandshakeBurst = 2
	})
	nc := dialPlain(t, g.Addr)
	br := bufio.NewReader(nc)
	for i := range 3 {
		io.WriteString(nc, "GET /page HTTP/1.1\r\nHost: guard\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on the kept connection: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Close || string(body) != "<p>hello page</p>" {
			t.Fatalf("request %d: %d %q (close %v)", i, resp.StatusCode, body, resp.Close)
		}
	}
	io.WriteString(nc, upgradeHead)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade after plain requests: %v, %v", resp, err)
	}
	rc := &rawClient{t: t, nc: nc, br: br}
	rc.write(true, frame.OpText, []byte("upgraded"))
	if _, payload, err := rc.read(10 * time.Second); err != nil || string(payload) != "upgraded" {
		t.Fatalf("echo after the upgrade: %q, %v", payload, err)
	}

	// Both tokens are spent: a new connection is refused.
	if got := plainStatus(t, "http://"+g.Addr+"/page"); got != http.StatusTooManyRequests {
		t.Fatalf("a new connection after the burst: %d, want 429", got)
	}
}

// TestPassthroughKeepAlivePipelinedOverTLS sends a plain request, an
// upgrade request and a first frame in one TLS record: what was read
// past the plain request must reach the upgrade and the relay, with
// nothing left behind in crypto/tls or the guard's buffers.
func TestPassthroughKeepAlivePipelinedOverTLS(t *testing.T) {
	pb := newPageBackend(t)
	ts := startTLSGuard(t, "", "guard", func(c *config.Config) {
		r := c.NewRoute("/", upstreamOf(pb.Server))
		r.HTTP = "passthrough"
		c.Routes = []config.Route{r}
	})
	tc, err := tls.Dial("tcp", ts.g.Addr, ts.clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(tc)
	page := func() {
		t.Helper()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "<p>hello page</p>" {
			t.Fatalf("page: %d %q", resp.StatusCode, body)
		}
	}
	// One request alone, then one with the upgrade and a frame behind it.
	io.WriteString(tc, "GET /page HTTP/1.1\r\nHost: guard\r\n\r\n")
	page()
	b := []byte("GET /page HTTP/1.1\r\nHost: guard\r\n\r\n" + upgradeHead)
	b = frame.AppendFrame(b, true, frame.OpText, &[4]byte{9, 8, 7, 6}, []byte("pipelined"))
	if _, err := tc.Write(b); err != nil {
		t.Fatal(err)
	}
	page()
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("pipelined upgrade: %v, %v", resp, err)
	}
	rc := &rawClient{t: t, nc: tc, br: br}
	if _, payload, err := rc.read(10 * time.Second); err != nil || string(payload) != "pipelined" {
		t.Fatalf("echo of the pipelined frame: %q, %v", payload, err)
	}
	rc.write(true, frame.OpText, []byte("later"))
	if _, payload, err := rc.read(10 * time.Second); err != nil || string(payload) != "later" {
		t.Fatalf("echo after: %q, %v", payload, err)
	}
}

// TestPassthroughKeepAliveIdleEnds: a kept connection with no next
// request within timeouts.handshake is closed, and that is no failed
// handshake.
func TestPassthroughKeepAliveIdleEnds(t *testing.T) {
	pb := newPageBackend(t)
	cfg := testConfig(t, "", func(c *config.Config) {
		c.Timeouts.Handshake = config.Duration(300 * time.Millisecond)
		r := c.NewRoute("/", upstreamOf(pb.Server))
		r.HTTP = "passthrough"
		c.Routes = []config.Route{r}
	})
	reg := prometheus.NewRegistry()
	g := startGuardWith(t, cfg, Options{Registerer: reg})
	nc := dialPlain(t, g.Addr)
	io.WriteString(nc, "GET /page HTTP/1.1\r\nHost: guard\r\n\r\n")
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.Close {
		t.Fatalf("first request: %v, %v; want a kept connection", resp, err)
	}
	io.ReadAll(resp.Body)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle kept connection: %v, want it closed by the guard", err)
	}
	waitStats(t, g, "no pending handshake", func(st Stats) bool { return st.Pending == 0 })
	ok := handshakeCount(reg, "passthrough", "ok")
	failed := handshakeCount(reg, "failed", "handshake_timeout")
	if ok != 1 || failed != 0 {
		t.Fatalf("counted %v ok and %v handshake timeouts, want 1 and 0", ok, failed)
	}
}
