package relay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/frame"
	"github.com/wsguard/wsguard/internal/testsupport"
)

// One end-to-end test per rule of DESIGN.md ("The relay's rules"). Each
// asserts what would change if the rule were gone: a frame that would
// otherwise reach the backend, a close that would otherwise not come, or
// one that would come too early.

// testMask is the masking key of the hand-built client frames.
var testMask = [4]byte{0x0A, 0x0B, 0x0C, 0x0D}

// masked returns a masked client frame.
func masked(fin bool, op frame.Opcode, payload []byte) []byte {
	return frame.AppendFrame(nil, fin, op, &testMask, payload)
}

// echoRecorder is a coder/websocket echo handler that counts the message
// bytes it read, as they arrive (whole messages or not), and reports the
// error that ended its read loop.
type echoRecorder struct {
	read atomic.Int64
	done chan error // receives the read loop's final error, once
}

func newEchoRecorder() *echoRecorder {
	return &echoRecorder{done: make(chan error, 1)}
}

func (e *echoRecorder) handle(ctx context.Context, c *websocket.Conn) {
	var buf bytes.Buffer
	for {
		typ, r, err := c.Reader(ctx)
		if err == nil {
			buf.Reset()
			var n int64
			n, err = io.Copy(&buf, r)
			e.read.Add(n)
		}
		if err == nil {
			err = c.Write(ctx, typ, buf.Bytes())
		}
		if err != nil {
			e.done <- err
			return
		}
	}
}

// wait returns the error that ended the backend's read loop.
func (e *echoRecorder) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-e.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("backend read loop still running")
		return nil
	}
}

// expectBackendClose fails unless the backend's read loop ended with a
// close frame carrying code.
func (e *echoRecorder) expectBackendClose(t testing.TB, code websocket.StatusCode) {
	t.Helper()
	if err := e.wait(t); websocket.CloseStatus(err) != code {
		t.Fatalf("backend read ended with %v, want a close frame with %d", err, code)
	}
}

func TestMessageSizeCap(t *testing.T) {
	t.Parallel()
	const maxSize = 1024
	setup := func(t *testing.T) (*guard, *echoRecorder, *rawClient) {
		rec := newEchoRecorder()
		backend := echoBackend(t, rec.handle)
		g := startGuard(t, testConfig(t, upstreamOf(backend), func(c *config.Config) {
			c.Messages.MaxSize = maxSize
			c.Timeouts.PingInterval = 0
		}))
		return g, rec, mustDialRaw(t, g.Addr)
	}

	t.Run("one frame", func(t *testing.T) {
		t.Parallel()
		g, rec, c := setup(t)
		c.write(true, frame.OpText, bytes.Repeat([]byte("a"), 2*maxSize))
		c.expectClose(frame.CloseTooBig, "message too big", 10*time.Second)
		c.expectEOF(5 * time.Second)

		// The header alone decided: not one byte reached the backend.
		rec.expectBackendClose(t, websocket.StatusGoingAway)
		if n := rec.read.Load(); n != 0 {
			t.Fatalf("backend read %d bytes of the oversized message", n)
		}
		g.waitIdle(t)
	})

	t.Run("across fragments", func(t *testing.T) {
		t.Parallel()
		g, rec, c := setup(t)
		part := bytes.Repeat([]byte("b"), 500)
		var msg []byte
		msg = append(msg, masked(false, frame.OpText, part)...)
		msg = append(msg, masked(false, frame.OpContinuation, part)...)
		msg = append(msg, masked(true, frame.OpContinuation, part)...)
		c.writeRaw(msg)
		c.expectClose(frame.CloseTooBig, "message too big", 10*time.Second)
		c.expectEOF(5 * time.Second)

		// Each fragment is under the cap; the third makes the message
		// too big and never reaches the backend.
		rec.expectBackendClose(t, websocket.StatusGoingAway)
		if n := rec.read.Load(); n > 2*int64(len(part)) {
			t.Fatalf("backend read %d bytes, more than the first two fragments", n)
		}
		g.waitIdle(t)
	})

	t.Run("under the cap", func(t *testing.T) {
		t.Parallel()
		_, rec, c := setup(t)
		msg := bytes.Repeat([]byte("c"), 1000)
		c.write(true, frame.OpText, msg)
		h, p, err := c.read(10 * time.Second)
		if err != nil || h.Op != frame.OpText || !bytes.Equal(p, msg) {
			t.Fatalf("echo of 1000 bytes: %v, %d bytes, %v", h.Op, len(p), err)
		}
		if n := rec.read.Load(); n != int64(len(msg)) {
			t.Fatalf("backend read %d bytes, want %d", n, len(msg))
		}
	})
}

