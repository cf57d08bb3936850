package config

import (
	"math"
	"testing"
	"time"
)

func TestFDBudget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		nofile      uint64
		wantConns   int
		wantPending int
	}{
		{name: "default on these machines", nofile: 20000, wantConns: 8968, wantPending: 1000},
		{name: "common soft limit", nofile: 1024, wantConns: 416, wantPending: 64},
		{name: "pending floor", nofile: 1280, wantConns: 544, wantPending: 64},
		{name: "pending ceiling", nofile: 1 << 20, wantConns: (1<<20 - 64 - 8192) / 2, wantPending: 4096},
		{name: "odd remainder rounds down", nofile: 20001, wantConns: 8968, wantPending: 1000},
		{name: "too few for the reserve", nofile: 100, wantConns: 1, wantPending: 64},
		{name: "exactly the reserve", nofile: 64 + 128, wantConns: 1, wantPending: 64},
		{name: "zero", nofile: 0, wantConns: 1, wantPending: 64},
		{name: "unlimited", nofile: math.MaxUint64,
			wantConns: int(min((math.MaxUint64-64-8192)/2, uint64(math.MaxInt))), wantPending: 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conns, pending := FDBudget(tt.nofile)
			if conns != tt.wantConns || pending != tt.wantPending {
				t.Errorf("FDBudget(%d) = %d, %d; want %d, %d",
					tt.nofile, conns, pending, tt.wantConns, tt.wantPending)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()
	c := Default()
	conns, pending := FDBudget(nofileLimit())
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, ":8080"},
		{"admin_listen", c.AdminListen, "127.0.0.1:9090"},
		{"allowed_origins", len(c.AllowedOrigins), 0},
		{"routes", len(c.Routes), 0},
		{"limits.max_connections", c.Limits.MaxConnections, conns},
		{"limits.max_pending_handshakes", c.Limits.MaxPendingHandshakes, pending},
		{"limits.per_ip", c.Limits.PerIP, 100},
		{"limits.ipv4_prefix", c.Limits.IPv4Prefix, 32},
		{"limits.ipv6_prefix", c.Limits.IPv6Prefix, 64},
		{"limits.handshake_rate", c.Limits.HandshakeRate, Rate(20)},
		{"limits.handshake_burst", c.Limits.HandshakeBurst, 40},
		{"limits.rate_table_size", c.Limits.RateTableSize, 100000},
		{"limits.retry_after", c.Limits.RetryAfter, Duration(5 * time.Second)},
		{"timeouts.handshake", c.Timeouts.Handshake, Duration(5 * time.Second)},
		{"timeouts.upstream_dial", c.Timeouts.UpstreamDial, Duration(5 * time.Second)},
		{"timeouts.idle", c.Timeouts.Idle, Duration(5 * time.Minute)},
		{"timeouts.idle_counts", c.Timeouts.IdleCounts, "both"},
		{"timeouts.ping_interval", c.Timeouts.PingInterval, Duration(30 * time.Second)},
		{"timeouts.pong_timeout", c.Timeouts.PongTimeout, Duration(15 * time.Second)},
		{"timeouts.max_lifetime", c.Timeouts.MaxLifetime, Duration(0)},
		{"timeouts.lifetime_jitter", c.Timeouts.LifetimeJitter, Percent(0.10)},
		{"timeouts.write", c.Timeouts.Write, Duration(15 * time.Second)},
		{"timeouts.close", c.Timeouts.Close, Duration(2 * time.Second)},
		{"timeouts.drain", c.Timeouts.Drain, Duration(30 * time.Second)},
		{"messages.max_size", c.Messages.MaxSize, Size(1 << 20)},
		{"messages.rate", c.Messages.Rate, Rate(100)},
		{"messages.burst", c.Messages.Burst, 200},
		{"messages.over_rate", c.Messages.OverRate, "throttle"},
		{"log.format", c.Log.Format, "text"},
		{"log.level", c.Log.Level, "info"},
	}
	for _, tt := range checks {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestDefaultValidWithRoute(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Routes = append(c.Routes, c.NewRoute("/", "http://127.0.0.1:3000"))
	if err := c.Validate(); err != nil {
		t.Fatalf("Default with one route: %v", err)
	}
}
