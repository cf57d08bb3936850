package store

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// clusterFleet is one subtest's fleet of stores on a real Redis Cluster
// that several subtests share. Its own key prefix (and so its own lease
// set) keeps it from counting the other fleets' connections.
type clusterFleet struct {
	t      *testing.T
	addrs  []string
	prefix string
	c      *redis.ClusterClient     // reads the counters wherever they live
	nodes  map[string]*redis.Client // one plain client per master, by address
	slots  []slotRange              // the slot map, as the first master tells it
}

// slotRange is a range of hash slots and the master that serves it.
type slotRange struct {
	start, end int
	addr       string
}

// newClusterFleet returns the fleet of the subtest t on the cluster whose
// masters are addrs.
func newClusterFleet(t *testing.T, addrs []string) *clusterFleet {
	t.Helper()
	f := &clusterFleet{
		t:      t,
		addrs:  addrs,
		prefix: "c." + t.Name() + ":",
		c: redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: addrs, Protocol: 2, DisableIdentity: true,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		}),
		nodes: make(map[string]*redis.Client),
	}
	t.Cleanup(func() { f.c.Close() })
	for _, addr := range addrs {
		f.nodes[addr] = rawRedis(t, addr)
	}
	shards, err := f.nodes[addrs[0]].ClusterShards(context.Background()).Result()
	if err != nil {
		t.Fatalf("CLUSTER SHARDS: %v", err)
	}
	for _, sh := range shards {
		for _, n := range sh.Nodes {
			if n.Role != "master" {
				continue
			}
			addr := net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10))
			for _, r := range sh.Slots {
				f.slots = append(f.slots, slotRange{int(r.Start), int(r.End), addr})
			}
		}
	}
	return f
}

// store returns a store of the fleet in cluster mode (Addrs), after
// mutate had its say.
func (f *clusterFleet) store(mutate func(*RedisOptions)) *Redis {
	f.t.Helper()
	return newTestRedis(f.t, "", func(o *RedisOptions) {
		o.Addrs, o.KeyPrefix = f.addrs, f.prefix
		if mutate != nil {
			mutate(o)
		}
	})
}

