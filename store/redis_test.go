package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRedisLimits checks the decisions of one and of several instances
// sharing a Redis, in both key layouts.
func TestRedisLimits(t *testing.T) {
	t.Parallel()
	srv := sharedRedis(t)
	for _, cluster := range []bool{false, true} {
		t.Run(fmt.Sprintf("cluster=%v", cluster), func(t *testing.T) {
			t.Parallel()
			prefix := fmt.Sprintf("limits%v:", cluster)
			mk := func() *Redis {
				return newTestRedis(t, srv.Addr, func(o *RedisOptions) {
					o.KeyPrefix, o.clusterLayout = prefix, cluster
				})
			}
			a, b := mk(), mk()
			ip := ipKey("192.0.2.1/32")

			// All or nothing: the user has room, the prefix has not.
			mustAcquire(t, a, claim(globalKey, 10), claim(ip, 2), claim(userKey("u"), 5))
			mustAcquire(t, b, claim(globalKey, 10), claim(ip, 2), claim(userKey("u"), 5))
			wantFull(t, a, 1, claim(globalKey, 10), claim(ip, 2), claim(userKey("u"), 5))
			for _, s := range []*Redis{a, b} {
				if n, err := s.Count(context.Background(), userKey("u")); err != nil || n != 2 {
					t.Fatalf("user count %d, %v after a refusal; want 2", n, err)
				}
			}

			// A user at its limit refuses on another prefix too, and the
			// prefix's slot taken in the first step is given back.
			other := ipKey("192.0.2.2/32")
			wantFull(t, b, 2, claim(globalKey, 10), claim(other, 2), claim(userKey("u"), 2))
			if n, _ := b.Count(context.Background(), other); n != 0 {
				t.Fatalf("prefix count %d after the user refused; want 0", n)
			}

			// A release on one instance makes room for the other.
			release(t, a, globalKey, ip, userKey("u"))
			mustAcquire(t, b, claim(globalKey, 10), claim(ip, 2), claim(userKey("u"), 5))

			// The instance limit is local: b is at 1 of 1, a is not.
			inst := Key{Scope: ScopeInstance}
			mustAcquire(t, b, claim(inst, 1))
			wantFull(t, b, 0, claim(inst, 1))
			mustAcquire(t, a, claim(inst, 1))
		})
	}
}

// TestRedisGlobalCluster checks the fleet-wide counters of the cluster
// layout, which are decided locally against the others' totals: exact
// for one instance, and aware of another instance within a tick or two.
func TestRedisGlobalCluster(t *testing.T) {
	t.Parallel()
	srv := sharedRedis(t)
	mk := func() *Redis {
		return newTestRedis(t, srv.Addr, func(o *RedisOptions) { o.clusterLayout = true })
	}
	a := mk()
	for range 3 {
		mustAcquire(t, a, claim(globalKey, 3), claim(routeKey("/r"), 0))
	}
	wantFull(t, a, 0, claim(globalKey, 3))

	// b learns a's count within a tick of each: a publishes, b reads.
	b := mk()
	waitUntil(t, "b to see a's count", 5*time.Second, func() bool {
		full, err := b.Acquire(context.Background(), []Claim{claim(globalKey, 3)})
		if full == -1 {
			b.Release(context.Background(), []Key{globalKey})
		}
		return err == nil && full == 0
	})
	release(t, a, globalKey)
	waitUntil(t, "b to see a's release", 5*time.Second, func() bool {
		full, err := b.Acquire(context.Background(), []Claim{claim(globalKey, 3)})
		return err == nil && full == -1
	})
	waitUntil(t, "a to see b's count", 5*time.Second, func() bool {
		full, err := a.Acquire(context.Background(), []Claim{claim(globalKey, 3)})
		if full == -1 {
			a.Release(context.Background(), []Key{globalKey})
		}
		return err == nil && full == 0
	})
}

