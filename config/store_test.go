package config

import (
	"slices"
	"testing"
	"time"
)

func TestStoreDefaults(t *testing.T) {
	t.Parallel()
	c := Default()
	want := Store{
		Kind: "memory",
		Redis: StoreRedis{
			Addr: "127.0.0.1:6379", KeyPrefix: "wsguard:", LeaseTTL: Duration(30 * time.Second),
		},
		Timeout:   Duration(50 * time.Millisecond),
		OnFailure: "local",
		FleetSize: 1,
	}
	if c.Store.Kind != want.Kind || c.Store.Redis.Addr != want.Redis.Addr ||
		c.Store.Redis.KeyPrefix != want.Redis.KeyPrefix || c.Store.Redis.LeaseTTL != want.Redis.LeaseTTL ||
		c.Store.Timeout != want.Timeout || c.Store.OnFailure != want.OnFailure || c.Store.FleetSize != 1 {
		t.Errorf("store defaults %+v, want %+v", c.Store, want)
	}
	if c.Limits.InstanceMaxConnections != c.Limits.MaxConnections {
		t.Errorf("instance_max_connections %d, want the derived max_connections %d",
			c.Limits.InstanceMaxConnections, c.Limits.MaxConnections)
	}
}

func TestStoreParse(t *testing.T) {
	t.Parallel()
	in := `store:
  kind: redis
  redis:
    addrs: [10.0.0.1:6379, "10.0.0.2:6379"]
    username: gw
    password_file: /run/secrets/redis
    tls: true
    key_prefix: "fleet-a:"
    lease_ttl: 10s
  timeout: 20ms
  on_failure: closed
  fleet_size: 4
limits:
  max_connections: 40000
  instance_max_connections: 12000
routes:
  - path: /
    upstream: http://127.0.0.1:3000
`
	c, err := Parse("w.yaml", []byte(in))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	s := c.Store
	if s.Kind != "redis" || !slices.Equal(s.Redis.Addrs, []string{"10.0.0.1:6379", "10.0.0.2:6379"}) ||
		s.Redis.Username != "gw" || s.Redis.PasswordFile != "/run/secrets/redis" || !s.Redis.TLS ||
		s.Redis.KeyPrefix != "fleet-a:" || s.Redis.LeaseTTL != Duration(10*time.Second) ||
		s.Timeout != Duration(20*time.Millisecond) || s.OnFailure != "closed" || s.FleetSize != 4 {
		t.Errorf("parsed %+v", s)
	}
	if c.Limits.InstanceMaxConnections != 12000 {
		t.Errorf("instance_max_connections %d", c.Limits.InstanceMaxConnections)
	}
}

func TestStoreValidate(t *testing.T) {
	t.Parallel()
	in := `limits:
  instance_max_connections: -1
store:
  kind: redis
  timeout: 0
  on_failure: retry
  fleet_size: 0
  redis:
    addr: redis.internal
    addrs: [a:1, b]
    db: 2
    key_prefix: "{x}"
    lease_ttl: 500ms
routes:
  - path: /
    upstream: http://127.0.0.1:3000
`
	c, err := Parse("w.yaml", []byte(in))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []string{
		`w.yaml:2: limits.instance_max_connections: must be at least 0, not -1`,
		`w.yaml:5: store.timeout: must be greater than 0`,
		`w.yaml:6: store.on_failure: invalid value "retry" (use local, open or closed)`,
		`w.yaml:7: store.fleet_size: must be at least 1, not 0`,
		`w.yaml:9: store.redis.addr: set addr (one server) or addrs (a cluster), not both`,
		`w.yaml:10: store.redis.addrs[1]: invalid address "b" (use host:port such as 127.0.0.1:6379)`,
		`w.yaml:11: store.redis.db: must be 0 with addrs: Redis Cluster has database 0 only`,
		`w.yaml:12: store.redis.key_prefix: must not be empty nor hold { or }, which would change the hash slots`,
		`w.yaml:13: store.redis.lease_ttl: must be at least 1s, not 500ms`,
	}
	if got := errorLines(t, c.Validate()); !slices.Equal(got, want) {
		t.Fatalf("errors:\n got %q\nwant %q", got, want)
	}

	// The memory store ignores the redis section; a bad kind is named.
	c = validConfig()
	c.Store.Redis.Addr = "nowhere"
	c.Store.Kind = "etcd"
	want = []string{`store.kind: invalid value "etcd" (use memory or redis)`}
	if got := errorLines(t, c.Validate()); !slices.Equal(got, want) {
		t.Fatalf("errors:\n got %q\nwant %q", got, want)
	}
}
