package relay

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/wsguard/wsguard/admission"
	"github.com/wsguard/wsguard/clientip"
	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/frame"
)

// Eviction reasons, as counted in wsguard_evictions_total.
const (
	evictPressure  = "pressure"  // room for a newcomer from a light prefix
	evictAnonymous = "anonymous" // room for an authenticated newcomer
)

// fairAttempts bounds how many connections one newcomer may evict. A slot
// that an eviction frees can be taken by another handshake admitted at the
// same moment (an attacker still opening connections), so the newcomer
// looks for a victim again, a few times at most.
const fairAttempts = 3

// acquireFair retries a handshake refused by a connection limit after
// evicting a connection, when fair admission allows it (see pickVictim),
// up to fairAttempts times. Otherwise it returns the refusal as it was.
//
// The limits it works on are the instance's: max_connections and
// instance_max_connections, and a route's max_connections when that
// route is the only one (its connections are then all the instance's,
// which is what the fairness index counts). With several routes, a
// route's cap refuses without evicting.
//
// NOTE: with store.kind redis the choice is per instance: only this
// instance's connections are counted and evicted.
func (s *Server) acquireFair(req admission.Request, ref *admission.Refusal, rs *routes) (admission.Lease, *admission.Refusal, error) {
	l := rs.cfg.Limits
	limit := 0
	switch ref.Limit {
	case "max_connections":
		limit = l.MaxConnections
	case "instance_max_connections":
		limit = l.InstanceMaxConnections
	case "route.max_connections":
		if len(rs.list) == 1 && req.Route != nil {
			limit = req.Route.MaxConnections
		}
	}
	if limit <= 0 || l.Pressure <= 0 {
		return admission.Lease{}, ref, nil
	}
	p := s.adm.Policy()
	prefix := clientip.Prefix(req.Addr, p.IPv4Prefix, p.IPv6Prefix)
	for range fairAttempts {
		graceEnd := time.Now().UnixNano() - int64(l.EvictionGrace)
		c, reason := s.takeVictim(prefix, req.User != "", limit, l, graceEnd)
		if c == nil {
			return admission.Lease{}, ref, nil
		}
		s.evict(c, reason)
		if hook := s.afterEvict.Load(); hook != nil {
			(*hook)()
		}
		lease, again, err := s.adm.Acquire(context.Background(), req)
		if err != nil || again == nil || again.Limit != ref.Limit {
			return lease, again, err
		}
		ref = again // the freed slot went to another handshake
	}
	return admission.Lease{}, ref, nil
}

// takeVictim picks a connection to evict under pressure and takes it out
// of the indexes, so that no other newcomer counts it or picks it again
// while it closes. It returns nil when there is none.
func (s *Server) takeVictim(prefix netip.Prefix, authenticated bool, limit int, l config.Limits, graceEnd int64) (*conn, string) {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if float64(s.nconns) < float64(l.Pressure)*float64(limit) {
		return nil, ""
	}
	c, reason := s.pickVictim(prefix, authenticated, limit, l.MinPerIP, graceEnd)
	if c != nil {
		s.fair.remove(c)
		s.anon.remove(c)
	}
	return c, reason
}

// pickVictim chooses the connection to evict for a newcomer from prefix,
// or nil. An authenticated newcomer may take the slot of an anonymous
// connection. Otherwise the newcomer's prefix must hold fewer than its
// fair share (limit over the prefixes holding connections), and the
// victim comes from the heaviest prefix (fairIndex.victim). connsMu is
// held.
func (s *Server) pickVictim(prefix netip.Prefix, authenticated bool, limit, floor int, graceEnd int64) (*conn, string) {
	if authenticated {
		if c := s.anon.victim(-1, 0, graceEnd); c != nil {
			return c, evictAnonymous
		}
	}
	mine := s.fair.count(prefix)
	if mine >= limit/max(1, s.fair.prefixes()) {
		return nil, ""
	}
	if c := s.fair.victim(mine, floor, graceEnd); c != nil {
		return c, evictPressure
	}
	return nil, ""
}

// evict gives c's slot back at once and closes it with 1013.
func (s *Server) evict(c *conn, reason string) {
	s.releaseLease(c)
	s.metrics.Evictions.WithLabelValues(reason).Inc()
	go c.shutdown(frame.CloseTryAgainLater, frame.CloseGoingAway, "try again later", false) // see Shutdown
}

// releaseLease returns c's slots, once, whether an eviction or the end
// of the connection comes first.
func (s *Server) releaseLease(c *conn) {
	if !c.released.CompareAndSwap(false, true) {
		return
	}
	if err := s.adm.Release(context.Background(), c.lease); err != nil {
		s.log.Error("releasing connection slot", slog.String("error", err.Error()))
	}
}

// notePressure updates wsguard_pressure for n open connections. connsMu
// is held.
func (s *Server) notePressure(n int) {
	rs := s.routes.Load()
	l := rs.cfg.Limits
	capacity := l.MaxConnections
	if len(rs.list) == 1 { // a lone route's cap is the instance's too (see acquireFair)
		if m := rs.list[0].adm.MaxConnections; m > 0 && (capacity <= 0 || m < capacity) {
			capacity = m
		}
	}
	on := l.Pressure > 0 && float64(n) >= float64(l.Pressure)*float64(capacity)
	if on != s.underPressure {
		s.underPressure = on
		v := 0.0
		if on {
			v = 1
		}
		s.metrics.Pressure.Set(v)
	}
}
