package wsguard_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/wsguard"
	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/internal/httphead"
)

// startGuard runs g.Handler(next) on an httptest server until the test
// ends, with a Guard built from config.Default() changed by edit.
func startGuard(t *testing.T, edit func(*config.Config), next http.Handler) (*wsguard.Guard, *httptest.Server) {
	t.Helper()
	cfg := config.Default()
	cfg.Limits.HandshakeRate = 1000
	cfg.Limits.HandshakeBurst = 1000
	if edit != nil {
		edit(&cfg)
	}
	g, err := wsguard.New(wsguard.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	srv := httptest.NewServer(g.Handler(next))
	t.Cleanup(srv.Close)
	return g, srv
}

// echo accepts with coder/websocket and echoes the first message, then the
// user and client key from the context, until the client goes.
func echo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		user, _ := wsguard.User(r.Context())
		key, _ := wsguard.ClientKey(r.Context())
		for {
			typ, msg, err := c.Read(context.Background())
			if err != nil {
				return
			}
			reply := string(msg) + " user=" + user + " key=" + key.String()
			if c.Write(context.Background(), typ, []byte(reply)) != nil {
				return
			}
		}
	})
}

// dial opens a WebSocket to base (an http:// URL) with an optional bearer token; the
// connection is closed when the test ends.
func dial(t *testing.T, base, token string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	opts := &websocket.DialOptions{HTTPHeader: http.Header{}}
	if token != "" {
		opts.HTTPHeader.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http"), opts)
	if c != nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

// mustDial dials and fails the test on a refusal.
func mustDial(t *testing.T, base, token string) *websocket.Conn {
	t.Helper()
	c, _, err := dial(t, base, token)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

// expectRefusal dials and wants the gateway's refusal: status, body and,
// for limits, Retry-After.
func expectRefusal(t *testing.T, base, token string, status int, body string) *http.Response {
	t.Helper()
	_, resp, err := dial(t, base, token)
	if err == nil {
		t.Fatalf("dial succeeded, want %d %q", status, body)
	}
	if resp == nil {
		t.Fatalf("dial: %v, want a %d response", err, status)
	}
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d", resp.StatusCode, status)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != body+"\n" {
		t.Errorf("body %q, want %q", b, body+"\n")
	}
	return resp
}

// roundTrip sends msg on c and returns the reply.
func roundTrip(t *testing.T, c *websocket.Conn, msg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitOpen polls until g holds want connections, failing after 5 s.
func waitOpen(t *testing.T, g *wsguard.Guard, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for g.Open() != want {
		if time.Now().After(deadline) {
			t.Fatalf("Guard.Open() = %d, want %d", g.Open(), want)
		}
		time.Sleep(5 * time.Millisecond) // polling a state, not a guess at timing
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		edit   func(*config.Config)
		status int
		body   string
	}{
		{"per_ip", func(c *config.Config) { c.Limits.PerIP = 2 }, 429, "per_ip limit reached"},
		{"global", func(c *config.Config) {
			c.Limits.MaxConnections = 2
			c.Limits.InstanceMaxConnections = 2
		}, 503, "max_connections limit reached"},
		{"handshake_rate", func(c *config.Config) {
			c.Limits.HandshakeRate = 0.001
			c.Limits.HandshakeBurst = 2
		}, 429, "handshake_rate limit reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, srv := startGuard(t, tt.edit, echo())
			a := mustDial(t, srv.URL, "")
			mustDial(t, srv.URL, "")
			resp := expectRefusal(t, srv.URL, "", tt.status, tt.body)
			if resp.Header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
			if got := roundTrip(t, a, "hi"); got != "hi user= key=127.0.0.1/32" {
				t.Errorf("reply %q", got)
			}
			waitOpen(t, g, 2)

			// A closed connection frees its slot.
			a.Close(websocket.StatusNormalClosure, "")
			waitOpen(t, g, 1)
			if tt.name != "handshake_rate" {
				mustDial(t, srv.URL, "")
			}
		})
	}
}

// jwtSecret writes an HS256 secret file and returns it and a function
// that signs a token for a user.
func jwtSecret(t *testing.T) (string, func(user string) string) {
	t.Helper()
	secret := []byte("0123456789abcdef0123456789abcdef")
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, func(user string) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": user, "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

func TestPerUser(t *testing.T) {
	t.Parallel()
	secret, token := jwtSecret(t)
	g, srv := startGuard(t, func(c *config.Config) {
		c.Auth.Required = true
		c.Auth.JWT.SecretFile = secret
		c.Limits.PerUser = 1
	}, echo())

	alice := mustDial(t, srv.URL, token("alice"))
	if got := roundTrip(t, alice, "hi"); got != "hi user=alice key=127.0.0.1/32" {
		t.Errorf("reply %q", got)
	}
	expectRefusal(t, srv.URL, token("alice"), 429, "per_user limit reached")
	mustDial(t, srv.URL, token("bob"))

	resp := expectRefusal(t, srv.URL, "", 401, "unauthorized: missing")
	if resp.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	expectRefusal(t, srv.URL, "not.a.token", 401, "unauthorized: malformed")
	waitOpen(t, g, 2)
}

// TestNoLeak checks that the slot comes back however the connection ends.
func TestNoLeak(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler http.HandlerFunc
		vanish  bool // the client drops the TCP connection
	}{
		{"handler refuses", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no", http.StatusForbidden)
		}, false},
		{"panic before hijack", func(w http.ResponseWriter, r *http.Request) {
			panic(http.ErrAbortHandler)
		}, false},
		{"panic after hijack", func(w http.ResponseWriter, r *http.Request) {
			if _, err := websocket.Accept(w, r, nil); err == nil {
				panic(http.ErrAbortHandler)
			}
		}, false},
		{"handler closes", func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, nil)
			if err == nil {
				c.Close(websocket.StatusGoingAway, "bye")
			}
		}, false},
		{"hand-written, ResponseController", func(w http.ResponseWriter, r *http.Request) {
			nc, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			key := httphead.AcceptKey([]byte(r.Header.Get("Sec-WebSocket-Key")))
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
				"Connection: Upgrade\r\nSec-WebSocket-Accept: " + key + "\r\n\r\n")
			brw.Flush()
			nc.Close()
		}, false},
		{"client vanishes", echo().ServeHTTP, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, srv := startGuard(t, func(c *config.Config) { c.Limits.PerIP = 1 }, tt.handler)
			for range 3 { // a leak would refuse the second with per_ip
				c, _, err := dial(t, srv.URL, "")
				if tt.vanish {
					if err != nil {
						t.Fatal(err)
					}
					waitOpen(t, g, 1)
					c.CloseNow()
				} else if err == nil {
					// Read answers the server's close handshake, or
					// sees the connection end.
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_, _, err = c.Read(ctx)
					cancel()
					if err == nil {
						t.Fatal("read a message, want the connection's end")
					}
				}
				waitOpen(t, g, 0)
			}
		})
	}
}

