package flood

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/wsguard/wsguard/frame"
)

// readBufSize is the read buffer of a held connection. Held connections
// receive little (pings, close frames, echoes of keepalives), so a small
// buffer keeps each one cheap; a large echo just takes more reads.
const readBufSize = 128

// closeWriteTimeout bounds the close frame sent when the run ends, so
// that a server that does not read cannot hold the end up.
const closeWriteTimeout = 100 * time.Millisecond

// errBroken is returned by writes on a connection whose stream an earlier
// write may have cut mid-frame.
var errBroken = errors.New("flood: an earlier write failed")

// conn is one upgraded connection, run by one goroutine that reads, and
// writes what its scenario schedules when a read deadline expires. It is
// not safe for concurrent use.
type conn struct {
	r  *run
	nc net.Conn
	sc Scenario
	g  int // the connection's index in the run

	p       frame.Parser
	ctlOp   frame.Opcode // opcode of the control frame being read
	ctlN    uint8        // its payload bytes so far
	inCtl   bool         // a control frame's payload is being read
	closing bool         // a close frame was sent; the next one answers it
	broken  bool         // a write failed: send nothing more

	next time.Time    // when the scenario sends next; zero for never
	pong *pendingPong // SlowPongs' answer in waiting

	sent, recv Traffic // not yet given to the recorder

	ctl [frame.MaxControlPayload]byte
	buf [readBufSize]byte
}

// pendingPong is a pong SlowPongs owes: the payload of the latest ping,
// due PongDelay after it arrived.
type pendingPong struct {
	due     time.Time // zero when nothing is owed
	n       int
	payload [frame.MaxControlPayload]byte
}

// run holds the connection until the run ends or the server ends it.
func (c *conn) run() {
	defer c.r.wg.Done()
	var early bool
	if c.sc == SlowReader {
		early = c.slowRead()
	} else {
		early = c.hold()
	}
	c.release()
	if early {
		c.r.reconnect(c.g, c.sc)
	}
}

// release closes the socket and records the traffic left.
func (c *conn) release() {
	c.r.live.remove(c.nc)
	c.nc.Close()
	c.r.rec.ended()
	c.flush()
}

// flush gives the traffic counted so far to the recorder.
func (c *conn) flush() {
	c.r.rec.traffic(c.sc, c.sent, c.recv)
	c.sent, c.recv = Traffic{}, Traffic{}
}

// hold reads until the run ends, answering the server and sending what
// the scenario schedules. It returns true when the server ended the
// connection first.
func (c *conn) hold() (early bool) {
	c.start(time.Now())
	for {
		c.flush()
		if c.r.over() {
			c.finish()
			return false
		}
		c.nc.SetReadDeadline(c.deadline())
		// stop may have set a past deadline just before the line above.
		if c.r.stopped.Load() {
			c.finish()
			return false
		}
		n, err := c.nc.Read(c.buf[:])
		if n > 0 && c.consume(c.buf[:n]) {
			return true
		}
		switch {
		case err == nil:
		case c.r.over():
			c.finish()
			return false
		case !isTimeout(err):
			c.r.rec.closedByServer(c.sc, frame.CloseAbnormal)
			return true
		default:
			c.due(time.Now())
		}
	}
}

// deadline is when the connection next has something to do: the end of
// the run at the latest.
func (c *conn) deadline() time.Time {
	d := earliest(c.r.end, c.next)
	if c.pong != nil {
		d = earliest(d, c.pong.due)
	}
	return d
}

// start does what the scenario does on opening and schedules the rest.
func (c *conn) start(now time.Time) {
	cfg := &c.r.cfg
	switch c.sc {
	case PingKeepalive, DataKeepalive:
		c.next = now.Add(cfg.PingEvery)
	case Oversize:
		c.sendOversize()
		c.next = now.Add(cfg.PingEvery)
	case FragmentFlood:
		if c.writeFrame(false, frame.OpText, c.r.fragment) == nil {
			c.sent.DataFrames++
		}
		c.next = now.Add(cfg.FragmentEvery)
	}
}

