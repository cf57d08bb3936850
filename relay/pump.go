package relay

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsguard/wsguard/admission"
	"github.com/wsguard/wsguard/frame"
)

// readBufSize is the size of the pooled read buffers. A pump holds one
// only while its socket has bytes to read.
const readBufSize = 16 << 10

// maxReadsPerWake bounds how long one pump keeps a busy socket before it
// lets the poller schedule others.
const maxReadsPerWake = 16

// rbuf is a pooled read buffer with the segment list and scratch space
// that forwarding it needs.
type rbuf struct {
	b       []byte
	segs    [][]byte
	scratch []byte      // header copies and control frames, never regrown
	bufs    net.Buffers // what flush hands to writev, kept here so it does not escape per call

	// readFn reads into b and leaves the result in n and err. It is made
	// once per pooled buffer: a closure made per read would cost three
	// allocations each time (RawConn.Read takes it through an interface).
	readFn func(fd uintptr) bool
	n      int
	err    error
}

var rbufPool = sync.Pool{New: func() any {
	rb := &rbuf{
		b:       make([]byte, readBufSize),
		segs:    make([][]byte, 0, 64),
		scratch: make([]byte, 0, 1024),
	}
	rb.readFn = rb.readFD
	return rb
}}

// readFD is rb.readFn: one read of fd into b, retried on EINTR.
func (rb *rbuf) readFD(fd uintptr) bool {
	for {
		rb.n, rb.err = syscall.Read(int(fd), rb.b)
		if rb.err != syscall.EINTR {
			return true
		}
	}
}

// add appends a range to forward, skipping empty ones so that a chunk of
// dropped or collected frames does not become a writev of empty vectors.
func (rb *rbuf) add(seg []byte) {
	if len(seg) > 0 {
		rb.segs = append(rb.segs, seg)
	}
}

// ctlBuf collects one control frame that the guard must read whole.
type ctlBuf struct {
	n int
	b [frame.MaxHeaderSize + frame.MaxControlPayload]byte
}

var ctlPool = sync.Pool{New: func() any { return new(ctlBuf) }}

// action is what a pump does with the frame in progress.
type action uint8

const (
	actForward action = iota // pass the bytes on untouched
	actCollect               // gather the whole frame, decide at its end
	actDrop                  // discard it
)

// verdict is how processing a chunk ended.
type verdict uint8

const (
	vContinue verdict = iota // all consumed; keep reading
	vThrottle                // stopped before a message over the rate
	vStop                    // the connection is ending
)

// pump moves frames from one socket to the other side's outStream. Only
// one goroutine runs a pump at a time: the poller's one-shot events and
// the throttle timer hand it over.
//
// NOTE: every idle connection holds two pumps, so field order matters:
// the small fields are grouped at the end to leave no padding.
type pump struct {
	c   *conn
	dir int
	raw syscall.RawConn // the TCP socket epoll waits on
	out *outStream

	p   frame.Parser
	seq frame.Sequencer
	ctl *ctlBuf

	bucket admission.Bucket // client message rate

	held    *rbuf // bytes read but not yet processed (leftovers, throttling)
	heldOff int
	heldLen int

	registered bool
	act        action
	sawClose   atomic.Bool // this pump's peer sent a close frame

	// handoff orders one run of the pump before the next. Runs hand over
	// through epoll or a timer, which the Go memory model does not see;
	// a release here and an acquire at the start of run make the order
	// explicit (and visible to the race detector).
	handoff atomic.Uint32
}

// run handles one readiness event (or the start of the connection, or
// the end of a throttle wait) and exits; an idle pump has no goroutine.
func (pm *pump) run() {
	pm.handoff.Load()
	c := pm.c
	if c.finished.Load() {
		pm.dropHeld()
		return
	}
	if rb := pm.held; rb != nil {
		off, end := pm.heldOff, pm.heldLen
		pm.held = nil
		if !pm.consume(rb, off, end) {
			return
		}
		rbufPool.Put(rb)
		if pm.tlsConn() != nil {
			// Held bytes came from a Read that left crypto/tls empty
			// (see tlsHeadBuf and recordConn): wait on the socket
			// rather than block in a Read, holding a buffer, until the
			// peer sends again.
			pm.arm()
			return
		}
	}
	rb := rbufPool.Get().(*rbuf)
	for range maxReadsPerWake {
		n, err := pm.read(rb)
		if err == syscall.EAGAIN {
			break
		}
		if n <= 0 || err != nil {
			rbufPool.Put(rb)
			c.peerGone(pm.dir)
			return
		}
		if !pm.consume(rb, 0, n) {
			return
		}
		// Over TLS one record per wake-up: a second Read could block
		// on a record that has not arrived, and epoll reports at once
		// if the next one is there.
		if n < len(rb.b) || pm.tlsConn() != nil {
			break
		}
	}
	rbufPool.Put(rb)
	pm.arm()
}

