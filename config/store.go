package config

import (
	"net"
	"strconv"
	"strings"
	"time"
)

// Store says where connection counts are kept: in this process
// ("memory", the default) or in Redis, shared by a fleet of gateways.
type Store struct {
	// Kind is "memory" (default) or "redis". With "redis", limits.
	// max_connections, per_ip, per_user, anonymous_share, prefix_tiers
	// and the routes' limits hold for the whole fleet.
	Kind  string     `yaml:"kind"`
	Redis StoreRedis `yaml:"redis"`
	// Timeout bounds each handshake's wait on Redis, default 50ms;
	// beyond it the handshake is decided as OnFailure says.
	Timeout Duration `yaml:"timeout"`
	// OnFailure is what happens while Redis cannot answer: "local"
	// (default: this instance's own counts, each fleet-wide limit divided
	// by FleetSize and rounded up), "open" (no shared limits) or "closed"
	// (refuse with 503; /readyz answers 503).
	OnFailure string `yaml:"on_failure"`
	// FleetSize is the number of instances, used by on_failure: local;
	// default 1.
	FleetSize int `yaml:"fleet_size"`
}

// StoreRedis says how to reach Redis.
type StoreRedis struct {
	// Addr is one Redis server, default "127.0.0.1:6379".
	Addr string `yaml:"addr"`
	// Addrs, when not empty, are seed nodes of a Redis Cluster; Addr is
	// then not used.
	Addrs []string `yaml:"addrs"`
	// Username is the ACL user, default "" (the default user).
	Username string `yaml:"username"`
	// PasswordFile holds the password (one trailing newline trimmed).
	PasswordFile string `yaml:"password_file"`
	// DB is the database number, default 0 (the only one with Addrs).
	DB int `yaml:"db"`
	// TLS connects with TLS, verifying the server against the system's
	// roots. Default false.
	TLS bool `yaml:"tls"`
	// KeyPrefix starts every key, default "wsguard:". Fleets sharing a
	// Redis need different prefixes.
	KeyPrefix string `yaml:"key_prefix"`
	// LeaseTTL is how long a dead instance's connections keep counting,
	// default 30s; each instance renews its lease every second or so.
	LeaseTTL Duration `yaml:"lease_ttl"`
}

// defaultStore returns the store section's defaults.
func defaultStore() Store {
	return Store{
		Kind: "memory",
		Redis: StoreRedis{
			Addr:      "127.0.0.1:6379",
			KeyPrefix: "wsguard:",
			LeaseTTL:  Duration(30 * time.Second),
		},
		Timeout:   Duration(50 * time.Millisecond),
		OnFailure: "local",
		FleetSize: 1,
	}
}

// store checks the store section and limits.instance_max_connections.
func (v *validator) store(c *Config) {
	if n := c.Limits.InstanceMaxConnections; n < 0 {
		v.add("limits.instance_max_connections", "must be at least 0, not %d", n)
	}
	s := c.Store
	var ps problems
	oneOf(&ps, "kind", s.Kind, "memory", "redis")
	oneOf(&ps, "on_failure", s.OnFailure, "local", "open", "closed")
	duration(&ps, "timeout", s.Timeout, true)
	atLeast(&ps, "fleet_size", s.FleetSize, 1)
	v.report("store", ps)
	if s.Kind == "redis" {
		v.report("store.redis", redisProblems(s.Redis, c.src.has("store.redis.addr")))
	}
}

// redisProblems checks how Redis is reached; addrSet says whether the
// file set addr (which then conflicts with addrs).
func redisProblems(r StoreRedis, addrSet bool) []problem {
	var ps problems
	if len(r.Addrs) == 0 {
		hostPort(&ps, "addr", r.Addr)
	} else if addrSet {
		ps.add("addr", "set addr (one server) or addrs (a cluster), not both")
	}
	for i, a := range r.Addrs {
		hostPort(&ps, "addrs["+strconv.Itoa(i)+"]", a)
	}
	atLeast(&ps, "db", r.DB, 0)
	if len(r.Addrs) > 0 && r.DB != 0 {
		ps.add("db", "must be 0 with addrs: Redis Cluster has database 0 only")
	}
	if r.KeyPrefix == "" || strings.ContainsAny(r.KeyPrefix, "{}") {
		ps.add("key_prefix", "must not be empty nor hold { or }, which would change the hash slots")
	}
	if r.LeaseTTL < Duration(time.Second) {
		ps.add("lease_ttl", "must be at least 1s, not %s", r.LeaseTTL)
	}
	return ps
}

// hostPort checks a host:port address to dial.
func hostPort(ps *problems, key, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		ps.add(key, "invalid address %q (use host:port such as 127.0.0.1:6379)", addr)
	}
}

// has reports whether the file set key itself.
func (s *source) has(key string) bool {
	if s == nil {
		return false
	}
	_, ok := s.lines[key]
	return ok
}
