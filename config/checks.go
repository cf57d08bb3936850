package config

import (
	"math"
	"slices"
	"strings"
)

// Checks of single sections. Each returns its problems keyed relative to
// the section, so the same checks serve the top level and every route.

// limitProblems checks the instance-wide limits.
func limitProblems(l Limits) []problem {
	var ps problems
	atLeast(&ps, "max_connections", l.MaxConnections, 1)
	atLeast(&ps, "max_pending_handshakes", l.MaxPendingHandshakes, 1)
	atLeast(&ps, "per_ip", l.PerIP, 0)
	between(&ps, "ipv4_prefix", l.IPv4Prefix, 1, 32)
	between(&ps, "ipv6_prefix", l.IPv6Prefix, 1, 128)
	bucket(&ps, "handshake_rate", "handshake_burst", l.HandshakeRate, l.HandshakeBurst)
	atLeast(&ps, "rate_table_size", l.RateTableSize, 1)
	duration(&ps, "retry_after", l.RetryAfter, false)
	if f := float64(l.Pressure); !(f >= 0 && f <= 1) {
		ps.add("pressure", "must be from 0 to 100%%, not %s", l.Pressure)
	}
	atLeast(&ps, "min_per_ip", l.MinPerIP, 0)
	duration(&ps, "eviction_grace", l.EvictionGrace, false)
	return ps
}

// routeLimitProblems checks a route's own limits, where zero means none.
func routeLimitProblems(l RouteLimits) []problem {
	var ps problems
	atLeast(&ps, "max_connections", l.MaxConnections, 0)
	atLeast(&ps, "per_ip", l.PerIP, 0)
	bucket(&ps, "handshake_rate", "handshake_burst", l.HandshakeRate, l.HandshakeBurst)
	return ps
}

// timeoutProblems checks a timeouts section.
func timeoutProblems(t Timeouts) []problem {
	var ps problems
	duration(&ps, "handshake", t.Handshake, true)
	duration(&ps, "upstream_dial", t.UpstreamDial, true)
	duration(&ps, "idle", t.Idle, false)
	oneOf(&ps, "idle_counts", t.IdleCounts, "both", "client")
	duration(&ps, "ping_interval", t.PingInterval, false)
	duration(&ps, "pong_timeout", t.PongTimeout, t.PingInterval > 0)
	duration(&ps, "max_lifetime", t.MaxLifetime, false)
	if j := float64(t.LifetimeJitter); !(j >= 0 && j < 1) {
		ps.add("lifetime_jitter", "must be at least 0 and below 100%%, not %s", t.LifetimeJitter)
	}
	duration(&ps, "write", t.Write, true)
	duration(&ps, "close", t.Close, true)
	duration(&ps, "drain", t.Drain, false)
	return ps
}

// messageProblems checks a messages section.
func messageProblems(m Messages) []problem {
	var ps problems
	atLeast(&ps, "max_fragments", m.MaxFragments, 0)
	if m.MaxSize < 0 {
		ps.add("max_size", "must not be negative")
	}
	bucket(&ps, "rate", "burst", m.Rate, m.Burst)
	oneOf(&ps, "over_rate", m.OverRate, "throttle", "close")
	return ps
}

// logProblems checks the log section.
func logProblems(l Log) []problem {
	var ps problems
	oneOf(&ps, "format", l.Format, "text", "json")
	oneOf(&ps, "level", l.Level, "debug", "info", "warn", "error")
	return ps
}

// atLeast checks that n >= least.
func atLeast(ps *problems, key string, n, least int) {
	if n < least {
		ps.add(key, "must be at least %d, not %d", least, n)
	}
}

// between checks that lo <= n <= hi.
func between(ps *problems, key string, n, lo, hi int) {
	if n < lo || n > hi {
		ps.add(key, "must be from %d to %d, not %d", lo, hi, n)
	}
}

// duration checks that d is not negative, and above zero if positive is set.
func duration(ps *problems, key string, d Duration, positive bool) {
	switch {
	case d < 0:
		ps.add(key, "must not be negative")
	case d == 0 && positive && key == "pong_timeout":
		ps.add(key, "must be greater than 0 when ping_interval is set")
	case d == 0 && positive:
		ps.add(key, "must be greater than 0")
	}
}

// bucket checks a token bucket: a finite rate of 0 or more, and a burst
// of at least 1 when the rate is on.
func bucket(ps *problems, rateKey, burstKey string, r Rate, burst int) {
	if f := float64(r); !(f >= 0) || math.IsInf(f, 1) {
		ps.add(rateKey, "must be a finite rate of 0 or more")
	}
	if r > 0 && burst < 1 {
		ps.add(burstKey, "must be at least 1 when %s is set, not %d", rateKey, burst)
	} else if burst < 0 {
		ps.add(burstKey, "must not be negative")
	}
}

// oneOf checks that s is one of the allowed words.
func oneOf(ps *problems, key, s string, allowed ...string) {
	if !slices.Contains(allowed, s) {
		ps.add(key, "invalid value %q (use %s)", s, orList(allowed))
	}
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
