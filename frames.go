package wsguard

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/frame"
)

// PolicyError is the error a hijacked connection returns from Read and
// Write once a frame-level policy (Options.FramePolicies) has ended it.
// The WebSocket library passes it on to the handler, which sees why the
// connection ended.
type PolicyError struct {
	// Code is the close status sent to the client, or 1006 when none
	// could be sent (a client that stopped reading).
	Code uint16
	// Reason names the rule, as in the close frame: "idle timeout",
	// "max lifetime", "message too big", "too many fragments", "write
	// timeout", or the protocol violation.
	Reason string
}

func (e *PolicyError) Error() string {
	return fmt.Sprintf("wsguard: connection closed by policy: %s (%d)", e.Reason, e.Code)
}

// framePolicy holds the settings a hijacked connection enforces: the
// gateway's frame-level rules that need no relay.
type framePolicy struct {
	idle         time.Duration // 0: off
	idleBoth     bool          // the server's data frames count as activity too
	lifetime     time.Duration // 0: off
	jitter       float64
	write        time.Duration // each Write's deadline; 0: off
	closeWait    time.Duration // how long the close handshake may take
	maxSize      int64         // 0: off
	maxFragments int           // 0: off
}

func newFramePolicy(cfg config.Config) *framePolicy {
	t, m := cfg.Timeouts, cfg.Messages
	return &framePolicy{
		idle:         t.Idle.Std(),
		idleBoth:     t.IdleCounts != "client",
		lifetime:     t.MaxLifetime.Std(),
		jitter:       float64(t.LifetimeJitter),
		write:        t.Write.Std(),
		closeWait:    t.Close.Std(),
		maxSize:      int64(m.MaxSize),
		maxFragments: m.MaxFragments,
	}
}

// Where the server's side of the byte stream stands, as written through
// the connection.
const (
	outUnknown uint8 = iota // nothing written yet
	outHead                 // inside the handshake response
	outFrames               // in frames; the parser knows the boundaries
	outLost                 // unparsable: frame boundaries are unknown
)

// frames is the state of a connection whose frames the Guard watches.
// The library reads and writes through the connection as usual; the
// bytes pass through a frame parser on their way, never copied.
type frames struct {
	pol    *framePolicy
	closes func(rule string) // counts a policy close

	rmu        sync.Mutex // serializes reads; guards the fields below
	pending    *bufio.Reader
	rp         frame.Parser
	rseq       frame.Sequencer
	broken     *PolicyError // a rule the client broke, enforced at the next read
	brokenRule string

	wmu       sync.Mutex // serializes writes; guards out, headCRLF, wp
	out       uint8
	headCRLF  int // bytes of the "\r\n\r\n" ending the head seen so far
	wp        frame.Parser
	userWrite atomic.Int64 // write deadline the library set, unix ns; 0: none

	lastData atomic.Int64 // unix ns of the last data frame
	lifeEnd  int64        // unix ns; 0: no lifetime
	timer    *time.Timer
	ended    atomic.Pointer[PolicyError]
	closed   atomic.Bool // the library closed the connection
}

// watch turns on the frame policies for c. pending holds what the server
// had read beyond the handshake request, which the library must see
// first; headSent says the handshake response went out before the
// hijack (a library that wrote its 101 through the ResponseWriter).
func (c *conn) watch(pol *framePolicy, closes func(string), pending *bufio.Reader, headSent bool) {
	f := &frames{pol: pol, closes: closes, pending: pending}
	f.rseq.FromClient = true
	f.rseq.AnyRSV = true // extensions are the library's to check
	if headSent {
		f.out = outFrames
	}
	now := time.Now().UnixNano()
	f.lastData.Store(now)
	if pol.lifetime > 0 {
		f.lifeEnd = now + int64(float64(pol.lifetime)*(1-pol.jitter*rand.Float64()))
	}
	c.f = f
	// One timer per connection, for whichever deadline comes first; it
	// exists even when none is set, for the close handshake's.
	f.timer = time.AfterFunc(time.Hour, c.tick)
	if next := f.nextDeadline(now); next != 0 {
		f.timer.Reset(time.Duration(next - now))
	} else {
		f.timer.Stop()
	}
}

// nextDeadline returns the earliest of the idle and lifetime deadlines,
// or 0 when neither is set.
func (f *frames) nextDeadline(now int64) int64 {
	var next int64
	if f.pol.idle > 0 {
		next = f.lastData.Load() + int64(f.pol.idle)
	}
	if f.lifeEnd != 0 && (next == 0 || f.lifeEnd < next) {
		next = f.lifeEnd
	}
	return next
}

