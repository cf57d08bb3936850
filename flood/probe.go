package flood

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/wsguard/wsguard/frame"
)

// probeCloseWait bounds how long a probe waits for the server to answer
// its close frame; it is not part of the latency.
const probeCloseWait = 500 * time.Millisecond

// probeLoop starts a probe every interval until the run ends. Each probe
// runs on its own goroutine, so a slow one does not delay the next.
func (r *run) probeLoop() {
	defer r.wg.Done()
	tick := time.NewTicker(r.cfg.Probe.Interval)
	defer tick.Stop()
	end := time.NewTimer(time.Until(r.end))
	defer end.Stop()
	for seq := 1; !r.over(); seq++ {
		r.wg.Add(1)
		go r.probeOnce(seq)
		select {
		case <-tick.C:
		case <-end.C:
			return
		case <-r.stopCh:
			return
		}
	}
}

// probeOnce runs probe seq and records it.
func (r *run) probeOnce(seq int) {
	defer r.wg.Done()
	start := time.Now()
	err := r.probe(start, seq)
	if err != nil && r.stopped.Load() {
		return // cut short by an interruption: no figure either way
	}
	if err != nil {
		r.rec.probed(start, 0, probeFailure(err))
		return
	}
	r.rec.probed(start, float64(time.Since(start))/float64(time.Millisecond), "")
}

// probeError is a probe that got an answer other than its echo.
type probeError struct{ kind string }

func (e *probeError) Error() string { return "probe: " + e.kind }

// probeFailure names the way a probe failed.
func probeFailure(err error) string {
	var pe *probeError
	var re *refusedError
	switch {
	case errors.As(err, &pe):
		return pe.kind
	case errors.As(err, &re):
		return "refused_" + strconv.Itoa(re.status)
	case isTimeout(err), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	var f *failure
	if errors.As(err, &f) {
		return f.kind
	}
	return "error"
}

// probe connects from the probe's source, upgrades, sends a text message
// and waits for its echo, all within the probe timeout; then it closes.
func (r *run) probe(start time.Time, seq int) error {
	deadline := start.Add(r.cfg.Probe.Timeout)
	ctx, cancel := context.WithDeadline(r.ctx, deadline)
	nc, err := r.dial(ctx, r.probeSrc, r.probeEP.addr)
	cancel()
	if err != nil {
		return classify("connect", err)
	}
	defer nc.Close()
	if !r.live.add(nc) {
		return &probeError{"interrupted"}
	}
	defer r.live.remove(nc)
	nc.SetDeadline(deadline)

	rest, release, err := upgrade(nc, &r.probeEP, newRequest(r.cfg.Probe.Token, false))
	if err != nil {
		return classify("handshake", err)
	}
	pr := probeReader{nc: nc, want: []byte("wsguard flood probe " + strconv.Itoa(seq))}
	done, err := pr.feed(rest)
	release()
	if err != nil {
		return err
	}
	if done {
		return &probeError{"unexpected_echo"}
	}
	if err := pr.send(frame.OpText, pr.want); err != nil {
		return classify("write", err)
	}
	if err := pr.await(); err != nil {
		return err
	}

	// Close politely; the answer does not count towards the latency.
	var p [2]byte
	pr.send(frame.OpClose, frame.AppendClosePayload(p[:0], frame.CloseNormal, ""))
	pr.closing = true
	nc.SetReadDeadline(time.Now().Add(probeCloseWait))
	pr.await()
	return nil
}

// probeReader reads the probe's connection until the echo of want.
type probeReader struct {
	nc      net.Conn
	want    []byte
	closing bool // a close frame was sent: wait for its answer instead

	p     frame.Parser
	op    frame.Opcode
	ctl   []byte // payload of the control frame being read
	msg   []byte // payload of the data message being read, up to len(want)+1
	inMsg bool
	buf   [512]byte
}

// await reads until the echo (or, when closing, the close answer) arrives.
func (pr *probeReader) await() error {
	for {
		n, err := pr.nc.Read(pr.buf[:])
		if n > 0 {
			done, ferr := pr.feed(pr.buf[:n])
			if done || ferr != nil {
				return ferr
			}
		}
		if err != nil {
			if pr.closing {
				return nil
			}
			return classify("read", err)
		}
	}
}

// feed parses b. It returns true once the echo arrived (or, when closing,
// the server's close frame), and an error when the server closed first or
// broke the protocol.
func (pr *probeReader) feed(b []byte) (done bool, err error) {
	for len(b) > 0 {
		n, ev, err := pr.p.Feed(b)
		if err != nil {
			return false, &probeError{"protocol_error"}
		}
		chunk := b[:n]
		b = b[n:]
		switch ev {
		case frame.EventHeader:
			h := pr.p.Header()
			pr.op = h.Op
			if h.Op.IsControl() {
				pr.ctl = pr.ctl[:0]
			} else if h.Op != frame.OpContinuation {
				pr.msg, pr.inMsg = pr.msg[:0], true
			}
		case frame.EventPayload:
			if pr.op.IsControl() {
				pr.ctl = append(pr.ctl, chunk...)
			} else if pr.inMsg && len(pr.msg) <= len(pr.want) {
				pr.msg = append(pr.msg, chunk[:min(len(chunk), len(pr.want)+1-len(pr.msg))]...)
			}
		}
		if ev == frame.EventNone || !pr.p.FrameDone() {
			continue
		}
		if done, err := pr.frameDone(); done || err != nil {
			return done, err
		}
	}
	return false, nil
}

// frameDone acts on a frame that just ended.
func (pr *probeReader) frameDone() (done bool, err error) {
	h := pr.p.Header()
	switch {
	case pr.op == frame.OpPing:
		pr.send(frame.OpPong, pr.ctl)
	case pr.op == frame.OpClose:
		if pr.closing {
			return true, nil
		}
		code, _, _ := frame.ParseClosePayload(pr.ctl)
		return false, &probeError{"closed_" + strconv.Itoa(int(code))}
	case !pr.op.IsControl() && h.Fin && pr.inMsg:
		pr.inMsg = false
		if !pr.closing && bytes.Equal(pr.msg, pr.want) {
			return true, nil
		}
	}
	return false, nil
}

// send writes one masked frame.
func (pr *probeReader) send(op frame.Opcode, payload []byte) error {
	mask := newMask()
	_, err := pr.nc.Write(frame.AppendFrame(nil, true, op, &mask, payload))
	return err
}
