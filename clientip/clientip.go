package clientip

import "net/netip"

// Prefix returns the prefix that addr counts under: IPv4 addresses (and
// IPv4-mapped IPv6 addresses, which are unmapped first) masked to v4Bits,
// IPv6 addresses masked to v6Bits. Zones are dropped. An invalid address
// yields the zero Prefix.
func Prefix(addr netip.Addr, v4Bits, v6Bits int) netip.Prefix {
	addr = addr.Unmap().WithZone("")
	bits := v6Bits
	if addr.Is4() {
		bits = v4Bits
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}
