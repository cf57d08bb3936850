package relay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wsguard/wsguard/admission"
	"github.com/wsguard/wsguard/frame"
	"github.com/wsguard/wsguard/internal/httphead"
	"github.com/wsguard/wsguard/store"
)

// handshakeBufs are the pooled buffers of one handshake: the client's
// request head, the upstream's response head, and the request sent
// upstream.
type handshakeBufs struct {
	req    [httphead.MaxHeadSize]byte
	resp   [httphead.MaxHeadSize]byte
	out    []byte
	fields []httphead.Field
}

var handshakePool = sync.Pool{New: func() any {
	return &handshakeBufs{out: make([]byte, 0, 2048), fields: make([]httphead.Field, 0, 32)}
}}

// handshake reads, checks and admits one upgrade request, connects it to
// the upstream and hands the pair to the poller. It runs on its own
// goroutine and exits once the connection is relayed or refused, so that
// its stack does not outlive the handshake.
func (s *Server) handshake(nc net.Conn, rs *routes, accepted time.Time) {
	defer s.metrics.Pending.Dec()
	defer s.pending.Add(-1)

	hb := handshakePool.Get().(*handshakeBufs)
	defer handshakePool.Put(hb)

	outcome, reason := s.upgrade(nc, rs, hb, accepted)
	if outcome == "" {
		return // a keep-alive connection ended between plain requests
	}
	s.metrics.Handshakes.WithLabelValues(outcome, reason).Inc()
	switch outcome {
	case "accepted":
		s.metrics.Handshake.Observe(time.Since(accepted).Seconds())
	case "passthrough":
		// A proxied plain request: its time is the upstream's, and its
		// end is no refusal.
	default:
		s.metrics.Handshake.Observe(time.Since(accepted).Seconds())
		s.refusals.add(reason)
	}
}

