package admin_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/wsguard/admin"
	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/internal/gatewaytest"
	"github.com/wsguard/wsguard/metrics"
	"github.com/wsguard/wsguard/relay"
)

// floodConfig is the gateway of TestFloodScrape: optional JWT auth, two
// connections per address, a handshake burst of four per address, and
// routes whose policies are cheap to break: /small (1 KiB messages, 5
// per second), /ping (the guard pings every 200 ms) and /firehose (a
// backend that never stops writing, and a 300 ms write timeout).
func floodConfig(c *config.Config, upstream string) {
	c.Limits.PerIP = 2
	c.Limits.HandshakeRate = 1.0 / 60
	c.Limits.HandshakeBurst = 4
	small := c.NewRoute("/small", upstream)
	small.Messages.MaxSize = config.KiB
	small.Messages.Rate = 5
	small.Messages.Burst = 5
	ping := c.NewRoute("/ping", upstream)
	ping.Timeouts.PingInterval = config.Duration(200 * time.Millisecond)
	ping.Timeouts.PongTimeout = config.Duration(300 * time.Millisecond)
	hose := c.NewRoute("/firehose", upstream)
	hose.Timeouts.Write = config.Duration(300 * time.Millisecond)
	c.Routes = append(c.Routes, small, ping, hose)
}

