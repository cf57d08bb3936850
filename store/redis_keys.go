package store

import "strings"

// Key names in Redis. Every name carries a hash tag, the part in braces,
// which decides its Redis Cluster slot:
//
//	<prefix>ip:{1.2.3.4/32}              tag: the client prefix
//	<prefix>route_ip:{1.2.3.4/32}/chat   tag: the client prefix
//	<prefix>tier:{1.2.3.0/24}            tag: the tier prefix
//	<prefix>user:{alice}                 tag: the user
//	<prefix>global:{global}
//	<prefix>route:{/chat}
//	<prefix>anonymous:{anonymous}
//	<prefix>leases:{leases}              the fleet's lease set
//
// The per-client counters of one handshake (ip and route_ip) share a
// slot, so one script decides them in one round trip; a user or a tier
// is a second step in the cluster layout. The fleet-wide counters
// (global, route, anonymous) would put every handshake on one slot: in
// the cluster layout they are not in the handshake's script at all (see
// fleetWide).

// keyName returns k's name in Redis under prefix.
func keyName(prefix string, k Key) string {
	switch k.Scope {
	case ScopeGlobal:
		return prefix + "global:{global}"
	case ScopeRoute:
		return prefix + "route:{" + escapeTag(k.Route) + "}"
	case ScopeIP:
		return prefix + "ip:{" + k.Prefix.String() + "}"
	case ScopeRouteIP:
		return prefix + "route_ip:{" + k.Prefix.String() + "}" + escapeTag(k.Route)
	case ScopeUser:
		return prefix + "user:{" + escapeTag(k.User) + "}"
	case ScopeAnonymous:
		return prefix + "anonymous:{anonymous}"
	case ScopeTier:
		return prefix + "tier:{" + k.Prefix.String() + "}"
	}
	return prefix + k.String()
}

// leasesName returns the name of the lease set under prefix.
func leasesName(prefix string) string { return prefix + "leases:{leases}" }

// hashTag returns the part of a key name that Redis Cluster hashes: the
// text between the first "{" and the next "}", if not empty, or else the
// whole name.
func hashTag(name string) string {
	open := strings.IndexByte(name, '{')
	if open < 0 {
		return name
	}
	n := strings.IndexByte(name[open+1:], '}')
	if n <= 0 {
		return name
	}
	return name[open+1 : open+1+n]
}

// escapeTag makes s safe inside a hash tag: user ids and route paths may
// hold braces, which would end the tag early.
func escapeTag(s string) string {
	if !strings.ContainsAny(s, "{}%") {
		return s
	}
	r := strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")
	return r.Replace(s)
}

// fleetWide reports whether counters of scope s are shared by every
// handshake of the fleet (or of a route). In the cluster layout these
// are checked on this instance against fleet totals refreshed every tick
// rather than in the handshake's script.
func fleetWide(s Scope) bool {
	return s == ScopeGlobal || s == ScopeRoute || s == ScopeAnonymous
}