// upgrade does the work of handshake and reports its outcome: accepted,
// refused (by a rule) or failed (bad request, upstream trouble), and why.
// On any outcome but accepted, nc is closed when it returns.
func (s *Server) upgrade(nc net.Conn, rs *routes, hb *handshakeBufs, accepted time.Time) (outcome, reason string) {
	deadline := accepted.Add(rs.cfg.Timeouts.Handshake.Std())
	if s.tls != nil {
		deadline = accepted.Add(s.tls.handshakeTimeout())
	}
	nc.SetDeadline(deadline)
	keep := false
	defer func() {
		if !keep {
			nc.Close()
		}
	}()

	// A PROXY protocol header, if the listener takes them, comes first.
	id := rs.id
	peer, src, err := id.readProxyHeader(nc, peerAddr(nc))
	if err != nil {
		return "failed", "proxy_protocol"
	}

	// Then TLS, if the listener speaks it. From here on cc is what the
	// request is read from and every answer written to; nc stays the
	// socket.
	cc, headBuf := nc, hb.req[:]
	client := side{sock: nc}
	rateTaken := false
	if s.tls != nil {
		var ok bool
		if client.tls, rateTaken, outcome, reason, ok = s.startTLS(nc, src, peer, id); !ok {
			return outcome, reason
		}
		cc, src = client.tls, client.tls
		nc.SetDeadline(time.Now().Add(rs.cfg.Timeouts.Handshake.Std()))
		tb := tlsHeadPool.Get().(*tlsHeadBuf)
		defer tlsHeadPool.Put(tb)
		headBuf = tb[:]
	}

	// Read the request. Plain requests on a passthrough route are
	// proxied, and the connection may carry more of them (keep-alive);
	// an upgrade request goes on below.
	var (
		head, rest []byte
		req        httphead.Request
		r          *route
		ka         *keepAlive // set once a plain request came
	)
	for {
		var ok bool
		head, rest, outcome, reason, ok = readHead(src, headBuf, cc, ka != nil)
		if !ok {
			return outcome, reason
		}
		if req, err = httphead.ParseRequest(head, hb.fields[:0]); err != nil {
			var pe *httphead.ParseError
			if errors.As(err, &pe) {
				writeRefusal(cc, refusal{status: pe.Status, reason: pe.Reason})
			}
			return "failed", "bad_request"
		}
		r = rs.match(req.Path())
		if r == nil || r.pass == nil || wantsUpgrade(&req) {
			break
		}
		if ka == nil {
			ka = newKeepAlive(client)
			defer ka.release()
		}
		var again bool
		headAndRest := headBuf[:len(head)+len(rest)]
		outcome, reason, again = s.passthrough(client, rs, r, &req, peer, rateTaken, headAndRest, ka)
		if !again {
			return outcome, reason
		}
		s.metrics.Handshakes.WithLabelValues(outcome, reason).Inc()
		// The connection's token is spent: an upgrade on it takes its own.
		rateTaken = false
		src = ka.next()
		nc.SetDeadline(time.Now().Add(rs.cfg.Timeouts.Handshake.Std()))
	}
	if len(rest) > readBufSize || (ka != nil && ka.drain != nil && ka.drain.off != ka.drain.end) {
		// Only after plain requests can this much follow a head, or
		// bytes past it stay behind in the drainReader; either would be
		// lost to the relay.
		writeRefusal(cc, refusal{status: 400, reason: "too many bytes after the upgrade request"})
		return "failed", "bad_request"
	}
	if rej := httphead.ValidateUpgrade(&req); rej != nil {
		writeRefusal(cc, refusal{status: rej.Status, reason: rej.Reason, header: rej.Header, value: rej.Value})
		return "failed", "bad_request"
	}
	if r == nil {
		writeRefusal(cc, refusal{status: 404, reason: "no route for this path"})
		return "refused", "no_route"
	}
	if !r.originAllowed(req.Get("Origin")) {
		writeRefusal(cc, refusal{status: 403, reason: "origin not allowed"})
		return "refused", "origin"
	}
	if s.draining.Load() {
		writeRefusal(cc, refusal{status: 503, reason: "draining", retryAfter: time.Second})
		return "refused", "draining"
	}

	// Who is it: the address (behind trusted proxies only), the rate of
	// its handshakes, then its user. The rate goes first: it is the
	// cheapest refusal, and it bounds the cost of verifying tokens.
	who := id.resolver.Resolve(peer, req.Fields)
	s.warnUnusable(who, peer)
	if ref := s.takeHandshake(who.Addr, peer, rateTaken, r); ref != nil {
		s.noteRefused(who.Addr, "")
		writeRefusal(cc, refusal{status: ref.Status, reason: ref.Limit + " limit reached", retryAfter: ref.RetryAfter})
		return "refused", strings.ReplaceAll(ref.Limit, ".", "_")
	}
	fwd := httphead.Forward{
		Target:       req.Target,
		ForwardedFor: who.Chain,
		RealIP:       who.Addr.String(),
		Proto:        client.proto(),
		UserHeader:   id.userHeader,
	}
	var echo string
	if id.auth != nil {
		user, cred, aerr := id.auth.Authenticate(&req)
		if aerr != nil {
			s.noteRefused(who.Addr, "")
			s.metrics.AuthFailures.WithLabelValues(aerr.Reason).Inc()
			writeRefusal(cc, refusal{status: aerr.Status(), reason: "unauthorized: " + aerr.Reason,
				header: "WWW-Authenticate", value: aerr.WWWAuthenticate()})
			return "refused", "auth"
		}
		fwd.User, echo = user, cred.Echo
		if cred.Target != nil {
			fwd.Target = cred.Target
		}
		fwd.Protocols = cred.Protocols
	}

	// Admit, before anything is spent on the upstream.
	admStart := time.Now()
	admReq := admission.Request{
		Addr: who.Addr, Route: r.adm, User: fwd.User, Anonymous: id.auth != nil && fwd.User == "",
	}
	lease, ref, err := s.adm.Acquire(context.Background(), admReq)
	if err == nil && ref != nil {
		lease, ref, err = s.acquireFair(admReq, ref, rs)
	}
	s.metrics.Admission.Observe(time.Since(admStart).Seconds())
	if err != nil {
		// A store that refuses while Redis is away (on_failure: closed)
		// has logged that once; a line per handshake would be a flood.
		if !errors.Is(err, store.ErrUnavailable) {
			s.log.Error("admission failed", slog.String("error", err.Error()))
		}
		writeRefusal(cc, refusal{status: 503, reason: "admission unavailable", retryAfter: time.Second})
		return "failed", "store_error"
	}
	if ref != nil {
		s.noteRefused(who.Addr, fwd.User)
		writeRefusal(cc, refusal{status: ref.Status, reason: ref.Limit + " limit reached", retryAfter: ref.RetryAfter})
		return "refused", strings.ReplaceAll(ref.Limit, ".", "_")
	}
	defer func() {
		if !keep {
			s.adm.Release(context.Background(), lease)
		}
	}()

	// Connect and forward the handshake.
	upstream, outcome, reason, ok := s.dialUpstream(r)
	if !ok {
		writeRefusal(cc, upstreamRefusal(reason))
		return outcome, reason
	}
	defer func() {
		if !keep {
			upstream.sock.Close()
		}
	}()
	up, respBuf := upstream.conn(), hb.resp[:]
	if upstream.tls != nil {
		tb := tlsHeadPool.Get().(*tlsHeadBuf)
		defer tlsHeadPool.Put(tb)
		respBuf = tb[:]
	}
	if r.basePath != "" {
		fwd.Target = append([]byte(r.basePath), fwd.Target...)
	}
	hb.out = httphead.AppendUpstreamRequest(hb.out[:0], &req, &fwd)
	if _, err := up.Write(hb.out); err != nil {
		writeRefusal(cc, refusal{status: 502, reason: "upstream write failed"})
		return "failed", "upstream_error"
	}
	respHead, upRest, err := httphead.ReadHead(up, respBuf)
	if err == nil && len(respHead) > httphead.MaxHeadSize {
		err = httphead.ErrHeadTooLarge
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			writeRefusal(cc, refusal{status: 504, reason: "upstream handshake timeout"})
			return "failed", "upstream_timeout"
		}
		writeRefusal(cc, refusal{status: 502, reason: "upstream closed during handshake"})
		return "failed", "upstream_error"
	}
	resp, err := httphead.ParseResponse(respHead, hb.fields[len(req.Fields):len(req.Fields)])
	if err != nil {
		writeRefusal(cc, refusal{status: 502, reason: "malformed upstream response"})
		return "failed", "upstream_error"
	}
	if resp.Status != http.StatusSwitchingProtocols {
		relayResponse(cc, up, respHead, upRest)
		return "failed", "upstream_status"
	}
	if string(resp.Get("Sec-WebSocket-Accept")) != httphead.AcceptKey(req.Get("Sec-WebSocket-Key")) ||
		!resp.HasToken("Upgrade", "websocket") {
		writeRefusal(cc, refusal{status: 502, reason: "invalid upstream upgrade response"})
		return "failed", "upstream_error"
	}

	// A browser that offered protocols fails a handshake that selects
	// none: answer with the bearer protocol the token came under.
	if echo != "" && resp.Count("Sec-WebSocket-Protocol") == 0 {
		respHead = appendResponseField(respHead, "Sec-WebSocket-Protocol", echo)
	}

	if s.draining.Load() {
		writeRefusal(cc, refusal{status: 503, reason: "draining", retryAfter: time.Second})
		return "refused", "draining"
	}
	c, err := s.newConn(client, upstream, r, lease, resp.Get("Sec-WebSocket-Extensions"))
	if err != nil {
		s.log.Error("starting relay", slog.String("error", err.Error()))
		writeRefusal(cc, refusal{status: 500, reason: "internal error"})
		return "failed", "internal_error"
	}
	keep = true // c owns both sockets and the lease from here on

	// Counted as open before the 101 leaves, so that whoever sees the
	// upgrade also sees it counted. The 101 goes to the client before any
	// pump starts, so nothing the upstream sends can overtake it, and
	// under the client stream's lock, so that a close frame from a drain,
	// a kick or an eviction cannot go out before it.
	out := &c.outs[toClient]
	out.mu.Lock()
	s.register(c)
	cc.SetWriteDeadline(time.Now().Add(r.policy.write))
	_, err = cc.Write(respHead)
	out.mu.Unlock()
	if err != nil {
		c.finish()
		return "failed", "client_gone"
	}
	s.startConn(c, rest, upRest)
	return "accepted", "ok"
}