// consume processes rb.b[off:end]. It returns false if the pump must not
// go on: the connection ends, or it throttles and keeps rb as held.
func (pm *pump) consume(rb *rbuf, off, end int) bool {
	n, v, wait := pm.process(rb, rb.b[off:end])
	switch v {
	case vStop:
		rbufPool.Put(rb)
		return false
	case vThrottle:
		pm.held, pm.heldOff, pm.heldLen = rb, off+n, end
		pm.c.srv.metrics.throttled.Inc()
		pm.handoff.Add(1)
		time.AfterFunc(wait, pm.run)
		return false
	}
	return true
}

func (pm *pump) arm() {
	c := pm.c
	if c.finished.Load() {
		return
	}
	pm.handoff.Add(1)
	op := syscall.EPOLL_CTL_MOD
	if !pm.registered {
		op, pm.registered = syscall.EPOLL_CTL_ADD, true
	}
	if err := c.srv.poller.ctl(op, c, pm.dir); err != nil && !c.finished.Load() {
		c.peerGone(pm.dir)
	}
}

func (pm *pump) dropHeld() {
	if pm.held != nil {
		rbufPool.Put(pm.held)
		pm.held = nil
	}
	if pm.ctl != nil {
		ctlPool.Put(pm.ctl)
		pm.ctl = nil
	}
}

// tlsConn returns the TLS connection pm reads through, or nil for a
// plain socket. It is the one the opposite stream writes to: keeping it
// there only saves every connection two pointers.
func (pm *pump) tlsConn() *tls.Conn {
	tc, _ := pm.c.outs[1-pm.dir].nc.(*tls.Conn)
	return tc
}

// read makes one non-blocking read attempt into rb.b. Over TLS it reads
// one record, which blocks only until the rest of a record that has begun
// to arrive comes in (or the connection is closed).
func (pm *pump) read(rb *rbuf) (int, error) {
	if tc := pm.tlsConn(); tc != nil {
		n, err := tc.Read(rb.b)
		if n > 0 {
			return n, nil
		}
		if errors.Is(err, io.EOF) {
			return 0, nil
		}
		return n, err
	}
	if err := pm.raw.Read(rb.readFn); err != nil {
		return 0, err
	}
	return rb.n, rb.err
}

