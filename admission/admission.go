// Package admission decides, before any upgrade, whether a WebSocket
// handshake may become a connection: handshake rates per client prefix,
// then connection counts (instance, route, client prefix) taken
// atomically from a store.Store. An admitted handshake gets a Lease that
// must be released exactly once when the connection ends.
package admission

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsguard/wsguard/clientip"
	"github.com/wsguard/wsguard/store"
)

// Policy holds the instance-wide limits. A zero limit is off, except
// MaxConnections, which must be set.
type Policy struct {
	MaxConnections int           // connections through this instance, or the fleet with a shared store (503)
	PerIP          int           // connections per client prefix (429)
	IPv4Prefix     int           // prefix length IPv4 clients aggregate to
	IPv6Prefix     int           // prefix length IPv6 clients aggregate to
	HandshakeRate  float64       // handshakes per second per prefix (429)
	HandshakeBurst int           // bucket size of HandshakeRate
	RetryAfter     time.Duration // Retry-After of connection-limit refusals
	PerUser        int           // connections per authenticated user (429)
	// AnonymousShare is the share of MaxConnections that anonymous
	// connections may hold where auth is optional (Request.Anonymous).
	AnonymousShare float64
	Tiers          []Tier // looser prefixes with limits of their own (429)
	// InstanceMaxConnections caps connections through this process
	// whatever the store (503); 0 is off.
	InstanceMaxConnections int
}

// Tier is a looser client prefix with a limit of its own. Exactly one of
// IPv4Prefix and IPv6Prefix applies to a given address.
type Tier struct {
	IPv4Prefix int // prefix length for IPv4 clients; 0: the tier ignores them
	IPv6Prefix int // prefix length for IPv6 clients; 0: the tier ignores them
	Limit      int
}

// Request is an identified handshake asking for connection slots.
type Request struct {
	Addr  netip.Addr // the client address, as decided by clientip
	Route *Route     // nil: no route limits
	User  string     // authenticated user id; "" when anonymous
	// Anonymous marks a handshake without a user where auth is configured
	// but optional: it counts against the anonymous share.
	Anonymous bool
}

// Route holds limits scoped to one route. Name identifies the route in
// counters and must be stable across reloads. Zero limits are off.
type Route struct {
	Name           string
	MaxConnections int
	PerIP          int
	HandshakeRate  float64
	HandshakeBurst int
}

// Refusal explains why a handshake was not admitted.
type Refusal struct {
	// Limit names the limit, as written in the config: "max_connections",
	// "per_ip", "handshake_rate", "route.max_connections", ...
	Limit string
	// Status is the HTTP status to answer: 429 for per-client limits, 503
	// for shared ones.
	Status int
	// RetryAfter is when the client may try again.
	RetryAfter time.Duration
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("%s limit reached", r.Limit)
}

// Lease is one admitted connection's claim on the store. The zero Lease
// holds nothing.
type Lease struct {
	prefix netip.Prefix
	route  string
	user   string
	tiers  *[]netip.Prefix // tier prefixes claimed; nil without tiers (a pointer keeps Lease comparable)
	scopes uint16          // bit i set: claimed a counter of scope i
}

// Prefix returns the client prefix the lease counts under.
func (l Lease) Prefix() netip.Prefix { return l.prefix }

// Admitter applies a Policy. It is safe for concurrent use; SetPolicy may
// be called at any time, and applies to later handshakes.
type Admitter struct {
	store  store.Store
	policy atomic.Pointer[Policy]
	rates  *rateTable

	mu         sync.Mutex
	routeRates map[string]*rateTable // guarded by mu
	tableSize  int
	now        func() time.Time
}

// New returns an Admitter counting in s. tableSize bounds each handshake
// rate table (client prefixes remembered).
func New(s store.Store, p Policy, tableSize int) *Admitter {
	a := &Admitter{
		store:      s,
		rates:      newRateTable(tableSize),
		routeRates: make(map[string]*rateTable),
		tableSize:  tableSize,
		now:        time.Now,
	}
	a.SetPolicy(p)
	return a
}

