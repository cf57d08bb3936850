package clientip

// Forwarded (RFC 7239 section 4) lists one element per proxy:
//
//	Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8::1]:4711"
//
// Elements are separated by commas and hold parameter=value pairs
// separated by semicolons; a value is a token or a quoted-string, which
// may itself hold commas, semicolons and backslash escapes.
//
// A client may send a Forwarded line of its own, and a proxy may append
// its element to that line rather than add one. The client can then leave
// a quoted-string open so that it swallows the proxy's element. The
// parser below must never read such a line as naming an address the
// client chose: commas inside quotes never split elements, an element
// still inside quotes at the end of its line is malformed, and so is any
// element that breaks the grammar after its quotes are balanced. A
// malformed element counts as an unusable entry, which only matters if
// the walk from the right reaches it.

import "github.com/wsguard/wsguard/internal/httphead"

// scanForwarded adds the for= value of each element of one Forwarded line
// to hs. An empty element (nothing but spaces and semicolons) is skipped.
// An element that is malformed, repeats for= or has no for= at all is
// added as a bad entry spanning the element: a trusted proxy's element
// must name the client.
func scanForwarded(hs *hops, line int, v []byte) {
	for start := 0; start <= len(v); {
		end, closed := elementEnd(v, start)
		s, e, flags, found := forwardedFor(v, start, end)
		if !closed {
			s, e = trimSpan(v, start, end)
			flags, found = hopBad, true
		}
		if found {
			hs.add(line, s, e, flags)
		}
		start = end + 1
	}
}

// elementEnd returns the index of the comma that ends the element starting
// at v[start], or len(v). Commas inside quoted-strings do not count, and a
// backslash inside one protects the next byte. closed is false when a
// quoted-string is still open at the end of the line.
func elementEnd(v []byte, start int) (end int, closed bool) {
	quoted := false
	for i := start; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted:
			i++
		case c == ',' && !quoted:
			return i, true
		}
	}
	return len(v), !quoted
}

// forwardedFor returns the span of the for= value of the element v[s:e],
// inside any quotes, and hopEscaped if it holds escapes. If the element is
// malformed, repeats for= or lacks it, the span is the whole element and
// the flags are hopBad. found is false for an empty element.
func forwardedFor(v []byte, s, e int) (vs, ve int, flags uint8, found bool) {
	vs, ve, flags, pairs, ok := forwardedPairs(v, s, e)
	switch {
	case ok && pairs == 0:
		return 0, 0, 0, false
	case ok && vs >= 0:
		return vs, ve, flags, true
	}
	s, e = trimSpan(v, s, e)
	return s, e, hopBad, true
}

// forwardedPairs parses the element v[s:e] as
//
//	[ pair ] *( OWS ";" OWS [ pair ] )    pair = token "=" value
//
// and returns the span and flags of the for= value (vs is -1 without one)
// and the number of pairs. ok is false if the element breaks the grammar or
// names for= twice. Spaces around ";" and "," are allowed, though RFC 7239
// has none, but not around "=".
func forwardedPairs(v []byte, s, e int) (vs, ve int, flags uint8, pairs int, ok bool) {
	vs, ve = -1, -1
	for i := s; ; {
		i = skipOWS(v, i, e)
		if i == e {
			return vs, ve, flags, pairs, true
		}
		if v[i] == ';' {
			i++
			continue
		}

		// name "=" value
		n := i
		for i < e && httphead.IsTokenChar(v[i]) {
			i++
		}
		if i == n || i == e || v[i] != '=' {
			return vs, ve, flags, pairs, false
		}
		name := v[n:i]
		as, ae, next, f, valid := pairValue(v, i+1, e)
		if !valid {
			return vs, ve, flags, pairs, false
		}
		pairs++
		if httphead.EqualFold(name, "for") {
			if vs >= 0 {
				return vs, ve, flags, pairs, false
			}
			vs, ve, flags = as, ae, f
		}

		// then the end of the element or ";"
		i = skipOWS(v, next, e)
		if i == e {
			return vs, ve, flags, pairs, true
		}
		if v[i] != ';' {
			return vs, ve, flags, pairs, false
		}
		i++
	}
}

// pairValue parses the value starting at v[i], before e: a quoted-string
// or a run of value characters. It returns the span of the value (inside
// the quotes), the index after it, and hopEscaped if a quoted-string holds
// escapes.
func pairValue(v []byte, i, e int) (s, end, next int, flags uint8, ok bool) {
	if i < e && v[i] == '"' {
		for j := i + 1; j < e; j++ {
			switch c := v[j]; {
			case c == '"':
				return i + 1, j, j + 1, flags, true
			case c == '\\':
				if j+1 == e || !isQuotedPairChar(v[j+1]) {
					return 0, 0, 0, 0, false
				}
				flags = hopEscaped
				j++
			case !isQdText(c):
				return 0, 0, 0, 0, false
			}
		}
		return 0, 0, 0, 0, false
	}
	j := i
	for j < e && isValueChar[v[j]] {
		j++
	}
	if j == i {
		return 0, 0, 0, 0, false
	}
	return i, j, j, 0, true
}

// skipOWS returns the index of the first byte from i, before e, that is
// neither a space nor a tab.
func skipOWS(v []byte, i, e int) int {
	for i < e && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	return i
}

// isValueChar reports which bytes may appear in an unquoted value: token
// characters, and also ":", "[" and "]". RFC 7239 wants an IPv6 address
// or a port quoted, but some proxies omit the quotes, and these bytes
// cannot start or end a quoted-string, an element or a pair.
var isValueChar = func() (t [256]bool) {
	for c := range t {
		t[c] = httphead.IsTokenChar(byte(c))
	}
	t[':'], t['['], t[']'] = true, true, true
	return t
}()

// isQdText reports whether c may appear unescaped in a quoted-string (RFC
// 9110 section 5.6.4): tab, space and visible ASCII other than '"' and
// '\', and obs-text.
func isQdText(c byte) bool {
	return c == '\t' || c == ' ' || c == '!' || '#' <= c && c <= '[' ||
		']' <= c && c <= '~' || c >= 0x80
}

// isQuotedPairChar reports whether a backslash may protect c: tab, space,
// visible ASCII and obs-text.
func isQuotedPairChar(c byte) bool {
	return c == '\t' || c >= ' ' && c != 0x7f
}
