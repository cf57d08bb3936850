// Package config holds wsguard's configuration: the YAML schema, its
// defaults, and validation with errors that name the file, line and key.
//
// Every setting has a safe default, so a Config from Default with only an
// upstream set is a working gateway. Load reads a file on top of the
// defaults; keys absent from the file keep their default values.
package config

import (
	"time"
)

// Config is the whole of wsguard's configuration.
type Config struct {
	// Listen is the public address, default ":8080".
	Listen string `yaml:"listen"`
	// TLS terminates TLS on the public listener; see TLS. Off by default.
	TLS TLS `yaml:"tls"`
	// AdminListen is the address of the admin listener (health, metrics,
	// status), default "127.0.0.1:9090". Empty turns it off.
	AdminListen string `yaml:"admin_listen"`
	// AllowedOrigins, when not empty, refuses handshakes whose Origin header
	// matches none of the entries with 403. An entry is an exact origin
	// ("https://app.example.com") or "*" for any. Requests without Origin
	// (non-browser clients) are allowed.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// Routes map path prefixes to upstreams; the longest prefix wins.
	Routes []Route `yaml:"routes"`

	// TrustedProxies lists the CIDRs (or single addresses) of proxies in
	// front of wsguard. Only from these peers are forwarding headers and
	// PROXY protocol headers believed. Default empty.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ClientIPHeader is the header trusted proxies name the client in:
	// "x-forwarded-for" (default), "forwarded" (RFC 7239) or "x-real-ip".
	ClientIPHeader string `yaml:"client_ip_header"`
	// ProxyProtocol is "off" (default), "optional" or "required": whether
	// trusted peers send a PROXY protocol (v1 or v2) header first.
	ProxyProtocol string `yaml:"proxy_protocol"`
	// Auth configures JWT authentication; see Auth.
	Auth Auth `yaml:"auth"`

	Limits   Limits   `yaml:"limits"`
	Timeouts Timeouts `yaml:"timeouts"`
	Messages Messages `yaml:"messages"`
	Log      Log      `yaml:"log"`
	Admin    Admin    `yaml:"admin"`
	// Store says where connection counts are kept; see Store.
	Store Store `yaml:"store"`

	src *source // file and key lines, set by Parse; nil when built in code
}

// Route sends handshakes whose path starts with Path to Upstream.
// Timeouts and Messages start as copies of the top-level sections; keys
// given under a route override them for that route only. Limits under a
// route add route-scoped limits on top of the instance-wide ones.
type Route struct {
	// Path is the path prefix, beginning with "/".
	Path string `yaml:"path"`
	// Upstream is the backend's base URL: http, https, ws or wss.
	Upstream string `yaml:"upstream"`
	// UpstreamTLS says how an https or wss upstream is verified.
	UpstreamTLS UpstreamTLS `yaml:"upstream_tls"`
	// HTTP is what happens to plain (non-upgrade) requests on this route:
	// "refuse" (default, "" too) answers 400; "passthrough" proxies them
	// to the upstream under Passthrough's bounds.
	HTTP string `yaml:"http"`
	// Passthrough bounds plain requests when HTTP is "passthrough".
	Passthrough Passthrough `yaml:"passthrough"`

	Limits   RouteLimits `yaml:"limits"`
	Timeouts Timeouts    `yaml:"timeouts"`
	Messages Messages    `yaml:"messages"`
}

// Limits decide which handshakes are admitted. A zero limit is off unless
// its doc says otherwise.
type Limits struct {
	// MaxConnections caps upgraded connections through this instance, or
	// through the whole fleet with store.kind redis. Default: derived
	// from the descriptor limit (two per connection). Refusals answer 503.
	MaxConnections int `yaml:"max_connections"`
	// InstanceMaxConnections caps upgraded connections through this
	// process, whatever the store; 0 is off. Default: derived from the
	// descriptor limit, as MaxConnections. Refusals answer 503.
	InstanceMaxConnections int `yaml:"instance_max_connections"`
	// MaxPendingHandshakes caps connections accepted but not yet upgraded,
	// so slow handshakes cannot exhaust descriptors. Default: derived
	// from the descriptor limit. Beyond it, new sockets are closed at once.
	MaxPendingHandshakes int `yaml:"max_pending_handshakes"`
	// PerIP caps open connections per client address prefix, default 100.
	// Refusals answer 429.
	PerIP int `yaml:"per_ip"`
	// IPv4Prefix and IPv6Prefix are the prefix lengths that client
	// addresses aggregate to, default 32 and 64.
	IPv4Prefix int `yaml:"ipv4_prefix"`
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// HandshakeRate and HandshakeBurst are a token bucket of new
	// handshakes per client prefix, default 20/s with a burst of 40.
	// Refusals answer 429.
	HandshakeRate  Rate `yaml:"handshake_rate"`
	HandshakeBurst int  `yaml:"handshake_burst"`
	// PerUser caps open connections per authenticated user, default 100.
	// Refusals answer 429.
	PerUser int `yaml:"per_user"`
	// AnonymousShare is the share of MaxConnections that connections
	// without a token may hold when auth is configured but not required,
	// default 50%. Refusals answer 503.
	AnonymousShare Percent `yaml:"anonymous_share"`
	// PrefixTiers are looser address prefixes with limits of their own,
	// e.g. IPv6 /56 and IPv4 /24. Default none.
	PrefixTiers []PrefixTier `yaml:"prefix_tiers"`
	// RateTableSize bounds how many client prefixes the handshake-rate
	// table remembers, default 100000; the least recently seen go first.
	RateTableSize int `yaml:"rate_table_size"`
	// RetryAfter is the Retry-After sent with refusals by connection
	// limits, default 5s. Rate refusals send the time until a token.
	RetryAfter Duration `yaml:"retry_after"`
	// Pressure is the share of MaxConnections (or of the route's
	// max_connections, when there is a single route and its cap is
	// smaller) past which admission turns fair: a newcomer from a prefix
	// under its fair share may evict an idle connection of the heaviest
	// prefix. Default 90%; 0 is off.
	// With store.kind redis, fairness acts on this instance's connections.
	Pressure Percent `yaml:"pressure"`
	// MinPerIP is how many connections eviction always leaves a prefix,
	// default 1.
	MinPerIP int `yaml:"min_per_ip"`
	// EvictionGrace is how long a new connection is safe from eviction,
	// default 30s.
	EvictionGrace Duration `yaml:"eviction_grace"`
}

