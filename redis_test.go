package wsguard_test

import (
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/internal/testsupport"
	"github.com/wsguard/wsguard/relay"
)

// TestRedisSharedWithGateway runs a library Guard and a gateway on one
// Redis: a client's per_ip limit counts the connections of both.
func TestRedisSharedWithGateway(t *testing.T) {
	t.Parallel()
	redis := testsupport.StartRedis(t)
	shared := func(c *config.Config) {
		c.Limits.PerIP = 2
		c.Store.Kind = "redis"
		c.Store.Redis.Addr = redis.Addr
		c.Store.Redis.KeyPrefix = "shared:"
		c.Store.Redis.LeaseTTL = config.Duration(2 * time.Second)
		c.Store.Timeout = config.Duration(2 * time.Second) // a loaded machine must not fall back
	}
	g, lib := startGuard(t, shared, echo())
	gw := startGateway(t, shared, httptest.NewServer(echo()))

	viaGateway := mustDial(t, gw, "")
	mustDial(t, lib.URL, "")
	waitOpen(t, g, 1)
	expectRefusal(t, lib.URL, "", 429, "per_ip limit reached")
	expectRefusal(t, gw, "", 429, "per_ip limit reached")

	// The gateway's slot, once freed, is the library's to take.
	viaGateway.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, err := dial(t, lib.URL, "")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("library still refuses after the gateway's connection closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // polling a state, not a guess at timing
	}
	waitOpen(t, g, 2)
}

// startGateway runs a relay.Server in front of backend until the test
// ends and returns its http:// URL.
func startGateway(t *testing.T, edit func(*config.Config), backend *httptest.Server) string {
	t.Helper()
	t.Cleanup(backend.Close)
	cfg := config.Default()
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", ""
	edit(&cfg)
	cfg.Routes = []config.Route{cfg.NewRoute("/", "ws"+strings.TrimPrefix(backend.URL, "http"))}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := relay.New(cfg, relay.Options{})
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
		if err := srv.Serve(ln); !errors.Is(err, net.ErrClosed) {
			t.Errorf("gateway: %v", err)
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return "http://" + ln.Addr().String()
}
