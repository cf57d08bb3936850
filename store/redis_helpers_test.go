package store

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsguard/wsguard/internal/testsupport"
)

// testPrefix is the key prefix of the stores under test.
const testPrefix = "t:"

// newTestRedis returns a store on addr with a 2 s lease and a generous
// timeout (a loaded machine must not fall back by accident), after
// mutate had its say. It waits until the store is up unless the options
// point it at nothing, and closes it when the test ends.
func newTestRedis(t testing.TB, addr string, mutate func(*RedisOptions)) *Redis {
	t.Helper()
	opts := RedisOptions{
		Addr:      addr,
		KeyPrefix: testPrefix,
		LeaseTTL:  2 * time.Second,
		Timeout:   2 * time.Second,
	}
	if mutate != nil {
		mutate(&opts)
	}
	r, err := NewRedis(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	waitUntil(t, "store up", 10*time.Second, r.Up)
	return r
}

// crash stops r the way a killed process stops: no goodbye, no renewal.
func crash(r *Redis) {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		r.cancel()
		<-r.done
		r.client.Close()
	})
}

// rawRedis returns a plain client to addr, closed when the test ends.
func rawRedis(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// fieldSum returns the sum of every field of a counter in Redis, live
// instances or not.
func fieldSum(t testing.TB, c *redis.Client, k Key) int {
	t.Helper()
	vals, err := c.HVals(context.Background(), keyName(testPrefix, k)).Result()
	if err != nil {
		t.Fatalf("HVALS %s: %v", k, err)
	}
	sum := 0
	for _, v := range vals {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("field of %s is %q", k, v)
		}
		sum += n
	}
	return sum
}

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond) // polling a state, not a guess at timing
	}
}

// Keys and claims used by the tests.
var (
	globalKey = Key{Scope: ScopeGlobal}
	userKey   = func(u string) Key { return Key{Scope: ScopeUser, User: u} }
	ipKey     = func(s string) Key { return Key{Scope: ScopeIP, Prefix: netip.MustParsePrefix(s)} }
	tierKey   = func(s string) Key { return Key{Scope: ScopeTier, Prefix: netip.MustParsePrefix(s)} }
	routeKey  = func(r string) Key { return Key{Scope: ScopeRoute, Route: r} }
)

func claim(k Key, limit int) Claim { return Claim{Key: k, Limit: limit} }

// mustAcquire fails the test unless every claim is taken.
func mustAcquire(t testing.TB, s Store, claims ...Claim) {
	t.Helper()
	full, err := s.Acquire(context.Background(), claims)
	if err != nil || full != -1 {
		t.Fatalf("Acquire(%v) = %d, %v; want -1, nil", claims, full, err)
	}
}

// wantFull fails the test unless Acquire refuses on claim index want.
func wantFull(t testing.TB, s Store, want int, claims ...Claim) {
	t.Helper()
	full, err := s.Acquire(context.Background(), claims)
	if err != nil || full != want {
		t.Fatalf("Acquire(%v) = %d, %v; want %d, nil", claims, full, err, want)
	}
}

func release(t testing.TB, s Store, keys ...Key) {
	t.Helper()
	if err := s.Release(context.Background(), keys); err != nil {
		t.Fatalf("Release: %v", err)
	}
}

// sharedRedis starts one redis-server for a test and its subtests.
func sharedRedis(t testing.TB) *testsupport.Process {
	t.Helper()
	return testsupport.StartRedis(t)
}

// crc16 is Redis Cluster's key hash (CRC-16/XMODEM).
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// slot returns the Redis Cluster slot of a key name.
func slot(name string) uint16 { return crc16(hashTag(name)) % 16384 }
