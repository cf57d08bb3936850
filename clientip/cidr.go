package clientip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ParseCIDRs parses a list of trusted proxies, each a CIDR prefix
// ("10.0.0.0/8", "2001:db8::/32") or a single address ("192.0.2.1", taken
// as /32, or "2001:db8::1", taken as /128). Host bits are masked off, and
// IPv4-mapped IPv6 entries ("::ffff:10.0.0.0/104") become IPv4 ones, since
// this package counts mapped addresses as IPv4. Surrounding spaces are
// ignored.
//
// The error names the first bad entry, by index and value. Zones are
// refused: a trusted proxy is not reached through one interface only.
func ParseCIDRs(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		p, err := parseCIDR(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("clientip: trusted proxy %d (%q): %w", i, s, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// parseCIDR parses one entry of ParseCIDRs.
func parseCIDR(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New("empty entry")
	}
	if strings.Contains(s, "%") {
		return netip.Prefix{}, errors.New("zones are not allowed")
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, err
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	p, ok := canonical(p)
	if !ok {
		return netip.Prefix{}, errors.New("an IPv4-mapped prefix must be at least /96")
	}
	return p, nil
}

// canonical masks p and turns an IPv4-mapped prefix of at least /96 into
// the IPv4 prefix it covers. It reports false for an invalid prefix, and
// for an IPv4-mapped one shorter than /96, which spans IPv6 space as well;
// that one comes back masked but still IPv6.
func canonical(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return netip.Prefix{}, false
	}
	a := p.Addr()
	if a.Is4In6() {
		if p.Bits() < 96 {
			return p.Masked(), false
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), true
}
