package relay_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/internal/testsupport"
)

// redisConfig points cfg at a Redis store under prefix.
func redisConfig(addr, prefix string) func(*config.Config) {
	return func(c *config.Config) {
		c.Store.Kind = "redis"
		c.Store.Redis.Addr = addr
		c.Store.Redis.KeyPrefix = prefix
		c.Store.Redis.LeaseTTL = config.Duration(2 * time.Second)
		c.Store.Timeout = config.Duration(2 * time.Second) // a loaded machine must not fall back
	}
}

// TestStoreRedisShared runs two servers in this process on one Redis: a
// client prefix's limit holds across them, the instance limit does not,
// and the store reports itself in metrics.
func TestStoreRedisShared(t *testing.T) {
	t.Parallel()
	srv := testsupport.StartRedis(t)
	backend := startEchoServer(t)
	reg := prometheus.NewRegistry()
	a := runGateway(t, admissionConfig(t, backend.upstream(), func(c *config.Config) {
		redisConfig(srv.Addr, "relay:")(c)
		c.Limits.PerIP = 3
	}), reg)
	b := runGateway(t, admissionConfig(t, backend.upstream(), func(c *config.Config) {
		redisConfig(srv.Addr, "relay:")(c)
		c.Limits.PerIP = 3
		c.Limits.InstanceMaxConnections = 1
	}), nil)

	mustUpgrade(t, b, "127.0.0.1")
	expectRefusal(t, b, "127.0.0.2", http.StatusServiceUnavailable, "instance_max_connections")
	mustUpgrade(t, a, "127.0.0.1")
	mustUpgrade(t, a, "127.0.0.1")
	expectRefusal(t, a, "127.0.0.1", http.StatusTooManyRequests, "per_ip")
	backend.expectAccepted(t, 3)

	if got := a.Stats().Counters; got != 3 { // global, instance, ip
		t.Errorf("a holds %d counters, want 3", got)
	}
	if r := a.StoreReady(); r != "" {
		t.Errorf("StoreReady = %q", r)
	}
	if v := gaugeValue(t, reg, "wsguard_store_up", ""); v != 1 {
		t.Errorf("wsguard_store_up = %v, want 1", v)
	}
	if v := gaugeValue(t, reg, "wsguard_store_failure_mode", "local"); v != 1 {
		t.Errorf(`wsguard_store_failure_mode{mode="local"} = %v, want 1`, v)
	}
}

// gaugeValue returns the value of gauge name whose first label has the
// value label ("" for an unlabelled gauge), or -1 if there is none.
func gaugeValue(t testing.TB, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if ls := m.GetLabel(); label == "" && len(ls) == 0 || len(ls) > 0 && ls[0].GetValue() == label {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// BenchmarkHandshakes measures admitted handshakes per second through one
// server with the memory store and with the Redis store, on this machine
// in the same run: each op is a whole WebSocket upgrade through the guard
// to an echo backend, and a close.
//
//	go test -run '^$' -bench Handshakes ./relay/
func BenchmarkHandshakes(b *testing.B) {
	srv := testsupport.StartRedis(b)
	backend := startEchoServer(b)
	for _, kind := range []string{"memory", "redis"} {
		b.Run(kind, func(b *testing.B) {
			g := runGateway(b, admissionConfig(b, backend.upstream(), func(c *config.Config) {
				c.Limits.PerIP = 1 << 20
				if kind == "redis" {
					redisConfig(srv.Addr, "bench:")(c)
					c.Store.Timeout = config.Duration(50 * time.Millisecond)
				}
			}), nil)
			b.SetParallelism(4)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					c, _, err := wsDial(ctx, g.addr, "", "/")
					cancel()
					if err != nil {
						b.Errorf("upgrade: %v", err)
						return
					}
					c.CloseNow()
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "handshakes/s")
		})
	}
}