// due does what is due at now and schedules the next time.
func (c *conn) due(now time.Time) {
	if c.pong != nil && !c.pong.due.IsZero() && !now.Before(c.pong.due) {
		c.pong.due = time.Time{}
		if c.writeFrame(true, frame.OpPong, c.pong.payload[:c.pong.n]) == nil {
			c.sent.Pongs++
		}
	}
	if c.next.IsZero() || now.Before(c.next) {
		return
	}
	every := c.r.cfg.PingEvery
	switch c.sc {
	case PingKeepalive:
		if c.writeFrame(true, frame.OpPing, keepalivePayload) == nil {
			c.sent.Pings++
		}
	case DataKeepalive:
		if c.writeFrame(true, frame.OpText, keepalivePayload) == nil {
			c.sent.DataFrames++
		}
	case Oversize:
		c.sendOversize()
	case FragmentFlood:
		every = c.r.cfg.FragmentEvery
		if c.writeFrame(false, frame.OpContinuation, c.r.fragment) == nil {
			c.sent.DataFrames++
		}
	}
	// Keep the cadence; after a stall, start again from now.
	c.next = c.next.Add(every)
	if c.next.Before(now) {
		c.next = now.Add(every)
	}
	if c.broken {
		c.next = time.Time{}
	}
}

// keepalivePayload is the payload of keepalive pings and messages.
var keepalivePayload = []byte("k")

// finish ends a connection held to the end of the run with a close frame
// (1000), unless its stream is broken, and counts it as held.
func (c *conn) finish() {
	c.writeClose(frame.CloseNormal, "flood over")
	c.r.rec.heldAtEnd(c.sc)
}

// consume feeds bytes read from the server through the frame parser and
// acts on control frames. It returns true when the connection has ended:
// the server closed it or broke the protocol.
func (c *conn) consume(b []byte) (ended bool) {
	c.recv.Bytes += int64(len(b))
	for len(b) > 0 {
		n, ev, err := c.p.Feed(b)
		if err == nil && ev == frame.EventHeader && c.p.Header().Masked {
			err = frame.ErrMasked
		}
		if err != nil {
			c.r.rec.failed(c.sc, "protocol_error")
			c.writeClose(frame.CloseProtocolError, "")
			return true
		}
		chunk := b[:n]
		b = b[n:]
		switch ev {
		case frame.EventHeader:
			h := c.p.Header()
			c.inCtl = h.Op.IsControl()
			c.ctlOp, c.ctlN = h.Op, 0
			if !c.inCtl {
				c.recv.DataFrames++
			}
		case frame.EventPayload:
			if c.inCtl {
				c.ctlN += uint8(copy(c.ctl[c.ctlN:], chunk))
			}
		}
		if ev != frame.EventNone && c.inCtl && c.p.FrameDone() {
			c.inCtl = false
			if c.control(c.ctlOp, c.ctl[:c.ctlN]) {
				return true
			}
		}
	}
	return false
}

// control acts on a complete control frame from the server. It returns
// true for a close frame.
func (c *conn) control(op frame.Opcode, payload []byte) (ended bool) {
	switch op {
	case frame.OpPing:
		c.recv.Pings++
		switch c.sc {
		case IgnorePings:
		case SlowPongs:
			if c.pong == nil {
				c.pong = new(pendingPong)
			}
			// A newer ping replaces the one waiting: RFC 6455 5.5.3
			// lets a pong answer only the most recent ping.
			c.pong.n = copy(c.pong.payload[:], payload)
			c.pong.due = time.Now().Add(c.r.cfg.PongDelay)
		default:
			if c.writeFrame(true, frame.OpPong, payload) == nil {
				c.sent.Pongs++
			}
		}
	case frame.OpPong:
		c.recv.Pongs++
	case frame.OpClose:
		code, _, err := frame.ParseClosePayload(payload)
		if err != nil && len(payload) >= 2 {
			code = uint16(payload[0])<<8 | uint16(payload[1])
		}
		if c.closing {
			return true // the answer to ours
		}
		c.r.rec.closedByServer(c.sc, code)
		if code == frame.CloseNoStatus {
			code = frame.CloseNormal
		}
		c.writeClose(code, "")
		return true
	}
	return false
}