func TestMessageRateClose(t *testing.T) {
	t.Parallel()
	backend := echoBackend(t, nil)
	g := startGuard(t, testConfig(t, upstreamOf(backend), func(c *config.Config) {
		c.Messages.Rate = 5
		c.Messages.Burst = 5
		c.Messages.OverRate = "close"
		c.Timeouts.PingInterval = 0
	}))
	c := mustDialRaw(t, g.Addr)

	const sent = 20
	var burst []byte
	for i := range sent {
		burst = append(burst, masked(true, frame.OpText, fmt.Appendf(nil, "m%d", i))...)
	}
	c.writeRaw(burst)
	echoes := 0
	cf, err := c.readUntilClose(10*time.Second, func(h frame.Header, _ []byte) {
		if h.Op == frame.OpText {
			echoes++
		}
	})
	if err != nil {
		t.Fatalf("waiting for close 1008 after %d echoes: %v", echoes, err)
	}
	if cf.code != frame.ClosePolicyViolation || cf.reason != "message rate" {
		t.Fatalf("close %d %q, want 1008 \"message rate\"", cf.code, cf.reason)
	}
	if echoes >= sent {
		t.Fatalf("all %d messages echoed before the close", echoes)
	}
	c.expectEOF(5 * time.Second)
	g.waitIdle(t)
}

func TestMessageRateThrottle(t *testing.T) {
	t.Parallel()
	backend := echoBackend(t, nil)
	const rate = 20
	g := startGuard(t, testConfig(t, upstreamOf(backend), func(c *config.Config) {
		c.Messages.Rate = rate
		c.Messages.Burst = 1
		c.Messages.OverRate = "throttle"
		c.Timeouts.PingInterval = 0
	}))
	c := mustDialRaw(t, g.Addr)

	// With a burst of one, message k may leave the guard no earlier than
	// (k-1)/rate after the first: 11 messages take at least 10/rate.
	const n = 11
	var burst []byte
	for i := range n {
		burst = append(burst, masked(true, frame.OpText, fmt.Appendf(nil, "m%02d", i))...)
	}
	start := time.Now()
	c.writeRaw(burst)
	var last time.Time
	for i := range n {
		h, p, err := c.read(20 * time.Second)
		if err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
		if h.Op != frame.OpText || string(p) != fmt.Sprintf("m%02d", i) {
			t.Fatalf("echo %d: %v %q (throttling must not close)", i, h.Op, p)
		}
		last = time.Now()
	}
	const epsilon = 10 * time.Millisecond
	if took, min := last.Sub(start), time.Duration(n-1)*time.Second/rate-epsilon; took < min {
		t.Fatalf("%d messages echoed in %v, under the %v the rate allows", n, took, min)
	}
	c.write(true, frame.OpClose, frame.AppendClosePayload(nil, frame.CloseNormal, ""))
	c.expectClose(frame.CloseNormal, "", 10*time.Second)
	g.waitIdle(t)
}

