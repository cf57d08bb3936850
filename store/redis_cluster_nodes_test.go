package store

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// testClusterSlots checks where the counters of many clients live: each
// in the slot Redis computes for its name (CLUSTER KEYSLOT), on the
// master that serves the slot, a client's ip and route_ip counters in one
// slot, and the clients spread over every master, not pinned to one.
func testClusterSlots(t *testing.T, f *clusterFleet) {
	r := f.store(nil)
	const clients = 24
	var held []Key
	for i := range clients {
		ip := genIP(i)
		ks := []Key{ip, routeIPKey(ip, "/chat"), genUser(i)}
		mustAcquire(t, r, claim(globalKey, 0), claim(ks[0], 1), claim(ks[1], 1), claim(ks[2], 1))
		held = append(held, ks...)
	}

	// Which master holds each counter, as the masters themselves say.
	where := make(map[string]string)
	for addr, names := range f.counters() {
		for _, n := range names {
			if prev, ok := where[n]; ok {
				t.Errorf("%s is on %s and on %s", n, prev, addr)
			}
			where[n] = addr
		}
	}

	ctx := context.Background()
	ipSlots := make(map[int64]bool)
	perMaster := make(map[string]map[Scope]int)
	for _, k := range held {
		name := f.name(k)
		got, err := f.c.ClusterKeySlot(ctx, name).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %s: %v", name, err)
		}
		if want := int64(slot(name)); got != want {
			t.Errorf("CLUSTER KEYSLOT %s = %d, the store's layout says %d", name, got, want)
		}
		if owner := f.owner(name); where[name] != owner {
			t.Errorf("%s is on %q; its slot %d is served by %s", name, where[name], got, owner)
		}
		switch k.Scope {
		case ScopeIP:
			ipSlots[got] = true
		case ScopeRouteIP:
			if ipSlot := slot(f.name(Key{Scope: ScopeIP, Prefix: k.Prefix})); got != int64(ipSlot) {
				t.Errorf("%s is in slot %d, its client's ip counter in %d", name, got, ipSlot)
			}
		}
		if perMaster[where[name]] == nil {
			perMaster[where[name]] = make(map[Scope]int)
		}
		perMaster[where[name]][k.Scope]++
	}
	t.Logf("counters by master: %v; %d slots for %d clients", perMaster, len(ipSlots), clients)
	if len(ipSlots) < clients-2 {
		t.Errorf("%d clients share %d slots", clients, len(ipSlots))
	}
	for _, addr := range f.addrs {
		if m := perMaster[addr]; m[ScopeIP] == 0 || m[ScopeRouteIP] == 0 || m[ScopeUser] == 0 {
			t.Errorf("master %s holds %v: the fleet leans on the other masters", addr, m)
		}
	}

	for i := range clients {
		release(t, r, globalKey, held[3*i], held[3*i+1], held[3*i+2])
	}
	f.waitNoCounters(5 * time.Second)
}

// testClusterDeadInstance kills an instance without a goodbye while it
// holds counters on two masters and a published global count: they all
// stop counting once its lease ends, not before, and its fields go.
func testClusterDeadInstance(t *testing.T, f *clusterFleet) {
	const ttl = 2 * time.Second // newTestRedis's lease
	a, b, c := f.store(nil), f.store(nil), f.store(nil)
	ip := genIP(0)
	rip := routeIPKey(ip, "/chat")
	u := f.elsewhere(ip, genUser)
	other := genIP(1)
	claims := []Claim{claim(globalKey, 0), claim(ip, 2), claim(rip, 2), claim(u, 2)}
	mustAcquire(t, a, claims...)
	mustAcquire(t, a, claims...)
	mustAcquire(t, c, claim(other, 5))
	waitUntil(t, "a's global count published and read", 5*time.Second,
		func() bool { return f.seen(globalKey, 2, b, c) })

	crash(a)
	ctx := context.Background()
	score, err := f.c.ZScore(ctx, leasesName(f.prefix), a.ID()).Result()
	if err != nil {
		t.Fatalf("lease of %s: %v", a.ID(), err)
	}
	ends := time.UnixMilli(int64(score))
	var freedAt time.Time
	waitUntil(t, "a's slots to come back", ttl+5*time.Second, func() bool {
		full, err := b.Acquire(ctx, claims[1:])
		freedAt = time.Now()
		return err == nil && full == -1
	})
	if d := freedAt.Sub(ends); d < -20*time.Millisecond || d > 2*time.Second {
		t.Fatalf("slots freed %v after the lease ended; want from 0 to a tick or two", d)
	}

	// b's scripts dropped a's fields on both masters; its re-sync drops
	// a's global count.
	for _, k := range []Key{ip, rip, u} {
		if fs := f.fields(k); len(fs) != 1 || fs[b.ID()] != "1" {
			t.Errorf("%s holds %v; want only b's 1", f.name(k), fs)
		}
	}
	waitUntil(t, "a's global count gone", 5*time.Second,
		func() bool { return f.seen(globalKey, 0, b, c) })
	f.wantCount(other, 1, b, c)
	release(t, b, ip, rip, u)
	release(t, c, other)
	f.waitNoCounters(5 * time.Second)
}

