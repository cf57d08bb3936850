package relay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/wsguard/wsguard/auth"
	"github.com/wsguard/wsguard/clientip"
	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/internal/wiring"
)

// identity is the part of a config snapshot that decides who a client is:
// its address (trusted proxies, PROXY protocol) and its user (JWT).
type identity struct {
	resolver   *clientip.Resolver
	auth       *auth.Authenticator // nil: auth off
	proxyMode  string              // off, optional, required
	userHeader string
}

func newIdentity(ctx context.Context, cfg config.Config, log *slog.Logger) (*identity, error) {
	trusted, err := clientip.ParseCIDRs(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted_proxies: %w", err)
	}
	h, err := clientip.ParseHeader(cfg.ClientIPHeader)
	if err != nil {
		return nil, fmt.Errorf("client_ip_header: %w", err)
	}
	id := &identity{
		resolver:   clientip.NewResolver(trusted, h),
		proxyMode:  cfg.ProxyProtocol,
		userHeader: cfg.Auth.ForwardUserHeader,
	}
	if id.auth, err = wiring.Authenticator(ctx, cfg.Auth, log); err != nil {
		return nil, err
	}
	return id, nil
}

func (id *identity) close() {
	if id != nil && id.auth != nil {
		id.auth.Close()
	}
}

// proxyReaders pools the buffered readers that PROXY protocol headers
// are read through.
var proxyReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 1024) }}

var errProxyHeader = errors.New("proxy protocol header refused")

// readProxyHeader applies the PROXY protocol mode to a new connection
// from peer. It returns the address the connection speaks for (the
// header's source, or peer) and the reader the request head follows on.
// A header from an untrusted peer, a malformed one, or a missing one in
// required mode is an error: the connection is closed without a word.
func (id *identity) readProxyHeader(nc net.Conn, peer netip.Addr) (netip.Addr, io.Reader, error) {
	if id.proxyMode == "off" || id.proxyMode == "" {
		return peer, nc, nil
	}
	if !id.resolver.Trusted(peer) {
		if id.proxyMode == "required" {
			return peer, nil, errProxyHeader
		}
		// A header from this peer is refused after the head is read:
		// see isProxyHeader.
		return peer, nc, nil
	}
	br := proxyReaders.Get().(*bufio.Reader)
	br.Reset(nc)
	defer func() {
		br.Reset(nil)
		proxyReaders.Put(br)
	}()
	hdr, err := proxyproto.Read(br)
	switch {
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		if id.proxyMode == "required" {
			return peer, nil, errProxyHeader
		}
	case err != nil:
		return peer, nil, fmt.Errorf("%w: %w", errProxyHeader, err)
	default:
		// A LOCAL header is the proxy's own connection (a health check):
		// it speaks for the peer, whatever addresses it carries.
		if src, _, ok := hdr.TCPAddrs(); ok && hdr.Command.IsProxy() {
			peer = src.AddrPort().Addr().Unmap()
		}
	}
	// Bytes after the header that the buffer already holds come first.
	rest, _ := br.Peek(br.Buffered())
	if len(rest) == 0 {
		return peer, nc, nil
	}
	return peer, io.MultiReader(bytes.NewReader(bytes.Clone(rest)), nc), nil
}

// isProxyHeader reports whether a request head is in fact a PROXY
// protocol header (v1 text or v2 binary signature).
func isProxyHeader(head []byte) bool {
	return bytes.HasPrefix(head, proxyproto.SIGV1) || bytes.HasPrefix(head, proxyproto.SIGV2)
}

// sometimes lets an event through at most once per interval, for warnings
// that an attacker could otherwise turn into a log flood.
type sometimes struct {
	interval time.Duration
	last     atomic.Int64
}

func (s *sometimes) allow() bool {
	now := time.Now().UnixNano()
	last := s.last.Load()
	return now-last >= int64(s.interval) && s.last.CompareAndSwap(last, now)
}

// warnUnusable logs, at most every 10 s, that a trusted proxy sent a
// forwarding header whose client entry could not be used.
func (s *Server) warnUnusable(res clientip.Result, peer netip.Addr) {
	if res.Unusable == "" || !s.unusableLog.allow() {
		return
	}
	s.log.Warn("trusted proxy sent an unusable client address; counting the proxy",
		slog.String("proxy", peer.String()), slog.String("entry", res.Unusable))
}

// appendResponseField inserts a header line before the empty line that
// ends a response head.
func appendResponseField(head []byte, name, value string) []byte {
	end := len(head) - 2 // the final CRLF
	if !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		end = len(head) - 1 // a bare LF head
	}
	out := make([]byte, 0, len(head)+len(name)+len(value)+4)
	out = append(out, head[:end]...)
	out = append(out, name...)
	out = append(out, ": "...)
	out = append(out, strings.TrimSpace(value)...)
	out = append(out, "\r\n"...)
	return append(out, head[end:]...)
}