// TestSlowReaderClosed is not parallel: it reads the process's heap, and
// other tests running at the same time would blur the figure.
func TestSlowReaderClosed(t *testing.T) {
	const (
		msgSize = 64 << 10
		// Loopback socket buffers (a send and a receive buffer on each of
		// the two hops) hold a few MiB; a guard that queued in memory
		// would let the backend go on up to here.
		maxWritten = 64 << 20
		// A coarse bound, not a benchmark: the process also hosts the
		// backend and the test, and heap figures include garbage.
		maxHeapGrowth = 32 << 20
	)
	type result struct {
		written  int64
		peakHeap uint64
		err      error
	}
	heapInuse := func() uint64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	done := make(chan result, 1)
	backend := echoBackend(t, func(ctx context.Context, c *websocket.Conn) {
		msg := bytes.Repeat([]byte{0x5A}, msgSize)
		var r result
		for r.written < maxWritten {
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			r.err = c.Write(wctx, websocket.MessageBinary, msg)
			cancel()
			if r.err != nil {
				break
			}
			r.written += msgSize
			r.peakHeap = max(r.peakHeap, heapInuse())
		}
		done <- r
	})
	g := startGuard(t, testConfig(t, upstreamOf(backend), func(c *config.Config) {
		c.Timeouts.Write = config.Duration(300 * time.Millisecond)
		c.Timeouts.PingInterval = 0
	}))

	runtime.GC()
	base := heapInuse()
	c := mustDialRaw(t, g.Addr) // and never reads, until the end

	var r result
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("backend still writing after 60s: the guard neither closed nor pushed back")
	}
	if r.err == nil {
		t.Fatalf("backend wrote %d MiB without a failed write: the guard buffers without bound",
			r.written>>20)
	}
	if errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatal("backend write stalled until its own timeout: the guard never gave up on the client")
	}
	t.Logf("backend wrote %d KiB before its write failed (%v); heap grew by up to %d KiB",
		r.written>>10, r.err, (int64(r.peakHeap)-int64(base))>>10)
	if r.peakHeap > base+maxHeapGrowth {
		t.Fatalf("heap in use grew from %d MiB to %d MiB while the client did not read",
			base>>20, r.peakHeap>>20)
	}

	// The guard dropped the connection while the client still read
	// nothing; the client then finds buffered bytes, then EOF (or a
	// reset). Reading first would unblock a guard without a deadline.
	g.waitIdle(t)
	c.expectEOF(10 * time.Second)
}

func TestProtocolViolationsClose1002(t *testing.T) {
	t.Parallel()
	withHeader := func(h frame.Header, payload []byte) []byte {
		h.Masked, h.Mask, h.Length = true, testMask, int64(len(payload))
		b := frame.AppendHeader(nil, h)
		start := len(b)
		b = append(b, payload...)
		frame.MaskBytes(testMask, 0, b[start:])
		return b
	}
	// A 5-byte payload announced with the 16-bit length form.
	longForm := append([]byte{0x81, 0x80 | 126, 0, 5}, testMask[:]...)
	longForm = append(longForm, 'h'^0x0A, 'e'^0x0B, 'l'^0x0C, 'l'^0x0D, 'o'^0x0A)

	tests := []struct {
		name  string
		bytes []byte
		want  *frame.ProtocolError
	}{
		{"unmasked frame",
			frame.AppendFrame(nil, true, frame.OpText, nil, []byte("hi")),
			frame.ErrUnmasked},
		{"reserved opcode 3",
			masked(true, frame.Opcode(3), []byte("x")),
			frame.ErrReservedOpcode},
		{"rsv1 without extension",
			withHeader(frame.Header{Fin: true, Rsv: frame.Rsv1, Op: frame.OpText}, []byte("x")),
			frame.ErrReservedBits},
		{"fragmented ping",
			masked(false, frame.OpPing, []byte("p")),
			frame.ErrControlFragment},
		{"ping of 126 bytes",
			masked(true, frame.OpPing, make([]byte, 126)),
			frame.ErrControlTooLong},
		{"lone continuation",
			masked(true, frame.OpContinuation, []byte("x")),
			frame.ErrUnexpectedCont},
		{"text inside a fragmented message",
			append(masked(false, frame.OpText, []byte("a")), masked(true, frame.OpText, []byte("b"))...),
			frame.ErrExpectedCont},
		{"close code 1005",
			masked(true, frame.OpClose, []byte{0x03, 0xED}),
			frame.ErrInvalidCloseCode},
		{"close payload of one byte",
			masked(true, frame.OpClose, []byte{0x03}),
			frame.ErrBadClosePayload},
		{"16-bit length for 5 bytes", longForm, frame.ErrLengthEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := newEchoRecorder()
			backend := echoBackend(t, rec.handle)
			g := startGuard(t, testConfig(t, upstreamOf(backend), func(c *config.Config) {
				c.Timeouts.PingInterval = 0
			}))
			c := mustDialRaw(t, g.Addr)
			c.writeRaw(tt.bytes)

			// The guard's own reason, not the backend's: the frame was
			// stopped, and the backend was told the client went away.
			c.expectClose(frame.CloseProtocolError, tt.want.Reason, 10*time.Second)
			c.expectEOF(5 * time.Second)
			rec.expectBackendClose(t, websocket.StatusGoingAway)
			g.waitIdle(t)
		})
	}
}