// TestPassThrough checks that requests other than upgrades reach next
// untouched, whatever the limits.
func TestPassThrough(t *testing.T) {
	t.Parallel()
	g, srv := startGuard(t, func(c *config.Config) { c.Limits.PerIP = 1 }, echo())
	mustDial(t, srv.URL, "")
	for range 3 {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUpgradeRequired { // coder/websocket's answer
			t.Errorf("status %d, want the handler's 426", resp.StatusCode)
		}
	}
	waitOpen(t, g, 1)
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	cfg := config.Default()
	cfg.Limits.PerIP = 1
	g, err := wsguard.New(wsguard.Options{Config: cfg, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	srv := httptest.NewServer(g.Handler(echo()))
	defer srv.Close()

	c := mustDial(t, srv.URL, "")
	expectRefusal(t, srv.URL, "", 429, "per_ip limit reached")
	got := gather(t, reg)
	for name, want := range map[string]float64{
		"wsguard_middleware_connections_open":                                1,
		"wsguard_middleware_handshakes_total{outcome=accepted,reason=ok}":    1,
		"wsguard_middleware_handshakes_total{outcome=refused,reason=per_ip}": 1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v (all: %v)", name, got[name], want, got)
		}
	}
	c.CloseNow()
	waitOpen(t, g, 0)
}

// TestTrustedProxy checks that the client behind a trusted proxy is the
// one counted and handed to the handler.
func TestTrustedProxy(t *testing.T) {
	t.Parallel()
	_, srv := startGuard(t, func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.0/8"}
		c.Limits.PerIP = 1
	}, echo())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	from := func(client string) (*websocket.Conn, error) {
		h := http.Header{"X-Forwarded-For": {client}}
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
		if c != nil {
			t.Cleanup(func() { c.CloseNow() })
		}
		return c, err
	}

	c, err := from("203.0.113.7")
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, c, "hi"); got != "hi user= key=203.0.113.7/32" {
		t.Errorf("reply %q", got)
	}
	if _, err := from("203.0.113.7"); err == nil {
		t.Error("second connection from 203.0.113.7 admitted with per_ip: 1")
	}
	if _, err := from("203.0.113.8"); err != nil {
		t.Errorf("another client refused: %v", err)
	}
}

func TestNewInvalid(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Limits.PerIP = -1
	if _, err := wsguard.New(wsguard.Options{Config: cfg}); err == nil {
		t.Error("New accepted limits.per_ip: -1")
	}
	cfg = config.Default()
	cfg.TrustedProxies = []string{"not a cidr"}
	if _, err := wsguard.New(wsguard.Options{Config: cfg}); err == nil {
		t.Error("New accepted a bad trusted proxy")
	}
	g, err := wsguard.New(wsguard.Options{})
	if err != nil {
		t.Fatalf("zero Options: %v", err)
	}
	g.Close()

	reg := prometheus.NewRegistry()
	g, err = wsguard.New(wsguard.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := wsguard.New(wsguard.Options{Registerer: reg}); err == nil {
		t.Error("New registered a second Guard on one registry")
	}
}

// gather returns reg's gauges and counters as "name{label=value,...}".
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, l.GetName()+"="+l.GetValue())
				}
				name += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.GetGauge() != nil:
				out[name] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}