// SetPolicy replaces the policy for later decisions. Open leases keep
// the counters they took.
func (a *Admitter) SetPolicy(p Policy) { a.policy.Store(&p) }

// Policy returns the policy in force.
func (a *Admitter) Policy() Policy { return *a.policy.Load() }

// Admit decides on a handshake from addr for route r (nil: no route
// limits): Handshake, then Acquire for an anonymous client where auth is
// off. It returns a Lease, or a Refusal, or an error when the store
// could not decide.
func (a *Admitter) Admit(ctx context.Context, addr netip.Addr, r *Route) (Lease, *Refusal, error) {
	if ref := a.Handshake(addr, r); ref != nil {
		return Lease{}, ref, nil
	}
	return a.Acquire(ctx, Request{Addr: addr, Route: r})
}

// Handshake takes a handshake-rate token for addr's prefix, instance-wide
// and on route r. It runs before anything costly (token verification,
// the store), so that a flood is refused at the price of a lookup.
func (a *Admitter) Handshake(addr netip.Addr, r *Route) *Refusal {
	p := a.policy.Load()
	prefix := clientip.Prefix(addr, p.IPv4Prefix, p.IPv6Prefix)
	now := a.now()
	if ref := a.takeRate(a.rates, prefix, now, p.HandshakeRate, p.HandshakeBurst, "handshake_rate"); ref != nil {
		return ref
	}
	if r != nil && r.HandshakeRate > 0 {
		return a.takeRate(a.routeTable(r.Name), prefix, now, r.HandshakeRate, r.HandshakeBurst, "route.handshake_rate")
	}
	return nil
}

// RouteHandshake takes a handshake-rate token for addr's prefix on route
// r only. It is for a handshake whose instance-wide token was taken
// earlier, before a TLS handshake, so that the instance rate is not
// charged twice for one connection.
func (a *Admitter) RouteHandshake(addr netip.Addr, r *Route) *Refusal {
	if r == nil || r.HandshakeRate <= 0 {
		return nil
	}
	p := a.policy.Load()
	prefix := clientip.Prefix(addr, p.IPv4Prefix, p.IPv6Prefix)
	return a.takeRate(a.routeTable(r.Name), prefix, a.now(), r.HandshakeRate, r.HandshakeBurst, "route.handshake_rate")
}

// Acquire takes every connection counter that applies to req, or none.
func (a *Admitter) Acquire(ctx context.Context, req Request) (Lease, *Refusal, error) {
	p := a.policy.Load()
	prefix := clientip.Prefix(req.Addr, p.IPv4Prefix, p.IPv6Prefix)
	l := Lease{prefix: prefix, user: req.User}

	var buf [8]store.Claim
	claims := buf[:0]
	claim := func(s store.Scope, k store.Key, limit int) {
		k.Scope = s
		l.scopes |= 1 << s
		claims = append(claims, store.Claim{Key: k, Limit: limit})
	}
	claim(store.ScopeGlobal, store.Key{}, p.MaxConnections)
	if p.InstanceMaxConnections > 0 {
		claim(store.ScopeInstance, store.Key{}, p.InstanceMaxConnections)
	}
	claim(store.ScopeIP, store.Key{Prefix: prefix}, p.PerIP)
	if r := req.Route; r != nil {
		l.route = r.Name
		if r.MaxConnections > 0 {
			claim(store.ScopeRoute, store.Key{Route: r.Name}, r.MaxConnections)
		}
		if r.PerIP > 0 {
			claim(store.ScopeRouteIP, store.Key{Route: r.Name, Prefix: prefix}, r.PerIP)
		}
	}
	if req.User != "" {
		claim(store.ScopeUser, store.Key{User: req.User}, p.PerUser)
	} else if req.Anonymous {
		limit := int(p.AnonymousShare * float64(p.MaxConnections))
		if limit < 1 {
			return Lease{}, &Refusal{Limit: "anonymous_share", Status: http.StatusServiceUnavailable, RetryAfter: p.RetryAfter}, nil
		}
		claim(store.ScopeAnonymous, store.Key{}, limit)
	}
	tierStart := len(claims)
	for _, t := range p.Tiers {
		bits := t.IPv6Prefix
		if req.Addr.Unmap().Is4() {
			bits = t.IPv4Prefix
		}
		if bits == 0 {
			continue
		}
		tp := clientip.Prefix(req.Addr, bits, bits)
		if l.tiers == nil {
			l.tiers = new([]netip.Prefix)
		}
		*l.tiers = append(*l.tiers, tp)
		claim(store.ScopeTier, store.Key{Prefix: tp}, t.Limit)
	}

	full, err := a.store.Acquire(ctx, claims)
	if err != nil {
		return Lease{}, nil, fmt.Errorf("acquiring connection slot: %w", err)
	}
	if full >= 0 {
		if full >= tierStart {
			return Lease{}, &Refusal{Limit: "prefix_tiers", Status: http.StatusTooManyRequests, RetryAfter: p.RetryAfter}, nil
		}
		return Lease{}, refusalFor(claims[full].Key.Scope, p.RetryAfter), nil
	}
	return l, nil, nil
}