func TestUpstreamDropClose1011(t *testing.T) {
	t.Parallel()
	upstream := rawBackend(t, func(nc net.Conn, _ *bufio.Reader) {
		// Upgraded, then gone without a close frame.
	})
	g := startGuard(t, testConfig(t, upstream, func(c *config.Config) {
		c.Timeouts.PingInterval = 0
	}))
	c := mustDialRaw(t, g.Addr)
	c.expectClose(frame.CloseInternalError, "", 10*time.Second)
	c.expectEOF(5 * time.Second)
	g.waitIdle(t)
}

func TestGuardClosesTornadoWith1001(t *testing.T) {
	t.Parallel()
	tornado := testsupport.StartTornado(t)
	const idle = 300 * time.Millisecond
	g := startGuard(t, testConfig(t, "http://"+tornado.Addr, func(c *config.Config) {
		c.Timeouts.Idle = config.Duration(idle)
		c.Timeouts.PingInterval = 0
	}))
	c, resp := dialRaw(t, g.Addr, "", "/ws")
	if c == nil {
		t.Fatalf("upgrade refused: %s", resp.Status)
	}
	c.expectClose(frame.CloseGoingAway, "idle timeout", 10*time.Second)
	c.write(true, frame.OpClose, frame.AppendClosePayload(nil, frame.CloseGoingAway, ""))

	// Tornado saw a close frame with 1001, not a dropped socket (which it
	// would log as code=None).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tornado.WaitOutput(ctx, "ws close path=/ws code=1001", 1); err != nil {
		t.Fatal(err)
	}
	c.expectEOF(5 * time.Second)
	g.waitIdle(t)
}

func TestMaxLifetimeWithJitter(t *testing.T) {
	t.Parallel()
	backend := echoBackend(t, nil)
	const lifetime, jitter = 400 * time.Millisecond, 0.5
	g := startGuard(t, testConfig(t, upstreamOf(backend), func(c *config.Config) {
		c.Timeouts.MaxLifetime = config.Duration(lifetime)
		c.Timeouts.LifetimeJitter = jitter
		c.Timeouts.Idle = 0
		c.Timeouts.PingInterval = 0
	}))
	// Taken before the handshake, so that it precedes the guard's clock
	// start and the measured age can only be longer than the real one.
	start := time.Now()
	c := mustDialRaw(t, g.Addr)

	// Busy all along: only the lifetime can end it.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				c.nc.Write(masked(true, frame.OpText, []byte("busy")))
			}
		}
	}()
	cf := c.expectClose(frame.CloseGoingAway, "max lifetime", 10*time.Second)
	if age, min := cf.at.Sub(start), time.Duration(float64(lifetime)*(1-jitter)); age < min {
		t.Fatalf("closed after %v, before the shortest jittered lifetime %v", age, min)
	}
}

