package flood

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/wsguard/frame"
)

// testConfig is a short run of sc against s with the probe off.
func testConfig(s *testServer, sc Scenario, conns int, d time.Duration) Config {
	return Config{
		Target:      s.url("/ws"),
		Scenarios:   []Scenario{sc},
		Connections: conns,
		Duration:    d,
	}
}

// mustRun runs cfg and fails the test if it cannot start.
func mustRun(t *testing.T, cfg Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// framesOf returns the frames of c with opcode op.
func framesOf(c serverConn, op frame.Opcode) []recFrame {
	var out []recFrame
	for _, f := range c.frames {
		if f.op == op {
			out = append(out, f)
		}
	}
	return out
}

// dataFrames returns the data frames of c.
func dataFrames(c serverConn) []recFrame {
	var out []recFrame
	for _, f := range c.frames {
		if f.op.IsData() {
			out = append(out, f)
		}
	}
	return out
}

// checkHeld checks that every connection opened and was held to the end.
func checkHeld(t *testing.T, res *Result, n int) {
	t.Helper()
	if res.Attempted != int64(n) || res.Opened != int64(n) || res.HeldAtEnd != int64(n) {
		t.Fatalf("attempted %d, opened %d, held at end %d; want %d each (refused %v, failed %v, closed %v)",
			res.Attempted, res.Opened, res.HeldAtEnd, n, res.Refused, res.Failed, res.ClosedByServer)
	}
}

// endedWithClose waits for every connection to end and checks that each
// got the tool's close frame (1000) at the end of the run.
func endedWithClose(t *testing.T, s *testServer, n int) []serverConn {
	t.Helper()
	conns := s.waitFor("close frames from every connection", func(cs []serverConn) bool {
		closed := 0
		for _, c := range cs {
			if c.closed != 0 {
				closed++
			}
		}
		return closed == n
	})
	for _, c := range conns {
		if c.closed != frame.CloseNormal {
			t.Errorf("%v closed with %d, want 1000", c.remote, c.closed)
		}
	}
	return conns
}

func TestIdleHoldAnswersPingsAndSendsNothing(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{pingEvery: 50 * time.Millisecond})
	res := mustRun(t, testConfig(s, IdleHold, 3, 600*time.Millisecond))
	checkHeld(t, res, 3)

	for _, c := range endedWithClose(t, s, 3) {
		if d := dataFrames(c); len(d) != 0 {
			t.Errorf("%v: %d data frames, want none", c.remote, len(d))
		}
		if len(c.pongs) == 0 {
			t.Errorf("%v: no pong for %d pings", c.remote, len(c.pings))
		}
		for _, p := range c.pongs {
			if _, ok := c.pings[p.payload]; !ok {
				t.Errorf("%v: pong %q answers no ping", c.remote, p.payload)
			}
		}
	}
	if res.Received.Pings == 0 || res.Sent.Pongs == 0 {
		t.Errorf("received %d pings, sent %d pongs; want some", res.Received.Pings, res.Sent.Pongs)
	}
}

// checkCadence checks that frames came every interval: not more often
// than the cadence allows over the run, and on average not faster.
func checkCadence(t *testing.T, c serverConn, frames []recFrame, every, run time.Duration) {
	t.Helper()
	most := int(run/every) + 1
	if len(frames) < 3 || len(frames) > most {
		t.Fatalf("%v: %d frames in %v at one per %v, want 3 to %d", c.remote, len(frames), run, every, most)
	}
	mean := frames[len(frames)-1].at.Sub(frames[0].at) / time.Duration(len(frames)-1)
	if mean < every*7/10 {
		t.Errorf("%v: one frame every %v on average, want about %v", c.remote, mean, every)
	}
}

func TestPingKeepaliveCadence(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	cfg := testConfig(s, PingKeepalive, 2, 1200*time.Millisecond)
	cfg.PingEvery = 100 * time.Millisecond
	res := mustRun(t, cfg)
	checkHeld(t, res, 2)

	for _, c := range endedWithClose(t, s, 2) {
		checkCadence(t, c, framesOf(c, frame.OpPing), cfg.PingEvery, cfg.Duration)
		if d := dataFrames(c); len(d) != 0 {
			t.Errorf("%v: %d data frames, want none", c.remote, len(d))
		}
	}
}