// TestRedisClusterSlots checks that in the cluster layout every script
// touches keys of one hash slot only.
func TestRedisClusterSlots(t *testing.T) {
	t.Parallel()
	srv := sharedRedis(t)
	h := &slotHook{}
	r := newTestRedis(t, srv.Addr, func(o *RedisOptions) {
		o.clusterLayout, o.hook = true, h
	})
	route := Key{Scope: ScopeRouteIP, Route: "/chat", Prefix: ipKey("2001:db8::/64").Prefix}
	claims := []Claim{claim(globalKey, 100), claim(ipKey("2001:db8::/64"), 5), claim(route, 5),
		claim(userKey("a{b}c"), 5), claim(tierKey("2001:db8::/56"), 9), claim(routeKey("/chat"), 50)}
	mustAcquire(t, r, claims...)
	groups := r.group(claimKeys(claims, nil))
	if len(groups) != 3 {
		t.Fatalf("%d groups, want 3 (prefix, user, tier): %+v", len(groups), groups)
	}
	if got := groups[0].names; len(got) != 2 {
		t.Fatalf("first group %v, want the ip and route_ip counters together", got)
	}
	release(t, r, claimKeys(claims, nil)...)
	waitUntil(t, "a few ticks", 5*time.Second, func() bool { return h.calls.Load() > 20 })
	if err := h.error(); err != nil {
		t.Fatal(err)
	}
}

// slotHook fails commands whose keys span hash slots, as a cluster would.
type slotHook struct {
	calls atomic.Int64
	mu    sync.Mutex
	err   error // guarded by mu
}

func (h *slotHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *slotHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.check(cmd)
		return next(ctx, cmd)
	}
}

func (h *slotHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.check(c)
		}
		return next(ctx, cmds)
	}
}

func (h *slotHook) check(cmd redis.Cmder) {
	h.calls.Add(1)
	args := cmd.Args()
	name := fmt.Sprint(args[0])
	if name != "eval" && name != "evalsha" {
		return
	}
	n, _ := args[2].(int)
	var first uint16
	for i := range n {
		s := slot(fmt.Sprint(args[3+i]))
		if i == 0 {
			first = s
		} else if s != first {
			h.mu.Lock()
			h.err = fmt.Errorf("%s touches slots %d and %d: %v", name, first, s, args[3:3+n])
			h.mu.Unlock()
		}
	}
}

func (h *slotHook) error() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// TestRedisHammer runs many goroutines on three instances against small
// limits: the slots held at any moment never exceed a limit, and every
// count in Redis ends at zero.
func TestRedisHammer(t *testing.T) {
	t.Parallel()
	srv := sharedRedis(t)
	for _, cluster := range []bool{false, true} {
		t.Run(fmt.Sprintf("cluster=%v", cluster), func(t *testing.T) {
			t.Parallel()
			prefix := fmt.Sprintf("hammer%v:", cluster)
			stores := make([]*Redis, 3)
			for i := range stores {
				stores[i] = newTestRedis(t, srv.Addr, func(o *RedisOptions) {
					o.KeyPrefix, o.clusterLayout = prefix, cluster
				})
			}
			hammer(t, stores, cluster)
			c := rawRedis(t, srv.Addr)
			waitUntil(t, "counters gone from Redis", 5*time.Second, func() bool {
				keys, _ := c.Keys(context.Background(), prefix+"*").Result()
				return len(keys) == 1 // the lease set
			})
		})
	}
}

// hammer runs the goroutines of TestRedisHammer and checks the limits.
func hammer(t *testing.T, stores []*Redis, cluster bool) {
	const (
		workers = 8 // per store
		rounds  = 60
		global  = 7
		perIP   = 4
		perUser = 3
	)
	ips := []Key{ipKey("198.51.100.1/32"), ipKey("198.51.100.2/32")}
	users := []Key{userKey("ann"), userKey("bob")}
	held := make(map[Key]*atomic.Int64)
	for _, k := range append(append([]Key{globalKey}, ips...), users...) {
		held[k] = new(atomic.Int64)
	}
	limits := map[Key]int64{globalKey: global, ips[0]: perIP, ips[1]: perIP, users[0]: perUser, users[1]: perUser}
	if cluster {
		limits[globalKey] = 0 // decided on cached totals there: not exact
	}
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for si, s := range stores {
		for w := range workers {
			wg.Go(func() {
				for i := range rounds {
					ks := []Key{globalKey, ips[(si+w+i)%2], users[(w+i)%2]}
					claims := []Claim{claim(ks[0], int(limits[ks[0]])), claim(ks[1], perIP), claim(ks[2], perUser)}
					full, err := s.Acquire(context.Background(), claims)
					if err != nil || full >= 0 {
						refused.Add(1)
						continue
					}
					admitted.Add(1)
					for _, k := range ks {
						if n := held[k].Add(1); limits[k] > 0 && n > limits[k] {
							t.Errorf("%s: %d held, limit %d", k, n, limits[k])
						}
					}
					for _, k := range ks {
						held[k].Add(-1)
					}
					s.Release(context.Background(), ks)
				}
			})
		}
	}
	wg.Wait()
	if admitted.Load() == 0 || refused.Load() == 0 {
		t.Errorf("admitted %d, refused %d: the hammer did not reach the limits", admitted.Load(), refused.Load())
	}
	for _, s := range stores {
		if s.Len() != 0 || !s.Up() {
			t.Errorf("store %s holds %d counters, up %v", s.ID(), s.Len(), s.Up())
		}
	}
}