func TestIdleCounts(t *testing.T) {
	t.Parallel()
	// Longer than in the other idle tests: on a loaded machine (the race
	// detector, other test binaries) loopback traffic was seen to stall
	// for several hundred milliseconds, direct or through the guard.
	const (
		idle     = time.Second
		attempts = 3
	)
	// ticker is a backend that sends a message at once and then every
	// 50 ms, and answers the close handshake.
	ticker := func(ctx context.Context, c *websocket.Conn) {
		ctx = c.CloseRead(ctx)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if c.Write(ctx, websocket.MessageText, []byte("tick")) != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}
	// watch opens a connection and reads the backend's messages until a
	// close frame or until d has passed since the upgrade.
	watch := func(t *testing.T, counts string, d time.Duration) idleWatch {
		backend := echoBackend(t, ticker)
		g := startGuard(t, testConfig(t, upstreamOf(backend), func(c *config.Config) {
			c.Timeouts.Idle = config.Duration(idle)
			c.Timeouts.IdleCounts = counts
			c.Timeouts.PingInterval = 0
		}))
		// Started before the handshake, so that it precedes the guard's
		// idle clock and the measured age can only be longer.
		w := idleWatch{start: time.Now()}
		w.c = mustDialRaw(t, g.Addr)
		opened, last := time.Now(), w.start
		for time.Since(opened) < d {
			h, p, err := w.c.read(10 * time.Second)
			if err != nil {
				t.Fatalf("after %d backend messages: %v", w.ticks, err)
			}
			now := time.Now()
			w.maxGap, last = max(w.maxGap, now.Sub(last)), now
			switch h.Op {
			case frame.OpText:
				w.ticks++
				continue
			case frame.OpClose:
				code, reason, err := frame.ParseClosePayload(p)
				w.close = &closeFrame{code, reason, now}
				if err != nil {
					t.Fatalf("bad close frame: %v", err)
				}
				return w
			}
			t.Fatalf("unexpected %v frame %q", h.Op, p)
		}
		return w
	}

	// A run where stalls could explain the outcome is inconclusive and is
	// retried; a guard that gets the rule wrong fails when nothing stalls.
	t.Run("client", func(t *testing.T) {
		t.Parallel()
		for attempt := 1; ; attempt++ {
			w := watch(t, "client", 10*time.Second)
			if w.close == nil {
				t.Fatal("no close while only the backend sent data")
			}
			if w.close.code != frame.CloseGoingAway || w.close.reason != "idle timeout" {
				t.Fatalf("close %d %q, want 1001 idle timeout", w.close.code, w.close.reason)
			}
			if age := w.close.at.Sub(w.start); age < idle {
				t.Fatalf("closed after %v, before the idle timeout of %v", age, idle)
			}
			if w.ticks > 0 {
				return
			}
			if attempt == attempts {
				t.Fatalf("no backend message arrived before the close, %d times", attempts)
			}
			t.Logf("attempt %d: no backend message before the close; retrying", attempt)
		}
	})

	t.Run("both", func(t *testing.T) {
		t.Parallel()
		for attempt := 1; ; attempt++ {
			w := watch(t, "both", 3*idle)
			if w.close == nil {
				// Open for three idle periods on the backend's data alone.
				w.c.write(true, frame.OpClose, frame.AppendClosePayload(nil, frame.CloseNormal, ""))
				w.c.expectClose(frame.CloseNormal, "", 10*time.Second)
				return
			}
			if w.maxGap < idle/2 || attempt == attempts {
				t.Fatalf("close %d %q after %v and %d backend messages (largest gap %v), want none",
					w.close.code, w.close.reason, w.close.at.Sub(w.start), w.ticks, w.maxGap)
			}
			t.Logf("attempt %d: closed after a %v gap in the backend's messages; retrying",
				attempt, w.maxGap)
		}
	})
}

// idleWatch is what a client saw of a backend that sends on its own.
type idleWatch struct {
	c      *rawClient
	start  time.Time
	ticks  int           // backend messages
	maxGap time.Duration // longest time without a frame, close included
	close  *closeFrame   // nil if none came
}