func TestDataKeepaliveCadence(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{echo: true})
	cfg := testConfig(s, DataKeepalive, 2, 1200*time.Millisecond)
	cfg.PingEvery = 100 * time.Millisecond
	res := mustRun(t, cfg)
	checkHeld(t, res, 2)

	for _, c := range endedWithClose(t, s, 2) {
		text := framesOf(c, frame.OpText)
		checkCadence(t, c, text, cfg.PingEvery, cfg.Duration)
		for _, m := range c.messages {
			if string(m) != "k" {
				t.Errorf("%v: message %q, want a one-byte keepalive", c.remote, m)
			}
		}
		if p := framesOf(c, frame.OpPing); len(p) != 0 {
			t.Errorf("%v: %d pings, want none", c.remote, len(p))
		}
	}
	if res.Received.DataFrames == 0 {
		t.Error("the echoes of the keepalives were not counted")
	}
}

func TestIgnorePingsNeverAnswers(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{pingEvery: 30 * time.Millisecond})
	res := mustRun(t, testConfig(s, IgnorePings, 2, 500*time.Millisecond))
	checkHeld(t, res, 2)

	for _, c := range endedWithClose(t, s, 2) {
		if len(c.pings) < 3 {
			t.Errorf("%v: the server sent only %d pings", c.remote, len(c.pings))
		}
		if len(c.pongs) != 0 {
			t.Errorf("%v: %d pongs, want none", c.remote, len(c.pongs))
		}
	}
	if res.Received.Pings < 6 || res.Sent.Pongs != 0 {
		t.Errorf("received %d pings and sent %d pongs; want at least 6 and none", res.Received.Pings, res.Sent.Pongs)
	}
}

func TestSlowPongsAnswerLate(t *testing.T) {
	t.Parallel()
	const delay = 150 * time.Millisecond
	s := startServer(t, serverOptions{pingEvery: 300 * time.Millisecond})
	cfg := testConfig(s, SlowPongs, 2, 1500*time.Millisecond)
	cfg.PongDelay = delay
	res := mustRun(t, cfg)
	checkHeld(t, res, 2)

	for _, c := range endedWithClose(t, s, 2) {
		if len(c.pongs) == 0 {
			t.Errorf("%v: no pong for %d pings", c.remote, len(c.pings))
		}
		for _, p := range c.pongs {
			sent, ok := c.pings[p.payload]
			if !ok {
				t.Errorf("%v: pong %q answers no ping", c.remote, p.payload)
				continue
			}
			if late := p.at.Sub(sent); late < delay {
				t.Errorf("%v: pong %q after %v, want at least %v", c.remote, p.payload, late, delay)
			}
		}
	}
}

func TestSlowlorisTricklesHeaderLines(t *testing.T) {
	t.Parallel()
	const interval = 100 * time.Millisecond
	s := startServer(t, serverOptions{})
	cfg := testConfig(s, Slowloris, 2, time.Second)
	cfg.SlowlorisInterval = interval
	res := mustRun(t, cfg)
	if res.Attempted != 2 || res.PendingAtEnd != 2 || res.Opened != 0 {
		t.Fatalf("attempted %d, pending at end %d, opened %d; want 2, 2, 0", res.Attempted, res.PendingAtEnd, res.Opened)
	}

	for _, c := range s.allEnded() {
		n := len(c.lines)
		if n < 4 || c.upgraded {
			t.Fatalf("%v: %d header lines, upgraded %v; want at least 4 and no upgrade", c.remote, n, c.upgraded)
		}
		if c.reads < n {
			t.Errorf("%v: %d lines came in %d reads, want one read each", c.remote, n, c.reads)
		}
		if span := c.lines[n-1].at.Sub(c.lines[0].at); span < time.Duration(n-1)*interval/2 {
			t.Errorf("%v: %d lines within %v, want them %v apart", c.remote, n, span, interval)
		}
		if !strings.HasPrefix(c.lines[0].line, "GET /ws HTTP/1.1") {
			t.Errorf("%v: first line %q", c.remote, c.lines[0].line)
		}
		for _, l := range c.lines {
			if l.line == "\r\n" {
				t.Errorf("%v: the request head was finished", c.remote)
			}
		}
	}
}

func TestSlowlorisAnswered(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{answerAt: 3})
	cfg := testConfig(s, Slowloris, 2, time.Second)
	cfg.SlowlorisInterval = 20 * time.Millisecond
	res := mustRun(t, cfg)
	if res.Refused["408"] != 2 || res.PendingAtEnd != 0 {
		t.Errorf("refused %v, pending at end %d; want 408:2 and none pending", res.Refused, res.PendingAtEnd)
	}
}