// tick runs when the connection's deadline passes: it ends an idle or
// expired connection, or closes one whose close handshake took too long.
func (c *conn) tick() {
	f := c.f
	if f.closed.Load() {
		return
	}
	if f.ended.Load() != nil {
		c.closeSocket()
		return
	}
	now := time.Now().UnixNano()
	switch {
	case f.lifeEnd != 0 && now >= f.lifeEnd:
		c.end(&PolicyError{frame.CloseGoingAway, "max lifetime"}, "lifetime")
	case f.pol.idle > 0 && now-f.lastData.Load() >= int64(f.pol.idle):
		c.end(&PolicyError{frame.CloseGoingAway, "idle timeout"}, "idle")
	default:
		f.timer.Reset(time.Duration(f.nextDeadline(now) - now))
	}
}

// readFramed reads for the library and watches the client's frames.
// The frames before one that breaks a rule still reach the library; the
// read after them ends the connection. Once the connection has ended,
// Read returns the PolicyError instead of any bytes: nothing the client
// sends after the guard's close frame reaches the handler.
func (c *conn) readFramed(b []byte) (int, error) {
	f := c.f
	f.rmu.Lock()
	defer f.rmu.Unlock()
	if f.broken != nil {
		c.end(f.broken, f.brokenRule)
	}
	if e := f.ended.Load(); e != nil {
		return 0, e
	}

	var n int
	var err error
	if f.pending != nil && f.pending.Buffered() > 0 {
		n, err = f.pending.Read(b)
	} else {
		f.pending = nil
		n, err = c.Conn.Read(b)
	}
	if n > 0 {
		if keep, e, rule := f.inspect(b[:n]); e != nil {
			f.broken, f.brokenRule = e, rule
			if keep == 0 {
				c.end(e, rule)
				return 0, e
			}
			return keep, nil
		}
	}
	if e := f.ended.Load(); e != nil {
		return 0, e
	}
	return n, err
}

// inspect feeds the client's bytes to the parser. When a frame breaks a
// rule, it returns the rule and how many bytes come before that frame
// in b (0 when its header began in an earlier read).
func (f *frames) inspect(b []byte) (keep int, e *PolicyError, rule string) {
	data := false // a data frame began: activity, stamped once per read
	defer func() {
		if data {
			f.lastData.Store(time.Now().UnixNano())
		}
	}()
	start := 0 // where the frame being parsed began in b
	for pos := 0; pos < len(b); {
		if f.rp.AtBoundary() {
			start = pos
		}
		n, ev, err := f.rp.Feed(b[pos:])
		pos += n
		if err != nil {
			return start, protocolEnding(err), "protocol"
		}
		if ev != frame.EventHeader {
			continue
		}
		h := f.rp.Header()
		data = data || h.Op.IsData()
		if e, rule := f.check(h); e != nil {
			return start, e, rule
		}
	}
	return len(b), nil, ""
}

// check applies the rules to a client frame's header.
func (f *frames) check(h frame.Header) (*PolicyError, string) {
	if _, err := f.rseq.Check(h); err != nil {
		return protocolEnding(err), "protocol"
	}
	if !h.Op.IsData() {
		return nil, "" // pings and pongs are not activity
	}
	if f.pol.maxSize > 0 && f.rseq.MessageSize() > f.pol.maxSize {
		return &PolicyError{frame.CloseTooBig, "message too big"}, "too_big"
	}
	if f.pol.maxFragments > 0 && f.rseq.Fragments() > f.pol.maxFragments {
		return &PolicyError{frame.ClosePolicyViolation, "too many fragments"}, "too_many_fragments"
	}
	return nil, ""
}

func protocolEnding(err error) *PolicyError {
	var pe *frame.ProtocolError
	if errors.As(err, &pe) {
		return &PolicyError{pe.Code(), pe.Reason}
	}
	return &PolicyError{frame.CloseProtocolError, err.Error()}
}

// writeFramed writes for the library under the write deadline and
// follows the server's frames, so that the guard knows where it may put
// a close frame of its own.
func (c *conn) writeFramed(b []byte) (int, error) {
	f := c.f
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if e := f.ended.Load(); e != nil {
		return 0, e
	}

	ours := c.armWrite()
	n, err := c.Conn.Write(b)
	f.follow(b[:n])
	if err != nil && ours && isTimeout(err) {
		e := &PolicyError{frame.CloseAbnormal, "write timeout"}
		c.end(e, "write_timeout")
		return n, e
	}
	return n, err
}