// writeClose sends a close frame with code and reason.
func (c *conn) writeClose(code uint16, reason string) {
	var p [frame.MaxControlPayload]byte
	c.closing = true
	c.writeFrame(true, frame.OpClose, frame.AppendClosePayload(p[:0], code, reason))
}

// writeFrame sends one masked frame.
func (c *conn) writeFrame(fin bool, op frame.Opcode, payload []byte) error {
	if c.broken {
		return errBroken
	}
	mask := newMask()
	b := make([]byte, 0, frame.MaxHeaderSize+len(payload))
	b = frame.AppendFrame(b, fin, op, &mask, payload)
	return c.write(b, c.writeDeadline())
}

// writeDeadline is the deadline of a write starting now: WriteTimeout
// away, but no later than the end of the run; after the end, the short
// time left to say goodbye.
func (c *conn) writeDeadline() time.Time {
	now := time.Now()
	if c.r.over() {
		return now.Add(closeWriteTimeout)
	}
	return earliest(now.Add(c.r.cfg.WriteTimeout), c.r.end)
}

// write writes b by deadline. A failed write breaks the connection's
// stream; one that timed out before the run's end counts as stalled.
func (c *conn) write(b []byte, deadline time.Time) error {
	c.nc.SetWriteDeadline(deadline)
	n, err := c.nc.Write(b)
	c.sent.Bytes += int64(n)
	if err != nil {
		c.broken = true
		if isTimeout(err) && !c.r.over() {
			c.r.rec.stalled(c.sc)
		}
	}
	return err
}

// newMask returns a random masking key.
func newMask() [4]byte {
	u := rand.Uint32()
	return [4]byte{byte(u), byte(u >> 8), byte(u >> 16), byte(u >> 24)}
}

// oversizeChunk is the piece of an Oversize message masked and written at
// a time.
const oversizeChunk = 32 << 10

var chunkBufs = sync.Pool{New: func() any { b := make([]byte, oversizeChunk); return &b }}

// sendOversize sends one binary message of MessageSize bytes in a single
// frame, masking it a chunk at a time.
func (c *conn) sendOversize() {
	if c.broken {
		return
	}
	size := c.r.cfg.MessageSize
	mask := newMask()
	deadline := c.writeDeadline()
	h := frame.AppendHeader(nil, frame.Header{
		Fin: true, Op: frame.OpBinary, Masked: true, Mask: mask, Length: size,
	})
	if c.write(h, deadline) != nil {
		return
	}
	bp := chunkBufs.Get().(*[]byte)
	defer chunkBufs.Put(bp)
	pos := 0
	for left := size; left > 0; {
		chunk := (*bp)[:min(left, oversizeChunk)]
		for i := range chunk {
			chunk[i] = 'o'
		}
		pos = frame.MaskBytes(mask, pos, chunk)
		if c.write(chunk, deadline) != nil {
			return
		}
		left -= int64(len(chunk))
	}
	c.sent.DataFrames++
}

// slowRead sends the reader request every ReaderEvery and never reads.
// It returns true when a write found the connection gone.
func (c *conn) slowRead() (early bool) {
	cfg := &c.r.cfg
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		if c.r.over() {
			c.finish()
			return false
		}
		if !c.broken {
			err := c.writeFrame(true, frame.OpText, c.r.readerReq)
			switch {
			case err == nil:
				c.sent.DataFrames++
			case !isTimeout(err) && !c.r.over():
				// Unread, the server's close frame is lost; what is
				// left is a connection that no longer takes writes.
				c.r.rec.failed(c.sc, "write_error")
				return true
			}
		}
		c.flush()
		wake := c.r.end
		if !c.broken {
			wake = earliest(time.Now().Add(cfg.ReaderEvery), wake)
		}
		t.Reset(time.Until(wake))
		select {
		case <-t.C:
		case <-c.r.stopCh:
		}
	}
}
