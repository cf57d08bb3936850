package relay

import (
	"net/netip"
	"time"

	"github.com/wsguard/wsguard/clientip"
	"github.com/wsguard/wsguard/frame"
)

// Operator controls and views of the open connections, for the admin
// API.

// TopOpen returns the k client prefixes and the k users that hold the
// most open connections, largest first. It walks the open connections,
// so its cost is proportional to them, and it keeps nothing.
func (s *Server) TopOpen(k int) (prefixes, users []Count) {
	byPrefix := make(map[string]int)
	byUser := make(map[string]int)
	for _, c := range s.openConns() {
		byPrefix[c.lease.Prefix().String()]++
		if u := c.lease.User(); u != "" {
			byUser[u]++
		}
	}
	return topOf(byPrefix, k), topOf(byUser, k)
}

// TopRefused returns the k client prefixes and users refused most often
// within window (at most five minutes back), estimated in bounded memory.
func (s *Server) TopRefused(k int, window time.Duration) (prefixes, users []Count) {
	now := time.Now()
	return s.refusedPrefixes.top(k, window, now), s.refusedUsers.top(k, window, now)
}

// noteRefused records a refused handshake of a decided client for the
// top-refused views.
func (s *Server) noteRefused(addr netip.Addr, user string) {
	now := time.Now()
	p := s.adm.Policy()
	if addr.IsValid() {
		s.refusedPrefixes.add(clientip.Prefix(addr, p.IPv4Prefix, p.IPv6Prefix).String(), now)
	}
	if user != "" {
		s.refusedUsers.add(user, now)
	}
}

// Kick closes every open connection whose client prefix overlaps prefix
// (when valid) or whose user is user (when not empty), sending the client
// code and reason, and returns how many it closed.
func (s *Server) Kick(prefix netip.Prefix, user string, code uint16, reason string) int {
	if !prefix.IsValid() && user == "" {
		return 0
	}
	if reason == "" {
		reason = "closed by operator"
	}
	n := 0
	for _, c := range s.openConns() {
		hit := (prefix.IsValid() && prefix.Overlaps(c.lease.Prefix())) ||
			(user != "" && c.lease.User() == user)
		if !hit || c.closing.Load() {
			continue
		}
		go c.shutdown(code, frame.CloseGoingAway, reason, false) // see Shutdown
		s.metrics.Evictions.WithLabelValues("admin").Inc()
		n++
	}
	return n
}

// Refusals returns how many handshakes were not upgraded since start, by
// reason (per_ip, handshake_rate, auth, bad_request, upstream_error, ...).
func (s *Server) Refusals() map[string]uint64 { return s.refusals.snapshot() }