// TestRedisDeadInstance kills an instance without a goodbye: its slots
// come back once its lease ends, not before, and the others' counts stay.
func TestRedisDeadInstance(t *testing.T) {
	t.Parallel()
	srv := sharedRedis(t)
	const ttl = 2 * time.Second
	mk := func() *Redis { return newTestRedis(t, srv.Addr, nil) }
	a, b, c := mk(), mk(), mk()
	ip, other := ipKey("203.0.113.9/32"), ipKey("203.0.113.10/32")
	mustAcquire(t, a, claim(ip, 2))
	mustAcquire(t, a, claim(ip, 2))
	mustAcquire(t, c, claim(other, 5))

	crash(a)
	// Dead, it renews no more: its lease ends at its score, on Redis's
	// clock, which is this machine's.
	score, err := rawRedis(t, srv.Addr).ZScore(context.Background(), leasesName(testPrefix), a.ID()).Result()
	if err != nil {
		t.Fatalf("lease of %s: %v", a.ID(), err)
	}
	ends := time.UnixMilli(int64(score))
	var freedAt time.Time
	waitUntil(t, "a's slots to come back", ttl+5*time.Second, func() bool {
		full, err := b.Acquire(context.Background(), []Claim{claim(ip, 2)})
		freedAt = time.Now()
		return err == nil && full == -1
	})
	if d := freedAt.Sub(ends); d < -20*time.Millisecond || d > 2*time.Second {
		t.Fatalf("slots freed %v after the lease ended; want from 0 to a tick or two", d)
	}
	if n, err := b.Count(context.Background(), other); err != nil || n != 1 {
		t.Fatalf("the live instance's count is %d, %v; want 1", n, err)
	}
}

// TestRedisResyncAfterFlush empties Redis under a running instance: its
// counts come back.
func TestRedisResyncAfterFlush(t *testing.T) {
	t.Parallel()
	srv := sharedRedis(t)
	r := newTestRedis(t, srv.Addr, nil)
	ip := ipKey("192.0.2.77/32")
	for range 3 {
		mustAcquire(t, r, claim(globalKey, 0), claim(ip, 5))
	}
	c := rawRedis(t, srv.Addr)
	if err := c.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "counts rebuilt", 10*time.Second, func() bool {
		return fieldSum(t, c, ip) == 3 && fieldSum(t, c, globalKey) == 3
	})
	wantFull(t, r, 1, claim(globalKey, 0), claim(ip, 3))
	release(t, r, globalKey, ip)
	mustAcquire(t, r, claim(globalKey, 0), claim(ip, 3))
}

// TestRedisAcquireErrorsAreNotLeaks checks that a timed-out Acquire,
// which Redis may still have carried out, is corrected by a re-sync.
func TestRedisAcquireErrorsAreNotLeaks(t *testing.T) {
	t.Parallel()
	srv := sharedRedis(t)
	r := newTestRedis(t, srv.Addr, nil)
	ip := ipKey("192.0.2.99/32")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the call fails whether or not Redis ran the script
	full, err := r.Acquire(ctx, []Claim{claim(ip, 1)})
	if err != nil || full != -1 {
		t.Fatalf("Acquire with a cancelled context: %d, %v; want a local decision", full, err)
	}
	release(t, r, ip)
	c := rawRedis(t, srv.Addr)
	waitUntil(t, "the store to be up and the count zero", 10*time.Second, func() bool {
		return r.Up() && fieldSum(t, c, ip) == 0
	})
	if errors.Is(err, ErrUnavailable) {
		t.Fatal("unexpected ErrUnavailable")
	}
}
