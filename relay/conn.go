package relay

import (
	"crypto/tls"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsguard/wsguard/admission"
	"github.com/wsguard/wsguard/frame"
)

// Directions of a proxied connection, indexing conn.pumps and conn.outs.
const (
	fromClient   = 0 // pumps[fromClient] reads the client, writes outs[toUpstream]
	fromUpstream = 1 // pumps[fromUpstream] reads the upstream, writes outs[toClient]
	toUpstream   = 0
	toClient     = 1
)

// Who ended a connection, for metrics and logs.
const (
	byClient   = "client"
	byUpstream = "upstream"
	byGuard    = "guard"
)

// pingPrefix starts the payload of every ping the guard sends, so that
// the matching pongs can be told from answers to the backend's pings.
const pingPrefix = "wsguard:"

// conn is one proxied WebSocket connection. While idle it owns no
// goroutine and no buffer: the poller wakes a pump when a socket becomes
// readable, and one timer carries the earliest of its deadlines.
type conn struct {
	srv   *Server
	route *route
	lease admission.Lease
	slot  uint32 // poller slot and generation
	gen   int32

	pumps [2]pump
	outs  [2]outStream

	start    int64        // unix nanoseconds of the upgrade, set before register
	fairPos  [2]int       // index in Server.fair and Server.anon, -1 when out; guarded by Server.connsMu
	released atomic.Bool  // the lease went back, by connDone or by an eviction
	running  atomic.Bool  // the 101 went out and the timers run: the conn may be evicted
	lastData atomic.Int64 // unix nanoseconds of the last data frame that counts as activity
	closing  atomic.Bool  // a close handshake is under way
	finished atomic.Bool  // sockets closed, lease released

	mu          sync.Mutex // guards the fields below
	timer       *time.Timer
	lifetimeEnd int64 // 0: no lifetime limit
	nextPing    int64 // 0: the guard does not ping
	pongDue     int64 // 0: no guard ping awaits its pong
	closeDue    int64 // while closing: when to give up on the close handshake
	pingSeq     uint32
	closeCode   uint16 // code the guard sent the client, or 0
	closeBy     string
	closeReason string

	prev, next *conn // Server.conns list, guarded by Server.connsMu
}

// outStream is the write side of one socket. Frames from the opposite
// pump and frames the guard makes (pings, closes) meet here; the guard's
// own frames go in only between frames of the stream.
type outStream struct {
	mu          sync.Mutex // guards the fields below and serialises writes
	nc          net.Conn   // what frames are written to: the socket, or the TLS conn over it
	pendingPing []byte
	tls         bool // nc is a *tls.Conn
	masked      bool // frames the guard writes here are masked (to the upstream)
	mid         bool // the bytes written so far end inside a frame
	closeSent   bool // a close frame went out; nothing may follow
}

func (c *conn) pol() *policy { return c.route.policy }

// touch records data activity at time now.
func (c *conn) touch(now int64) { c.lastData.Store(now) }

// startTimers sets the connection's deadlines and arms its timer.
func (c *conn) startTimers(now int64) {
	p := c.pol()
	c.lastData.Store(now)
	if p.maxLifetime > 0 {
		life := float64(p.maxLifetime) * (1 - p.lifetimeJitter*rand.Float64())
		c.lifetimeEnd = now + int64(life)
	}
	if p.pingInterval > 0 {
		c.nextPing = now + int64(p.pingInterval)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timer = time.AfterFunc(time.Duration(c.nextDeadlineLocked(now)-now), c.onTimer)
}

// nextDeadlineLocked returns the earliest deadline. c.mu is held.
func (c *conn) nextDeadlineLocked(now int64) int64 {
	if c.closing.Load() {
		return c.closeDue
	}
	next := now + int64(time.Hour)
	consider := func(t int64) {
		if t != 0 && t < next {
			next = t
		}
	}
	consider(c.lifetimeEnd)
	if idle := c.pol().idle; idle > 0 {
		consider(c.lastData.Load() + int64(idle))
	}
	if c.pongDue != 0 {
		consider(c.pongDue)
	} else {
		consider(c.nextPing)
	}
	return next
}

// onTimer runs when the earliest deadline may have passed. Deadlines that
// moved since (new data, an answered ping) just re-arm the timer.
func (c *conn) onTimer() {
	if c.finished.Load() {
		return
	}
	now := time.Now().UnixNano()
	p := c.pol()

	c.mu.Lock()
	var ping []byte
	var rule string
	switch {
	case c.closing.Load():
		if now >= c.closeDue {
			c.mu.Unlock()
			c.finish()
			return
		}
	case c.lifetimeEnd != 0 && now >= c.lifetimeEnd:
		rule = "max lifetime"
	case p.idle > 0 && now-c.lastData.Load() >= int64(p.idle):
		rule = "idle timeout"
	case c.pongDue != 0 && now >= c.pongDue:
		rule = "pong timeout"
	case c.pongDue == 0 && c.nextPing != 0 && now >= c.nextPing:
		c.pingSeq++
		ping = c.pingFrame(c.pingSeq)
		c.pongDue = now + int64(p.pongTimeout)
		c.nextPing = now + int64(p.pingInterval)
	}
	if rule == "" {
		c.timer.Reset(time.Duration(c.nextDeadlineLocked(now) - now))
	}
	c.mu.Unlock()

	switch rule {
	case "":
		if ping != nil {
			c.srv.metrics.pingsSent.Inc()
			if err := c.outs[toClient].inject(ping, p.write); err != nil {
				c.writeFailed(toClient, err)
			}
		}
	case "pong timeout":
		// The client is unresponsive: say why, best effort, and go.
		c.shutdown(frame.CloseGoingAway, frame.CloseGoingAway, rule, true)
	default:
		c.shutdown(frame.CloseGoingAway, frame.CloseGoingAway, rule, false)
	}
}

// pingFrame builds the guard's ping number seq.
func (c *conn) pingFrame(seq uint32) []byte {
	var payload [len(pingPrefix) + 8]byte
	copy(payload[:], pingPrefix)
	var n [4]byte
	n[0], n[1], n[2], n[3] = byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq)
	hex.Encode(payload[len(pingPrefix):], n[:])
	return frame.AppendFrame(make([]byte, 0, 2+len(payload)), true, frame.OpPing, nil, payload[:])
}