func TestSlowReaderMakesServerWritesBlock(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{flood: true})
	cfg := testConfig(s, SlowReader, 2, 5*time.Second)
	cfg.ReaderRequest = "broadcast: the whole archive"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// End the run early once the server is stuck: that is the point.
		s.waitFor("blocked writes", func(cs []serverConn) bool {
			blocked := 0
			for _, c := range cs {
				if c.blocked {
					blocked++
				}
			}
			return blocked == 2
		})
		cancel()
	}()
	res, err := Run(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Opened != 2 {
		t.Fatalf("opened %d, want 2 (failed %v)", res.Opened, res.Failed)
	}
	if res.Received.Bytes != 0 {
		t.Errorf("read %d bytes, want none", res.Received.Bytes)
	}
	for _, c := range s.snapshot() {
		if len(c.messages) == 0 || string(c.messages[0]) != cfg.ReaderRequest {
			t.Errorf("%v: requests %q, want %q", c.remote, c.messages, cfg.ReaderRequest)
		}
	}
}

func TestChurnOpensAndCloses(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	res := mustRun(t, testConfig(s, Churn, 2, 800*time.Millisecond))
	if res.Opened < 4 || res.ClosedByClient != res.Opened || res.HeldAtEnd != 0 {
		t.Fatalf("opened %d, closed by client %d, held at end %d; want at least 4 opened, all closed",
			res.Opened, res.ClosedByClient, res.HeldAtEnd)
	}
	conns := s.allEnded()
	if len(conns) < int(res.Opened) {
		t.Errorf("server saw %d connections, the tool opened %d", len(conns), res.Opened)
	}
	// Every connection the tool opened said 1000 and nothing else. The
	// run's end may cut one handshake per slot after the server's 101.
	closed, cut := 0, 0
	for _, c := range conns {
		switch {
		case len(dataFrames(c)) != 0:
			t.Errorf("%v: %d data frames, want none", c.remote, len(dataFrames(c)))
		case c.closed == frame.CloseNormal:
			closed++
		case c.closed == 0:
			cut++
		default:
			t.Errorf("%v: close code %d, want 1000", c.remote, c.closed)
		}
	}
	if closed != int(res.Opened) || cut > 2 {
		t.Errorf("server saw %d closes with 1000 and %d connections cut; the tool opened %d",
			closed, cut, res.Opened)
	}
}

func TestOversizeSendsTheSize(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	cfg := testConfig(s, Oversize, 2, 500*time.Millisecond)
	cfg.MessageSize = 300_000
	res := mustRun(t, cfg)
	checkHeld(t, res, 2)
	for _, c := range s.allEnded() {
		if len(c.sizes) != 1 || c.sizes[0] != cfg.MessageSize {
			t.Errorf("%v: messages of %v bytes, want one of %d", c.remote, c.sizes, cfg.MessageSize)
		}
	}
}

func TestOversizeClosedWithTooBig(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{maxMessage: 100_000})
	cfg := testConfig(s, Oversize, 2, time.Second)
	cfg.MessageSize = 300_000
	res := mustRun(t, cfg)
	if res.ClosedByServer["1009"] != 2 || res.HeldAtEnd != 0 {
		t.Errorf("closed by server %v, held at end %d; want 1009:2 and none held", res.ClosedByServer, res.HeldAtEnd)
	}
}

func TestFragmentFloodNeverFinishes(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	cfg := testConfig(s, FragmentFlood, 2, 600*time.Millisecond)
	cfg.FragmentEvery = 20 * time.Millisecond
	cfg.FragmentSize = 7
	res := mustRun(t, cfg)
	checkHeld(t, res, 2)

	for _, c := range endedWithClose(t, s, 2) {
		d := dataFrames(c)
		if len(d) < 6 {
			t.Fatalf("%v: %d data frames, want a flood", c.remote, len(d))
		}
		if d[0].op != frame.OpText || d[0].fin {
			t.Errorf("%v: first frame %v fin=%v, want text without fin", c.remote, d[0].op, d[0].fin)
		}
		for _, f := range d[1:] {
			if f.op != frame.OpContinuation || f.fin || f.length != 7 {
				t.Fatalf("%v: frame %v fin=%v length %d, want unfinished 7-byte continuations",
					c.remote, f.op, f.fin, f.length)
			}
		}
		if len(c.messages) != 0 {
			t.Errorf("%v: %d messages completed, want none", c.remote, len(c.messages))
		}
	}
}

