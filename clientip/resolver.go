package clientip

import (
	"net/netip"

	"github.com/wsguard/wsguard/internal/httphead"
)

// Resolver decides a connection's client address from its TCP peer and,
// when the peer is a trusted proxy, the forwarding header the proxies use.
// A Resolver is immutable and safe for concurrent use. The zero Resolver
// and a nil *Resolver trust no proxy, so they always answer with the peer.
type Resolver struct {
	v4, v6 []netip.Prefix // trusted proxies, canonical (see canonical)
	header Header
}

// NewResolver returns a Resolver that believes header h when, and only
// when, the peer lies inside one of the trusted prefixes. The prefixes are
// copied and masked; IPv4-mapped ones become IPv4 (see ParseCIDRs), and
// invalid ones are skipped. An IPv6 prefix never matches an IPv4 address:
// "::/0" does not trust IPv4 peers. An unknown h makes every header
// ignored.
func NewResolver(trusted []netip.Prefix, h Header) *Resolver {
	r := &Resolver{header: h}
	for _, p := range trusted {
		p, _ = canonical(p)
		switch {
		case !p.IsValid():
		case p.Addr().Is4():
			r.v4 = append(r.v4, p)
		default:
			r.v6 = append(r.v6, p)
		}
	}
	return r
}

// Trusted reports whether a, unmapped and without its zone, lies inside a
// trusted prefix.
func (r *Resolver) Trusted(a netip.Addr) bool {
	if r == nil {
		return false
	}
	a = a.Unmap().WithZone("")
	list := r.v6
	if a.Is4() {
		list = r.v4
	}
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Result is a Resolver's decision about one connection.
type Result struct {
	// Addr is the client: the address counted against limits and sent
	// upstream as X-Real-IP. It is always unmapped and without a zone.
	Addr netip.Addr

	// Chain is the X-Forwarded-For value for the upstream: the accepted
	// part of the chain, from Addr rightwards, with the peer appended,
	// as canonical addresses joined by ", " ("203.0.113.7, 10.0.0.2").
	// Entries left of Addr were written by the client and are dropped.
	// From an untrusted peer, Chain is just the peer.
	Chain string

	// Via is the trusted proxy that saw Addr as its TCP peer and named it:
	// the entry right of Addr in Chain. It is the zero Addr when Addr is
	// the peer itself.
	Via netip.Addr

	// Unusable is set when a trusted proxy's header should have named the
	// client but did not: the entry was "unknown", obfuscated ("_hidden"),
	// not an address, part of a malformed Forwarded element, or the chain
	// was longer than this package examines. Addr is then the peer. The
	// text is a copy of the offending entry, or a note in parentheses,
	// made of printable ASCII and at most 64 bytes, fit for a throttled
	// warning.
	Unusable string
}

// Resolve decides the client address of a connection from peer, its TCP
// peer, and the request's header fields:
//
//   - From a peer outside the trusted prefixes, every header is ignored:
//     Addr is the peer.
//   - With HeaderXFF or HeaderForwarded, every line of the header is read
//     in order as one chain, which is walked from the right past trusted
//     addresses. The first untrusted entry is the client. If every entry
//     is trusted, the request came from inside the trusted network (a
//     health check, say) and the leftmost entry is the client. Without
//     entries, the peer is the client.
//   - With HeaderXRealIP, exactly one X-Real-IP line holding one address
//     names the client, even when that address is itself trusted. Without
//     the line, the peer is the client.
//
// Brackets and ports around an address are stripped, and so are spaces
// around an X-Forwarded-For entry. If the entry that decides is not an address, Addr is the peer
// and Unusable says what was found.
//
// At most 64 entries, counted from the right, and 8 KiB of header lines,
// counted from the last line, are examined: a chain whose examined part
// is all trusted but which goes on further left is Unusable.
//
// An invalid peer gives the zero Result.
func (r *Resolver) Resolve(peer netip.Addr, fields httphead.Fields) Result {
	peer = peer.Unmap().WithZone("")
	switch {
	case !peer.IsValid():
		return Result{}
	case !r.Trusted(peer):
		return peerResult(peer)
	case r.header == HeaderXRealIP:
		return resolveRealIP(peer, fields)
	case r.header != HeaderXFF && r.header != HeaderForwarded:
		return peerResult(peer)
	}

	var hs hops
	hs.collect(fields, r.header)
	return r.walk(peer, &hs)
}

// walk finds the client among the entries in hs, which came from a
// trusted peer.
func (r *Resolver) walk(peer netip.Addr, hs *hops) Result {
	n := hs.len()
	client := -1 // the client's entry, counted from the right
	for k := 0; k < n; k++ {
		a, ok := hs.addr(k)
		if !ok {
			return unusable(peer, sanitize(hs.text(k)))
		}
		if !r.Trusted(a) {
			client = k
			break
		}
	}
	switch {
	case client >= 0:
	case hs.truncated():
		return unusable(peer, noteTooLong)
	case n == 0:
		return peerResult(peer)
	default:
		client = n - 1
	}

	// The client and the trusted proxies right of it, then the peer.
	res := Result{Via: peer}
	var buf [128]byte
	chain := buf[:0]
	for k := client; k >= 0; k-- {
		a, _ := hs.addr(k)
		switch k {
		case client:
			res.Addr = a
		case client - 1:
			res.Via = a
		}
		chain = append(a.AppendTo(chain), ", "...)
	}
	res.Chain = string(peer.AppendTo(chain))
	return res
}

// resolveRealIP reads the single X-Real-IP line sent by a trusted peer.
func resolveRealIP(peer netip.Addr, fs httphead.Fields) Result {
	var value []byte
	lines := 0
	for i := range fs {
		if httphead.EqualFold(fs[i].Name, "X-Real-IP") {
			value = fs[i].Value
			lines++
		}
	}
	switch {
	case lines == 0:
		return peerResult(peer)
	case lines > 1:
		return unusable(peer, noteManyLines)
	}
	a, ok := parseNode(trimOWS(value))
	if !ok {
		return unusable(peer, sanitize(value))
	}
	var buf [128]byte
	chain := append(a.AppendTo(buf[:0]), ", "...)
	return Result{Addr: a, Chain: string(peer.AppendTo(chain)), Via: peer}
}

// peerResult is the Result naming the peer itself.
func peerResult(peer netip.Addr) Result {
	return Result{Addr: peer, Chain: peer.String()}
}

// unusable is the Result naming the peer because the header, which should
// have named the client, held why instead.
func unusable(peer netip.Addr, why string) Result {
	res := peerResult(peer)
	res.Unusable = why
	return res
}

// Notes for Result.Unusable when no single entry is to blame.
const (
	noteEmpty     = "(empty)"
	noteTooLong   = "(chain too long)"
	noteManyLines = "(several X-Real-IP lines)"
)

// maxUnusable bounds the length of Result.Unusable.
const maxUnusable = 64

// sanitize copies b for a log line: bytes outside printable ASCII become
// "?", and a copy longer than maxUnusable is cut short with "...".
func sanitize(b []byte) string {
	if len(b) == 0 {
		return noteEmpty
	}
	n := len(b)
	if n > maxUnusable {
		n = maxUnusable - len("...")
	}
	out := make([]byte, n, maxUnusable)
	for i := range out {
		c := b[i]
		if c < ' ' || c > '~' {
			c = '?'
		}
		out[i] = c
	}
	if n < len(b) {
		out = append(out, "..."...)
	}
	return string(out)
}

// trimOWS removes optional whitespace (spaces and tabs) from both ends.
func trimOWS(b []byte) []byte {
	s, e := trimSpan(b, 0, len(b))
	return b[s:e]
}

// trimSpan narrows b[s:e] to exclude spaces and tabs at either end.
func trimSpan(b []byte, s, e int) (int, int) {
	for s < e && (b[s] == ' ' || b[s] == '\t') {
		s++
	}
	for e > s && (b[e-1] == ' ' || b[e-1] == '\t') {
		e--
	}
	return s, e
}
