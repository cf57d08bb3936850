package flood

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/wsguard/wsguard/internal/httphead"
)

// dialFunc opens a TCP connection to dst from src (the kernel's choice
// when src is the zero Addr).
type dialFunc func(ctx context.Context, src netip.Addr, dst netip.AddrPort) (net.Conn, error)

// dialTCP is the dialFunc of real runs.
func dialTCP(ctx context.Context, src netip.Addr, dst netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{Control: bindControl(src)}
	if src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	return d.DialContext(ctx, "tcp", dst.String())
}

// request is what varies between upgrade requests.
type request struct {
	key   string // Sec-WebSocket-Key
	token string // bearer token, or ""
	xff   string // forged client address, or ""
}

// newRequest returns a request with a fresh key.
func newRequest(token string, xff bool) request {
	var k [16]byte
	for i := 0; i < len(k); i += 8 {
		u := rand.Uint64()
		for j := 0; j < 8; j++ {
			k[i+j] = byte(u >> (8 * j))
		}
	}
	r := request{key: base64.StdEncoding.EncodeToString(k[:]), token: token}
	if xff {
		r.xff = randomPublicV4().String()
	}
	return r
}

// randomPublicV4 returns a random unicast address outside the loopback,
// private and multicast ranges, as a forged client address.
func randomPublicV4() netip.Addr {
	for {
		u := rand.Uint32()
		a := fromV4(u)
		b := a.As4()
		if b[0] == 0 || b[0] >= 224 || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() {
			continue
		}
		return a
	}
}

// lines returns the upgrade request for ep one line at a time, the empty
// line that ends it last.
func (r request) lines(ep *endpoint) []string {
	lines := []string{
		"GET " + ep.target + " HTTP/1.1\r\n",
		"Host: " + ep.host + "\r\n",
		"Upgrade: websocket\r\n",
		"Connection: Upgrade\r\n",
		"Sec-WebSocket-Key: " + r.key + "\r\n",
		"Sec-WebSocket-Version: 13\r\n",
		"User-Agent: wsguard-flood\r\n",
	}
	if r.token != "" {
		lines = append(lines, "Authorization: Bearer "+r.token+"\r\n")
	}
	if r.xff != "" {
		lines = append(lines, "X-Forwarded-For: "+r.xff+"\r\n", "X-Real-IP: "+r.xff+"\r\n")
	}
	return append(lines, "\r\n")
}

// append appends the whole upgrade request for ep to dst.
func (r request) append(dst []byte, ep *endpoint) []byte {
	for _, l := range r.lines(ep) {
		dst = append(dst, l...)
	}
	return dst
}

// headBufs pools the buffers response heads are read into.
var headBufs = sync.Pool{New: func() any { b := make([]byte, httphead.MaxHeadSize); return &b }}

// refusedError is an upgrade answered with a status other than 101.
type refusedError struct{ status int }

func (e *refusedError) Error() string { return fmt.Sprintf("upgrade refused with %d", e.status) }

// failure is an attempt that went wrong, with the kind it is counted by.
type failure struct {
	kind string
	err  error
}

func (f *failure) Error() string { return f.kind + ": " + f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

// upgrade sends the upgrade request on nc and reads the answer. On success
// it returns the bytes read past the head (the first frames), valid until
// release is called. Errors are *refusedError or *failure.
func upgrade(nc net.Conn, ep *endpoint, req request) (rest []byte, release func(), err error) {
	var wbuf [512]byte
	if _, err := nc.Write(req.append(wbuf[:0], ep)); err != nil {
		return nil, nil, classify("handshake", err)
	}
	bp := headBufs.Get().(*[]byte)
	release = func() { headBufs.Put(bp) }
	head, rest, err := httphead.ReadHead(nc, *bp)
	if err == nil {
		err = checkResponse(head, req.key)
	}
	if err != nil {
		release()
		return nil, nil, err
	}
	return rest, release, nil
}

// checkResponse checks an upgrade response head.
func checkResponse(head []byte, key string) error {
	resp, err := httphead.ParseResponse(head, nil)
	if err != nil {
		return &failure{"bad_response", err}
	}
	if resp.Status != 101 {
		return &refusedError{resp.Status}
	}
	if !resp.HasToken("Upgrade", "websocket") {
		return &failure{"bad_response", errors.New("101 without Upgrade: websocket")}
	}
	if string(resp.Get("Sec-WebSocket-Accept")) != httphead.AcceptKey([]byte(key)) {
		return &failure{"bad_accept", errors.New("wrong Sec-WebSocket-Accept")}
	}
	return nil
}

// classify turns a network error in phase ("connect" or "handshake") into
// a failure with a stable kind.
func classify(phase string, err error) *failure {
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	var errno syscall.Errno
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return &failure{phase + "_timeout", err}
	case errors.Is(err, httphead.ErrHeadTooLarge):
		return &failure{"bad_response", err}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &failure{phase + "_eof", err}
	case errors.As(err, &errno):
		return &failure{errnoKind(phase, errno), err}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &failure{phase + "_timeout", err}
	}
	return &failure{phase + "_error", err}
}

// errnoKind names the system errors a flood meets.
func errnoKind(phase string, errno syscall.Errno) string {
	switch errno {
	case syscall.ECONNREFUSED:
		return phase + "_refused"
	case syscall.ECONNRESET, syscall.EPIPE, syscall.ECONNABORTED:
		return phase + "_reset"
	case syscall.ETIMEDOUT:
		return phase + "_timeout"
	case syscall.EMFILE, syscall.ENFILE:
		return "fd_limit"
	case syscall.EADDRNOTAVAIL, syscall.EADDRINUSE:
		return "address_unavailable"
	case syscall.ENETUNREACH, syscall.EHOSTUNREACH:
		return "unreachable"
	case syscall.ENOBUFS, syscall.ENOMEM:
		return "no_memory"
	}
	return phase + "_" + strconv.Itoa(int(errno))
}

// isTimeout reports whether err is a deadline expiring.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// earliest returns the earlier of a and b, ignoring zero times.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