// TestFloodScrape floods a gateway with every kind of handshake and
// connection the metrics tell apart, and checks that a scrape during the
// flood and one after it moved exactly as the traffic says: counters by
// the right labels, gauges with the open connections and back to zero,
// histograms with one observation per step they time.
//
// It is not parallel: it compares the process's descriptor count, which
// other tests of this package would move.
func TestFloodScrape(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{Auth: true, Config: floodConfig})
	scrape := func() gatewaytest.Scrape { return gatewaytest.ScrapeMetrics(t, g.AdminURL+"/metrics") }
	before := scrape()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Phase 1, the flood: connections held from many addresses, and the
	// refusals and failures the handshake can end in.
	accepted := 0
	dial := func(path string, o gatewaytest.DialOptions) *websocket.Conn {
		t.Helper()
		accepted++
		return gatewaytest.MustDial(t, g.Addr, path, o)
	}
	from := func(src string) gatewaytest.DialOptions { return gatewaytest.DialOptions{Local: src} }
	var held []*websocket.Conn
	for i := 1; i <= 20; i++ {
		held = append(held, dial("/", from(fmt.Sprintf("127.0.2.%d", i))))
	}
	alice := dial("/", gatewaytest.DialOptions{Local: "127.0.2.21",
		Header: http.Header{"Authorization": {"Bearer " + g.Token(t, "alice")}}})
	// One address: two held, two refused per_ip, and then, its burst of
	// four spent, three refused for the handshake rate.
	held = append(held, dial("/", from("127.0.3.1")), dial("/", from("127.0.3.1")))
	expectRefusedFor(t, g, "127.0.3.1", nil, 2, http.StatusTooManyRequests, "per_ip")
	expectRefusedFor(t, g, "127.0.3.1", nil, 3, http.StatusTooManyRequests, "handshake_rate")
	expectRefusedFor(t, g, "127.0.5.1", http.Header{"Authorization": {"Bearer not.a.token"}},
		2, http.StatusUnauthorized, "unauthorized")
	for range 2 {
		if status, body := gatewaytest.Refused(t, g.Addr, "/down", from("127.0.6.1")); status != http.StatusBadGateway {
			t.Fatalf("upgrade to /down: %d %q, want 502", status, body)
		}
	}
	rawHTTP(t, g.Addr, "hello\r\n\r\n", http.StatusBadRequest)
	// A head that never ends holds a pending handshake.
	half := dialTCP(t, g.Addr)
	if _, err := io.WriteString(half, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	open := len(held) + 1
	// A refused handshake is counted after its answer went out, and its
	// pending count drops last: once only the unfinished head is pending,
	// every other handshake is counted (the gauge follows a moment later).
	g.WaitStats(t, "the flood in place", func(st relay.Stats) bool {
		return st.Open == open && st.Pending == 1
	})
	var during gatewaytest.Scrape
	waitMetric(t, scrape, "one pending handshake in the gauge", func(s gatewaytest.Scrape) bool {
		during = s
		return s[`wsguard_handshakes_pending`] == 1
	})
	expectValue(t, during, `wsguard_connections_open{auth="anonymous",route="/"}`, float64(open-1))
	expectValue(t, during, `wsguard_connections_open{auth="authenticated",route="/"}`, 1)
	expectValue(t, during, `wsguard_handshakes_pending`, 1)
	expectValue(t, during, `wsguard_connections_max`, float64(g.Config.Limits.MaxConnections))
	expectValue(t, during, `wsguard_fds_limit`, float64(metrics.FDLimit()))
	// Each connection holds four descriptors in this process: the test's
	// client, the gateway's two, the backend's.
	if fds := during[`wsguard_fds_open`]; fds < float64(4*open) {
		t.Errorf("wsguard_fds_open %v with %d connections open, want at least %d", fds, open, 4*open)
	}
	// The status API sees the same flood.
	var st admin.Status
	gatewaytest.GetJSON(t, g.AdminURL+"/admin/api/status", "", &st)
	if st.Stats.Open != open || st.Refusals["per_ip"] != 2 || st.Refusals["handshake_rate"] != 3 ||
		st.Refusals["auth"] != 2 || st.Refusals["upstream_error"] != 2 || st.Refusals["bad_request"] != 1 {
		t.Errorf("status during the flood: open %d, refusals %v", st.Stats.Open, st.Refusals)
	}

	// Phase 2: what open connections do, one rule at a time.
	for _, msg := range []string{"one", "two", "three"} {
		if err := alice.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := alice.Read(ctx); err != nil || string(got) != msg {
			t.Fatalf("echo of %q: %q, %v", msg, got, err)
		}
	}
	// A reserved bit without an extension: 1002.
	accepted++
	raw := gatewaytest.DialRaw(t, g.Addr, "127.0.7.1", "/")
	if err := raw.WriteFrame(0x80|0x40|0x2, []byte("rsv1")); err != nil {
		t.Fatal(err)
	}
	if code, err := raw.CloseCode(20 * time.Second); code != 1002 {
		t.Fatalf("after a reserved bit: close %d, %v; want 1002", code, err)
	}
	// A message over 1 KiB: 1009.
	big := dial("/small", from("127.0.7.2"))
	if err := big.Write(ctx, websocket.MessageBinary, make([]byte, 2<<10)); err != nil {
		t.Fatal(err)
	}
	if code, err := gatewaytest.CloseCode(ctx, big); code != 1009 {
		t.Fatalf("after 2 KiB: close %d, %v; want 1009", code, err)
	}
	// Fifteen messages at a rate of five a second: paused.
	chatty := dial("/small", from("127.0.7.3"))
	for range 15 {
		if err := chatty.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
			t.Fatal(err)
		}
	}
	waitMetric(t, scrape, "a rate pause", func(s gatewaytest.Scrape) bool {
		return s[`wsguard_message_rate_throttled_total`] > before[`wsguard_message_rate_throttled_total`]
	})
	chatty.CloseNow()
	// The guard's pings: one client answers them (it reads), one does
	// not and is closed with 1001.
	answers := dial("/ping", from("127.0.7.4"))
	answersCtx := answers.CloseRead(ctx)
	silent := dial("/ping", from("127.0.7.5"))
	waitMetric(t, scrape, "a pong and a pong timeout", func(s gatewaytest.Scrape) bool {
		return s[`wsguard_pongs_received_total`] > before[`wsguard_pongs_received_total`] &&
			s.Sum(`wsguard_closes_total`, `code="1001"`, `by="guard"`) >
				before.Sum(`wsguard_closes_total`, `code="1001"`, `by="guard"`)
	})
	if code, err := gatewaytest.CloseCode(ctx, silent); code != 1001 {
		t.Fatalf("the client that did not answer pings: close %d, %v; want 1001", code, err)
	}
	if answersCtx.Err() != nil {
		t.Fatal("the client that answers pings was closed")
	}
	answers.Close(websocket.StatusNormalClosure, "done")
	// A client that does not read while the backend writes: 1008.
	dial("/firehose", gatewaytest.DialOptions{Local: "127.0.7.6", RecvBuffer: 4096})
	waitMetric(t, scrape, "a slow reader", func(s gatewaytest.Scrape) bool {
		return s[`wsguard_slow_readers_total`] > before[`wsguard_slow_readers_total`]
	})
	// An operator's kick, and a client's normal close.
	if n := kick(t, g, admin.KickRequest{Prefix: "127.0.2.1", Code: 4000, Reason: "kicked"}); n != 1 {
		t.Fatalf("kick closed %d, want 1", n)
	}
	if code, err := gatewaytest.CloseCode(ctx, held[0]); code != 4000 {
		t.Fatalf("kicked client: close %d, %v; want 4000", code, err)
	}
	if err := held[1].Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("normal close: %v", err)
	}

	// Phase 3: everyone leaves.
	for _, c := range held[2:] {
		c.CloseNow()
	}
	alice.CloseNow()
	half.Close()
	g.WaitStats(t, "the gateway back to zero", func(st relay.Stats) bool {
		return st.Open == 0 && st.Pending == 0 && st.Counters == 0
	})
	var after gatewaytest.Scrape
	waitMetric(t, scrape, "every close counted", func(s gatewaytest.Scrape) bool {
		after = s
		return s.Sum("wsguard_closes_total")-before.Sum("wsguard_closes_total") == float64(accepted) &&
			s[`wsguard_handshakes_pending`] == 0
	})
	delta := func(series string) float64 { return after[series] - before[series] }
	sumDelta := func(name string, labels ...string) float64 {
		return after.Sum(name, labels...) - before.Sum(name, labels...)
	}

	// Gauges: back to zero.
	expectValue(t, after, `wsguard_connections_open{auth="anonymous",route="/"}`, 0)
	expectValue(t, after, `wsguard_connections_open{auth="authenticated",route="/"}`, 0)
	expectValue(t, after, `wsguard_handshakes_pending`, 0)
	// Our closes give back at least the gateway's two descriptors per
	// connection; the backend's may still be closing.
	gatewaytest.Poll(t, 20*time.Second, "descriptors given back", func() (bool, string) {
		s := scrape()
		return s[`wsguard_fds_open`] <= during[`wsguard_fds_open`]-float64(2*open),
			fmt.Sprintf("%v open now, %v during the flood of %d connections", s[`wsguard_fds_open`], during[`wsguard_fds_open`], open)
	})

	// Handshakes, each by its outcome and reason.
	failedGone := sumDelta("wsguard_handshakes_total", `outcome="failed"`, `reason="client_gone"`) +
		sumDelta("wsguard_handshakes_total", `outcome="failed"`, `reason="handshake_timeout"`)
	counts := []struct {
		series string
		got    float64
		want   float64
	}{
		{`handshakes accepted`, delta(`wsguard_handshakes_total{outcome="accepted",reason="ok"}`), float64(accepted)},
		{`refused per_ip`, delta(`wsguard_handshakes_total{outcome="refused",reason="per_ip"}`), 2},
		{`refused handshake_rate`, delta(`wsguard_handshakes_total{outcome="refused",reason="handshake_rate"}`), 3},
		{`refused auth`, delta(`wsguard_handshakes_total{outcome="refused",reason="auth"}`), 2},
		{`failed upstream_error`, delta(`wsguard_handshakes_total{outcome="failed",reason="upstream_error"}`), 2},
		{`failed bad_request`, delta(`wsguard_handshakes_total{outcome="failed",reason="bad_request"}`), 1},
		{`failed, the unfinished head`, failedGone, 1},
		{`auth failures`, sumDelta("wsguard_auth_failures_total"), 2},
		{`violations by the client`, delta(`wsguard_protocol_violations_total{direction="client"}`), 1},
		{`violations by the upstream`, delta(`wsguard_protocol_violations_total{direction="upstream"}`), 0},
		{`messages too big`, delta(`wsguard_messages_too_big_total`), 1},
		{`slow readers`, delta(`wsguard_slow_readers_total`), 1},
		{`admin evictions`, delta(`wsguard_evictions_total{reason="admin"}`), 1},
		{`closes 1002 by the guard`, sumDelta("wsguard_closes_total", `code="1002"`, `by="guard"`), 1},
		{`closes 1009 by the guard`, sumDelta("wsguard_closes_total", `code="1009"`, `by="guard"`), 1},
		{`closes 1008 by the guard (slow reader)`, sumDelta("wsguard_closes_total", `code="1008"`, `by="guard"`), 1},
		{`closes 4000 by the guard (kick)`, sumDelta("wsguard_closes_total", `code="4000"`, `by="guard"`), 1},
		{`closes 1001 by the guard (pong timeout)`, sumDelta("wsguard_closes_total", `code="1001"`, `by="guard"`), 1},
		// Every handshake is timed; admission is timed for those that
		// reached the counters (accepted, per_ip, and the two that then
		// failed to dial); every dial is timed.
		{`handshake latency observations`, delta(`wsguard_handshake_duration_seconds_count`), sumDelta("wsguard_handshakes_total")},
		{`admission latency observations`, delta(`wsguard_admission_duration_seconds_count`), float64(accepted + 2 + 2)},
		{`dial latency observations`, delta(`wsguard_upstream_dial_duration_seconds_count`), float64(accepted + 2)},
	}
	for _, c := range counts {
		if c.got != c.want {
			t.Errorf("%s: moved by %v, want %v", c.series, c.got, c.want)
		}
	}
	if n := sumDelta("wsguard_handshakes_total"); n != float64(accepted+2+3+2+2+1+1) {
		t.Errorf("handshakes moved by %v in all, want %d", n, accepted+11)
	}
	if sumDelta("wsguard_closes_total", `by="client"`) < 1 {
		t.Error("no close by the client counted")
	}
	for _, dir := range []string{"client", "upstream"} {
		if n := delta(`wsguard_frames_total{direction="` + dir + `"}`); n < 3 {
			t.Errorf("frames from %s moved by %v, want at least 3", dir, n)
		}
		if n := delta(`wsguard_bytes_total{direction="` + dir + `"}`); n < float64(len("onetwothree")) {
			t.Errorf("bytes from %s moved by %v", dir, n)
		}
	}
	pings, pongs := delta(`wsguard_pings_sent_total`), delta(`wsguard_pongs_received_total`)
	if pongs < 1 || pings <= pongs {
		t.Errorf("pings sent moved by %v and pongs by %v; want pongs, and a ping left unanswered", pings, pongs)
	}
	if n := delta(`wsguard_message_rate_throttled_total`); n < 1 {
		t.Errorf("throttling moved by %v", n)
	}
	for _, h := range []string{"handshake_duration_seconds", "admission_duration_seconds", "upstream_dial_duration_seconds"} {
		if delta("wsguard_"+h+"_sum") <= 0 {
			t.Errorf("wsguard_%s_sum did not grow", h)
		}
	}
	// Nothing is labelled by address or user.
	for series := range after {
		for _, leak := range []string{"127.0.", "alice"} {
			if strings.HasPrefix(series, "wsguard_") && strings.Contains(series, leak) {
				t.Errorf("series %s carries a client address or user", series)
			}
		}
	}
}

