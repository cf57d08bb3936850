package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/testsupport"
)

// TestRedisRealCluster runs the store in cluster mode (RedisOptions.Addrs)
// against a real Redis Cluster of three masters, which refuses any script
// whose keys span slots and spreads the counters over its nodes. The
// subtests share the cluster; each has its own key prefix.
func TestRedisRealCluster(t *testing.T) {
	t.Parallel()
	cl := testsupport.StartRedisCluster(t, 3)
	tests := []struct {
		name string
		run  func(t *testing.T, f *clusterFleet)
	}{
		{"client limits", testClusterClientLimits},
		{"hammer", testClusterHammer},
		{"fleet-wide", testClusterFleetWide},
		{"fleet-wide overshoot", testClusterOvershoot},
		{"slots", testClusterSlots},
		{"dead instance", testClusterDeadInstance},
		{"resync", testClusterResync},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newClusterFleet(t, cl.Addrs))
		})
	}
}

// testClusterClientLimits checks per_ip, route_ip and per_user across
// three instances, with the user's counter on another master than the
// client's: exact, and all or nothing across the two steps.
func testClusterClientLimits(t *testing.T, f *clusterFleet) {
	closed := func(o *RedisOptions) { o.OnFailure = FailClosed }
	a, b, c := f.store(closed), f.store(closed), f.store(closed)
	ip := genIP(0)
	rip := routeIPKey(ip, "/chat")
	u := f.elsewhere(ip, genUser)
	claims := func(ipLim, ripLim, uLim int) []Claim {
		return []Claim{claim(globalKey, 0), claim(ip, ipLim), claim(rip, ripLim), claim(u, uLim)}
	}

	// route_ip is full at 2 and refuses without taking ip or the user.
	mustAcquire(t, a, claims(3, 2, 3)...)
	mustAcquire(t, b, claims(3, 2, 3)...)
	wantFull(t, c, 2, claims(3, 2, 3)...)
	f.wantCount(ip, 2, a, b, c)
	f.wantCount(u, 2, a, b, c)

	// ip is full at 3, taken by a third instance.
	mustAcquire(t, c, claim(ip, 3), claim(u, 3))
	wantFull(t, a, 1, claims(3, 5, 5)...)
	f.wantCount(ip, 3, a, b, c)
	f.wantCount(rip, 2, a, b, c)

	// The user, full at 3 on its own master, refuses another client's
	// handshake: the slot that client's master gave first is given back.
	other := f.elsewhere(u, func(i int) Key { return genIP(100 + i) })
	otherRoute := routeIPKey(other, "/chat")
	wantFull(t, b, 2, claim(other, 5), claim(otherRoute, 5), claim(u, 3))
	f.wantCount(other, 0, a, b, c)
	f.wantCount(otherRoute, 0, a, b, c)
	f.wantCount(u, 3, a, b, c)

	// A release on one instance makes room on another, exactly one.
	release(t, a, claimKeys(claims(0, 0, 0), nil)...)
	mustAcquire(t, c, claims(3, 2, 3)...)
	wantFull(t, b, 1, claims(3, 2, 3)...)
	f.wantCount(ip, 3, a, b, c)

	release(t, b, claimKeys(claims(0, 0, 0), nil)...)
	release(t, c, ip, u)
	release(t, c, claimKeys(claims(0, 0, 0), nil)...)
	f.waitNoCounters(5 * time.Second)
}

// testClusterHammer runs many goroutines on three instances against
// small per-client limits whose counters live on all three masters: no
// limit is exceeded at any moment, and every counter ends at zero.
func testClusterHammer(t *testing.T, f *clusterFleet) {
	const (
		workers = 8 // per store
		rounds  = 50
		perIP   = 3 // below the 2 × perRIP its two routes allow
		perRIP  = 2
		perUser = 3
	)
	routes := []string{"/chat", "/feed"}
	stores := make([]*Redis, 3)
	for i := range stores {
		stores[i] = f.store(func(o *RedisOptions) { o.OnFailure = FailClosed })
	}
	ips := f.spread(3, genIP)
	users := f.spread(3, genUser)
	limits := make(map[Key]int64)
	for i := range ips {
		limits[ips[i]] = perIP
		limits[users[i]] = perUser
		for _, r := range routes {
			limits[routeIPKey(ips[i], r)] = perRIP
		}
	}
	held := make(map[Key]*atomic.Int64)
	for k := range limits {
		held[k] = new(atomic.Int64)
	}

	var admitted, failed atomic.Int64
	var refused [4]atomic.Int64 // by the index of the full claim
	var wg sync.WaitGroup
	for si, s := range stores {
		for w := range workers {
			wg.Go(func() {
				for i := range rounds {
					ip, u := ips[(si+w+i)%3], users[(w+2*i)%3]
					ks := []Key{globalKey, ip, routeIPKey(ip, routes[(w+i)%2]), u}
					claims := []Claim{claim(ks[0], 0), claim(ks[1], perIP),
						claim(ks[2], perRIP), claim(ks[3], perUser)}
					full, err := s.Acquire(context.Background(), claims)
					switch {
					case err != nil:
						failed.Add(1)
						continue
					case full >= 0:
						refused[full].Add(1)
						continue
					}
					admitted.Add(1)
					for _, k := range ks[1:] {
						if n := held[k].Add(1); n > limits[k] {
							t.Errorf("%s: %d held, limit %d", k, n, limits[k])
						}
					}
					for _, k := range ks[1:] {
						held[k].Add(-1)
					}
					s.Release(context.Background(), ks)
				}
			})
		}
	}
	wg.Wait()
	byIP, byRIP, byUser := refused[1].Load(), refused[2].Load(), refused[3].Load()
	t.Logf("admitted %d; refused by ip %d, route_ip %d, user %d; failed %d",
		admitted.Load(), byIP, byRIP, byUser, failed.Load())
	if admitted.Load() == 0 || byIP == 0 || byRIP == 0 || byUser == 0 || refused[0].Load() != 0 {
		t.Errorf("the hammer did not reach every limit, or refused on global")
	}
	for _, s := range stores {
		if s.Len() != 0 || !s.Up() {
			t.Errorf("store %s holds %d counters, up %v", s.ID(), s.Len(), s.Up())
		}
	}
	f.waitNoCounters(5 * time.Second)
}

