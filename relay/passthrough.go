package relay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/wsguard/wsguard/clientip"
	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/internal/httphead"
)

// HTTP passthrough
//
// A route with http: passthrough proxies plain (non-upgrade) requests to
// its upstream, so that an app serving its pages and its WebSockets from
// one origin can sit behind the guard whole. Requests run on the
// handshake goroutine, one after another on a kept-alive connection: the
// connection holds its pending-handshake slot until it ends, so
// max_pending_handshakes bounds the connections carrying plain requests,
// and an upgrade request arriving on one after some plain requests takes
// the ordinary handshake path. A connection takes a handshake-rate token
// with its first plain request (an upgrade on it takes another), but no
// connection slot, no origin check and no authentication (pages are the
// app's business). Both bodies stream: nothing is buffered whole.
//
// Over TLS, keep-alive must not leave plaintext inside crypto/tls where
// the epoll relay would not see it, should an upgrade follow: requests
// are read through a drainReader, which takes every record whole into
// its own buffer, and whatever was read past a request is handed to the
// next head read.

// passthrough is a route's proxy for plain requests.
type passthrough struct {
	maxBody   int64
	idle      time.Duration // no byte either way for this long ends the request
	write     time.Duration // bound on each write to the client
	scheme    string        // of the upstream URL: http or https
	host      string        // upstream host:port
	basePath  string
	transport *http.Transport
}

// newPassthrough returns r's passthrough, or nil when r refuses plain
// requests. upTLS is the route's upstream TLS config, nil for http.
func newPassthrough(r config.Route, dialAddr string, upTLS *tls.Config) *passthrough {
	if r.HTTP != "passthrough" {
		return nil
	}
	p := &passthrough{
		maxBody:  int64(r.Passthrough.MaxBody),
		idle:     r.Passthrough.IdleTimeout.Std(),
		write:    r.Timeouts.Write.Std(),
		scheme:   "http",
		host:     dialAddr,
		basePath: basePathOf(r.Upstream),
	}
	if upTLS != nil {
		p.scheme = "https"
	}
	dialTimeout, idle := r.Timeouts.UpstreamDial.Std(), p.idle
	p.transport = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: dialTimeout}
			c, err := d.DialContext(ctx, "tcp", dialAddr)
			if err != nil {
				return nil, err
			}
			return &idleConn{Conn: c, idle: idle}, nil
		},
		TLSClientConfig:       upTLS,
		TLSHandshakeTimeout:   r.Timeouts.Handshake.Std(),
		ResponseHeaderTimeout: r.Passthrough.ResponseHeaderTimeout.Std(),
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       idle,
		DisableCompression:    true,
	}
	return p
}