// Release returns a lease's slots. Releasing the zero Lease is a no-op.
func (a *Admitter) Release(ctx context.Context, l Lease) error {
	var buf [8]store.Key
	keys := buf[:0]
	for s := store.ScopeGlobal; s <= store.ScopeInstance; s++ {
		if s == store.ScopeTier || l.scopes&(1<<s) == 0 {
			continue
		}
		k := store.Key{Scope: s}
		switch s {
		case store.ScopeRoute:
			k.Route = l.route
		case store.ScopeIP:
			k.Prefix = l.prefix
		case store.ScopeRouteIP:
			k.Route, k.Prefix = l.route, l.prefix
		case store.ScopeUser:
			k.User = l.user
		}
		keys = append(keys, k)
	}
	if l.tiers != nil {
		for _, tp := range *l.tiers {
			keys = append(keys, store.Key{Scope: store.ScopeTier, Prefix: tp})
		}
	}
	if len(keys) == 0 {
		return nil
	}
	return a.store.Release(ctx, keys)
}

func (a *Admitter) takeRate(t *rateTable, prefix netip.Prefix, now time.Time, rate float64, burst int, limit string) *Refusal {
	if rate <= 0 {
		return nil
	}
	ok, wait := t.takeAt(prefix, now, rate, burst)
	if ok {
		return nil
	}
	return &Refusal{Limit: limit, Status: http.StatusTooManyRequests, RetryAfter: wait}
}

func (a *Admitter) routeTable(name string) *rateTable {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.routeRates[name]
	if t == nil {
		t = newRateTable(a.tableSize)
		a.routeRates[name] = t
	}
	return t
}

// RateTableLen returns how many client prefixes the instance-wide
// handshake-rate table remembers.
func (a *Admitter) RateTableLen() int { return a.rates.len() }

func refusalFor(s store.Scope, retry time.Duration) *Refusal {
	switch s {
	case store.ScopeGlobal:
		return &Refusal{Limit: "max_connections", Status: http.StatusServiceUnavailable, RetryAfter: retry}
	case store.ScopeRoute:
		return &Refusal{Limit: "route.max_connections", Status: http.StatusServiceUnavailable, RetryAfter: retry}
	case store.ScopeRouteIP:
		return &Refusal{Limit: "route.per_ip", Status: http.StatusTooManyRequests, RetryAfter: retry}
	case store.ScopeUser:
		return &Refusal{Limit: "per_user", Status: http.StatusTooManyRequests, RetryAfter: retry}
	case store.ScopeAnonymous:
		return &Refusal{Limit: "anonymous_share", Status: http.StatusServiceUnavailable, RetryAfter: retry}
	case store.ScopeInstance:
		return &Refusal{Limit: "instance_max_connections", Status: http.StatusServiceUnavailable, RetryAfter: retry}
	}
	return &Refusal{Limit: "per_ip", Status: http.StatusTooManyRequests, RetryAfter: retry}
}

// User returns the authenticated user the lease counts for, or "".
func (l Lease) User() string { return l.user }