// testClusterResync takes data away from the masters under two running
// instances: first only the master of the lease set loses this fleet's
// keys (a master restarted without persistence), then every master loses
// its keys and its scripts. Each time the counters end exact on every
// master, under the instance's new id only; then releases, some of them
// failed and left to the re-sync, bring every counter to zero.
func testClusterResync(t *testing.T, f *clusterFleet) {
	a, b := f.store(nil), f.store(nil)
	ips, users := f.spread(3, genIP), f.spread(3, genUser)
	var claims [][]Claim
	var keys []Key
	for i := range ips {
		cs := []Claim{claim(globalKey, 0), claim(ips[i], 5),
			claim(routeIPKey(ips[i], "/chat"), 5), claim(users[i], 5)}
		mustAcquire(t, a, cs...)
		mustAcquire(t, a, cs...)
		claims = append(claims, cs)
		keys = append(keys, claimKeys(cs[1:], nil)...)
	}
	global := 2 * len(ips)
	waitUntil(t, "a's global count published", 5*time.Second,
		func() bool { return f.seen(globalKey, global, a, b) })

	// inexact says how the counters differ from a's true counts under
	// a's current id alone, as both instances should count them; "" if
	// they do not.
	inexact := func(old string) string {
		switch {
		case !a.Up() || !b.Up():
			return "a store is down"
		case a.ID() == old:
			return "a still counts under its old id " + old
		}
		for _, k := range keys {
			if fs := f.fields(k); len(fs) != 1 || fs[a.ID()] != "2" {
				return fmt.Sprintf("%s holds %v; want only %s: 2", f.name(k), fs, a.ID())
			}
		}
		if fs := f.fields(globalKey); len(fs) != 1 || fs[a.ID()] != strconv.Itoa(global) {
			return fmt.Sprintf("the global counter holds %v; want only %s: %d", fs, a.ID(), global)
		}
		if !f.seen(globalKey, global, a, b) {
			return "the instances count the global counter wrong"
		}
		return ""
	}
	waitExact := func(what, old string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for why := inexact(old); why != ""; why = inexact(old) {
			if time.Now().After(deadline) {
				t.Fatalf("counters not exact within 10s after %s: %s", what, why)
			}
			time.Sleep(10 * time.Millisecond) // polling a state, not a guess at timing
		}
	}

	ctx := context.Background()
	leases := leasesName(f.prefix)
	old := a.ID()
	lm := f.owner(leases)
	f.del(lm, append(f.counters()[lm], leases)...)
	waitExact("the lease master lost its keys", old)
	for _, k := range keys {
		f.wantCount(k, 2, a, b)
	}

	old = a.ID()
	for addr, names := range f.counters() {
		f.del(addr, names...)
	}
	f.del(lm, leases)
	for addr, c := range f.nodes {
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatalf("SCRIPT FLUSH on %s: %v", addr, err)
		}
	}
	waitExact("every master lost its keys and scripts", old)

	// Half the releases fail (a cancelled context) and are left to the
	// re-sync; the other half go through.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, cs := range claims {
		if err := a.Release(cancelled, claimKeys(cs, nil)); err != nil {
			t.Fatalf("Release with a cancelled context: %v", err)
		}
		release(t, a, claimKeys(cs, nil)...)
	}
	if a.Len() != 0 {
		t.Fatalf("a holds %d counters after releasing all", a.Len())
	}
	f.waitNoCounters(10 * time.Second)
	waitUntil(t, "both instances to count zero", 5*time.Second, func() bool {
		for _, k := range append(keys, globalKey) {
			if !f.seen(k, 0, a, b) {
				return false
			}
		}
		return true
	})
}