// passthrough proxies the plain request whose head (and the bytes after
// it) is in headAndRest, and reports the outcome for the handshake
// metrics, and whether the connection may carry another request (then
// ka holds what was read past this one). Otherwise the caller closes the
// client's socket.
func (s *Server) passthrough(client side, rs *routes, r *route, hreq *httphead.Request,
	peer netip.Addr, rateTaken bool, headAndRest []byte, ka *keepAlive) (outcome, reason string, again bool) {
	cc := client.conn()
	who, outcome, reason, ok := s.admitPlain(cc, rs, r, hreq, peer, rateTaken, ka.served == 0)
	if !ok {
		return outcome, reason, false
	}
	ka.served++

	// net/http parses the request again, for its body framing: chunked
	// or Content-Length, with its checks against smuggling.
	p := r.pass
	in := &idleReader{r: io.MultiReader(bytes.NewReader(headAndRest), ka.base), conn: cc, idle: p.idle}
	br := bufio.NewReaderSize(in, 4096)
	req, err := http.ReadRequest(br)
	if err != nil {
		writeRefusal(cc, refusal{status: 400, reason: "malformed request"})
		return "passthrough", "bad_request", false
	}
	if req.ContentLength > p.maxBody {
		writeRefusal(cc, refusal{status: 413, reason: "request body over the limit"})
		lingerClose(client)
		return "passthrough", "body_too_large", false
	}
	body := &cappedBody{r: req.Body, left: p.maxBody}
	if strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
		cc.SetWriteDeadline(time.Now().Add(p.write))
		if _, err := io.WriteString(cc, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
			return "passthrough", "client_gone", false
		}
	}

	out := p.upstreamRequest(req, body, rs.id.userHeader, who.Chain, who.Addr.String(), client.proto())
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		switch {
		case body.exceeded.Load():
			writeRefusal(cc, refusal{status: 413, reason: "request body over the limit"})
			lingerClose(client)
			return "passthrough", "body_too_large", false
		case isTimeout(err): // the dial, or passthrough.response_header_timeout
			writeRefusal(cc, refusal{status: 504, reason: "upstream timeout"})
			return "passthrough", "upstream_timeout", false
		}
		writeRefusal(cc, refusal{status: 502, reason: "upstream unavailable"})
		return "passthrough", "upstream_error", false
	}
	defer resp.Body.Close()

	// Keep the connection only if the next request can be found: this
	// one's body was read to its end, its framing was not ambiguous
	// (both Content-Length and Transfer-Encoding: RFC 9112 section 6.1
	// wants the connection closed), and the client wants it.
	bodyDone := out.Body == http.NoBody || body.ended.Load()
	ambiguous := hreq.Count("Content-Length") > 0 && hreq.Count("Transfer-Encoding") > 0
	keep := bodyDone && !ambiguous && req.ProtoAtLeast(1, 1) && !req.Close && !s.draining.Load()
	if err := p.writeResponse(cc, req, resp, keep); err != nil {
		return "passthrough", "client_gone", false
	}
	endPlain(client, ka, br, keep, bodyDone)
	return "passthrough", "ok", keep
}

// admitPlain decides on a plain request: refused while draining, and
// charged a handshake-rate token when it is the connection's first (see
// takeHandshake for rateTaken). It returns the client as decided.
func (s *Server) admitPlain(cc net.Conn, rs *routes, r *route, hreq *httphead.Request,
	peer netip.Addr, rateTaken, first bool) (who clientip.Result, outcome, reason string, ok bool) {
	if s.draining.Load() {
		writeRefusal(cc, refusal{status: 503, reason: "draining", retryAfter: time.Second})
		return who, "refused", "draining", false
	}
	who = rs.id.resolver.Resolve(peer, hreq.Fields)
	s.warnUnusable(who, peer)
	if !first {
		return who, "", "", true
	}
	if ref := s.takeHandshake(who.Addr, peer, rateTaken, r); ref != nil {
		s.noteRefused(who.Addr, "")
		writeRefusal(cc, refusal{status: ref.Status, reason: ref.Limit + " limit reached", retryAfter: ref.RetryAfter})
		return who, "refused", strings.ReplaceAll(ref.Limit, ".", "_"), false
	}
	return who, "", "", true
}

// endPlain ends an answered request: on a kept connection, what was read
// past the request is saved for the next head; otherwise the client's
// side is shut so that the close loses nothing it should read.
func endPlain(client side, ka *keepAlive, br *bufio.Reader, keep, bodyDone bool) {
	switch {
	case keep:
		ka.leftover = append(ka.leftover[:0], peekBuffered(br)...)
		if ka.drain != nil {
			ka.leftover = append(ka.leftover, ka.drain.buffered()...)
		}
	case !bodyDone:
		// The upstream answered before it read the whole body.
		lingerClose(client)
	case client.tls != nil:
		// A clean end of the TLS stream; the socket closes right after.
		client.tls.CloseWrite()
	}
}

