package relay

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/wsguard/wsguard/admission"
	"github.com/wsguard/wsguard/store"
)

// fairConns builds running conns with leases from the given addresses
// (one /32 prefix each), started at the given unix ns, with lastData
// equal to start.
type fairConns struct {
	adm *admission.Admitter
}

func newFairConns(t testing.TB) *fairConns {
	t.Helper()
	return &fairConns{adm: admission.New(store.NewMemory(), admission.Policy{
		MaxConnections: 1 << 30, IPv4Prefix: 32, IPv6Prefix: 64,
	}, 16)}
}

func (f *fairConns) conn(t testing.TB, addr string, start int64) *conn {
	t.Helper()
	l, ref, err := f.adm.Acquire(context.Background(), admission.Request{Addr: netip.MustParseAddr(addr)})
	if err != nil || ref != nil {
		t.Fatalf("acquiring lease: %v %v", err, ref)
	}
	c := &conn{lease: l, start: start, fairPos: [2]int{-1, -1}}
	c.lastData.Store(start)
	c.running.Store(true)
	return c
}

func TestFairIndexVictim(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		heavy    int   // conns of 10.0.0.1, started at 1..heavy
		light    int   // conns of 10.0.0.2
		mine     int   // the newcomer's prefix count
		floor    int   // min_per_ip
		graceEnd int64 // conns started after it are safe
		idle     int   // index of the heavy conn made the longest idle, -1 none
		want     int   // index of the heavy conn expected, -1 for nil
	}{
		{name: "oldest data of heaviest", heavy: 5, light: 1, graceEnd: 100, idle: -1, want: 0},
		{name: "longest idle beats oldest start", heavy: 5, light: 1, graceEnd: 100, idle: 3, want: 3},
		{name: "floor keeps a prefix", heavy: 2, floor: 2, graceEnd: 100, idle: -1, want: -1},
		{name: "above floor", heavy: 3, floor: 2, graceEnd: 100, idle: -1, want: 0},
		{name: "heaviest not above newcomer", heavy: 2, mine: 2, graceEnd: 100, idle: -1, want: -1},
		{name: "grace protects all", heavy: 5, graceEnd: 0, idle: -1, want: -1},
		{name: "grace protects the young", heavy: 5, graceEnd: 3, idle: 4, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fc := newFairConns(t)
			f := newFairIndex(0)
			var heavy []*conn
			for i := range tt.heavy {
				c := fc.conn(t, "10.0.0.1", int64(i+1))
				c.lastData.Store(int64(100 + i))
				heavy = append(heavy, c)
				f.add(c)
			}
			for range tt.light {
				f.add(fc.conn(t, "10.0.0.2", 1))
			}
			if tt.idle >= 0 {
				heavy[tt.idle].lastData.Store(0)
			}
			got := f.victim(tt.mine, tt.floor, tt.graceEnd)
			var want *conn
			if tt.want >= 0 {
				want = heavy[tt.want]
			}
			if got != want {
				t.Fatalf("victim %p, want %p", got, want)
			}
		})
	}
}

func TestFairIndexCounts(t *testing.T) {
	t.Parallel()
	fc := newFairConns(t)
	f := newFairIndex(0)
	a1, a2, a3 := fc.conn(t, "10.0.0.1", 1), fc.conn(t, "10.0.0.1", 2), fc.conn(t, "10.0.0.1", 3)
	b1 := fc.conn(t, "10.0.0.2", 1)
	for _, c := range []*conn{a1, b1, a2, a3} {
		f.add(c)
	}
	a := netip.MustParsePrefix("10.0.0.1/32")
	if f.count(a) != 3 || f.prefixes() != 2 {
		t.Fatalf("count %d prefixes %d, want 3 and 2", f.count(a), f.prefixes())
	}

	// Removing is idempotent, and an empty prefix leaves no entry.
	f.remove(a2)
	f.remove(a2)
	f.remove(b1)
	if f.count(a) != 2 || f.prefixes() != 1 || len(f.byPrefix) != 1 {
		t.Fatalf("count %d prefixes %d entries %d, want 2, 1, 1", f.count(a), f.prefixes(), len(f.byPrefix))
	}
	if v := f.victim(0, 1, 10); v != a1 {
		t.Fatalf("victim %p, want a1 %p", v, a1)
	}
	f.remove(a1)
	f.remove(a3)
	if f.prefixes() != 0 || len(f.byPrefix) != 0 || f.victim(0, 0, 10) != nil {
		t.Fatal("index not empty after removing every conn")
	}
}