// handDriven returns a store of the fleet whose maintenance runs only
// when maintainNow says: its tick and lease are longer than any test.
func (f *clusterFleet) handDriven() *Redis {
	f.t.Helper()
	r, err := NewRedis(RedisOptions{
		Addrs:     f.addrs,
		KeyPrefix: f.prefix,
		LeaseTTL:  time.Minute,
		Timeout:   2 * time.Second,
		tick:      time.Hour,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { r.Close() })
	if !r.Up() {
		// NewRedis gave up after a second (a loaded machine): the loop
		// would not try again within the test, so try here.
		maintainNow(f.t, r)
	}
	return r
}

// name returns k's name in Redis.
func (f *clusterFleet) name(k Key) string { return keyName(f.prefix, k) }

// owner returns the address of the master that serves the slot of name.
func (f *clusterFleet) owner(name string) string {
	f.t.Helper()
	s := int(slot(name))
	for _, r := range f.slots {
		if r.start <= s && s <= r.end {
			return r.addr
		}
	}
	f.t.Fatalf("no master serves slot %d of %s", s, name)
	return ""
}

// spread returns n keys made by gen, each served by a different master.
func (f *clusterFleet) spread(n int, gen func(i int) Key) []Key {
	f.t.Helper()
	used := make(map[string]bool)
	var out []Key
	for i := 0; len(out) < n && i < 1000; i++ {
		k := gen(i)
		if o := f.owner(f.name(k)); !used[o] {
			used[o] = true
			out = append(out, k)
		}
	}
	if len(out) < n {
		f.t.Fatalf("found keys on %d masters, want %d", len(out), n)
	}
	return out
}

// elsewhere returns the first key made by gen that another master than
// k's serves.
func (f *clusterFleet) elsewhere(k Key, gen func(i int) Key) Key {
	f.t.Helper()
	for i := range 1000 {
		if o := gen(i); f.owner(f.name(o)) != f.owner(f.name(k)) {
			return o
		}
	}
	f.t.Fatalf("every key made is on the master of %s", k)
	return Key{}
}

// fields returns a counter's hash: count by instance id.
func (f *clusterFleet) fields(k Key) map[string]string {
	f.t.Helper()
	m, err := f.c.HGetAll(context.Background(), f.name(k)).Result()
	if err != nil {
		f.t.Fatalf("HGETALL %s: %v", f.name(k), err)
	}
	return m
}

// sum returns the sum of a counter's fields, live instances or not.
func (f *clusterFleet) sum(k Key) int {
	f.t.Helper()
	n := 0
	for id, v := range f.fields(k) {
		c, err := strconv.Atoi(v)
		if err != nil {
			f.t.Fatalf("field %s of %s is %q", id, k, v)
		}
		n += c
	}
	return n
}

// counters returns the fleet's counter names each master holds, asking
// the masters themselves; the lease set is left out.
func (f *clusterFleet) counters() map[string][]string {
	f.t.Helper()
	out := make(map[string][]string)
	for addr, c := range f.nodes {
		keys, err := c.Keys(context.Background(), f.prefix+"*").Result()
		if err != nil {
			f.t.Fatalf("KEYS on %s: %v", addr, err)
		}
		for _, k := range keys {
			if k != leasesName(f.prefix) {
				out[addr] = append(out[addr], k)
			}
		}
	}
	return out
}

// waitNoCounters waits until no master holds a counter of the fleet.
func (f *clusterFleet) waitNoCounters(timeout time.Duration) {
	f.t.Helper()
	var left map[string][]string
	deadline := time.Now().Add(timeout)
	for left = f.counters(); len(left) > 0; left = f.counters() {
		if time.Now().After(deadline) {
			f.t.Fatalf("counters left after %v: %v", timeout, left)
		}
		time.Sleep(10 * time.Millisecond) // polling a state, not a guess at timing
	}
}

// wantCount fails the test unless every store counts k at want and the
// counter in Redis sums to want.
func (f *clusterFleet) wantCount(k Key, want int, stores ...*Redis) {
	f.t.Helper()
	for _, s := range stores {
		if n, err := s.Count(context.Background(), k); err != nil || n != want {
			f.t.Fatalf("store %s counts %s at %d, %v; want %d", s.ID(), k, n, err, want)
		}
	}
	if n := f.sum(k); n != want {
		f.t.Fatalf("%s sums to %d in Redis, want %d: %v", f.name(k), n, want, f.fields(k))
	}
}

// seen reports whether every store counts k at want and the fleet total
// published in Redis is want: the state a tick or two settles into.
func (f *clusterFleet) seen(k Key, want int, stores ...*Redis) bool {
	f.t.Helper()
	for _, s := range stores {
		if n, err := s.Count(context.Background(), k); err != nil || n != want {
			return false
		}
	}
	return f.sum(k) == want
}

// maintainNow runs one round of each store's maintenance, in order, as
// its tick would. The stores must be handDriven: the round's state
// belongs to the maintenance loop, which must not run it too.
func maintainNow(t *testing.T, stores ...*Redis) {
	t.Helper()
	for _, s := range stores {
		ctx, cancel := context.WithTimeout(context.Background(), s.syncTimeout())
		s.maintain(ctx)
		cancel()
		if !s.Up() {
			t.Fatalf("store %s down after a maintenance round", s.ID())
		}
	}
}

// routeIPKey returns the route_ip counter of ip's prefix on route.
func routeIPKey(ip Key, route string) Key {
	return Key{Scope: ScopeRouteIP, Route: route, Prefix: ip.Prefix}
}

// genIP and genUser make distinct clients for spread and elsewhere.
func genIP(i int) Key   { return ipKey(fmt.Sprintf("198.18.%d.%d/32", i/250, i%250+1)) }
func genUser(i int) Key { return userKey(fmt.Sprintf("user-%d", i)) }

// del deletes names on the master at addr, one at a time: they may be in
// different slots.
func (f *clusterFleet) del(addr string, names ...string) {
	f.t.Helper()
	for _, n := range names {
		if err := f.nodes[addr].Del(context.Background(), n).Err(); err != nil {
			f.t.Fatalf("DEL %s on %s: %v", n, addr, err)
		}
	}
}
