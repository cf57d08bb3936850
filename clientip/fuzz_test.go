package clientip

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/wsguard/wsguard/internal/httphead"
)

// fuzzPeers are the peers fuzzed headers arrive from: trusted over IPv4,
// IPv4-mapped IPv6 and IPv6, then untrusted.
var fuzzPeers = []netip.Addr{
	netip.MustParseAddr("10.0.0.2"),
	netip.MustParseAddr("::ffff:10.0.0.3"),
	netip.MustParseAddr("2001:db8:a::1%eth0"),
	netip.MustParseAddr("198.51.100.9"),
	netip.MustParseAddr("2001:db8:bad::1"),
}

// seedChains are header values shared by the fuzz targets.
var seedChains = []string{
	"203.0.113.7",
	"203.0.113.7, 10.0.0.2",
	"6.6.6.6, 10.9.9.9, 203.0.113.7:4711, [10.0.0.2]:80",
	"[2001:db8:beef::7]:443,\t::ffff:10.0.0.1",
	"unknown, _hidden, 010.1.1.1, fe80::1%eth0",
	"10.0.0.1, 10.0.0.2\n203.0.113.7\n",
	" , ,",
	"for=203.0.113.7",
	`for="[2001:db8:beef::7]:4711";proto=https, For=10.0.0.2`,
	`for=6.6.6.6;x="a,b;c", for=203.0.113.7;by=_x`,
	`for="\[2001:db8::1\]", for=unknown`,
	"for=6.6.6.6;x=\"\nfor=203.0.113.7",
	`for="_hidden:_p";for=1.2.3.4, ;, for=`,
}

// lineFields makes one header line called name per line.
func lineFields(name string, lines []string) httphead.Fields {
	fs := make(httphead.Fields, len(lines))
	for i, l := range lines {
		fs[i] = httphead.Field{Name: []byte(name), Value: []byte(l)}
	}
	return fs
}

func FuzzResolveXFF(f *testing.F) {
	for i, s := range seedChains {
		f.Add(s, uint8(i))
	}
	r := newTestResolver(f, HeaderXFF)
	f.Fuzz(func(t *testing.T, header string, peerIndex uint8) {
		peer := fuzzPeers[int(peerIndex)%len(fuzzPeers)]
		lines := strings.Split(header, "\n")
		got := r.Resolve(peer, lineFields("X-Forwarded-For", lines))
		checkResult(t, r, peer, header, got)
		if want := referenceResolve(r, peer, lines, referenceXFF); got != want {
			t.Fatalf("Resolve(%s, %q)\n got %+v\nwant %+v", peer, header, got, want)
		}
		checkAppended(t, r, lines, ", ", "203.0.113.77", "203.0.113.77")
	})
}

func FuzzResolveForwarded(f *testing.F) {
	for i, s := range seedChains {
		f.Add(s, uint8(i))
	}
	r := newTestResolver(f, HeaderForwarded)
	f.Fuzz(func(t *testing.T, header string, peerIndex uint8) {
		peer := fuzzPeers[int(peerIndex)%len(fuzzPeers)]
		lines := strings.Split(header, "\n")
		got := r.Resolve(peer, lineFields("Forwarded", lines))
		checkResult(t, r, peer, header, got)
		if want := referenceResolve(r, peer, lines, referenceForwarded); got != want {
			t.Fatalf("Resolve(%s, %q)\n got %+v\nwant %+v", peer, header, got, want)
		}
		checkAppended(t, r, lines, ", ", "for=203.0.113.77", "203.0.113.77")
		checkAppended(t, r, lines, ",", `for="[2001:db8:beef::77]:4711";proto=https`, "2001:db8:beef::77")
	})
}

// checkResult checks what must hold for any Resolve result.
func checkResult(t *testing.T, r *Resolver, peer netip.Addr, header string, got Result) {
	t.Helper()
	peer = peer.Unmap().WithZone("")
	peerOnly := Result{Addr: peer, Chain: peer.String()}
	switch {
	case !r.Trusted(peer) && got != peerOnly:
		t.Fatalf("untrusted peer %s: got %+v", peer, got)
	case !got.Addr.IsValid() || got.Addr.Is4In6() || got.Addr.Zone() != "":
		t.Fatalf("Addr %s is not a plain address", got.Addr)
	case got.Addr != peer && !appearsIn(header, got.Addr):
		t.Fatalf("Addr %s is neither the peer nor in %q", got.Addr, header)
	}

	if got.Unusable != "" {
		if got.Addr != peer || got.Via.IsValid() || got.Chain != peer.String() {
			t.Fatalf("unusable but %+v", got)
		}
		if len(got.Unusable) > maxUnusable || strings.IndexFunc(got.Unusable, func(c rune) bool {
			return c < ' ' || c > '~'
		}) >= 0 {
			t.Fatalf("Unusable %q is not short printable ASCII", got.Unusable)
		}
	}

	// The chain runs from Addr through trusted proxies to the peer.
	if !got.Via.IsValid() {
		if got != peerOnly && got.Unusable == "" {
			t.Fatalf("no Via but %+v", got)
		}
		return
	}
	parts := strings.Split(got.Chain, ", ")
	if len(parts) < 2 || parts[0] != got.Addr.String() || parts[1] != got.Via.String() ||
		parts[len(parts)-1] != peer.String() {
		t.Fatalf("Chain %q does not run from %s via %s to %s", got.Chain, got.Addr, got.Via, peer)
	}
	for _, p := range parts[1:] {
		if !r.Trusted(netip.MustParseAddr(p)) {
			t.Fatalf("Chain %q holds untrusted %s right of the client", got.Chain, p)
		}
	}
}