func TestFairIndexSkipsClosing(t *testing.T) {
	t.Parallel()
	fc := newFairConns(t)
	f := newFairIndex(0)
	closing, starting, ok := fc.conn(t, "10.0.0.1", 1), fc.conn(t, "10.0.0.1", 2), fc.conn(t, "10.0.0.1", 3)
	closing.closing.Store(true)
	starting.running.Store(false)
	for _, c := range []*conn{closing, starting, ok} {
		f.add(c)
	}
	if v := f.victim(0, 0, 10); v != ok {
		t.Fatalf("victim %p, want the running conn %p", v, ok)
	}
}

// BenchmarkFairIndexVictim measures the choice of a victim, and the
// index updates an eviction costs, with 100,000 open connections across
// 10,000 prefixes.
func BenchmarkFairIndexVictim(b *testing.B) {
	fc := newFairConns(b)
	f := newFairIndex(0)
	for i := range 100_000 {
		p := i % 10_000
		f.add(fc.conn(b, fmt.Sprintf("10.%d.%d.1", p/256, p%256), int64(i)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		v := f.victim(0, 1, 1<<62)
		if v == nil {
			b.Fatal("no victim")
		}
		f.remove(v)
		f.add(v)
	}
}

func TestPickVictim(t *testing.T) {
	t.Parallel()
	fc := newFairConns(t)
	s := &Server{fair: newFairIndex(0), anon: newFairIndex(1)}
	add := func(addr string, n int, user bool) []*conn {
		var out []*conn
		for range n {
			c := fc.conn(t, addr, 1)
			s.fair.add(c)
			if !user {
				s.anon.add(c)
			}
			out = append(out, c)
		}
		return out
	}
	// 11 slots: 10.0.0.1 holds 6 anonymous, 10.0.0.2 holds 5 of a user,
	// its fair share (11 / 2 prefixes).
	heavy := add("10.0.0.1", 6, false)
	add("10.0.0.2", 5, true)
	newcomer := netip.MustParsePrefix("10.0.0.3/32")
	light := netip.MustParsePrefix("10.0.0.2/32")

	tests := []struct {
		name       string
		prefix     netip.Prefix
		authed     bool
		floor      int
		graceEnd   int64
		wantReason string
	}{
		{name: "light newcomer evicts from the heaviest", prefix: newcomer, floor: 1, graceEnd: 10, wantReason: evictPressure},
		{name: "fair share reached", prefix: light, floor: 1, graceEnd: 10},
		{name: "floor", prefix: newcomer, floor: 6, graceEnd: 10},
		{name: "grace", prefix: newcomer, floor: 1, graceEnd: 0},
		{name: "authenticated evicts anonymous", prefix: light, authed: true, floor: 1, graceEnd: 10, wantReason: evictAnonymous},
	}
	for _, tt := range tests {
		c, reason := s.pickVictim(tt.prefix, tt.authed, 11, tt.floor, tt.graceEnd)
		if reason != tt.wantReason || (c != nil) != (reason != "") {
			t.Errorf("%s: victim %p reason %q, want reason %q", tt.name, c, reason, tt.wantReason)
		}
		if c != nil && c.lease.Prefix() != heavy[0].lease.Prefix() {
			t.Errorf("%s: victim from %s, want the heaviest prefix", tt.name, c.lease.Prefix())
		}
	}
}