// armWrite sets the write deadline: timeouts.write from now, or the
// library's own deadline when that comes first. It reports whether the
// deadline set is the guard's.
func (c *conn) armWrite() bool {
	f := c.f
	if f.pol.write <= 0 {
		return false
	}
	d := time.Now().Add(f.pol.write).UnixNano()
	if u := f.userWrite.Load(); u != 0 && u < d {
		return false // the library's deadline stands
	}
	c.Conn.SetWriteDeadline(time.Unix(0, d))
	return true
}

// follow tracks the server's side of the stream: the handshake response
// when the library writes it through the connection, then frames.
func (f *frames) follow(b []byte) {
	data := false // a data frame began: activity, stamped once per write
	defer func() {
		if data {
			f.lastData.Store(time.Now().UnixNano())
		}
	}()
	for len(b) > 0 {
		switch f.out {
		case outUnknown:
			// No frame can start with 'H' (0x48 would be a fragmented
			// control frame): the library is writing its 101 response.
			f.out = outFrames
			if b[0] == 'H' {
				f.out = outHead
			}
		case outHead:
			b = f.skipHead(b)
		case outFrames:
			n, ev, err := f.wp.Feed(b)
			b = b[n:]
			if err != nil {
				f.out = outLost
				return
			}
			if ev == frame.EventHeader && f.pol.idleBoth && f.wp.Header().Op.IsData() {
				data = true
			}
		default:
			return
		}
	}
}

// skipHead consumes response head bytes up to and including the blank
// line that ends it, and returns the rest.
func (f *frames) skipHead(b []byte) []byte {
	const end = "\r\n\r\n"
	for i, ch := range b {
		switch {
		case ch == end[f.headCRLF]:
			f.headCRLF++
		case ch == '\r':
			f.headCRLF = 1
		default:
			f.headCRLF = 0
		}
		if f.headCRLF == len(end) {
			f.out = outFrames
			return b[i+1:]
		}
	}
	return nil
}

// end ends the connection under rule: it sends the client a close frame
// with e's code when the server's stream sits between frames, shuts the
// sending side, and gives the close handshake timeouts.close before the
// socket is closed whatever the library does. Only the first call acts.
func (c *conn) end(e *PolicyError, rule string) {
	f := c.f
	if !f.ended.CompareAndSwap(nil, e) {
		return
	}
	f.closes(rule)
	if e.Code != frame.CloseAbnormal && f.wmu.TryLock() {
		if f.out == outFrames && f.wp.AtBoundary() {
			c.Conn.SetWriteDeadline(time.Now().Add(f.pol.closeWait))
			payload := frame.AppendClosePayload(nil, e.Code, e.Reason)
			c.Conn.Write(frame.AppendFrame(nil, true, frame.OpClose, nil, payload))
		}
		f.wmu.Unlock()
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	// Wake a library blocked in Read, so that it sees the error.
	c.Conn.SetReadDeadline(time.Now().Add(f.pol.closeWait))
	if e.Code == frame.CloseAbnormal {
		c.closeSocket() // the client is not reading: nothing to wait for
		return
	}
	f.timer.Reset(f.pol.closeWait)
}

// closeFramed closes for the library. A connection a policy ended may
// still have the guard's close frame on its way to the client, and a
// socket closed with unread bytes is reset, which can destroy that frame
// before the client reads it: so the socket is drained until the client
// closes or the close handshake's time is up, then closed.
func (c *conn) closeFramed() error {
	f := c.f
	if !f.closed.CompareAndSwap(false, true) {
		return net.ErrClosed
	}
	if f.ended.Load() == nil {
		f.timer.Stop()
		err := c.Conn.Close()
		c.release()
		return err
	}
	go c.linger()
	return nil
}

// linger discards what the client still sends, until it closes or the
// read deadline end set passes, and then closes the socket.
func (c *conn) linger() {
	var buf [512]byte
	for {
		if _, err := c.Conn.Read(buf[:]); err != nil {
			break
		}
	}
	c.closeSocket()
}

// closeSocket closes the socket and frees the slot; safe to call more
// than once.
func (c *conn) closeSocket() {
	c.f.timer.Stop()
	c.Conn.Close()
	c.release()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