// readHead reads and checks a request head from src into buf. After a
// plain request on the same connection (more), a connection that ends or
// idles out instead of sending another request is no failure: outcome is
// then empty, and nothing is counted.
func readHead(src io.Reader, buf []byte, cc net.Conn, more bool) (
	head, rest []byte, outcome, reason string, ok bool) {
	head, rest, err := httphead.ReadHead(src, buf)
	if err == nil && len(head) > httphead.MaxHeadSize {
		err = httphead.ErrHeadTooLarge
	}
	if err != nil {
		switch {
		case errors.Is(err, httphead.ErrHeadTooLarge):
			writeRefusal(cc, refusal{status: 431, reason: "request head too large"})
			return nil, nil, "failed", "head_too_large", false
		case more && (errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded)):
			return nil, nil, "", "", false
		case errors.Is(err, os.ErrDeadlineExceeded):
			writeRefusal(cc, refusal{status: 408, reason: "handshake timeout"})
			return nil, nil, "failed", "handshake_timeout", false
		}
		return nil, nil, "failed", "client_gone", false
	}
	if isProxyHeader(buf[:len(head)+len(rest)]) {
		return nil, nil, "failed", "proxy_protocol", false // from a peer not trusted to send one
	}
	return head, rest, "", "", true
}

// newConn builds the relay state of an upgraded pair.
func (s *Server) newConn(client, upstream side, r *route, lease admission.Lease, ext []byte) (*conn, error) {
	clientRaw, err := rawConn(client.sock)
	if err != nil {
		return nil, err
	}
	upRaw, err := rawConn(upstream.sock)
	if err != nil {
		return nil, err
	}
	client.sock.SetDeadline(time.Time{})
	upstream.sock.SetDeadline(time.Time{})
	deflate, anyRSV := extensions(ext)

	c := &conn{srv: s, route: r, lease: lease, fairPos: [2]int{-1, -1}}
	c.start = time.Now().UnixNano()
	c.lastData.Store(c.start)
	c.outs[toUpstream] = outStream{nc: upstream.conn(), tls: upstream.tls != nil,
		masked: true}
	c.outs[toClient] = outStream{nc: client.conn(), tls: client.tls != nil}
	c.pumps[fromClient] = pump{c: c, dir: fromClient, raw: clientRaw, out: &c.outs[toUpstream],
		seq: frame.Sequencer{FromClient: true, Deflate: deflate, AnyRSV: anyRSV}}
	c.pumps[fromUpstream] = pump{c: c, dir: fromUpstream, raw: upRaw, out: &c.outs[toClient],
		seq: frame.Sequencer{Deflate: deflate, AnyRSV: anyRSV}}
	return c, nil
}

