package config

import (
	"math"
	"time"
)

// Descriptor budget used by FDBudget.
const (
	reservedFDs    = 64   // listeners, log files, DNS, the admin listener
	pendingFloor   = 64   // least MaxPendingHandshakes
	pendingCeiling = 4096 // most MaxPendingHandshakes
	fallbackNofile = 1024 // assumed when the limit cannot be read
)

// Default returns a Config with every default filled in and no routes.
// Limits.MaxConnections and Limits.MaxPendingHandshakes come from
// FDBudget applied to the process's soft RLIMIT_NOFILE.
func Default() Config {
	maxConns, pending := FDBudget(nofileLimit())
	return Config{
		Listen:      ":8080",
		AdminListen: "127.0.0.1:9090",
		TLS:         defaultTLS(),
		Limits: Limits{
			MaxConnections:       maxConns,
			MaxPendingHandshakes: pending,
			PerIP:                100,
			PerUser:              100,
			AnonymousShare:       0.5,
			IPv4Prefix:           32,
			IPv6Prefix:           64,
			HandshakeRate:        20,
			HandshakeBurst:       40,
			RateTableSize:        100000,
			RetryAfter:           Duration(5 * time.Second),
			Pressure:             0.9,
			MinPerIP:             1,
			EvictionGrace:        Duration(30 * time.Second),

			InstanceMaxConnections: maxConns,
		},
		Timeouts: Timeouts{
			Handshake:      Duration(5 * time.Second),
			UpstreamDial:   Duration(5 * time.Second),
			Idle:           Duration(5 * time.Minute),
			IdleCounts:     "both",
			PingInterval:   Duration(30 * time.Second),
			PongTimeout:    Duration(15 * time.Second),
			LifetimeJitter: 0.10,
			Write:          Duration(15 * time.Second),
			Close:          Duration(2 * time.Second),
			Drain:          Duration(30 * time.Second),
		},
		Messages: Messages{
			MaxSize:      MiB,
			MaxFragments: 1024,
			Rate:         100,
			Burst:        200,
			OverRate:     "throttle",
		},
		Log:            Log{Format: "text", Level: "info"},
		ClientIPHeader: "x-forwarded-for",
		Admin:          Admin{ReadyFDShare: 0.9},
		Store:          defaultStore(),
		ProxyProtocol:  "off",
		Auth: Auth{
			JWT: JWT{
				Leeway:       Duration(30 * time.Second),
				UserClaim:    "sub",
				MaxTokenSize: 4 * KiB,
				JWKSRefresh:  Duration(5 * time.Minute),
			},
			TokenSources: []string{"header", "query"},
			QueryParam:   "access_token",
			Cookie:       "access_token",
		},
	}
}

// FDBudget splits a descriptor limit of nofile between upgraded
// connections and pending handshakes. It reserves 64 descriptors for the
// process itself, gives pending handshakes nofile/20 (at least 64, at
// most 4096) at up to two descriptors each, and divides the rest by two,
// since each proxied connection holds a client and an upstream socket.
// maxConns is at least 1. A limit of 20000 gives 8968 and 1000.
func FDBudget(nofile uint64) (maxConns, maxPending int) {
	pending := min(max(nofile/20, pendingFloor), pendingCeiling)
	used := reservedFDs + 2*pending
	conns := uint64(1)
	if nofile > used {
		conns = max((nofile-used)/2, 1)
	}
	return int(min(conns, math.MaxInt)), int(pending)
}