// RouteLimits are limits scoped to one route, counted apart from the
// instance-wide ones. Zero means the route adds no limit of that kind.
type RouteLimits struct {
	// MaxConnections caps upgraded connections on this route (503).
	MaxConnections int `yaml:"max_connections"`
	// PerIP caps connections per client prefix on this route (429).
	PerIP int `yaml:"per_ip"`
	// HandshakeRate and HandshakeBurst are a per-prefix token bucket for
	// this route alone (429).
	HandshakeRate  Rate `yaml:"handshake_rate"`
	HandshakeBurst int  `yaml:"handshake_burst"`
}

// Timeouts bound every phase of a connection. Zero turns a timer off where
// its doc allows it.
type Timeouts struct {
	// Handshake is how long the whole request head may take to arrive,
	// default 5s (slowloris). It also bounds the upstream's answer.
	Handshake Duration `yaml:"handshake"`
	// UpstreamDial bounds the TCP dial to the upstream, default 5s.
	UpstreamDial Duration `yaml:"upstream_dial"`
	// Idle closes a connection (1001) that carried no data frame for this
	// long, default 5m; pings and pongs do not count. 0 = off.
	Idle Duration `yaml:"idle"`
	// IdleCounts says whose data frames reset the idle timer: "both"
	// (default) or "client".
	IdleCounts string `yaml:"idle_counts"`
	// PingInterval is how often the guard pings the client, default 30s.
	// 0 = off.
	PingInterval Duration `yaml:"ping_interval"`
	// PongTimeout is how long the client has to answer a guard ping,
	// default 15s.
	PongTimeout Duration `yaml:"pong_timeout"`
	// MaxLifetime closes connections (1001) older than this, default 0
	// (off).
	MaxLifetime Duration `yaml:"max_lifetime"`
	// LifetimeJitter shortens each connection's lifetime by a random share
	// of up to this much, default 10%, so a fleet does not reconnect at once.
	LifetimeJitter Percent `yaml:"lifetime_jitter"`
	// Write bounds each write to either peer, default 15s; a client that
	// stops reading is closed after it.
	Write Duration `yaml:"write"`
	// Close is how long the guard waits for the close handshake to finish
	// once a connection is closing, default 2s.
	Close Duration `yaml:"close"`
	// Drain is the time over which connections are closed (1001) on
	// SIGTERM, default 30s.
	Drain Duration `yaml:"drain"`
}

// Messages bounds what a client may send.
type Messages struct {
	// MaxSize caps a message across its fragments, default 1MiB; larger
	// messages close the connection with 1009. 0 = off.
	MaxSize Size `yaml:"max_size"`
	// MaxFragments caps the frames of one message, default 1024; more
	// close the connection with 1008. Without it, a client sending an
	// endless message in tiny fragments would stay under max_size for
	// minutes while every fragment counts as activity. 0 = off.
	MaxFragments int `yaml:"max_fragments"`
	// Rate and Burst are a token bucket of client messages per connection,
	// default 100/s with a burst of 200. A zero rate is off.
	Rate  Rate `yaml:"rate"`
	Burst int  `yaml:"burst"`
	// OverRate is what happens beyond the rate: "throttle" (default, stop
	// reading until a token is due) or "close" (1008).
	OverRate string `yaml:"over_rate"`
}

// Log selects the log format and level.
type Log struct {
	// Format is "text" (default) or "json".
	Format string `yaml:"format"`
	// Level is "debug", "info" (default), "warn" or "error".
	Level string `yaml:"level"`
}

// Duration is a time.Duration written as "30s", "5m" or "1h30m".
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Size is a byte count written as "512", "64KiB", "1MiB" or "2GiB"
// (also "KB", "MB", "GB" as powers of 1000).
type Size int64

// Rate is a number of events per second, written "20/s", "100/m" or "5/h".
// "0" turns the rate off.
type Rate float64

// PerSecond returns r as events per second.
func (r Rate) PerSecond() float64 { return float64(r) }

// Percent is a share written "10%" and stored as 0.10.
type Percent float64