// testClusterFleetWide checks the counters every handshake shares, which
// the cluster layout decides on each instance against the others' totals
// published every tick. When each instance decides only after it saw the
// others' latest counts, the limits are exact.
func testClusterFleetWide(t *testing.T, f *clusterFleet) {
	keys := []struct {
		name string
		key  Key
	}{
		{"global", globalKey},
		{"route", routeKey("/chat")},
		{"anonymous", Key{Scope: ScopeAnonymous}},
	}
	for _, tt := range keys {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newClusterFleet(t, f.addrs)
			k := tt.key
			const limit = 5
			fast := func(o *RedisOptions) { o.tick = 50 * time.Millisecond } // waits are ticks
			a, b := f.store(fast), f.store(fast)

			mustAcquire(t, a, claim(k, limit))
			mustAcquire(t, a, claim(k, limit))
			waitUntil(t, "a's count published and read by b", 5*time.Second,
				func() bool { return f.seen(k, 2, a, b) })

			// b fills the limit exactly, knowing a's 2.
			for range limit - 2 {
				mustAcquire(t, b, claim(k, limit))
			}
			wantFull(t, b, 0, claim(k, limit))
			waitUntil(t, "the fleet at its limit everywhere", 5*time.Second,
				func() bool { return f.seen(k, limit, a, b) })
			wantFull(t, a, 0, claim(k, limit))

			// One release on b is one admission on a, once a saw it.
			release(t, b, k)
			waitUntil(t, "b's release seen by a", 5*time.Second,
				func() bool { return f.seen(k, limit-1, a, b) })
			mustAcquire(t, a, claim(k, limit))
			wantFull(t, a, 0, claim(k, limit))
			waitUntil(t, "the fleet at its limit again", 5*time.Second,
				func() bool { return f.seen(k, limit, a, b) })
			wantFull(t, b, 0, claim(k, limit))

			for range 3 {
				release(t, a, k)
			}
			for range 2 {
				release(t, b, k)
			}
			waitUntil(t, "every count back to zero", 5*time.Second,
				func() bool { return f.seen(k, 0, a, b) })
			f.waitNoCounters(5 * time.Second)
		})
	}
}

// testClusterOvershoot creates on purpose the race the README allows for
// fleet-wide limits in the cluster layout: two instances admit within one
// tick, each unaware of the other. The fleet goes over by exactly what
// the other admitted, and the next tick stops both until it is back
// under the limit. The maintenance loop is driven by hand.
func testClusterOvershoot(t *testing.T, f *clusterFleet) {
	a, b := f.handDriven(), f.handDriven()
	const limit = 3

	// Within one tick: each admits up to the limit on its own count.
	for _, s := range []*Redis{a, b} {
		for range limit {
			mustAcquire(t, s, claim(globalKey, limit))
		}
		wantFull(t, s, 0, claim(globalKey, limit))
	}
	if n := f.sum(globalKey); n != 0 {
		t.Fatalf("%d published before any tick, want 0: the decisions were not local", n)
	}

	// The tick publishes 3 + 3 and both refuse until the fleet is back
	// under the limit, not merely under it on their own.
	maintainNow(t, a, b, a)
	f.wantCount(globalKey, 2*limit, a, b)
	wantFull(t, a, 0, claim(globalKey, limit))
	wantFull(t, b, 0, claim(globalKey, limit))

	for range limit {
		release(t, a, globalKey)
	}
	maintainNow(t, a, b)
	f.wantCount(globalKey, limit, a, b)
	wantFull(t, a, 0, claim(globalKey, limit))
	wantFull(t, b, 0, claim(globalKey, limit))

	// Under the limit by one: exactly one admission, then exact again.
	release(t, b, globalKey)
	maintainNow(t, b, a)
	mustAcquire(t, a, claim(globalKey, limit))
	wantFull(t, a, 0, claim(globalKey, limit))
	maintainNow(t, a, b)
	f.wantCount(globalKey, limit, a, b)
	wantFull(t, b, 0, claim(globalKey, limit))

	release(t, a, globalKey)
	for range limit - 1 {
		release(t, b, globalKey)
	}
	maintainNow(t, a, b, a)
	f.wantCount(globalKey, 0, a, b)
	f.waitNoCounters(time.Second)
}