// process forwards the frames in b under the route's policy. Bytes to
// forward are gathered as ranges of b and written with one writev;
// nothing is copied except headers split across reads and the control
// frames the guard inspects.
func (pm *pump) process(rb *rbuf, b []byte) (consumed int, v verdict, wait time.Duration) {
	c := pm.c
	now := time.Now()
	rb.segs, rb.scratch = rb.segs[:0], rb.scratch[:0]
	pos, run := 0, 0
	frames := 0
	finishAfter := false

	for pos < len(b) {
		if pm.dir == fromClient && pm.p.AtBoundary() && startsMessage(b[pos]) {
			if ok, w := pm.takeMessageToken(now); !ok {
				rb.add(b[run:pos])
				if !pm.flush(rb) {
					return pos, vStop, 0
				}
				if c.pol().overRateClose {
					c.shutdown(frame.ClosePolicyViolation, frame.CloseGoingAway, "message rate", true)
					return pos, vStop, 0
				}
				return pos, vThrottle, w
			}
		}
		startsHere := pm.p.AtBoundary()
		n, ev, err := pm.p.Feed(b[pos:])
		if err != nil {
			rb.add(b[run:pos])
			pm.end(rb, pm.violationEnding(err))
			return pos, vStop, 0
		}
		switch ev {
		case frame.EventNone:
			// A header continues in the next read; the parser keeps it.
			rb.add(b[run:pos])
			run = pos + n
		case frame.EventHeader:
			frames++
			act, end := pm.onHeader(pm.p.Header(), now.UnixNano())
			if end != nil {
				rb.add(b[run:pos])
				pm.end(rb, end)
				return pos, vStop, 0
			}
			pm.act = act
			switch {
			case act == actForward && startsHere:
				// The header is in b and joins the run.
			case act == actForward:
				rb.add(b[run:pos])
				if !pm.addCopy(rb, pm.p.HeaderBytes()) {
					return pos, vStop, 0
				}
				run = pos + n
			case act == actCollect:
				rb.add(b[run:pos])
				pm.ctl = ctlPool.Get().(*ctlBuf)
				pm.ctl.n = copy(pm.ctl.b[:], pm.p.HeaderBytes())
				run = pos + n
			default:
				rb.add(b[run:pos])
				run = pos + n
			}
		case frame.EventPayload:
			if pm.act != actForward {
				rb.add(b[run:pos])
				if pm.act == actCollect {
					pm.ctl.n += copy(pm.ctl.b[pm.ctl.n:], b[pos:pos+n])
				}
				run = pos + n
			}
		}
		pos += n
		if ev == frame.EventNone || !pm.p.FrameDone() {
			continue
		}
		if pm.act != actCollect {
			continue
		}
		rb.add(b[run:pos])
		run = pos
		ctl, end := pm.onControl()
		if end != nil {
			pm.end(rb, end)
			return pos, vStop, 0
		}
		if ctl.forward && !pm.addCopy(rb, pm.ctl.b[:pm.ctl.n]) {
			return pos, vStop, 0
		}
		ctlPool.Put(pm.ctl)
		pm.ctl = nil
		if ctl.isClose {
			// Write up to the close now: nothing may follow it.
			if !pm.flush(rb) {
				return pos, vStop, 0
			}
			pm.out.mu.Lock()
			pm.out.closeSent = true
			pm.out.mu.Unlock()
		}
		finishAfter = finishAfter || ctl.finish
	}
	rb.add(b[run:pos])
	if !pm.flush(rb) {
		return pos, vStop, 0
	}
	c.srv.metrics.count(pm.dir, frames, len(b))
	if finishAfter {
		c.finish()
		return pos, vStop, 0
	}
	return pos, vContinue, 0
}

// startsMessage reports whether a frame whose first byte is b0 starts a
// data message.
func startsMessage(b0 byte) bool {
	op := frame.Opcode(b0 & 0xF)
	return op == frame.OpText || op == frame.OpBinary
}

func (pm *pump) takeMessageToken(now time.Time) (bool, time.Duration) {
	p := pm.c.pol()
	if p.msgRate <= 0 {
		return true, 0
	}
	return pm.bucket.TakeAt(now, p.msgRate, p.msgBurst)
}

// addCopy appends a copy of b to the segments, writing out what is
// gathered first if the scratch space is short.
func (pm *pump) addCopy(rb *rbuf, b []byte) bool {
	if cap(rb.scratch)-len(rb.scratch) < len(b) {
		if !pm.flush(rb) {
			return false
		}
		rb.scratch = rb.scratch[:0]
	}
	start := len(rb.scratch)
	rb.scratch = append(rb.scratch, b...)
	rb.segs = append(rb.segs, rb.scratch[start:])
	return true
}

// flush writes the gathered segments to the other side. It returns false
// if the write failed, after ending the connection.
func (pm *pump) flush(rb *rbuf) bool {
	if pm.c.finished.Load() {
		rb.segs = rb.segs[:0]
		return false
	}
	o := pm.out
	mid := pm.act == actForward && pm.p.InPayload()
	o.mu.Lock()
	var err error
	if !o.closeSent && len(rb.segs) > 0 {
		err = o.writeSegsLocked(rb.segs, &rb.bufs, pm.c.pol().write)
	}
	rb.segs = rb.segs[:0]
	o.mid = mid
	if err == nil && !mid && o.pendingPing != nil {
		err = o.writeLocked(o.pendingPing, pm.c.pol().write)
		o.pendingPing = nil
	}
	o.mu.Unlock()
	if err != nil {
		// pumps[d] writes outs[d]: fromClient to toUpstream, fromUpstream
		// to toClient.
		pm.c.writeFailed(pm.dir, err)
		return false
	}
	return true
}

// end writes out what was gathered before the frame that ends the
// connection, then closes both sides as e says.
func (pm *pump) end(rb *rbuf, e *ending) {
	pm.act = actDrop
	if pm.flush(rb) {
		pm.c.shutdown(e.client, e.upstream, e.reason, true)
	}
}

func dirName(dir int) string {
	if dir == fromClient {
		return "client"
	}
	return "upstream"
}
