package relay

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/wsguard/wsguard/admission"
	"github.com/wsguard/wsguard/internal/httphead"
)

// side is one end of a proxied connection: the TCP socket epoll waits
// on, and the TLS connection over it when that end speaks TLS.
type side struct {
	sock net.Conn
	tls  *tls.Conn // nil for plain TCP
}

// conn returns what the end is read from and written to.
func (sd side) conn() net.Conn {
	if sd.tls != nil {
		return sd.tls
	}
	return sd.sock
}

// proto is the X-Forwarded-Proto of a client end.
func (sd side) proto() string {
	if sd.tls != nil {
		return "https"
	}
	return "http"
}

// tlsHeadBuf holds a head read over TLS. A read into it always has room
// for a whole record (16 KiB of plaintext) past a head of the largest
// accepted size, so crypto/tls keeps no plaintext back once the head is
// read: what it held is in rest, and the relay may wait on the socket.
type tlsHeadBuf [httphead.MaxHeadSize + readBufSize]byte

var tlsHeadPool = sync.Pool{New: func() any { return new(tlsHeadBuf) }}

// startTLS runs the server side of a TLS handshake on nc, whose first
// bytes come from src, under the deadline already set. Before any TLS
// work it takes a handshake-rate token for the peer, unless the peer is
// a trusted proxy whose client is known only from the request's headers
// (then the token is taken after the head, as for plain HTTP). A refusal
// closes the socket without a word: an answer would cost the very TLS
// handshake the rate is there to spare. taken says whether the
// instance-wide token was taken here.
func (s *Server) startTLS(nc net.Conn, src io.Reader, peer netip.Addr, id *identity) (
	tc *tls.Conn, taken bool, outcome, reason string, ok bool) {
	if !id.resolver.Trusted(peer) {
		if ref := s.adm.Handshake(peer, nil); ref != nil {
			s.noteRefused(peer, "")
			return nil, false, "refused", "handshake_rate", false
		}
		taken = true
	}
	tc = tls.Server(&recordConn{Conn: nc, r: src}, s.tls.base)
	if err := tc.Handshake(); err != nil {
		var rhe tls.RecordHeaderError
		switch {
		case isTimeout(err) || errors.Is(err, os.ErrDeadlineExceeded):
			return nil, taken, "failed", "tls_handshake_timeout", false
		case errors.As(err, &rhe) && rhe.Conn != nil && looksLikeHTTP(rhe.RecordHeader[:]):
			// Plain HTTP on the TLS port: say so in plain HTTP.
			writeRefusal(nc, refusal{status: 400, reason: "this port speaks TLS: use https or wss"})
			return nil, taken, "failed", "not_tls", false
		}
		return nil, taken, "failed", "tls_handshake", false
	}
	return tc, taken, "", "", true
}

// looksLikeHTTP reports whether the first bytes of a connection start an
// HTTP request line.
func looksLikeHTTP(b []byte) bool {
	for _, m := range []string{"GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH", "CONNE"} {
		if string(b) == m {
			return true
		}
	}
	return false
}

// takeHandshake takes the handshake-rate tokens of a request from addr
// (the decided client) on route r. When startTLS already took the
// instance-wide token for the same address, only the route's is taken.
func (s *Server) takeHandshake(addr, peer netip.Addr, taken bool, r *route) *admission.Refusal {
	if taken && addr == peer {
		return s.adm.RouteHandshake(addr, r.adm)
	}
	return s.adm.Handshake(addr, r.adm)
}

// dialUpstream connects to r's upstream, and completes the TLS handshake
// for https and wss upstreams, with the handshake deadline set on the
// socket. On failure it reports the outcome and reason; nothing is left
// open.
func (s *Server) dialUpstream(r *route) (up side, outcome, reason string, ok bool) {
	start := time.Now()
	sock, err := net.DialTimeout("tcp", r.dialAddr, r.policy.dial)
	s.metrics.Dial.Observe(time.Since(start).Seconds())
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err) {
			return up, "failed", "upstream_timeout", false
		}
		return up, "failed", "upstream_error", false
	}
	sock.SetDeadline(time.Now().Add(r.policy.handshake))
	up.sock = sock
	if r.tls == nil {
		return up, "", "", true
	}
	up.tls = tls.Client(&recordConn{Conn: sock, r: sock}, r.tls)
	if err := up.tls.Handshake(); err != nil {
		sock.Close()
		if isTimeout(err) {
			return side{}, "failed", "upstream_timeout", false
		}
		return side{}, "failed", "upstream_tls", false
	}
	return up, "", "", true
}

// upstreamRefusal is the answer to a client whose upstream could not be
// reached.
func upstreamRefusal(reason string) refusal {
	switch reason {
	case "upstream_timeout":
		return refusal{status: 504, reason: "upstream dial timeout"}
	case "upstream_tls":
		return refusal{status: 502, reason: "upstream TLS handshake failed"}
	}
	return refusal{status: 502, reason: "upstream unavailable"}
}

// wantsUpgrade reports whether a request asks for any protocol upgrade:
// such a request gets the WebSocket checks (and their 400 when it is not
// a valid WebSocket handshake) even on a passthrough route.
func wantsUpgrade(req *httphead.Request) bool {
	return req.Count("Upgrade") > 0 || req.HasToken("Connection", "upgrade")
}
