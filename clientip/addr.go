package clientip

import (
	"bytes"
	"net/netip"
)

// maxNode bounds the length of one entry ("[2001:db8::1]:443") that is
// parsed. Only an address with a long zone needs more, and zones mean
// nothing on another host.
const maxNode = 64

// parseNode parses one entry of a forwarding chain: an IPv4 or IPv6
// address alone, an IPv4 address with a port ("192.0.2.7:4711"), or a
// bracketed IPv6 address with or without a port ("[2001:db8::1]:443").
// A port is a decimal number up to 65535 or an RFC 7239 obfuscated port
// ("_p1"). The address comes back unmapped and without its zone.
//
// parseNode never allocates, unlike netip.ParseAddr on a byte slice.
func parseNode(b []byte) (netip.Addr, bool) {
	if len(b) > maxNode {
		return netip.Addr{}, false
	}
	if len(b) > 0 && b[0] == '[' {
		end := bytes.IndexByte(b, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		if rest := b[end+1:]; len(rest) > 0 && (rest[0] != ':' || !isPort(rest[1:])) {
			return netip.Addr{}, false
		}
		return parseIPv6(b[1:end])
	}

	// A single colon separates an IPv4 address from its port; an IPv6
	// address has at least two and takes brackets to carry a port.
	if i := bytes.IndexByte(b, ':'); i >= 0 && bytes.IndexByte(b[i+1:], ':') < 0 {
		if !isPort(b[i+1:]) {
			return netip.Addr{}, false
		}
		return parseIPv4(b[:i])
	}
	return parseAddr(b)
}

// isPort reports whether b is a node-port of RFC 7239 section 6: a
// decimal port of at most five digits, here also at most 65535, or an
// obfuscated port, "_" followed by letters, digits, ".", "_" or "-".
func isPort(b []byte) bool {
	if len(b) > 1 && b[0] == '_' {
		for _, c := range b[1:] {
			if !isObfChar(c) {
				return false
			}
		}
		return true
	}
	if len(b) == 0 || len(b) > 5 {
		return false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// isObfChar reports whether c may follow the "_" of an obfuscated node or
// port (RFC 7239 section 6.3).
func isObfChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// parseAddr parses an IPv4 or IPv6 address the way netip.ParseAddr does,
// except that the result is unmapped and without a zone.
func parseAddr(b []byte) (netip.Addr, bool) {
	for _, c := range b {
		switch c {
		case '.':
			return parseIPv4(b)
		case ':':
			return parseIPv6(b)
		case '%':
			return netip.Addr{}, false
		}
	}
	return netip.Addr{}, false
}

// parseIPv4 parses a dotted-decimal IPv4 address.
func parseIPv4(b []byte) (netip.Addr, bool) {
	ip, ok := ipv4Bytes(b)
	if !ok {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(ip), true
}

// ipv4Bytes parses exactly four decimal fields of 0 to 255, separated by
// dots. As in netip, a field may not start with a zero unless it is "0":
// some parsers read "010" as octal, and an address must mean one thing.
func ipv4Bytes(b []byte) (ip [4]byte, ok bool) {
	field, val, digits := 0, 0, 0
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			if digits > 0 && val == 0 {
				return ip, false
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return ip, false
			}
		case c == '.' && digits > 0 && field < 3:
			ip[field] = byte(val)
			field++
			val, digits = 0, 0
		default:
			return ip, false
		}
	}
	if field != 3 || digits == 0 {
		return ip, false
	}
	ip[3] = byte(val)
	return ip, true
}

// parseIPv6 parses an IPv6 address in the text forms of RFC 4291 section
// 2.2: eight groups of one to four hex digits, at most one "::" standing
// for one or more zero groups, and optionally an IPv4 address in place of
// the last two groups. A zone ("%eth0") must not be empty and is dropped.
// IPv4-mapped addresses come back as IPv4.
func parseIPv6(b []byte) (netip.Addr, bool) {
	if i := bytes.IndexByte(b, '%'); i >= 0 {
		if i == len(b)-1 {
			return netip.Addr{}, false
		}
		b = b[:i]
	}

	var ip [16]byte
	n := 0    // bytes of ip filled so far
	gap := -1 // where the "::" stands, as an offset into ip
	if len(b) >= 2 && b[0] == ':' && b[1] == ':' {
		gap = 0
		b = b[2:]
	}
	for len(b) > 0 {
		if n == 16 {
			return netip.Addr{}, false
		}

		// One group of hex digits, or the start of a trailing IPv4 address.
		i, val := 0, 0
		for ; i < len(b) && i < 5; i++ {
			d := unhex(b[i])
			if d < 0 {
				break
			}
			val = val<<4 | d
		}
		if i == 0 || i > 4 {
			return netip.Addr{}, false
		}
		if i < len(b) && b[i] == '.' {
			if n > 12 || (gap < 0 && n != 12) {
				return netip.Addr{}, false
			}
			v4, ok := ipv4Bytes(b)
			if !ok {
				return netip.Addr{}, false
			}
			copy(ip[n:], v4[:])
			n += 4
			break
		}
		ip[n], ip[n+1] = byte(val>>8), byte(val)
		n += 2

		// A separator: ":" before another group, or "::" once.
		b = b[i:]
		if len(b) == 0 {
			break
		}
		if b[0] != ':' || len(b) == 1 {
			return netip.Addr{}, false
		}
		b = b[1:]
		if b[0] == ':' {
			if gap >= 0 {
				return netip.Addr{}, false
			}
			gap = n
			b = b[1:]
		}
	}

	// Open the gap to fill sixteen bytes; "::" stands for at least one group.
	switch {
	case n < 16 && gap < 0, n == 16 && gap >= 0:
		return netip.Addr{}, false
	case n < 16:
		shift := 16 - n
		copy(ip[gap+shift:], ip[gap:n])
		clear(ip[gap : gap+shift])
	}
	return netip.AddrFrom16(ip).Unmap(), true
}

// unhex returns the value of hex digit c, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