// expectRefusedFor makes n handshakes from src with header, each of which
// must be refused with status and a body containing reason.
func expectRefusedFor(t *testing.T, g *gatewaytest.Gateway, src string, header http.Header, n, status int, reason string) {
	t.Helper()
	for range n {
		got, body := gatewaytest.Refused(t, g.Addr, "/", gatewaytest.DialOptions{Local: src, Header: header})
		if got != status || !strings.Contains(body, reason) {
			t.Fatalf("refusal from %s: %d %q, want %d %s", src, got, body, status, reason)
		}
	}
}

func expectValue(t *testing.T, s gatewaytest.Scrape, series string, want float64) {
	t.Helper()
	if got, ok := s[series]; !ok || got != want {
		t.Errorf("%s = %v (present: %v), want %v", series, got, ok, want)
	}
}

// waitMetric scrapes until ok accepts a scrape, failing after 20 s.
func waitMetric(t *testing.T, scrape func() gatewaytest.Scrape, what string, ok func(gatewaytest.Scrape) bool) {
	t.Helper()
	gatewaytest.Poll(t, 20*time.Second, what, func() (bool, string) { return ok(scrape()), "not yet" })
}

// dialTCP opens a plain TCP connection, closed when the test ends.
func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// rawHTTP sends req as it is and fails unless the answer has status.
func rawHTTP(t *testing.T, addr, req string, status int) {
	t.Helper()
	nc := dialTCP(t, addr)
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, len("HTTP/1.1 400"))
	if _, err := io.ReadFull(nc, line); err != nil || string(line[9:]) != fmt.Sprint(status) {
		t.Fatalf("answer to %q: %q, %v; want %d", req, line, err, status)
	}
}
