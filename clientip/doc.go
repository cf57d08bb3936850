// Package clientip decides which address a connection counts under.
//
// Per-address limits are only as good as the address they count, so the
// rule throughout is that a client never chooses its own: the address a
// connection counts under is the TCP peer, unless that peer is a proxy the
// operator trusts, and then only what the trusted proxies themselves
// wrote is believed.
//
// # Forwarding headers
//
// A Resolver holds the trusted proxy prefixes and the one header they use:
// X-Forwarded-For, Forwarded (RFC 7239) or X-Real-IP. From an untrusted
// peer every such header is ignored. From a trusted peer, the chain in
// X-Forwarded-For or Forwarded (every line, in order) is walked from the
// right, past the addresses of trusted proxies, to the first address no
// trusted proxy owns: the proxy to its right saw that address as its TCP
// peer, so it is the client. Everything left of it was written by the
// client and is dropped. X-Real-IP names the client directly.
//
// When the entry that would name the client is not an address ("unknown",
// an obfuscated "_hidden", garbage, or a Forwarded element broken by a
// stray quote), the client cannot be known and the connection counts
// under the trusted peer; Result.Unusable says why, for a throttled
// warning.
//
// Parsing is bounded and allocation-free, whatever the client sends: at
// most 64 entries from the right and 8 KiB of header lines are examined,
// and only the Chain string handed upstream is allocated.
//
// # Prefixes
//
// Addresses aggregate to prefixes before they are counted: one IPv6
// subscriber holds a whole /64 (often a /56), so counting single IPv6
// addresses would let one attacker open endless "different" clients.
// Prefix does the masking; IPv4-mapped IPv6 addresses count as IPv4
// everywhere in this package.
package clientip