func TestPingsAndPongsThroughGuard(t *testing.T) {
	t.Parallel()
	const backendPing = "backend-ping"
	type seen struct {
		op      frame.Opcode
		payload string
	}
	frames := make(chan seen, 1024)
	upstream := rawBackend(t, func(nc net.Conn, br *bufio.Reader) {
		defer close(frames)
		nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		ping := frame.AppendFrame(nil, true, frame.OpPing, nil, []byte(backendPing))
		if _, err := nc.Write(ping); err != nil {
			return
		}
		// Record every frame, unmasked, in the order it came.
		r := &rawClient{nc: nc, br: br}
		for {
			h, p, err := r.read(30 * time.Second)
			if err != nil {
				return
			}
			frame.MaskBytes(h.Mask, 0, p)
			frames <- seen{h.Op, string(p)}
		}
	})
	// A pong timeout far longer than the interval: an answered ping must
	// not hold the next one back until the pong deadline.
	const pongTimeout = 30 * time.Second
	g := startGuard(t, testConfig(t, upstream, func(c *config.Config) {
		c.Timeouts.PingInterval = config.Duration(100 * time.Millisecond)
		c.Timeouts.PongTimeout = config.Duration(pongTimeout)
	}))
	c := mustDialRaw(t, g.Addr)

	// Answer everything. The guard sends ping n+1 only once the pong to
	// ping n was consumed, so the fourth ping proves three were.
	guardPings, backendPings := 0, 0
	for guardPings < 4 || backendPings == 0 {
		h, p, err := c.read(pongTimeout / 3)
		if err != nil {
			t.Fatalf("after %d guard pings: %v", guardPings, err)
		}
		if h.Op != frame.OpPing {
			t.Fatalf("unexpected %v frame %q", h.Op, p)
		}
		switch {
		case strings.HasPrefix(string(p), pingPrefix):
			guardPings++
		case string(p) == backendPing:
			backendPings++
		default:
			t.Fatalf("ping payload %q is neither the guard's nor the backend's", p)
		}
		c.write(true, frame.OpPong, p)
	}
	c.write(true, frame.OpPong, []byte("mine"))

	// Frames reach the backend in order: every pong the guard forwarded
	// came before "mine".
	var before []seen
	for f := range frames {
		if f.op == frame.OpPong && f.payload == "mine" {
			break
		}
		before = append(before, f)
	}
	want := []seen{{frame.OpPong, backendPing}}
	if fmt.Sprint(before) != fmt.Sprint(want) {
		t.Fatalf("backend saw %v before the unsolicited pong, want %v", before, want)
	}
}

func TestClientCloseHandshake(t *testing.T) {
	t.Parallel()
	rec := newEchoRecorder()
	backend := echoBackend(t, rec.handle)
	g := startGuard(t, testConfig(t, upstreamOf(backend), func(c *config.Config) {
		c.Timeouts.PingInterval = 0
	}))
	c := mustDialRaw(t, g.Addr)
	c.write(true, frame.OpClose, frame.AppendClosePayload(nil, frame.CloseNormal, "bye"))

	// The backend got the client's close, not one of the guard's, and its
	// answer came back.
	c.expectClose(frame.CloseNormal, "", 10*time.Second)
	c.expectEOF(5 * time.Second)
	var ce websocket.CloseError
	err := rec.wait(t)
	if !errors.As(err, &ce) || ce.Code != websocket.StatusNormalClosure || ce.Reason != "bye" {
		t.Fatalf("backend read ended with %v, want the client's close 1000 \"bye\"", err)
	}
	g.waitIdle(t)
}

// TestMaxFragments shows that an endless message of tiny fragments, which
// would stay under max_size for minutes while each fragment counts as
// activity, is cut at messages.max_fragments, and that a message with
// exactly that many fragments passes.
func TestMaxFragments(t *testing.T) {
	t.Parallel()
	const maxFragments = 8
	backend := echoBackend(t, nil)
	g := startGuard(t, testConfig(t, upstreamOf(backend), func(c *config.Config) {
		c.Messages.MaxFragments = maxFragments
		c.Timeouts.PingInterval = 0
	}))
	c := mustDialRaw(t, g.Addr)

	// maxFragments frames: one message, echoed whole.
	var msg []byte
	for i := range maxFragments {
		op := frame.OpContinuation
		if i == 0 {
			op = frame.OpText
		}
		msg = append(msg, masked(i == maxFragments-1, op, []byte("ab"))...)
	}
	c.writeRaw(msg)
	h, p, err := c.read(10 * time.Second)
	if err != nil || h.Op != frame.OpText || string(p) != strings.Repeat("ab", maxFragments) {
		t.Fatalf("echo of a %d-fragment message: %v %q %v", maxFragments, h.Op, p, err)
	}

	// One fragment more and no end in sight: closed with 1008.
	msg = msg[:0]
	for i := range maxFragments + 1 {
		op := frame.OpContinuation
		if i == 0 {
			op = frame.OpText
		}
		msg = append(msg, masked(false, op, []byte("x"))...)
	}
	c.writeRaw(msg)
	c.expectClose(frame.ClosePolicyViolation, "too many fragments", 10*time.Second)
	c.expectEOF(5 * time.Second)
	g.waitIdle(t)
}
