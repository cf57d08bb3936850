package relay

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// refusal is a canned answer to a handshake the guard will not upgrade.
type refusal struct {
	status     int
	reason     string        // one line, the body; names the limit or rule
	retryAfter time.Duration // 0: no Retry-After
	header     string        // optional extra header
	value      string
}

// writeRefusal writes r straight to the socket, without net/http and
// without waiting long for a client that does not read. The caller
// closes nc.
func writeRefusal(nc net.Conn, r refusal) {
	var buf [512]byte
	b := append(buf[:0], "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(r.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(r.status)...)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(r.reason)+1), 10)
	if r.retryAfter > 0 {
		b = append(b, "\r\nRetry-After: "...)
		b = strconv.AppendInt(b, int64((r.retryAfter+time.Second-1)/time.Second), 10)
	}
	if r.header != "" {
		b = append(b, "\r\n"...)
		b = append(b, r.header...)
		b = append(b, ": "...)
		b = append(b, r.value...)
	}
	b = append(b, "\r\n\r\n"...)
	b = append(b, r.reason...)
	b = append(b, '\n')
	if tc, ok := nc.(*net.TCPConn); ok && writeOnce(tc, b) {
		return
	}
	nc.SetWriteDeadline(time.Now().Add(time.Second))
	nc.Write(b)
}

// writeOnce makes one non-blocking write of b to a plain TCP socket and
// reports whether it was made. A refusal fits in a fresh socket's send
// buffer, so the write cannot block; skipping the deadline saves a timer
// update per refusal, which a flood makes by the ten thousand a second.
// What a full buffer would not take is dropped: the socket closes anyway.
func writeOnce(tc *net.TCPConn, b []byte) bool {
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	return rc.Write(func(fd uintptr) bool {
		syscall.Write(int(fd), b)
		return true
	}) == nil
}

// refusalLog summarises refused and failed handshakes: one log line per
// interval with counts by reason, instead of a line per refusal, which
// during a flood would itself be the flood.
type refusalLog struct {
	log    *slog.Logger
	mu     sync.Mutex
	counts map[string]int    // guarded by mu; this interval, by fixed reason names
	totals map[string]uint64 // guarded by mu; since start
}

func newRefusalLog(log *slog.Logger) *refusalLog {
	return &refusalLog{log: log, counts: make(map[string]int), totals: make(map[string]uint64)}
}

func (l *refusalLog) add(reason string) {
	l.mu.Lock()
	l.counts[reason]++
	l.totals[reason]++
	l.mu.Unlock()
}

// snapshot returns the totals by reason since start.
func (l *refusalLog) snapshot() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]uint64, len(l.totals))
	for k, v := range l.totals {
		out[k] = v
	}
	return out
}

// run logs a summary every interval until done is closed.
func (l *refusalLog) run(done <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			l.flush(interval)
			return
		case <-t.C:
			l.flush(interval)
		}
	}
}

func (l *refusalLog) flush(interval time.Duration) {
	l.mu.Lock()
	counts := l.counts
	if len(counts) == 0 {
		// Decided under the lock: an empty map stays in place, and add
		// may write to it as soon as the lock is released.
		l.mu.Unlock()
		return
	}
	l.counts = make(map[string]int, len(counts))
	l.mu.Unlock()
	reasons := make([]string, 0, len(counts))
	total := 0
	for r, n := range counts {
		reasons = append(reasons, r)
		total += n
	}
	sort.Strings(reasons)
	attrs := []slog.Attr{slog.Int("total", total), slog.Duration("interval", interval)}
	for _, r := range reasons {
		attrs = append(attrs, slog.Int(r, counts[r]))
	}
	l.log.LogAttrs(context.Background(), slog.LevelWarn, "handshakes not upgraded", attrs...)
}
