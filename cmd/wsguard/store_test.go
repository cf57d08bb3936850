package main

// End-to-end tests of the Redis store: several wsguard processes share
// one redis-server (through a TCP proxy where Redis must vanish and come
// back at the same address), and clients connect to them from loopback.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/wsguard/wsguard/internal/testsupport"
)

// fleetConfig is what the gateways of one test share.
type fleetConfig struct {
	redis, prefix, upstream  string
	perIP, perUser, maxConns int
	onFailure                string
	fleetSize                int
	secretFile               string // "": no auth
}

// yaml renders the config of one gateway listening on listen and admin.
func (f fleetConfig) yaml(listen, admin string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\nadmin_listen: %s\n", listen, admin)
	fmt.Fprintf(&b, "limits:\n  per_ip: %d\n  per_user: %d\n  handshake_rate: 0\n", f.perIP, f.perUser)
	if f.maxConns > 0 {
		fmt.Fprintf(&b, "  max_connections: %d\n", f.maxConns)
	}
	fmt.Fprintf(&b, "timeouts:\n  drain: 1s\n")
	fmt.Fprintf(&b, "store:\n  kind: redis\n  timeout: 1s\n  on_failure: %s\n  fleet_size: %d\n",
		f.onFailure, f.fleetSize)
	fmt.Fprintf(&b, "  redis:\n    addr: %s\n    key_prefix: %q\n    lease_ttl: 2s\n", f.redis, f.prefix)
	if f.secretFile != "" {
		fmt.Fprintf(&b, "auth:\n  jwt:\n    secret_file: %s\n", f.secretFile)
	}
	fmt.Fprintf(&b, "routes:\n  - path: /\n    upstream: %s\n", f.upstream)
	return b.String()
}

// gatewayProc is one wsguard serve process of a fleet.
type gatewayProc struct {
	*process
	addr, admin string
}

// startFleet starts n gateways with cfg and waits until each is healthy
// and its store up.
func startFleet(t *testing.T, n int, cfg fleetConfig) []*gatewayProc {
	t.Helper()
	if cfg.onFailure == "" {
		cfg.onFailure = "local"
	}
	if cfg.fleetSize == 0 {
		cfg.fleetSize = n
	}
	gs := make([]*gatewayProc, n)
	for i := range gs {
		listen, admin := loopbackAddr(t), loopbackAddr(t)
		path := filepath.Join(t.TempDir(), "wsguard.yaml")
		if err := os.WriteFile(path, []byte(cfg.yaml(listen, admin)), 0o644); err != nil {
			t.Fatal(err)
		}
		gs[i] = &gatewayProc{process: startServe(t, "--config", path), addr: listen, admin: admin}
	}
	for _, g := range gs {
		g.waitHealthy(t, g.admin)
		g.waitOutput(t, "store up", 1, 30*time.Second)
	}
	return gs
}

// goBackend is an echo backend in this process, quicker to start than
// the Tornado example.
func goBackend(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if c.Write(r.Context(), typ, msg) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// dialToken upgrades to ws://addr/ws with a bearer token ("": none). On
// refusal it returns the status and body instead of a connection.
func dialToken(t *testing.T, addr, token string) (*websocket.Conn, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	opts := &websocket.DialOptions{HTTPHeader: http.Header{}}
	if token != "" {
		opts.HTTPHeader.Set("Authorization", "Bearer "+token)
	}
	c, resp, err := websocket.Dial(ctx, "ws://"+addr+"/ws", opts)
	if err == nil {
		t.Cleanup(func() { c.CloseNow() })
		return c, http.StatusSwitchingProtocols, ""
	}
	if resp == nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return nil, resp.StatusCode, string(body)
}

func mustDialToken(t *testing.T, addr, token string) *websocket.Conn {
	t.Helper()
	c, status, body := dialToken(t, addr, token)
	if c == nil {
		t.Fatalf("upgrade at %s refused: %d %q", addr, status, body)
	}
	return c
}

func expectRefusedToken(t *testing.T, addr, token string, status int, reason string) {
	t.Helper()
	c, got, body := dialToken(t, addr, token)
	if c != nil {
		t.Fatalf("upgraded at %s, want %d %s", addr, status, reason)
	}
	if got != status || !strings.Contains(body, reason) {
		t.Fatalf("refused at %s with %d %q, want %d %s", addr, got, body, status, reason)
	}
}

// closeWS closes c with a close handshake.
func closeWS(c *websocket.Conn) { c.Close(websocket.StatusNormalClosure, "") }

// redisCount sums every field of a counter in Redis.
func redisCount(t *testing.T, c *redis.Client, name string) int {
	t.Helper()
	vals, err := c.HVals(context.Background(), name).Result()
	if err != nil {
		t.Fatalf("HVALS %s: %v", name, err)
	}
	sum := 0
	for _, v := range vals {
		n, _ := strconv.Atoi(v)
		sum += n
	}
	return sum
}

// pollUntil polls cond until it holds, failing after timeout.
func pollUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond) // polling a state, not a guess at timing
	}
}

func redisClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestFleet runs gateways that share one Redis, each subtest a fleet of
// its own under its own key prefix.
func TestFleet(t *testing.T) {
	t.Parallel()
	srv := testsupport.StartRedis(t)
	upstream := goBackend(t)
	base := fleetConfig{redis: srv.Addr, upstream: upstream, perIP: 100, perUser: 100}

	t.Run("per_ip over three", func(t *testing.T) {
		t.Parallel()
		cfg := base
		cfg.prefix, cfg.perIP = "perip:", 3
		gs := startFleet(t, 3, cfg)
		conns := make([]*websocket.Conn, 3)
		for i, g := range gs {
			conns[i] = mustDialToken(t, g.addr, "")
			echo(t, conns[i], "hello")
		}
		for _, g := range gs {
			expectRefusedToken(t, g.addr, "", http.StatusTooManyRequests, "per_ip")
		}
		closeWS(conns[0])
		pollUntil(t, "a slot back after a close", 10*time.Second, func() bool {
			c, _, _ := dialToken(t, gs[2].addr, "")
			return c != nil
		})
		expectRefusedToken(t, gs[1].addr, "", http.StatusTooManyRequests, "per_ip")
	})

	t.Run("max_connections over two", func(t *testing.T) {
		t.Parallel()
		cfg := base
		cfg.prefix, cfg.maxConns = "global:", 4
		gs := startFleet(t, 2, cfg)
		for i := range 4 {
			mustDialToken(t, gs[i%2].addr, "")
		}
		for _, g := range gs {
			expectRefusedToken(t, g.addr, "", http.StatusServiceUnavailable, "max_connections")
		}
	})

	t.Run("per_user over two", func(t *testing.T) {
		t.Parallel()
		secret := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(secret, []byte("fleet-test-secret-0123456789abcdef\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := base
		cfg.prefix, cfg.perUser, cfg.secretFile = "user:", 2, secret
		gs := startFleet(t, 2, cfg)
		alice, bob := hsToken(t, "alice"), hsToken(t, "bob")
		mustDialToken(t, gs[0].addr, alice)
		mustDialToken(t, gs[1].addr, alice)
		for _, g := range gs {
			expectRefusedToken(t, g.addr, alice, http.StatusTooManyRequests, "per_user")
		}
		mustDialToken(t, gs[0].addr, bob)
	})
}

// hsToken signs a token for user with the secret of the per_user test.
func hsToken(t *testing.T, user string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user, "exp": time.Now().Add(time.Hour).Unix(),
	})
	s, err := tok.SignedString([]byte("fleet-test-secret-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFleetKill SIGKILLs a gateway holding the whole per_ip limit: the
// others get its slots back once its lease ends, not before.
func TestFleetKill(t *testing.T) {
	t.Parallel()
	srv := testsupport.StartRedis(t)
	cfg := fleetConfig{redis: srv.Addr, upstream: goBackend(t), prefix: "kill:", perIP: 2, perUser: 100}
	gs := startFleet(t, 2, cfg)
	mustDialToken(t, gs[0].addr, "")
	mustDialToken(t, gs[0].addr, "")
	expectRefusedToken(t, gs[1].addr, "", http.StatusTooManyRequests, "per_ip")

	out, _ := gs[0].stderr.snapshot()
	m := regexp.MustCompile(`"store up" instance=(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no instance id in the output:\n%s", out)
	}
	gs[0].signal(t, syscall.SIGKILL)
	<-gs[0].done
	// Dead, it renews no more: its lease ends at its score, on Redis's
	// clock, which is this machine's.
	score, err := redisClient(t, srv.Addr).ZScore(context.Background(), "kill:leases:{leases}", m[1]).Result()
	if err != nil {
		t.Fatalf("lease of %s: %v", m[1], err)
	}
	ends := time.UnixMilli(int64(score))
	var freed time.Time
	pollUntil(t, "the killed gateway's slots", 10*time.Second, func() bool {
		c, _, _ := dialToken(t, gs[1].addr, "")
		freed = time.Now()
		return c != nil
	})
	if d := freed.Sub(ends); d < -20*time.Millisecond || d > 3*time.Second {
		t.Fatalf("slots came back %v after the lease ended, want from 0 to a tick or two", d)
	}
}

// TestFleetRedisRestart takes Redis away under two gateways and brings
// back an empty one at the same address: with on_failure local each
// admits its share meanwhile, and afterwards Redis's counts equal the
// open connections, so the shared limit holds again.
func TestFleetRedisRestart(t *testing.T) {
	t.Parallel()
	first := testsupport.StartRedis(t)
	proxy := testsupport.StartTCPProxy(t, first.Addr)
	cfg := fleetConfig{redis: proxy.Addr, upstream: goBackend(t), prefix: "restart:", perIP: 4, perUser: 100}
	gs := startFleet(t, 2, cfg)
	mustDialToken(t, gs[0].addr, "")
	closing := mustDialToken(t, gs[1].addr, "")

	proxy.Down()
	first.Stop()
	// The first handshake after Redis went away is answered at once;
	// each gateway has 2 of per_ip 4 (fleet of 2) to itself meanwhile.
	start := time.Now()
	mustDialToken(t, gs[0].addr, "")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the first handshake without Redis took %v", d)
	}
	expectRefusedToken(t, gs[0].addr, "", http.StatusTooManyRequests, "per_ip")
	mustDialToken(t, gs[1].addr, "")
	expectRefusedToken(t, gs[1].addr, "", http.StatusTooManyRequests, "per_ip")
	closeWS(closing) // closed during the outage: must not count after it
	pollUntil(t, "the close to be seen", 10*time.Second, func() bool {
		c, _, _ := dialToken(t, gs[1].addr, "")
		return c != nil
	})
	// Open now: 2 on each gateway.

	second := testsupport.StartRedis(t)
	if err := proxy.Up(second.Addr); err != nil {
		t.Fatal(err)
	}
	c := redisClient(t, second.Addr)
	pollUntil(t, "counts rebuilt in the new Redis", 10*time.Second, func() bool {
		return redisCount(t, c, "restart:ip:{127.0.0.1/32}") == 4
	})
	for _, g := range gs {
		g.waitOutput(t, "store up", 2, 10*time.Second)
		expectRefusedToken(t, g.addr, "", http.StatusTooManyRequests, "per_ip")
	}
}

// TestFleetClosed pauses Redis under a gateway with on_failure closed:
// handshakes get 503 and /readyz says not ready, until Redis resumes.
func TestFleetClosed(t *testing.T) {
	t.Parallel()
	srv := testsupport.StartRedis(t)
	cfg := fleetConfig{redis: srv.Addr, upstream: goBackend(t), prefix: "closed:", perIP: 10, perUser: 100,
		onFailure: "closed"}
	gs := startFleet(t, 1, cfg)
	g := gs[0]
	mustDialToken(t, g.addr, "")
	ready := func() int {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + g.admin + "/readyz")
		if err != nil {
			t.Fatalf("/readyz: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if err := srv.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			srv.Signal(syscall.SIGCONT)
		}
	})
	pollUntil(t, "/readyz 503", 15*time.Second, func() bool { return ready() == http.StatusServiceUnavailable })
	expectRefusedToken(t, g.addr, "", http.StatusServiceUnavailable, "admission unavailable")

	resumed = true
	srv.Signal(syscall.SIGCONT)
	pollUntil(t, "/readyz 200", 15*time.Second, func() bool { return ready() == http.StatusOK })
	mustDialToken(t, g.addr, "")
}

// TestFleetSlotLeak runs thousands of connect/close cycles across three
// gateways: afterwards no count is left in Redis.
func TestFleetSlotLeak(t *testing.T) {
	t.Parallel()
	srv := testsupport.StartRedis(t)
	cfg := fleetConfig{redis: srv.Addr, upstream: goBackend(t), prefix: "leak:", perIP: 6, perUser: 100,
		maxConns: 8}
	gs := startFleet(t, 3, cfg)
	const clients, cycles = 12, 170 // 2040 handshakes
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			for j := range cycles {
				g := gs[(i+j)%len(gs)]
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				c, resp, err := websocket.Dial(ctx, "ws://"+g.addr+"/ws", nil)
				cancel()
				if err != nil {
					if resp != nil {
						resp.Body.Close()
					}
					refused.Add(1)
					continue
				}
				admitted.Add(1)
				if j%2 == 0 {
					c.Close(websocket.StatusNormalClosure, "")
				} else {
					c.CloseNow()
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d admitted, %d refused", admitted.Load(), refused.Load())
	if admitted.Load() < clients*cycles/4 {
		t.Errorf("only %d of %d handshakes admitted", admitted.Load(), clients*cycles)
	}
	c := redisClient(t, srv.Addr)
	pollUntil(t, "no counts left in Redis", 15*time.Second, func() bool {
		keys, err := c.Keys(context.Background(), "leak:*").Result()
		return err == nil && len(keys) == 1 && keys[0] == "leak:leases:{leases}"
	})
}
