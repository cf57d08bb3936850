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
	MaxConnections int           // connections through this instance (503)
	PerIP          int           // connections per client prefix (429)
	IPv4Prefix     int           // prefix length IPv4 clients aggregate to
	IPv6Prefix     int           // prefix length IPv6 clients aggregate to
	HandshakeRate  float64       // handshakes per second per prefix (429)
	HandshakeBurst int           // bucket size of HandshakeRate
	RetryAfter     time.Duration // Retry-After of connection-limit refusals
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
	scopes uint8 // bit i set: claimed a counter of scope i
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
// limits). It returns a Lease, or a Refusal, or an error when the store
// could not decide.
func (a *Admitter) Admit(ctx context.Context, addr netip.Addr, r *Route) (Lease, *Refusal, error) {
	p := a.policy.Load()
	prefix := clientip.Prefix(addr, p.IPv4Prefix, p.IPv6Prefix)
	now := a.now()

	if ref := a.takeRate(a.rates, prefix, now, p.HandshakeRate, p.HandshakeBurst, "handshake_rate"); ref != nil {
		return Lease{}, ref, nil
	}
	if r != nil && r.HandshakeRate > 0 {
		if ref := a.takeRate(a.routeTable(r.Name), prefix, now, r.HandshakeRate, r.HandshakeBurst, "route.handshake_rate"); ref != nil {
			return Lease{}, ref, nil
		}
	}

	l := Lease{prefix: prefix, scopes: 1<<store.ScopeGlobal | 1<<store.ScopeIP}
	var buf [4]store.Claim
	claims := append(buf[:0],
		store.Claim{Key: store.Key{Scope: store.ScopeGlobal}, Limit: p.MaxConnections},
		store.Claim{Key: store.Key{Scope: store.ScopeIP, Prefix: prefix}, Limit: p.PerIP})
	if r != nil {
		l.route = r.Name
		if r.MaxConnections > 0 {
			l.scopes |= 1 << store.ScopeRoute
			claims = append(claims, store.Claim{Key: store.Key{Scope: store.ScopeRoute, Route: r.Name}, Limit: r.MaxConnections})
		}
		if r.PerIP > 0 {
			l.scopes |= 1 << store.ScopeRouteIP
			claims = append(claims, store.Claim{Key: store.Key{Scope: store.ScopeRouteIP, Route: r.Name, Prefix: prefix}, Limit: r.PerIP})
		}
	}
	full, err := a.store.Acquire(ctx, claims)
	if err != nil {
		return Lease{}, nil, fmt.Errorf("acquiring connection slot: %w", err)
	}
	if full >= 0 {
		return Lease{}, refusalFor(claims[full].Key.Scope, p.RetryAfter), nil
	}
	return l, nil, nil
}

// Release returns a lease's slots. Releasing the zero Lease is a no-op.
func (a *Admitter) Release(ctx context.Context, l Lease) error {
	var buf [4]store.Key
	keys := buf[:0]
	for s := store.ScopeGlobal; s <= store.ScopeRouteIP; s++ {
		if l.scopes&(1<<s) == 0 {
			continue
		}
		k := store.Key{Scope: s}
		if s == store.ScopeRoute || s == store.ScopeRouteIP {
			k.Route = l.route
		}
		if s == store.ScopeIP || s == store.ScopeRouteIP {
			k.Prefix = l.prefix
		}
		keys = append(keys, k)
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
	}
	return &Refusal{Limit: "per_ip", Status: http.StatusTooManyRequests, RetryAfter: retry}
}
