package store

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
)

// BenchmarkAcquireRelease takes and gives back the counters of one
// anonymous handshake (global, instance, client prefix) in the memory
// store and in the Redis store against a real redis-server, in both key
// layouts. Run with -bench AcquireRelease; each op is two Redis round
// trips (acquire and release).
func BenchmarkAcquireRelease(b *testing.B) {
	srv := sharedRedis(b)
	stores := []struct {
		name string
		s    Store
	}{
		{"memory", NewMemory()},
		{"redis", newTestRedis(b, srv.Addr, func(o *RedisOptions) { o.KeyPrefix = "bench:" })},
		{"redis-cluster-layout", newTestRedis(b, srv.Addr, func(o *RedisOptions) {
			o.KeyPrefix, o.clusterLayout = "benchc:", true
		})},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			benchAcquireRelease(b, st.s)
		})
	}
}

func benchAcquireRelease(b *testing.B, s Store) {
	ctx := context.Background()
	prefixes := make([]netip.Prefix, 256)
	for i := range prefixes {
		prefixes[i] = netip.MustParsePrefix(fmt.Sprintf("10.0.%d.%d/32", i/16, i%16))
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var claims [3]Claim
		var keys [3]Key
		i := 0
		for pb.Next() {
			claims[0] = claim(globalKey, 1<<30)
			claims[1] = claim(Key{Scope: ScopeInstance}, 1<<30)
			claims[2] = claim(Key{Scope: ScopeIP, Prefix: prefixes[i%len(prefixes)]}, 1<<30)
			i++
			if full, err := s.Acquire(ctx, claims[:]); full != -1 || err != nil {
				b.Fatalf("Acquire = %d, %v", full, err)
			}
			for j, c := range claims {
				keys[j] = c.Key
			}
			if err := s.Release(ctx, keys[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