// checkAppended checks that whatever a client sends, a trusted proxy that
// names the client is believed: adding its own line, it always is;
// appending to the client's last line, it is unless that line was too
// long or the client broke its syntax, and then the peer is the client.
func checkAppended(t *testing.T, r *Resolver, lines []string, sep, entry, client string) {
	t.Helper()
	peer := fuzzPeers[0]
	want := netip.MustParseAddr(client)
	name := "X-Forwarded-For"
	if strings.HasPrefix(entry, "for=") {
		name = "Forwarded"
	}

	added := append(lines[:len(lines):len(lines)], entry)
	if got := r.Resolve(peer, lineFields(name, added)); got.Addr != want || got.Via != peer {
		t.Fatalf("proxy line %q after %q: got %+v", entry, lines, got)
	}

	appended := append(lines[:len(lines)-1:len(lines)-1], lines[len(lines)-1]+sep+entry)
	got := r.Resolve(peer, lineFields(name, appended))
	switch {
	case got.Addr == want && got.Via == peer:
	case got.Addr == peer && got.Unusable != "" && name == "Forwarded":
	case got.Addr == peer && got.Unusable == noteTooLong:
	default:
		t.Fatalf("proxy appended %q to %q: got %+v", entry, lines, got)
	}
}

// appearsIn reports whether a is written somewhere in text, perhaps in
// another form ("::ffff:c000:207" for 192.0.2.7), perhaps with escapes.
func appearsIn(text string, a netip.Addr) bool {
	texts := []string{text}
	if strings.Contains(text, `\`) {
		texts = append(texts, strings.ReplaceAll(text, `\`, ""))
	}
	for _, s := range texts {
		if strings.Contains(s, a.String()) {
			return true
		}
		// Any written form without its zone is a run of these bytes.
		for i := range len(s) {
			for j := i + 1; j <= len(s) && j-i <= maxNode; j++ {
				if c := s[j-1]; unhex(c) < 0 && c != ':' && c != '.' {
					break
				}
				b, err := netip.ParseAddr(s[i:j])
				if err == nil && b.Unmap() == a {
					return true
				}
			}
		}
	}
	return false
}

// A refEntry is one entry of a chain as the reference implementation
// sees it: the text the header wrote, and whether it is known to be bad.
type refEntry struct {
	text   string
	bad    bool
	quoted bool // text is the inside of a quoted-string, escapes and all
}

// referenceXFF splits an X-Forwarded-For line the slow, obvious way.
func referenceXFF(line string) []refEntry {
	var entries []refEntry
	for e := range strings.SplitSeq(line, ",") {
		if e = strings.Trim(e, " \t"); e != "" {
			entries = append(entries, refEntry{text: e})
		}
	}
	return entries
}

// Regular expressions for RFC 7239 elements, as forwarded.go reads them.
var (
	refTchar    = "[!#$%&'*+.^_`|~0-9A-Za-z-]"
	refQuoted   = `"(?:[\t !#-\[\]-~]|[^\x00-\x7f]|\\(?:[\t -~]|[^\x00-\x7f]))*"`
	refPair     = "(" + refTchar + "+)=(" + refTchar[:len(refTchar)-1] + ":\\[\\]]+|" + refQuoted + ")"
	refExtent   = regexp.MustCompile(`^(?:[^",]|"(?:[^"\\]|\\(?s:.))*")*`)
	refElement  = regexp.MustCompile(`^[ \t]*(?:` + refPair + `)?(?:[ \t]*;[ \t]*(?:` + refPair + `)?)*[ \t]*$`)
	refNextPair = regexp.MustCompile(`^[ \t;]*` + refPair)
)

