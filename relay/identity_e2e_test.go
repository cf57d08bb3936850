package relay

// Client identity with real third-party software around the guard: a
// browser that can only send its token as a WebSocket subprotocol, and
// nginx in front, forwarding client addresses.

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/internal/testsupport"
)

// pageHold bounds how long a test page keeps its load event back waiting
// for its script to report.
const pageHold = 30 * time.Second

// wsPage serves one HTML page whose script opens a WebSocket to wsURL
// offering protocols, sends msg, and reports the outcome in the page
// title and by a POST to /result: "ok:<selected protocol>:<echo>", or
// "fail:error" or "fail:close:<code>".
//
// The page's response stays open until the script has reported, so its
// load event, and with it Chromium's --dump-dom, waits for the outcome
// without any guess at timing.
type wsPage struct {
	*httptest.Server
	reported chan string // the script's report; buffered, at most one
}

func startWSPage(t testing.TB, wsURL string, protocols []string, msg string) *wsPage {
	t.Helper()
	args, err := json.Marshal([]any{wsURL, protocols, msg})
	if err != nil {
		t.Fatal(err)
	}
	head := `<!doctype html>
<html><head><meta charset="utf-8"><title>pending</title></head><body>
<script>
(function (url, protocols, msg) {
	var done = false;
	function finish(result) {
		if (done) return;
		done = true;
		document.title = result;
		fetch("/result", {method: "POST", body: result});
	}
	var ws;
	try {
		ws = new WebSocket(url, protocols);
	} catch (e) {
		finish("fail:throw:" + e.name);
		return;
	}
	ws.onopen = function () { ws.send(msg); };
	ws.onmessage = function (ev) {
		finish("ok:" + ws.protocol + ":" + ev.data);
		ws.close(1000);
	};
	ws.onerror = function () { finish("fail:error"); };
	ws.onclose = function (ev) { finish("fail:close:" + ev.code); };
}).apply(null, ` + string(args) + `);
</script>
`
	p := &wsPage{reported: make(chan string, 1)}
	done := make(chan struct{})
	var once sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc("POST /result", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		once.Do(func() {
			p.reported <- string(b)
			close(done)
		})
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, head)
		w.(http.Flusher).Flush()
		select {
		case <-done:
		case <-r.Context().Done():
		case <-time.After(pageHold):
		}
		io.WriteString(w, "</body></html>\n")
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

var titleRE = regexp.MustCompile(`<title>([^<]*)</title>`)

// browse loads the page in headless Chromium and returns its title once
// it has loaded, failing the test unless the script's own report agrees.
func (p *wsPage) browse(t testing.TB) string {
	t.Helper()
	dom, err := testsupport.DumpDOM(t, p.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	m := titleRE.FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no title in the dumped DOM:\n%s", dom)
	}
	title := html.UnescapeString(m[1])
	select {
	case r := <-p.reported:
		if r != title {
			t.Fatalf("the page reported %q, but its title is %q", r, title)
		}
	default:
		t.Fatalf("the page loaded without reporting; title %q", title)
	}
	return title
}

func TestIdentityBrowserSubprotocolToken(t *testing.T) {
	t.Parallel()
	testsupport.Chromium(t) // skip or fail before starting anything
	secretFile, key := newSecret(t)
	_, otherKey := newSecret(t)
	alice := key.user(t, "alice")
	expired := key.token(t, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix()})

	b := startRecordingBackend(t, "chat.v1")
	g := startGuard(t, identityConfig(t, b.URL, func(c *config.Config) {
		c.Limits.PerIP = 0
		c.Auth.Required = true
		c.Auth.JWT.SecretFile = secretFile
		c.Auth.TokenSources = []string{"header", "subprotocol"}
		c.Auth.ForwardUserHeader = "X-User"
	}))

	const msg = "hello from chromium"
	tests := []struct {
		name      string
		protocols []string
		want      string // the title, or its prefix "fail:"
		protocol  []string
	}{
		// The backend is offered nothing, selects nothing, and the guard
		// answers the bearer protocol, without which the browser would
		// fail the handshake.
		{"token alone", []string{"wsguard.bearer", "bearer." + alice},
			"ok:wsguard.bearer:" + msg, nil},
		// The backend selects the page's own protocol.
		{"token beside the page's protocol", []string{"wsguard.bearer", "bearer." + alice, "chat.v1"},
			"ok:chat.v1:" + msg, []string{"chat.v1"}},
		{"token of another key", []string{"wsguard.bearer", "bearer." + otherKey.user(t, "alice")}, "fail:", nil},
		{"expired token", []string{"wsguard.bearer", "bearer." + expired}, "fail:", nil},
		{"no token", []string{"chat.v1"}, "fail:", nil},
	}
	// One browser at a time: each is heavy on a small machine.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := b.accepted.Load()
			page := startWSPage(t, wsURL(g.Addr, "/ws"), tt.protocols, msg)
			title := page.browse(t)

			if !strings.HasPrefix(tt.want, "fail:") {
				if title != tt.want {
					t.Fatalf("title %q, want %q", title, tt.want)
				}
				f := b.next(t)
				sentView{target: "/ws", header: map[string][]string{
					"Sec-Websocket-Protocol": tt.protocol,
					"X-User":                 {"alice"},
				}}.check(t, tt.name, f)
				for name, values := range f.header {
					for _, v := range values {
						if strings.Contains(v, "bearer") {
							t.Errorf("the token reached the backend in %s: %q", name, v)
						}
					}
				}
				return
			}
			t.Logf("title %q", title)
			if !strings.HasPrefix(title, tt.want) {
				t.Fatalf("title %q, want the page to fail", title)
			}
			if n := b.accepted.Load(); n != before {
				t.Fatalf("backend accepted %d connections during a refused handshake", n-before)
			}
		})
	}
}