// upstreamRequest builds the request sent upstream: the client's, minus
// hop-by-hop fields and the client's own forwarding fields, plus the
// forwarding fields the guard vouches for, as for upgrades.
func (p *passthrough) upstreamRequest(req *http.Request, body io.ReadCloser,
	userHeader, chain, realIP, proto string) *http.Request {
	out := req.Clone(context.Background())
	out.RequestURI = ""
	u := *req.URL
	u.Scheme, u.Host = p.scheme, p.host
	u.Path = p.basePath + u.Path
	if u.RawPath != "" {
		u.RawPath = p.basePath + u.RawPath
	}
	out.URL = &u
	out.Host = req.Host
	out.Close = false
	out.Body = body
	if req.ContentLength == 0 && len(req.TransferEncoding) == 0 {
		out.Body = http.NoBody
	}
	removeHopByHop(out.Header)
	for _, h := range clientForwarding {
		out.Header.Del(h)
	}
	if userHeader != "" {
		out.Header.Del(userHeader)
	}
	setIf(out.Header, "X-Forwarded-For", chain)
	setIf(out.Header, "X-Real-IP", realIP)
	setIf(out.Header, "X-Forwarded-Proto", proto)
	setIf(out.Header, "X-Forwarded-Host", req.Host)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""} // not Go's own
	}
	return out
}

func setIf(h http.Header, name, value string) {
	if value != "" {
		h[name] = []string{value}
	}
}

// clientForwarding are the fields a client may not set for the upstream:
// the forwarding ones the guard writes itself, and Expect, which the
// guard has answered.
var clientForwarding = []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host",
	"X-Real-Ip", "Forwarded", "Expect"}

// hopByHop are the fields that describe one connection (RFC 9110
// section 7.6.1), removed in both directions along with any field a
// Connection line names.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopByHop(h http.Header) {
	for _, v := range h.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" && !strings.EqualFold(name, "host") {
				h.Del(name)
			}
		}
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
}

// writeResponse streams resp to the client: the head, then the body as
// it arrives, each piece written at once so that a streamed response
// (server-sent events, a long download) flows. A body of unknown length
// goes out chunked (to an HTTP/1.0 client: delimited by the close, and
// then keep is false).
func (p *passthrough) writeResponse(cc net.Conn, req *http.Request, resp *http.Response, keep bool) error {
	removeHopByHop(resp.Header)
	noBody := req.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified || resp.StatusCode < 200
	chunked := !noBody && resp.ContentLength < 0 && req.ProtoAtLeast(1, 1)
	if !noBody && resp.ContentLength >= 0 {
		resp.Header.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}

	var head bytes.Buffer
	head.WriteString("HTTP/1.1 ")
	head.WriteString(strconv.Itoa(resp.StatusCode))
	head.WriteByte(' ')
	head.WriteString(http.StatusText(resp.StatusCode))
	head.WriteString("\r\n")
	resp.Header.Write(&head)
	if chunked {
		head.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if !keep {
		head.WriteString("Connection: close\r\n")
	}
	head.WriteString("\r\n")
	w := &idleConn{Conn: cc, idle: p.write}
	if _, err := w.Write(head.Bytes()); err != nil || noBody {
		return err
	}

	var dst io.Writer = w
	var cw io.WriteCloser
	if chunked {
		cw = httputil.NewChunkedWriter(w)
		dst = cw
	}
	rb := rbufPool.Get().(*rbuf)
	defer rbufPool.Put(rb)
	if _, err := io.CopyBuffer(onlyWriter{dst}, onlyReader{resp.Body}, rb.b); err != nil {
		return err
	}
	if cw != nil {
		if err := cw.Close(); err != nil {
			return err
		}
		_, err := io.WriteString(w, "\r\n")
		return err
	}
	return nil
}

// basePathOf returns an upstream URL's path without its trailing slash.
func basePathOf(upstream string) string {
	i := strings.Index(upstream, "://")
	if i < 0 {
		return ""
	}
	rest := upstream[i+3:]
	j := strings.IndexByte(rest, '/')
	if j < 0 {
		return ""
	}
	return strings.TrimSuffix(rest[j:], "/")
}
