package config

import (
	"math"
	"slices"
	"testing"
)

// validConfig returns defaults with one route, which pass Validate.
func validConfig() Config {
	c := Default()
	c.Routes = []Route{c.NewRoute("/ws", "http://127.0.0.1:3000")}
	return c
}

func TestValidateInCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string
	}{
		{"valid", func(c *Config) {}, nil},
		{"empty listen", func(c *Config) { c.Listen = "" },
			[]string{"listen: missing address (use host:port such as :8080)"}},
		{"listen without port", func(c *Config) { c.Listen = "localhost" },
			[]string{`listen: invalid address "localhost" (use host:port such as :8080)`}},
		{"listen with empty port", func(c *Config) { c.Listen = "localhost:" },
			[]string{`listen: invalid address "localhost:" (use host:port such as :8080)`}},
		{"admin off", func(c *Config) { c.AdminListen = "" }, nil},
		{"bad admin", func(c *Config) { c.AdminListen = "9090" },
			[]string{`admin_listen: invalid address "9090" (use host:port such as :8080)`}},
		{"no routes", func(c *Config) { c.Routes = nil },
			[]string{"routes: no routes (at least one route or --upstream is needed)"}},
		{"origins", func(c *Config) {
			c.AllowedOrigins = []string{"*", "https://a.example", "http://b:8080", "https://c/",
				"c.example", "https://d?x", "https://u@e"}
		}, []string{
			`allowed_origins[3]: invalid origin "https://c/" (use "*" or scheme://host[:port])`,
			`allowed_origins[4]: invalid origin "c.example" (use "*" or scheme://host[:port])`,
			`allowed_origins[5]: invalid origin "https://d?x" (use "*" or scheme://host[:port])`,
			`allowed_origins[6]: invalid origin "https://u@e" (use "*" or scheme://host[:port])`,
		}},
		{"limits", func(c *Config) {
			c.Limits = Limits{MaxConnections: 0, MaxPendingHandshakes: -1, PerIP: -1,
				IPv4Prefix: 33, IPv6Prefix: 0, HandshakeRate: 1, HandshakeBurst: 0,
				RateTableSize: 0, RetryAfter: -1}
		}, []string{
			"limits.max_connections: must be at least 1, not 0",
			"limits.max_pending_handshakes: must be at least 1, not -1",
			"limits.per_ip: must be at least 0, not -1",
			"limits.ipv4_prefix: must be from 1 to 32, not 33",
			"limits.ipv6_prefix: must be from 1 to 128, not 0",
			"limits.handshake_burst: must be at least 1 when handshake_rate is set, not 0",
			"limits.rate_table_size: must be at least 1, not 0",
			"limits.retry_after: must not be negative",
		}},
		{"fairness", func(c *Config) {
			c.Limits.Pressure, c.Limits.MinPerIP, c.Limits.EvictionGrace = 1.5, -1, -1
		}, []string{
			"limits.pressure: must be from 0 to 100%, not 150%",
			"limits.min_per_ip: must be at least 0, not -1",
			"limits.eviction_grace: must not be negative",
		}},
		{"fairness off", func(c *Config) { c.Limits.Pressure, c.Limits.EvictionGrace = 0, 0 }, nil},
		{"rate off needs no burst", func(c *Config) { c.Limits.HandshakeRate, c.Limits.HandshakeBurst = 0, 0 }, nil},
		{"nan rate", func(c *Config) { c.Messages.Rate = Rate(math.NaN()) },
			[]string{"messages.rate: must be a finite rate of 0 or more"}},
		{"timeouts", func(c *Config) {
			c.Timeouts = Timeouts{IdleCounts: "server", Idle: -1, LifetimeJitter: 1,
				PingInterval: 1}
		}, []string{
			"timeouts.handshake: must be greater than 0",
			"timeouts.upstream_dial: must be greater than 0",
			"timeouts.idle: must not be negative",
			`timeouts.idle_counts: invalid value "server" (use both or client)`,
			"timeouts.pong_timeout: must be greater than 0 when ping_interval is set",
			"timeouts.lifetime_jitter: must be at least 0 and below 100%, not 100%",
			"timeouts.write: must be greater than 0",
			"timeouts.close: must be greater than 0",
		}},
		{"pings off need no pong timeout", func(c *Config) {
			c.Timeouts.PingInterval, c.Timeouts.PongTimeout = 0, 0
			c.Routes[0].Timeouts = c.Timeouts
		}, nil},
		{"messages", func(c *Config) {
			c.Messages = Messages{MaxSize: -1, Rate: 5, Burst: 0, OverRate: "drop"}
		}, []string{
			"messages.max_size: must not be negative",
			"messages.burst: must be at least 1 when rate is set, not 0",
			`messages.over_rate: invalid value "drop" (use throttle or close)`,
		}},
		{"log", func(c *Config) { c.Log = Log{Format: "xml", Level: "trace"} }, []string{
			`log.format: invalid value "xml" (use text or json)`,
			`log.level: invalid value "trace" (use debug, info, warn or error)`,
		}},
		{"routes", func(c *Config) {
			c.Routes = append(c.Routes,
				c.NewRoute("", "ws://a"),
				c.NewRoute("chat", "wss://a"),
				c.NewRoute("/ws", "https://a"),
				c.NewRoute("/b", ""),
				c.NewRoute("/c", "ftp://a"),
				c.NewRoute("/d", "http://"),
				c.NewRoute("/e", "http://a/x?y=1"),
				c.NewRoute("/f", "http://a#top"),
				c.NewRoute("/g", "http://a b"))
		}, []string{
			"routes[1].path: missing path (use a prefix such as /ws)",
			`routes[2].path: path "chat" must begin with "/"`,
			`routes[3].path: duplicate path "/ws" (also routes[0])`,
			"routes[4].upstream: missing upstream (use a URL such as http://127.0.0.1:3000)",
			`routes[5].upstream: upstream "ftp://a" must use http, https, ws or wss`,
			`routes[6].upstream: upstream "http://" has no host`,
			`routes[7].upstream: upstream "http://a/x?y=1" must not have a query or fragment`,
			`routes[8].upstream: upstream "http://a#top" must not have a query or fragment`,
			`routes[9].upstream: invalid URL "http://a b"`,
		}},
		{"route overrides", func(c *Config) {
			r := &c.Routes[0]
			r.Limits = RouteLimits{MaxConnections: -1, PerIP: -2, HandshakeRate: 1}
			r.Timeouts.Handshake = 0
			r.Messages.OverRate = "drop"
		}, []string{
			"routes[0].limits.max_connections: must be at least 0, not -1",
			"routes[0].limits.per_ip: must be at least 0, not -2",
			"routes[0].limits.handshake_burst: must be at least 1 when handshake_rate is set, not 0",
			"routes[0].timeouts.handshake: must be greater than 0",
			`routes[0].messages.over_rate: invalid value "drop" (use throttle or close)`,
		}},
		{"inherited problems reported once", func(c *Config) {
			c.Messages.OverRate = "drop"
			c.Routes[0] = c.NewRoute("/ws", "http://a")
		}, []string{`messages.over_rate: invalid value "drop" (use throttle or close)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.modify(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if got := errorLines(t, err); !slices.Equal(got, tt.want) {
				t.Fatalf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestValidateFromFile(t *testing.T) {
	t.Parallel()
	in := `listen: localhost
timeouts:
  ping_interval: 0
  pong_timeout: 0
messages:
  over_rate: drop
routes:
  - path: /a
    upstream: http://a
  - path: /b
    upstream: http://b
    timeouts:
      ping_interval: 10s
    messages:
      over_rate: close
      burst: 0
`
	c, err := Parse("w.yaml", []byte(in))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []string{
		`w.yaml:1: listen: invalid address "localhost" (use host:port such as :8080)`,
		`w.yaml:6: messages.over_rate: invalid value "drop" (use throttle or close)`,
		// pong_timeout is inherited; the route's timeouts section is named.
		`w.yaml:12: routes[1].timeouts.pong_timeout: must be greater than 0 when ping_interval is set`,
		`w.yaml:16: routes[1].messages.burst: must be at least 1 when rate is set, not 0`,
	}
	if got := errorLines(t, c.Validate()); !slices.Equal(got, want) {
		t.Fatalf("errors:\n got %q\nwant %q", got, want)
	}
}

func TestValidateMissingRoutesInFile(t *testing.T) {
	t.Parallel()
	c, err := Parse("w.yaml", []byte("log:\n  level: warn\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []string{"w.yaml: routes: no routes (at least one route or --upstream is needed)"}
	if got := errorLines(t, c.Validate()); !slices.Equal(got, want) {
		t.Fatalf("errors:\n got %q\nwant %q", got, want)
	}
}
