package flood

import (
	"bytes"
	"strconv"
	"time"

	"github.com/wsguard/wsguard/frame"
)

// churnCloseWait bounds how long Churn waits for the server to answer its
// close frame before it drops the connection and opens the next.
const churnCloseWait = time.Second

// churn opens connection g, closes it at once, and again, until the run
// ends. Only the first opening was paced by openAll; the others wait for
// the pacer here.
func (r *run) churn(g int) {
	for first := true; ; first = false {
		if !first && !r.pace() {
			return
		}
		c := r.open(g, Churn)
		if c == nil {
			if r.over() {
				return
			}
			continue
		}
		c.writeClose(frame.CloseNormal, "churn")
		c.awaitClose(earliest(time.Now().Add(churnCloseWait), r.end))
		r.rec.closedByClient(Churn)
		c.release()
	}
}

// awaitClose reads until the server answers the close frame c sent, the
// connection ends, or deadline.
func (c *conn) awaitClose(deadline time.Time) {
	c.nc.SetReadDeadline(deadline)
	for {
		n, err := c.nc.Read(c.buf[:])
		if n > 0 && c.consume(c.buf[:n]) {
			return
		}
		if err != nil {
			return
		}
	}
}

// slowloris sends connection g's upgrade request one line every
// SlowlorisInterval, then made-up header lines, never the empty line that
// would end it, until the server answers or closes or the run ends.
func (r *run) slowloris(g int) {
	const sc = Slowloris
	nc, _, ok := r.dialFor(g, sc)
	if !ok {
		return
	}
	defer func() {
		r.live.remove(nc)
		nc.Close()
	}()

	lines := r.request(g).lines(&r.ep)
	lines = lines[:len(lines)-1] // not the empty line
	var buf [256]byte
	for i := 0; ; i++ {
		line := "X-Slowloris-" + strconv.Itoa(i) + ": " + strconv.Itoa(i) + "\r\n"
		if i < len(lines) {
			line = lines[i]
		}
		nc.SetWriteDeadline(earliest(time.Now().Add(r.cfg.WriteTimeout), r.end))
		if _, err := nc.Write([]byte(line)); err != nil {
			r.attemptFailed(sc, "handshake", err)
			return
		}

		// Wait for the next line's time, watching for an answer.
		nc.SetReadDeadline(earliest(time.Now().Add(r.cfg.SlowlorisInterval), r.end))
		if r.stopped.Load() {
			r.rec.pendingAtEnd(sc)
			return
		}
		n, err := nc.Read(buf[:])
		switch {
		case n > 0:
			if status := statusCode(buf[:n]); status > 0 {
				r.rec.refused(sc, status)
			} else {
				r.rec.failed(sc, "bad_response")
			}
			return
		case err != nil && !isTimeout(err):
			r.attemptFailed(sc, "handshake", err)
			return
		case r.over():
			r.rec.pendingAtEnd(sc)
			return
		}
	}
}

// statusCode returns the status of a response that starts with
// "HTTP/1.x NNN", or 0.
func statusCode(b []byte) int {
	if len(b) < 12 || !bytes.HasPrefix(b, []byte("HTTP/1.")) || b[8] != ' ' {
		return 0
	}
	n, err := strconv.Atoi(string(b[9:12]))
	if err != nil || n < 100 || n > 999 {
		return 0
	}
	return n
}