func TestSourcesAreBound(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	cfg := testConfig(s, IdleHold, 6, 300*time.Millisecond)
	var err error
	if cfg.Sources, err = ParseSources("127.0.0.2-127.0.0.4"); err != nil {
		t.Fatal(err)
	}
	checkHeld(t, mustRun(t, cfg), 6)

	count := map[string]int{}
	for _, c := range s.snapshot() {
		count[c.remote.Addr().String()]++
	}
	want := map[string]int{"127.0.0.2": 2, "127.0.0.3": 2, "127.0.0.4": 2}
	if len(count) != len(want) {
		t.Fatalf("server saw sources %v, want %v", count, want)
	}
	for a, n := range want {
		if count[a] != n {
			t.Errorf("server saw sources %v, want %v", count, want)
		}
	}
}

func TestForgedHeadersAndTokens(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	cfg := testConfig(s, IdleHold, 4, 300*time.Millisecond)
	cfg.XFF = true
	cfg.Tokens = []string{"alice", "bob"}
	checkHeld(t, mustRun(t, cfg), 4)

	tokens := map[string]int{}
	forged := map[string]bool{}
	for _, c := range s.snapshot() {
		h := headers(c)
		tokens[h["authorization"]]++
		xff := netip.MustParseAddr(h["x-forwarded-for"])
		if xff.IsLoopback() || xff.IsPrivate() || h["x-real-ip"] != xff.String() {
			t.Errorf("forged X-Forwarded-For %v, X-Real-IP %q", xff, h["x-real-ip"])
		}
		forged[xff.String()] = true
	}
	if tokens["Bearer alice"] != 2 || tokens["Bearer bob"] != 2 {
		t.Errorf("Authorization headers %v, want two of each token", tokens)
	}
	if len(forged) < 3 {
		t.Errorf("forged addresses %v, want them random", forged)
	}
}

// headers returns the request header fields of c by lower-case name.
func headers(c serverConn) map[string]string {
	h := map[string]string{}
	for _, l := range c.lines[1:] {
		if k, v, ok := strings.Cut(l.line, ":"); ok {
			h[strings.ToLower(k)] = strings.TrimSpace(v)
		}
	}
	return h
}

func TestRefusedByStatus(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{status: 429})
	res := mustRun(t, testConfig(s, IdleHold, 3, 300*time.Millisecond))
	if res.Refused["429"] != 3 || res.Opened != 0 || res.Attempted != 3 {
		t.Errorf("refused %v, opened %d, attempted %d; want 429:3, 0, 3", res.Refused, res.Opened, res.Attempted)
	}
}

func TestReconnectAfterClose(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{closeWith: frame.CloseTryAgainLater})
	cfg := testConfig(s, IdleHold, 2, 500*time.Millisecond)
	cfg.Reconnect = true
	cfg.Rate = 40
	res := mustRun(t, cfg)
	closed := res.ClosedByServer["1013"]
	if closed < 4 || res.Attempted < closed {
		t.Errorf("attempted %d, closed by server %v; want reconnections after each 1013", res.Attempted, res.ClosedByServer)
	}
	// 40/s over half a second, the first two at once.
	if res.Attempted > 23 {
		t.Errorf("attempted %d in 0.5s at 40/s", res.Attempted)
	}
}

func TestMixedScenarios(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	cfg := testConfig(s, IdleHold, 4, 500*time.Millisecond)
	cfg.Scenarios = []Scenario{IdleHold, PingKeepalive}
	cfg.PingEvery = 100 * time.Millisecond
	res := mustRun(t, cfg)
	checkHeld(t, res, 4)
	for _, sc := range cfg.Scenarios {
		if c := res.ByScenario[sc]; c == nil || c.Opened != 2 {
			t.Errorf("%s: %+v, want 2 opened", sc, c)
		}
	}
	if res.ByScenario[PingKeepalive].Sent.Pings == 0 || res.ByScenario[IdleHold].Sent.Pings != 0 {
		t.Errorf("pings sent by scenario: %d idle-hold, %d ping-keepalive",
			res.ByScenario[IdleHold].Sent.Pings, res.ByScenario[PingKeepalive].Sent.Pings)
	}
}

func TestInterruptEndsTheRun(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{})
	cfg := testConfig(s, IdleHold, 3, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := time.Now()
	res, err := Run(ctx, cfg, func(p Progress) {
		if p.Open == 3 {
			cancel()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.HeldAtEnd != 3 {
		t.Errorf("interrupted %v, held at end %d; want true, 3", res.Interrupted, res.HeldAtEnd)
	}
	if took := time.Since(started); took > 30*time.Second {
		t.Errorf("an interrupted one-minute run took %v", took)
	}
	if n := len(res.Series); n == 0 || n > int(time.Since(started)/time.Second)+1 {
		t.Errorf("%d seconds in the series of an interrupted run", n)
	}
}
