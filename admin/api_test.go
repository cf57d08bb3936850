package admin_test

// These tests run the admin handler against a real relay.Server with real
// WebSocket clients from chosen loopback addresses, and check what each
// side sees: the API's answers, the close codes the clients get, and the
// gateway's counts.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/wsguard/admin"
	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/internal/gatewaytest"
	"github.com/wsguard/wsguard/relay"
)

func TestAPIToken(t *testing.T) {
	t.Parallel()
	const token = "s3cret-admin-token"
	var drains atomic.Int32
	drain := func() { drains.Add(1) }
	withToken := gatewaytest.Start(t, gatewaytest.Options{AdminToken: token, Drain: drain})
	closed := gatewaytest.Start(t, gatewaytest.Options{AdminClosed: true, Drain: drain})
	open := gatewaytest.Start(t, gatewaytest.Options{Drain: func() {}})

	endpoints := []struct{ method, path string }{
		{http.MethodGet, "/admin/api/status"},
		{http.MethodGet, "/admin/api/stats"},
		{http.MethodGet, "/admin/api/top"},
		{http.MethodPost, "/admin/api/kick"},
		{http.MethodPost, "/admin/api/drain"},
	}
	tests := []struct {
		name   string
		g      *gatewaytest.Gateway
		token  string
		status int // for GETs; a POST that passes the guard may answer otherwise
	}{
		{"token configured, none sent", withToken, "", http.StatusUnauthorized},
		{"token configured, wrong one", withToken, token + "x", http.StatusUnauthorized},
		{"token configured, a prefix of it", withToken, token[:5], http.StatusUnauthorized},
		{"no token, not loopback", closed, "", http.StatusForbidden},
		{"no token, not loopback, one sent", closed, token, http.StatusForbidden},
		{"token configured and sent", withToken, token, http.StatusOK},
		{"no token, loopback", open, "", http.StatusOK},
	}
	for _, tt := range tests {
		for _, ep := range endpoints {
			var body any
			if ep.method == http.MethodPost {
				body = map[string]string{"prefix": "192.0.2.0/24"} // nobody there
			}
			status, b := gatewaytest.Do(t, ep.method, tt.g.AdminURL+ep.path, tt.token, body)
			want := tt.status
			if ep.path == "/admin/api/drain" && want == http.StatusOK {
				want = http.StatusAccepted
			}
			if status != want {
				t.Errorf("%s: %s %s: %d %s, want %d", tt.name, ep.method, ep.path, status, b, want)
			}
			if status == http.StatusUnauthorized || status == http.StatusForbidden {
				var e struct{ Error string }
				if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
					t.Errorf("%s: %s %s: body %s is not a JSON error", tt.name, ep.method, ep.path, b)
				}
			}
		}
	}
	// The refused drains did not happen; the one with the token did.
	gatewaytest.Poll(t, 10*time.Second, "the authorised drain", func() (bool, string) {
		n := drains.Load()
		return n == 1, fmt.Sprintf("%d drains", n)
	})

	// Health and metrics stay open: Prometheus and the orchestrator do
	// not carry the token.
	for _, path := range []string{"/healthz", "/metrics", "/"} {
		if status, b := gatewaytest.Do(t, http.MethodGet, closed.AdminURL+path, "", nil); status != http.StatusOK {
			t.Errorf("GET %s without a token: %d %s", path, status, b)
		}
	}
	resp, err := http.Get(withToken.AdminURL + "/admin/api/stats")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Errorf("401 with WWW-Authenticate %q, want a Bearer challenge", got)
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:9090", true},
		{"127.1.2.3:9090", true},
		{"[::1]:9090", true},
		{"localhost:9090", true},
		{":9090", false},
		{"0.0.0.0:9090", false},
		{"[::]:9090", false},
		{"192.0.2.1:9090", false},
		{"example.com:9090", false},
		{"127.0.0.1", false}, // no port: not a listen address
	}
	for _, tt := range tests {
		if got := admin.IsLoopback(tt.addr); got != tt.want {
			t.Errorf("IsLoopback(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

// kick posts a kick request to the open admin API and returns how many
// connections it closed.
func kick(t *testing.T, g *gatewaytest.Gateway, req admin.KickRequest) int {
	t.Helper()
	status, b := gatewaytest.Do(t, http.MethodPost, g.AdminURL+"/admin/api/kick", "", req)
	if status != http.StatusOK {
		t.Fatalf("kick %+v: %d %s", req, status, b)
	}
	var out struct{ Closed int }
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("kick answer %s: %v", b, err)
	}
	return out.Closed
}

// expectClosed fails the test unless the gateway closes c with code and
// reason.
func expectClosed(t *testing.T, c *websocket.Conn, code websocket.StatusCode, reason string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _, err := c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != code || ce.Reason != reason {
		t.Fatalf("read: %v, want close %d %q", err, code, reason)
	}
}

// expectEcho fails the test unless c still relays a message.
func expectEcho(t *testing.T, c *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte("still here?")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "still here?" {
		t.Fatalf("echo: %q, %v", msg, err)
	}
}

func TestAPIKickByPrefix(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	var target, others []*websocket.Conn
	for range 3 {
		target = append(target, gatewaytest.MustDial(t, g.Addr, "/", gatewaytest.DialOptions{Local: "127.0.0.2"}))
	}
	for _, src := range []string{"127.0.0.3", "127.0.0.3", "127.0.1.2"} {
		others = append(others, gatewaytest.MustDial(t, g.Addr, "/", gatewaytest.DialOptions{Local: src}))
	}
	g.WaitStats(t, "six open connections", func(st relay.Stats) bool { return st.Open == 6 })
	before := gatewaytest.ScrapeMetrics(t, g.AdminURL+"/metrics")

	// An address is its own /32.
	if n := kick(t, g, admin.KickRequest{Prefix: "127.0.0.2", Code: 4001, Reason: "go away"}); n != 3 {
		t.Fatalf("kick closed %d connections, want 3", n)
	}
	for _, c := range target {
		expectClosed(t, c, 4001, "go away")
	}
	for _, c := range others {
		expectEcho(t, c)
	}
	g.WaitStats(t, "three left", func(st relay.Stats) bool { return st.Open == 3 })

	// A wider prefix catches 127.0.0.3 but not 127.0.1.2; the default
	// code is 1008.
	if n := kick(t, g, admin.KickRequest{Prefix: "127.0.0.0/24"}); n != 2 {
		t.Fatalf("kick of 127.0.0.0/24 closed %d, want 2", n)
	}
	expectClosed(t, others[0], websocket.StatusPolicyViolation, "closed by operator")
	expectClosed(t, others[1], websocket.StatusPolicyViolation, "closed by operator")
	expectEcho(t, others[2])
	// Nobody left there.
	if n := kick(t, g, admin.KickRequest{Prefix: "127.0.0.0/24"}); n != 0 {
		t.Fatalf("second kick closed %d, want 0", n)
	}

	g.WaitStats(t, "one left", func(st relay.Stats) bool { return st.Open == 1 })
	gatewaytest.Poll(t, 10*time.Second, "five admin evictions and closes", func() (bool, string) {
		after := gatewaytest.ScrapeMetrics(t, g.AdminURL+"/metrics")
		ev := after[`wsguard_evictions_total{reason="admin"}`] - before[`wsguard_evictions_total{reason="admin"}`]
		c4001 := after.Sum("wsguard_closes_total", `code="4001"`, `by="guard"`)
		c1008 := after.Sum("wsguard_closes_total", `code="1008"`, `by="guard"`)
		return ev == 5 && c4001 == 3 && c1008 == 2,
			fmt.Sprintf("evictions %v, closes 4001 %v, 1008 %v", ev, c4001, c1008)
	})
}

func TestAPIKickByUser(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{Auth: true})
	as := func(user string) gatewaytest.DialOptions {
		return gatewaytest.DialOptions{Header: http.Header{"Authorization": {"Bearer " + g.Token(t, user)}}}
	}
	alice := []*websocket.Conn{
		gatewaytest.MustDial(t, g.Addr, "/", as("alice")),
		gatewaytest.MustDial(t, g.Addr, "/", as("alice")),
	}
	bob := gatewaytest.MustDial(t, g.Addr, "/", as("bob"))
	anon := gatewaytest.MustDial(t, g.Addr, "/", gatewaytest.DialOptions{})
	g.WaitStats(t, "four open connections", func(st relay.Stats) bool { return st.Open == 4 })

	if n := kick(t, g, admin.KickRequest{User: "alice", Code: 4002, Reason: "account locked"}); n != 2 {
		t.Fatalf("kick of alice closed %d, want 2", n)
	}
	for _, c := range alice {
		expectClosed(t, c, 4002, "account locked")
	}
	expectEcho(t, bob)
	expectEcho(t, anon)
	if n := kick(t, g, admin.KickRequest{User: "mallory"}); n != 0 {
		t.Fatalf("kick of a user with no connection closed %d", n)
	}
	if n := kick(t, g, admin.KickRequest{User: "bob"}); n != 1 {
		t.Fatalf("kick of bob closed %d, want 1", n)
	}
	expectClosed(t, bob, websocket.StatusPolicyViolation, "closed by operator")
	expectEcho(t, anon)
	g.WaitStats(t, "the anonymous one left", func(st relay.Stats) bool { return st.Open == 1 })

	// Requests the API must refuse, closing nothing.
	for _, body := range []string{
		`{}`,
		`{"prefix": "not-an-address"}`,
		`{"user": "anon", "code": 1005}`,
		`{"user": "anon", "code": 999}`,
		`{"user": "anon", "code": 5000}`,
		`{"user": "anon", "reason": "` + strings.Repeat("x", 121) + `"}`,
		`{"user": "anon", "color": "red"}`,
		`not json`,
	} {
		status, b := gatewaytest.Do(t, http.MethodPost, g.AdminURL+"/admin/api/kick", "", []byte(body))
		if status != http.StatusBadRequest {
			t.Errorf("kick %s: %d %s, want 400", body, status, b)
		}
	}
	expectEcho(t, anon)
}

func TestAPITop(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{Auth: true, Config: func(c *config.Config, _ string) {
		c.Limits.PerIP = 3
		c.Limits.PerUser = 2
	}})
	// The flooder holds its three and is refused ten times more; a
	// neighbour holds one and is refused once.
	for range 3 {
		gatewaytest.MustDial(t, g.Addr, "/", gatewaytest.DialOptions{Local: "127.0.0.9"})
	}
	for range 10 {
		if status, body := gatewaytest.Refused(t, g.Addr, "/", gatewaytest.DialOptions{Local: "127.0.0.9"}); status != http.StatusTooManyRequests {
			t.Fatalf("refusal %d %q, want 429 per_ip", status, body)
		}
	}
	for range 3 {
		gatewaytest.MustDial(t, g.Addr, "/", gatewaytest.DialOptions{Local: "127.0.0.10"})
	}
	gatewaytest.Refused(t, g.Addr, "/", gatewaytest.DialOptions{Local: "127.0.0.10"})
	// Users: alice at her limit and refused twice, bob with one.
	as := func(user, src string) gatewaytest.DialOptions {
		return gatewaytest.DialOptions{Local: src,
			Header: http.Header{"Authorization": {"Bearer " + g.Token(t, user)}}}
	}
	gatewaytest.MustDial(t, g.Addr, "/", as("alice", "127.0.0.11"))
	gatewaytest.MustDial(t, g.Addr, "/", as("alice", "127.0.0.12"))
	gatewaytest.MustDial(t, g.Addr, "/", as("bob", "127.0.0.13"))
	for _, src := range []string{"127.0.0.14", "127.0.0.15"} {
		if status, body := gatewaytest.Refused(t, g.Addr, "/", as("alice", src)); !strings.Contains(body, "per_user") {
			t.Fatalf("refusal %d %q, want per_user", status, body)
		}
	}

	// A connection is listed once registered, just after its 101 went
	// out; a refusal is counted just after its answer.
	g.WaitStats(t, "nine open, none pending", func(st relay.Stats) bool { return st.Open == 9 && st.Pending == 0 })
	var top admin.Top
	gatewaytest.GetJSON(t, g.AdminURL+"/admin/api/top?k=2&window=1m", "", &top)
	want := admin.Top{
		OpenPrefixes:    []relay.Count{{Key: "127.0.0.10/32", Count: 3}, {Key: "127.0.0.9/32", Count: 3}},
		OpenUsers:       []relay.Count{{Key: "alice", Count: 2}, {Key: "bob", Count: 1}},
		RefusedPrefixes: []relay.Count{{Key: "127.0.0.9/32", Count: 10}, {Key: "127.0.0.10/32", Count: 1}},
		RefusedUsers:    []relay.Count{{Key: "alice", Count: 2}},
		Window:          "1m0s",
	}
	if got, wantJ := mustJSON(t, top), mustJSON(t, want); got != wantJ {
		t.Errorf("top:\n got %s\nwant %s", got, wantJ)
	}

	// The status page's feed agrees, and counts refusals by reason.
	var st admin.Status
	gatewaytest.GetJSON(t, g.AdminURL+"/admin/api/status", "", &st)
	if st.Stats.Open != 9 || st.Refusals["per_ip"] != 11 || st.Refusals["per_user"] != 2 {
		t.Errorf("status: open %d, refusals %v; want 9 open, 11 per_ip, 2 per_user", st.Stats.Open, st.Refusals)
	}
	if len(st.Top.RefusedPrefixes) == 0 || st.Top.RefusedPrefixes[0].Key != "127.0.0.9/32" {
		t.Errorf("status top refused prefixes %v, want 127.0.0.9/32 first", st.Top.RefusedPrefixes)
	}
	if st.FDs.Open < 2*st.Stats.Open || st.FDs.Limit == 0 {
		t.Errorf("status fds %+v with %d open connections", st.FDs, st.Stats.Open)
	}

	for _, q := range []string{"k=0", "k=101", "k=x", "window=10m", "window=-1s", "window=soon"} {
		if status, b := gatewaytest.Do(t, http.MethodGet, g.AdminURL+"/admin/api/top?"+q, "", nil); status != http.StatusBadRequest {
			t.Errorf("top?%s: %d %s, want 400", q, status, b)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAPIDrain(t *testing.T) {
	t.Parallel()
	var g *gatewaytest.Gateway
	drained := make(chan error, 1)
	g = gatewaytest.Start(t, gatewaytest.Options{Drain: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		drained <- g.Shutdown(ctx)
	}})
	c := gatewaytest.MustDial(t, g.Addr, "/", gatewaytest.DialOptions{})
	expectEcho(t, c)
	if status, b := gatewaytest.Do(t, http.MethodGet, g.AdminURL+"/readyz", "", nil); status != http.StatusOK {
		t.Fatalf("readyz before the drain: %d %s", status, b)
	}

	status, b := gatewaytest.Do(t, http.MethodPost, g.AdminURL+"/admin/api/drain", "", nil)
	if status != http.StatusAccepted {
		t.Fatalf("drain: %d %s, want 202", status, b)
	}
	expectClosed(t, c, websocket.StatusGoingAway, "going away")
	select {
	case err := <-drained:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the drain hook did not finish")
	}
	var st relay.Stats
	gatewaytest.GetJSON(t, g.AdminURL+"/admin/api/stats", "", &st)
	if !st.Draining || st.Open != 0 {
		t.Errorf("stats after the drain: %+v", st)
	}
	if status, b := gatewaytest.Do(t, http.MethodGet, g.AdminURL+"/readyz", "", nil); status != http.StatusServiceUnavailable || !strings.Contains(string(b), "draining") {
		t.Errorf("readyz while draining: %d %s, want 503 draining", status, b)
	}
	if status, _ := gatewaytest.Do(t, http.MethodGet, g.AdminURL+"/healthz", "", nil); status != http.StatusOK {
		t.Errorf("healthz while draining: %d", status)
	}

	// Without a drain hook the endpoint says so.
	bare := gatewaytest.Start(t, gatewaytest.Options{})
	if status, b := gatewaytest.Do(t, http.MethodPost, bare.AdminURL+"/admin/api/drain", "", nil); status != http.StatusNotImplemented {
		t.Errorf("drain without a hook: %d %s, want 501", status, b)
	}
}