// isGuardPong reports whether an unmasked pong payload answers one of
// the guard's pings, and clears the pong deadline if it answers the last.
func (c *conn) isGuardPong(payload []byte) bool {
	if len(payload) != len(pingPrefix)+8 || string(payload[:len(pingPrefix)]) != pingPrefix {
		return false
	}
	var n [4]byte
	if _, err := hex.Decode(n[:], payload[len(pingPrefix):]); err != nil {
		return false
	}
	seq := uint32(n[0])<<24 | uint32(n[1])<<16 | uint32(n[2])<<8 | uint32(n[3])
	c.mu.Lock()
	if seq == c.pingSeq && c.pongDue != 0 {
		c.pongDue = 0
		c.srv.metrics.pongsReceived.Inc()
		// The timer waits for the pong deadline, which may come after
		// the next ping is due (pong_timeout > ping_interval).
		now := time.Now().UnixNano()
		c.timer.Reset(time.Duration(c.nextDeadlineLocked(now) - now))
	}
	c.mu.Unlock()
	return true
}

// shutdown starts the guard's close of the connection: a close frame to
// each side (clientCode to the client, upCode to the upstream), then,
// unless hard, a wait of timeouts.close for both answers before the
// sockets close. Only the first call has any effect.
func (c *conn) shutdown(clientCode, upCode uint16, reason string, hard bool) {
	if !c.closing.CompareAndSwap(false, true) {
		if hard {
			c.finish()
		}
		return
	}
	p := c.pol()
	c.mu.Lock()
	c.closeCode, c.closeBy, c.closeReason = clientCode, byGuard, reason
	c.mu.Unlock()

	c.outs[toClient].sendClose(clientCode, reason, p.closeTimeout)
	c.outs[toUpstream].sendClose(upCode, reason, p.closeTimeout)
	if hard {
		c.finish()
		return
	}
	now := time.Now().UnixNano()
	c.mu.Lock()
	c.closeDue = now + int64(p.closeTimeout)
	if c.timer != nil {
		c.timer.Reset(p.closeTimeout)
	}
	c.mu.Unlock()
}

// peerGone ends the connection after side dir's socket reached EOF or
// failed: the other side gets a close frame unless one already went to
// it, and both sockets close.
func (c *conn) peerGone(dir int) {
	p := c.pol()
	if dir == fromClient {
		c.setCloser(byClient, "client went away")
		c.outs[toUpstream].sendClose(frame.CloseGoingAway, "client went away", p.closeTimeout)
	} else {
		c.setCloser(byUpstream, "upstream closed")
		if c.outs[toClient].sendClose(frame.CloseInternalError, "upstream closed", p.closeTimeout) {
			c.setCloseCode(frame.CloseInternalError)
		}
	}
	c.finish()
}