// startConn starts the pumps of a registered connection, first on the
// bytes that arrived with the handshake heads, if any.
func (s *Server) startConn(c *conn, clientRest, upRest []byte) {
	now := time.Now()
	c.pumps[fromClient].bucket.Fill(c.pol().msgBurst, now)
	if err := s.poller.add(c); err != nil {
		c.finish()
		return
	}
	c.startTimers(now.UnixNano())
	c.running.Store(true)
	if s.draining.Load() {
		// Shutdown began while this handshake was finishing.
		c.shutdown(frame.CloseGoingAway, frame.CloseGoingAway, "going away", false)
	}
	for dir, rest := range [2][]byte{clientRest, upRest} {
		pm := &c.pumps[dir]
		if len(rest) == 0 {
			pm.arm()
			continue
		}
		rb := rbufPool.Get().(*rbuf)
		pm.held, pm.heldOff, pm.heldLen = rb, 0, copy(rb.b, rest)
		go pm.run()
	}
}

// extensions reads the negotiated Sec-WebSocket-Extensions: whether
// permessage-deflate is on, and whether some extension the guard does not
// know may use any reserved bit.
func extensions(v []byte) (deflate, anyRSV bool) {
	for _, ext := range bytes.Split(v, []byte(",")) {
		name, _, _ := bytes.Cut(ext, []byte(";"))
		name = bytes.TrimSpace(name)
		switch {
		case len(name) == 0:
		case bytes.EqualFold(name, []byte("permessage-deflate")):
			deflate = true
		default:
			anyRSV = true
		}
	}
	return deflate, anyRSV
}

// relayResponse passes a non-101 upstream answer to the client as it is,
// body included, and closes.
func relayResponse(nc, up net.Conn, head, rest []byte) {
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(head), bytes.NewReader(rest), up))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		writeRefusal(nc, refusal{status: 502, reason: "malformed upstream response"})
		return
	}
	defer resp.Body.Close()
	resp.Close = true
	for _, h := range []string{"Connection", "Keep-Alive", "Upgrade", "Proxy-Connection", "Transfer-Encoding"} {
		resp.Header.Del(h)
	}
	resp.Write(nc)
}

func rawConn(nc net.Conn) (syscall.RawConn, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, errors.New("connection has no file descriptor")
	}
	return sc.SyscallConn()
}

// peerAddr returns the TCP peer's address, unmapped.
func peerAddr(nc net.Conn) netip.Addr {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
