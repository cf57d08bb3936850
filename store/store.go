// Package store keeps the connection counts that admission decisions read
// and change. Memory keeps them in this process; Redis shares them across
// a fleet of gateways, with leases that end a dead instance's counts and
// a declared policy (FailureMode) for when Redis cannot answer.
package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
)

// ErrUnavailable is wrapped by errors of a shared store that cannot decide
// and is told to refuse rather than guess (on_failure: closed).
var ErrUnavailable = errors.New("store unavailable")

// Scope says what a counter counts.
type Scope uint8

// Scopes of counters.
const (
	ScopeGlobal    Scope = iota + 1 // every connection (of the fleet, in a shared store)
	ScopeRoute                      // connections on one route
	ScopeIP                         // connections from one client prefix
	ScopeRouteIP                    // connections from one client prefix on one route
	ScopeUser                       // connections of one authenticated user
	ScopeAnonymous                  // connections without a user, where auth is optional
	ScopeTier                       // connections from one looser prefix tier
	// ScopeInstance counts the connections of this process alone. Shared
	// stores keep it local and never share it, whatever their state.
	ScopeInstance
)

// String returns the scope's name as used in keys and metrics.
func (s Scope) String() string {
	switch s {
	case ScopeGlobal:
		return "global"
	case ScopeRoute:
		return "route"
	case ScopeIP:
		return "ip"
	case ScopeRouteIP:
		return "route_ip"
	case ScopeUser:
		return "user"
	case ScopeAnonymous:
		return "anonymous"
	case ScopeTier:
		return "tier"
	case ScopeInstance:
		return "instance"
	}
	return fmt.Sprintf("scope(%d)", uint8(s))
}

// Key names one counter. It is comparable and cheap to build: Route
// refers to the route's configured path and Prefix is a value.
type Key struct {
	Scope  Scope
	Route  string       // ScopeRoute, ScopeRouteIP
	Prefix netip.Prefix // ScopeIP, ScopeRouteIP, ScopeTier
	User   string       // ScopeUser
}

// String renders the key for logs and for stores that need text keys.
func (k Key) String() string {
	switch k.Scope {
	case ScopeGlobal:
		return "global"
	case ScopeRoute:
		return "route:" + k.Route
	case ScopeIP:
		return "ip:" + k.Prefix.String()
	case ScopeRouteIP:
		return "route_ip:" + k.Route + "|" + k.Prefix.String()
	case ScopeUser:
		return "user:" + k.User
	case ScopeAnonymous:
		return "anonymous"
	case ScopeTier:
		return "tier:" + k.Prefix.String()
	case ScopeInstance:
		return "instance"
	}
	return k.Scope.String()
}

// Claim asks for one slot of Key's counter, which may hold at most Limit.
// A Limit of zero or less counts without limiting.
type Claim struct {
	Key   Key
	Limit int
}

// Store hands out connection slots. Implementations are safe for
// concurrent use.
type Store interface {
	// Acquire takes one slot of every claim, or none. If a counter is
	// already at its limit it takes nothing and returns the index of the
	// first such claim; on success it returns -1. An error means the store
	// could not decide, and nothing was taken.
	Acquire(ctx context.Context, claims []Claim) (full int, err error)
	// Release gives back one slot of each key, as taken by Acquire.
	Release(ctx context.Context, keys []Key) error
	// Count returns a counter's current value.
	Count(ctx context.Context, key Key) (int, error)
}