// referenceForwarded splits a Forwarded line with regular expressions.
func referenceForwarded(line string) []refEntry {
	var entries []refEntry
	for rest := line; ; {
		n := len(refExtent.FindString(rest))
		elem, open := rest[:n], strings.HasPrefix(rest[n:], `"`)
		if open {
			elem = rest // an unclosed quote runs to the end of the line
		}
		if e, ok := referenceElement(elem, open); ok {
			entries = append(entries, e)
		}
		if open || n == len(rest) {
			return entries
		}
		rest = rest[n+1:]
	}
}

// referenceElement returns the for= entry of one element, or a bad entry;
// ok is false for an empty element.
func referenceElement(elem string, open bool) (e refEntry, ok bool) {
	bad := refEntry{text: strings.Trim(elem, " \t"), bad: true}
	if open || !refElement.MatchString(elem) {
		return bad, true
	}
	pairs, fors := 0, 0
	for rest := elem; ; pairs++ {
		m := refNextPair.FindStringSubmatchIndex(rest)
		if m == nil {
			break
		}
		if strings.EqualFold(rest[m[2]:m[3]], "for") {
			fors++
			value := rest[m[4]:m[5]]
			e.quoted = strings.HasPrefix(value, `"`)
			e.text = strings.TrimSuffix(strings.TrimPrefix(value, `"`), `"`)
		}
		rest = rest[m[1]:]
	}
	switch {
	case pairs == 0:
		return refEntry{}, false
	case fors != 1:
		return bad, true
	}
	return e, true
}

// referenceResolve is Resolve written the slow, obvious way, with split
// reading one header line and netip doing the address parsing.
func referenceResolve(
	r *Resolver, peer netip.Addr, lines []string, split func(string) []refEntry,
) Result {
	peer = peer.Unmap().WithZone("")
	peerOnly := Result{Addr: peer, Chain: peer.String()}
	if !r.Trusted(peer) {
		return peerOnly
	}
	unusable := func(why string) Result {
		res := peerOnly
		res.Unusable = why
		return res
	}

	// The lines that fit the byte bound, from the right, then their entries.
	var kept []string
	size, cut := 0, false
	for i := len(lines) - 1; i >= 0; i-- {
		size += len(lines[i]) + 1
		if size > maxHeaderBytes {
			cut = true
			break
		}
		kept = append([]string{lines[i]}, kept...)
	}
	var entries []refEntry
	for _, l := range kept {
		entries = append(entries, split(l)...)
	}
	if len(entries) > maxHops {
		entries = entries[len(entries)-maxHops:]
		cut = true
	}

	addrs := make([]netip.Addr, len(entries))
	client := -1
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		text := e.text
		if e.quoted {
			text = referenceUnescape(text)
		}
		a, ok := referenceNode(text)
		if e.bad || !ok {
			return unusable(sanitize([]byte(e.text)))
		}
		addrs[i] = a
		if !r.Trusted(a) {
			client = i
			break
		}
	}
	switch {
	case client >= 0:
	case cut:
		return unusable(noteTooLong)
	case len(entries) == 0:
		return peerOnly
	default:
		client = 0
	}

	var parts []string
	for _, a := range addrs[client:] {
		parts = append(parts, a.String())
	}
	via := peer
	if client+1 < len(addrs) {
		via = addrs[client+1]
	}
	return Result{addrs[client], strings.Join(append(parts, peer.String()), ", "), via, ""}
}

// referenceUnescape removes the backslash of each quoted-pair.
func referenceUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// referencePort matches a node-port of RFC 7239.
var referencePort = regexp.MustCompile(`^(?:[0-9]{1,5}|_[A-Za-z0-9._-]+)$`)

// referenceNode is parseNode written with netip.
func referenceNode(s string) (netip.Addr, bool) {
	if len(s) > maxNode {
		return netip.Addr{}, false
	}
	host, port, hasPort := s, "", false
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return netip.Addr{}, false
		}
		host = s[1:end]
		if rest := s[end+1:]; rest != "" {
			port, hasPort = strings.CutPrefix(rest, ":")
			if !hasPort {
				return netip.Addr{}, false
			}
		}
	} else if strings.Count(s, ":") == 1 {
		host, port, hasPort = strings.Cut(s, ":")
	}
	a, err := netip.ParseAddr(host)
	switch {
	case err != nil,
		strings.HasPrefix(s, "[") && !a.Is6(),
		!strings.HasPrefix(s, "[") && hasPort && !a.Is4():
		return netip.Addr{}, false
	}
	if hasPort {
		n, err := strconv.Atoi(port)
		if !referencePort.MatchString(port) || (err == nil && n > 65535) {
			return netip.Addr{}, false
		}
	}
	return a.Unmap().WithZone(""), true
}