// writeFailed ends the connection after a write to side to failed, most
// often a client that stopped reading (a timeout) or that went away
// while data was on its way to it (any other error).
func (c *conn) writeFailed(to int, err error) {
	p := c.pol()
	switch {
	case to == toClient && isTimeout(err):
		c.srv.metrics.slowReaders.Inc()
		c.setCloseCode(frame.ClosePolicyViolation)
		c.setCloser(byGuard, "write timeout")
		c.outs[toUpstream].sendClose(frame.CloseGoingAway, "client too slow", p.closeTimeout)
	case to == toClient:
		c.setCloser(byClient, "client went away")
		c.outs[toUpstream].sendClose(frame.CloseGoingAway, "client went away", p.closeTimeout)
	default:
		c.setCloser(byUpstream, "upstream write failed")
		c.setCloseCode(frame.CloseInternalError)
		c.outs[toClient].sendClose(frame.CloseInternalError, "upstream failed", p.closeTimeout)
	}
	c.closing.Store(true)
	c.finish()
}

func (c *conn) setCloseCode(code uint16) {
	c.mu.Lock()
	if c.closeCode == 0 {
		c.closeCode = code
	}
	c.mu.Unlock()
}

func (c *conn) setCloser(by, reason string) {
	c.mu.Lock()
	if c.closeBy == "" {
		c.closeBy, c.closeReason = by, reason
	}
	c.mu.Unlock()
}

// finish closes both sockets and returns the connection's slot. Only the
// first call has any effect.
func (c *conn) finish() {
	if !c.finished.CompareAndSwap(false, true) {
		return
	}
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	c.srv.poller.remove(c)
	// The sockets, not the TLS conns over them: a TLS close_notify could
	// wait on a client that does not read, and the WebSocket close
	// handshake has already said what close_notify would.
	c.outs[toClient].socket().Close()
	c.outs[toUpstream].socket().Close()
	c.srv.connDone(c)
}

// inject writes a frame the guard made, now if the stream sits between
// frames, else right after the frame in progress (pings only).
func (o *outStream) inject(f []byte, timeout time.Duration) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closeSent {
		return nil
	}
	if o.mid {
		o.pendingPing = f
		return nil
	}
	return o.writeLocked(f, timeout)
}

// sendClose writes a close frame unless one went out already or the
// stream is inside a frame, where a close cannot go, and reports whether
// it did. Write errors are ignored: the sockets close right after,
// whatever the peer does.
func (o *outStream) sendClose(code uint16, reason string, timeout time.Duration) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closeSent || o.mid {
		return false
	}
	var buf [frame.MaxHeaderSize + frame.MaxControlPayload]byte
	payload := frame.AppendClosePayload(buf[frame.MaxHeaderSize:frame.MaxHeaderSize], code, reason)
	var f []byte
	if o.masked {
		key := rand.Uint32()
		f = frame.AppendFrame(buf[:0:frame.MaxHeaderSize], true, frame.OpClose,
			&[4]byte{byte(key), byte(key >> 8), byte(key >> 16), byte(key >> 24)}, payload)
	} else {
		f = frame.AppendFrame(buf[:0:frame.MaxHeaderSize], true, frame.OpClose, nil, payload)
	}
	o.closeSent = true
	_ = o.writeLocked(f, timeout)
	return true
}

// socket returns the TCP socket under o.nc; closing it ends the
// connection at once, without waiting on a TLS close_notify.
func (o *outStream) socket() net.Conn {
	if tc, ok := o.nc.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return o.nc
}

// writeSegsLocked writes segs with one writev, or, over TLS, gathered
// into as few records as fit: crypto/tls would make a record (and a
// write call) of each segment.
//
// bufs is the caller's scratch net.Buffers, kept so that the writev's
// list does not escape to the heap on every call; it is left empty.
func (o *outStream) writeSegsLocked(segs [][]byte, bufs *net.Buffers, timeout time.Duration) error {
	o.nc.SetWriteDeadline(time.Now().Add(timeout))
	if !o.tls {
		*bufs = segs
		_, err := bufs.WriteTo(o.nc)
		*bufs = nil
		return err
	}
	gb := gatherPool.Get().(*[]byte)
	defer gatherPool.Put(gb)
	b := (*gb)[:0]
	for _, seg := range segs {
		if len(b)+len(seg) > cap(b) && len(b) > 0 {
			if _, err := o.nc.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
		if len(seg) > cap(b) {
			if _, err := o.nc.Write(seg); err != nil {
				return err
			}
			continue
		}
		b = append(b, seg...)
	}
	if len(b) > 0 {
		_, err := o.nc.Write(b)
		return err
	}
	return nil
}

// gatherPool holds the buffers writeSegsLocked gathers TLS writes in,
// one maximum record's worth each.
var gatherPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 16<<10)
	return &b
}}

func (o *outStream) writeLocked(b []byte, timeout time.Duration) error {
	o.nc.SetWriteDeadline(time.Now().Add(timeout))
	_, err := o.nc.Write(b)
	return err
}
