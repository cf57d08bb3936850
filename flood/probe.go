package flood

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
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
	latency, err := r.probe(start, seq)
	if err != nil && r.stopped.Load() {
		return // cut short by an interruption: no figure either way
	}
	if err != nil {
		r.rec.probed(start, 0, probeFailure(err))
		return
	}
	r.rec.probed(start, float64(latency)/float64(time.Millisecond), "")
}

// probeSeq numbers the probes of ProbeOnce, so that each one's message
// differs from the last.
var probeSeq atomic.Int64

// ProbeOnce runs one probe outside a flood, as a run's probe does: it
// connects to cfg.Target from cfg.Source (the kernel's choice when zero),
// upgrades, sends one text message and waits for its echo, all within
// cfg.Timeout (default 2s), then closes. cfg.Interval is ignored.
//
// It returns the latency from starting to connect until the echo arrived,
// or, when the probe failed, the kind of failure as ProbeResult.Failures
// names it ("refused_503", "timeout", "connect_refused", ...). The error is
// non-nil only when cfg is unusable or the target is outside loopback and
// allow (it then wraps ErrConfig, and nothing was sent).
func ProbeOnce(ctx context.Context, cfg ProbeConfig, allow []netip.Prefix) (time.Duration, string, error) {
	if cfg.Timeout < 0 {
		return 0, "", configErrorf("probe timeout must be positive")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultProbeTimeout
	}
	if cfg.Source.IsValid() && !cfg.Source.Is4() {
		return 0, "", configErrorf("probe source %s is not an IPv4 address", cfg.Source)
	}
	if strings.ContainsAny(cfg.Token, "\r\n") {
		return 0, "", configErrorf("the probe's bearer token holds a line break")
	}
	ep, err := checkTarget(ctx, cfg.Target, allow)
	if err != nil {
		return 0, "", fmt.Errorf("probe: %w", err)
	}
	r := &run{cfg: Config{Probe: cfg}, dial: dialTCP, probeEP: ep, probeSrc: cfg.Source, ctx: ctx}
	// A cancelled ctx wakes the probe from its reads and writes too.
	defer context.AfterFunc(ctx, r.live.stopAll)()
	latency, err := r.probe(time.Now(), int(probeSeq.Add(1)))
	if err != nil {
		return 0, probeFailure(err), nil
	}
	return latency, "", nil
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
// It returns the time from start until the echo arrived.
func (r *run) probe(start time.Time, seq int) (time.Duration, error) {
	deadline := start.Add(r.cfg.Probe.Timeout)
	ctx, cancel := context.WithDeadline(r.ctx, deadline)
	nc, err := r.dial(ctx, r.probeSrc, r.probeEP.addr)
	cancel()
	if err != nil {
		return 0, classify("connect", err)
	}
	defer nc.Close()
	if !r.live.add(nc) {
		return 0, &probeError{"interrupted"}
	}
	defer r.live.remove(nc)
	nc.SetDeadline(deadline)

	rest, release, err := upgrade(nc, &r.probeEP, newRequest(r.cfg.Probe.Token, false))
	if err != nil {
		return 0, classify("handshake", err)
	}
	pr := probeReader{nc: nc, want: []byte("wsguard flood probe " + strconv.Itoa(seq))}
	done, err := pr.feed(rest)
	release()
	if err != nil {
		return 0, err
	}
	if done {
		return 0, &probeError{"unexpected_echo"}
	}
	if err := pr.send(frame.OpText, pr.want); err != nil {
		return 0, classify("write", err)
	}
	if err := pr.await(); err != nil {
		return 0, err
	}
	latency := time.Since(start)

	// Close politely; the answer does not count towards the latency.
	var p [2]byte
	pr.send(frame.OpClose, frame.AppendClosePayload(p[:0], frame.CloseNormal, ""))
	pr.closing = true
	nc.SetReadDeadline(time.Now().Add(probeCloseWait))
	pr.await()
	return latency, nil
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
