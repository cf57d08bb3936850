package flood

import (
	"encoding/binary"
	"net/netip"
	"strings"
)

// maxSources bounds how many addresses a Sources may name, so that a typo
// such as 10.0.0.0-11.0.0.0 is caught rather than cycled through.
const maxSources = 1 << 24

// Sources is a set of IPv4 source addresses, kept as ranges so that a /8
// costs no more than one address. The zero value is empty. Addresses are
// numbered in the order the ranges were given.
type Sources struct {
	ranges []addrRange
	n      int // addresses in all ranges
}

// addrRange is count consecutive IPv4 addresses from first.
type addrRange struct {
	first uint32
	count int
}

// ParseSources parses a comma-separated list of IPv4 addresses, ranges
// "A-B" (both ends included) and CIDRs, such as
// "127.0.0.2-127.0.0.254,127.0.1.0/24".
func ParseSources(s string) (Sources, error) {
	var src Sources
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		r, err := parseRange(f)
		if err != nil {
			return Sources{}, err
		}
		if src.n+r.count > maxSources {
			return Sources{}, configErrorf("sources %q: more than %d addresses", s, maxSources)
		}
		src.ranges = append(src.ranges, r)
		src.n += r.count
	}
	if src.n == 0 {
		return Sources{}, configErrorf("sources %q: no address", s)
	}
	return src, nil
}

// parseRange parses one address, "A-B" range or CIDR.
func parseRange(f string) (addrRange, error) {
	if strings.Contains(f, "/") {
		p, err := netip.ParsePrefix(f)
		if err != nil || !p.Addr().Is4() {
			return addrRange{}, configErrorf("source %q is not an IPv4 CIDR", f)
		}
		p = p.Masked()
		if 32-p.Bits() > 24 {
			return addrRange{}, configErrorf("source %q: more than %d addresses", f, maxSources)
		}
		return addrRange{first: v4(p.Addr()), count: 1 << (32 - p.Bits())}, nil
	}
	lo, hi, isRange := strings.Cut(f, "-")
	a, err := parseV4(lo)
	if err != nil {
		return addrRange{}, err
	}
	b := a
	if isRange {
		if b, err = parseV4(hi); err != nil {
			return addrRange{}, err
		}
	}
	if v4(b) < v4(a) {
		return addrRange{}, configErrorf("source range %q ends before it starts", f)
	}
	return addrRange{first: v4(a), count: int(v4(b)-v4(a)) + 1}, nil
}

func parseV4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || !a.Is4() {
		return netip.Addr{}, configErrorf("source %q is not an IPv4 address", s)
	}
	return a, nil
}

func v4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func fromV4(u uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
}

// Len returns how many addresses s holds.
func (s Sources) Len() int { return s.n }

// At returns address i%Len, or the zero Addr when s is empty.
func (s Sources) At(i int) netip.Addr {
	if s.n == 0 {
		return netip.Addr{}
	}
	i %= s.n
	for _, r := range s.ranges {
		if i < r.count {
			return fromV4(r.first + uint32(i))
		}
		i -= r.count
	}
	panic("unreachable")
}

// Contains reports whether a is one of the addresses of s.
func (s Sources) Contains(a netip.Addr) bool {
	a = a.Unmap()
	if !a.Is4() {
		return false
	}
	u := v4(a)
	for _, r := range s.ranges {
		if u >= r.first && u-r.first < uint32(r.count) {
			return true
		}
	}
	return false
}

// String returns the ranges as ParseSources reads them.
func (s Sources) String() string {
	parts := make([]string, len(s.ranges))
	for i, r := range s.ranges {
		parts[i] = fromV4(r.first).String()
		if r.count > 1 {
			parts[i] += "-" + fromV4(r.first+uint32(r.count-1)).String()
		}
	}
	return strings.Join(parts, ",")
}