// nginxFront is what deploy/nginx/wsguard-front.conf.tmpl is rendered
// with; these tests leave TLS off.
type nginxFront struct {
	Listen    string
	Guard     string
	ProxyBind string
	TLSCert   string
	TLSKey    string
}

// startNginxFront runs nginx on the deploy template in front of the guard
// at guardAddr, its upstream connections bound to 127.0.0.1.
func startNginxFront(t testing.TB, guardAddr string) *testsupport.Process {
	t.Helper()
	file := filepath.Join(testsupport.RepoRoot(t), "deploy", "nginx", "wsguard-front.conf.tmpl")
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := template.New(filepath.Base(file)).Option("missingkey=error").Parse(string(src))
	if err != nil {
		t.Fatalf("parsing %s: %v", file, err)
	}
	return testsupport.StartNginx(t, func(port int) string {
		var b strings.Builder
		err := tmpl.Execute(&b, nginxFront{
			Listen:    "127.0.0.1:" + strconv.Itoa(port),
			Guard:     guardAddr,
			ProxyBind: "127.0.0.1",
		})
		if err != nil {
			t.Fatalf("rendering %s: %v", file, err)
		}
		return testsupport.NginxHTTP(b.String())
	})
}

func TestIdentityThroughNginx(t *testing.T) {
	t.Parallel()
	// nginx writes both headers; either is enough for the guard.
	for _, header := range []string{"x-forwarded-for", "x-real-ip"} {
		t.Run(header, func(t *testing.T) {
			t.Parallel()
			b := startRecordingBackend(t)
			g := startGuard(t, identityConfig(t, b.URL, func(c *config.Config) {
				c.TrustedProxies = []string{"127.0.0.1/32"}
				c.ClientIPHeader = header
			}))
			front := startNginxFront(t, g.Addr)

			// Each client counts as itself, whatever it claims, and the
			// guard's refusals come back through nginx as they were.
			chain := func(client string) sentView { return via(client, client+", 127.0.0.1") }
			runSteps(t, front.Addr, b, []idStep{
				{name: "first client", local: "127.0.0.2", status: 101, sent: chain("127.0.0.2")},
				{name: "second client, claiming another address", local: "127.0.0.3",
					hdr: spoofHeaders("203.0.113.1"), status: 101, sent: chain("127.0.0.3")},
				{name: "first client again", local: "127.0.0.2", status: 429, reason: "per_ip"},
				{name: "first client again, claiming another address", local: "127.0.0.2",
					hdr: spoofHeaders("198.51.100.1"), status: 429, reason: "per_ip"},
			})
			// Around nginx, the guard still counts the first client.
			runSteps(t, g.Addr, b, []idStep{
				{name: "first client, directly", local: "127.0.0.2",
					hdr: spoofHeaders("198.51.100.2"), status: 429, reason: "per_ip"},
			})

			// Frames flow through nginx, and a client that leaves frees
			// its slot for its next connection.
			c, resp := dialRaw(t, front.Addr, "127.0.0.4", "/")
			if c == nil {
				t.Fatalf("upgrade through nginx refused: %s", resp.Status)
			}
			b.next(t)
			echoText(t, c, "through nginx and the guard")
			c.nc.Close()
			waitStats(t, g, "the connection that left to be released", func(st Stats) bool {
				return st.Open == 2 && st.Pending == 0
			})
			again, resp := dialRaw(t, front.Addr, "127.0.0.4", "/")
			if again == nil {
				t.Fatalf("upgrade after the first left refused: %s", resp.Status)
			}
			chain("127.0.0.4").check(t, "reconnect", b.next(t))
			b.expectAccepted(t, 4)
		})
	}
}

func TestIdentityThroughNginxForwardedFailsSafe(t *testing.T) {
	t.Parallel()
	// The template clears Forwarded, which nginx does not write: a guard
	// misconfigured to read it counts every client as nginx, instead of
	// believing what a client wrote.
	b := startRecordingBackend(t)
	g := startGuard(t, identityConfig(t, b.URL, func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1/32"}
		c.ClientIPHeader = "forwarded"
	}))
	front := startNginxFront(t, g.Addr)
	runSteps(t, front.Addr, b, []idStep{
		{name: "a client naming another address", local: "127.0.0.2",
			hdr: headerList{{"Forwarded", "for=203.0.113.1"}}, status: 101, sent: via("127.0.0.1", "127.0.0.1")},
		{name: "another client naming another address", local: "127.0.0.3",
			hdr: headerList{{"Forwarded", "for=203.0.113.2"}}, status: 429, reason: "per_ip"},
	})
}
