// Package gatewaytest runs an in-process wsguard gateway for tests, the
// way the binary wires it: a relay.Server on a loopback port whose
// metrics go to a registry that also holds the process collectors, and
// the admin handler on a loopback httptest server. It also gives the
// clients those tests drive, each from a chosen loopback source address,
// and a reader of Prometheus scrapes. It is imported by tests only.
//
// Every address is on loopback and every wait has a deadline.
package gatewaytest

import (
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/wsguard/admin"
	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/internal/testsupport"
	"github.com/wsguard/wsguard/metrics"
	"github.com/wsguard/wsguard/relay"
)

// Options configure Start. The zero value serves an open admin API and
// the default limits with the handshake rate off.
type Options struct {
	// Config changes the test config before it is validated. upstream
	// is the echo backend's base URL, for extra routes.
	Config func(c *config.Config, upstream string)
	// AdminToken, when set, is the bearer token the admin API requires.
	AdminToken string
	// AdminClosed refuses the admin API without a token, as on a
	// non-loopback admin_listen.
	AdminClosed bool
	// Drain is the admin API's drain hook. Nil: the drain endpoint
	// answers 501.
	Drain func()
	// Auth turns on JWT authentication (HS256, optional) with a secret
	// of the test's; Gateway.Token signs tokens with it.
	Auth bool
}

// Gateway is a relay.Server serving on loopback until the test ends.
type Gateway struct {
	*relay.Server
	Addr     string               // host:port of the public listener
	AdminURL string               // base URL of the admin handler
	Registry *prometheus.Registry // what /metrics serves
	Config   config.Config        // the config in force
	Backend  *Backend

	secret []byte // HS256 key, when Options.Auth
}

// Start runs a gateway for the test. Its config has the routes "/" to
// an echo [Backend] and "/down" to a closed port (upstream_error).
func Start(t testing.TB, opts Options) *Gateway {
	t.Helper()
	backend := StartBackend(t)
	g := &Gateway{Backend: backend, Registry: prometheus.NewRegistry()}

	cfg := config.Default()
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", ""
	cfg.Limits.HandshakeRate = 0
	cfg.Timeouts.Drain = config.Duration(time.Second)
	if opts.Auth {
		g.secret = []byte(strings.Repeat("wsguard-test-key", 4))
		path := filepath.Join(t.TempDir(), "jwt.key")
		if err := os.WriteFile(path, g.secret, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.Auth.JWT.SecretFile = path
	}
	if opts.Config != nil {
		opts.Config(&cfg, backend.URL)
	}
	// After Config, so that the routes copy its top-level sections.
	cfg.Routes = append(cfg.Routes,
		cfg.NewRoute("/", backend.URL),
		cfg.NewRoute("/down", "http://"+testsupport.DeadAddr(t)))
	if err := cfg.Validate(); err != nil {
		t.Fatalf("gateway config: %v", err)
	}
	g.Config = cfg

	metrics.RegisterProcess(g.Registry)
	srv, err := relay.New(cfg, relay.Options{Registerer: g.Registry})
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
	g.Server, g.Addr = srv, ln.Addr().String()

	adminSrv := httptest.NewServer(admin.Handler(srv, admin.Options{
		Gatherer: g.Registry,
		Token:    opts.AdminToken,
		Open:     opts.AdminToken == "" && !opts.AdminClosed,
		Drain:    opts.Drain,
		Ready:    srv.StoreReady,
	}))
	g.AdminURL = adminSrv.URL
	t.Cleanup(func() {
		adminSrv.Close()
		srv.Close()
		<-done
	})
	return g
}

// Token returns a valid HS256 token for user, for a gateway started with
// Options.Auth.
func (g *Gateway) Token(t testing.TB, user string) string {
	t.Helper()
	if g.secret == nil {
		t.Fatal("gatewaytest: Token needs Options.Auth")
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user,
		"exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(g.secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// WaitStats polls the gateway's stats until ok accepts them, failing the
// test after 20 s.
func (g *Gateway) WaitStats(t testing.TB, what string, ok func(relay.Stats) bool) relay.Stats {
	t.Helper()
	var st relay.Stats
	Poll(t, 20*time.Second, what, func() (bool, string) {
		st = g.Stats()
		return ok(st), fmt.Sprintf("stats %+v", st)
	})
	return st
}

// Poll is testsupport.Poll, kept here for the tests that use this
// package's other helpers.
func Poll(t testing.TB, timeout time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	testsupport.Poll(t, timeout, what, check)
}
