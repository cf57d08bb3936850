package admission

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsguard/wsguard/store"
)

// t0 is the fake clock's start; any fixed time will do.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a clock that moves only when a test says so.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// newTestAdmitter returns an Admitter on a fresh memory store whose
// clock stands still at t0 until the test moves it.
func newTestAdmitter(p Policy, tableSize int) (*Admitter, *store.Memory, *fakeClock) {
	mem := store.NewMemory()
	a := New(mem, p, tableSize)
	clk := &fakeClock{t: t0}
	a.now = clk.now
	return a, mem, clk
}

// near reports whether two durations differ by at most a microsecond,
// which absorbs the rounding of the bucket's floating-point tokens.
func near(a, b time.Duration) bool {
	d := a - b
	return d >= -time.Microsecond && d <= time.Microsecond
}

func TestBucketTakeAt(t *testing.T) {
	t.Parallel()
	type step struct {
		at   time.Duration // since the bucket was filled
		ok   bool
		wait time.Duration // when !ok
	}
	tests := []struct {
		name  string
		rate  float64
		burst int
		steps []step
	}{
		{"burst then refill", 2, 3, []step{
			{0, true, 0}, {0, true, 0}, {0, true, 0},
			{0, false, 500 * time.Millisecond},
			{250 * time.Millisecond, false, 250 * time.Millisecond}, // half a token
			{500 * time.Millisecond, true, 0},
			{500 * time.Millisecond, false, 500 * time.Millisecond},
		}},
		{"refill stops at burst", 2, 3, []step{
			{0, true, 0}, {0, true, 0}, {0, true, 0},
			{time.Hour, true, 0}, {time.Hour, true, 0}, {time.Hour, true, 0},
			{time.Hour, false, 500 * time.Millisecond},
		}},
		{"slow rate", 0.5, 1, []step{
			{0, true, 0},
			{0, false, 2 * time.Second},
			{1500 * time.Millisecond, false, 500 * time.Millisecond},
			{2 * time.Second, true, 0},
		}},
		{"fractional waits", 4, 1, []step{
			{0, true, 0},
			{100 * time.Millisecond, false, 150 * time.Millisecond},
			{200 * time.Millisecond, false, 50 * time.Millisecond},
			{250 * time.Millisecond, true, 0},
		}},
		{"refusals cost nothing", 1, 1, []step{
			{0, true, 0},
			{100 * time.Millisecond, false, 900 * time.Millisecond},
			{200 * time.Millisecond, false, 800 * time.Millisecond},
			{900 * time.Millisecond, false, 100 * time.Millisecond},
			{time.Second, true, 0},
		}},
		{"clock stepping back refills nothing", 1, 1, []step{
			{time.Second, true, 0},
			{500 * time.Millisecond, false, time.Second},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b Bucket
			b.Fill(tt.burst, t0)
			for i, s := range tt.steps {
				ok, wait := b.TakeAt(t0.Add(s.at), tt.rate, tt.burst)
				if ok != s.ok || !near(wait, s.wait) {
					t.Fatalf("step %d at +%v: TakeAt = %v, %v; want %v, %v", i, s.at, ok, wait, s.ok, s.wait)
				}
			}
		})
	}
}

func TestRateTableEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	const size = 3
	// A token a minute and a burst of one: with the clock standing
	// still, a remembered prefix is refused, a forgotten one admitted.
	a, mem, _ := newTestAdmitter(Policy{
		MaxConnections: 1000,
		IPv4Prefix:     32,
		IPv6Prefix:     64,
		HandshakeRate:  1.0 / 60,
		HandshakeBurst: 1,
	}, size)
	ctx := context.Background()
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}) }
	admit := func(i int) bool {
		t.Helper()
		l, ref, err := a.Admit(ctx, addr(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		if ref != nil {
			if ref.Limit != "handshake_rate" || ref.Status != http.StatusTooManyRequests {
				t.Fatalf("refusal %+v, want 429 handshake_rate", ref)
			}
			return false
		}
		a.Release(ctx, l)
		return true
	}

	// Ten prefixes through a table of three: it never grows past three.
	for i := range 10 {
		if !admit(i) {
			t.Fatalf("first handshake of prefix %d refused", i)
		}
		if n := a.RateTableLen(); n != min(i+1, size) {
			t.Fatalf("after %d prefixes the table holds %d, want %d", i+1, n, min(i+1, size))
		}
	}

	// Recency, not age, decides: prefix 7 is the oldest entry, but a
	// refusal refreshes it, so 8 goes first when 20 arrives.
	steps := []struct {
		prefix int
		admit  bool
	}{
		{7, false}, // table 7 9 8 (most recent first)
		{20, true}, // 8 evicted: 20 7 9
		{7, false}, // still remembered: 7 20 9
		{8, true},  // forgotten, so full again: 8 7 20
		{21, true}, // 20 evicted: 21 8 7
		{22, true}, // 7 evicted: 22 21 8
		{7, true},  // forgotten
	}
	for i, s := range steps {
		if got := admit(s.prefix); got != s.admit {
			t.Fatalf("step %d: prefix %d admitted = %v, want %v", i, s.prefix, got, s.admit)
		}
		if n := a.RateTableLen(); n != size {
			t.Fatalf("step %d: table holds %d, want %d", i, n, size)
		}
	}
	if n := mem.Len(); n != 0 {
		t.Fatalf("%d counters left after every lease was released", n)
	}
}

func TestRateRefusalRetryAfter(t *testing.T) {
	t.Parallel()
	a, _, clk := newTestAdmitter(Policy{
		MaxConnections: 10, IPv4Prefix: 32, IPv6Prefix: 64,
		HandshakeRate: 2, HandshakeBurst: 2,
	}, 10)
	ctx := context.Background()
	client := netip.MustParseAddr("192.0.2.1")
	for range 2 {
		if _, ref, _ := a.Admit(ctx, client, nil); ref != nil {
			t.Fatalf("within the burst: %+v", ref)
		}
	}
	clk.set(t0.Add(100 * time.Millisecond))
	_, ref, _ := a.Admit(ctx, client, nil)
	if ref == nil || ref.Limit != "handshake_rate" || !near(ref.RetryAfter, 400*time.Millisecond) {
		t.Fatalf("third handshake: %+v, want handshake_rate with RetryAfter 400ms", ref)
	}
	clk.set(t0.Add(500 * time.Millisecond))
	if _, ref, _ := a.Admit(ctx, client, nil); ref != nil {
		t.Fatalf("after a refill: %+v", ref)
	}
}

func TestAdmitIsAtomic(t *testing.T) {
	t.Parallel()
	a1 := netip.MustParseAddr("192.0.2.1")
	a2 := netip.MustParseAddr("192.0.2.2")
	ip := func(a netip.Addr) store.Key {
		return store.Key{Scope: store.ScopeIP, Prefix: netip.PrefixFrom(a, 32)}
	}
	global := store.Key{Scope: store.ScopeGlobal}
	route := func(r *Route) store.Key { return store.Key{Scope: store.ScopeRoute, Route: r.Name} }

	tests := []struct {
		name   string
		policy Policy
		route  *Route
		first  netip.Addr // admitted
		second netip.Addr // refused
		limit  string
		status int
		counts map[store.Key]int // after the refusal: only the first's claims
	}{
		{
			name:   "per_ip full leaves global alone",
			policy: Policy{MaxConnections: 10, PerIP: 1},
			first:  a1, second: a1,
			limit: "per_ip", status: http.StatusTooManyRequests,
			counts: map[store.Key]int{global: 1, ip(a1): 1},
		},
		{
			name:   "max_connections full leaves the prefix alone",
			policy: Policy{MaxConnections: 1, PerIP: 5},
			first:  a1, second: a2,
			limit: "max_connections", status: http.StatusServiceUnavailable,
			counts: map[store.Key]int{global: 1, ip(a1): 1, ip(a2): 0},
		},
		{
			name:   "route.max_connections",
			policy: Policy{MaxConnections: 10},
			route:  &Route{Name: "/chat", MaxConnections: 1},
			first:  a1, second: a2,
			limit: "route.max_connections", status: http.StatusServiceUnavailable,
			counts: map[store.Key]int{global: 1, ip(a2): 0, route(&Route{Name: "/chat"}): 1},
		},
		{
			name:   "route.per_ip",
			policy: Policy{MaxConnections: 10},
			route:  &Route{Name: "/chat", PerIP: 1},
			first:  a1, second: a1,
			limit: "route.per_ip", status: http.StatusTooManyRequests,
			counts: map[store.Key]int{
				global: 1, ip(a1): 1,
				{Scope: store.ScopeRouteIP, Route: "/chat", Prefix: netip.PrefixFrom(a1, 32)}: 1,
			},
		},
		{
			name:   "route.handshake_rate takes no slot",
			policy: Policy{MaxConnections: 10},
			route:  &Route{Name: "/chat", HandshakeRate: 1, HandshakeBurst: 1},
			first:  a1, second: a1,
			limit: "route.handshake_rate", status: http.StatusTooManyRequests,
			counts: map[store.Key]int{global: 1, ip(a1): 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.policy.IPv4Prefix, tt.policy.IPv6Prefix = 32, 64
			tt.policy.RetryAfter = 7 * time.Second
			a, mem, _ := newTestAdmitter(tt.policy, 100)
			ctx := context.Background()

			lease, ref, err := a.Admit(ctx, tt.first, tt.route)
			if err != nil || ref != nil {
				t.Fatalf("first handshake: %+v, %v", ref, err)
			}
			refused, ref, err := a.Admit(ctx, tt.second, tt.route)
			if err != nil || ref == nil {
				t.Fatalf("second handshake admitted (%v), want %s", err, tt.limit)
			}
			if ref.Limit != tt.limit || ref.Status != tt.status || ref.RetryAfter <= 0 {
				t.Fatalf("refusal %+v, want %s with status %d", ref, tt.limit, tt.status)
			}
			if refused != (Lease{}) {
				t.Fatalf("a refusal came with a lease: %+v", refused)
			}
			for k, want := range tt.counts {
				if got, _ := mem.Count(ctx, k); got != want {
					t.Errorf("counter %v = %d, want %d", k, got, want)
				}
			}

			if err := a.Release(ctx, lease); err != nil {
				t.Fatal(err)
			}
			if n := mem.Len(); n != 0 {
				t.Fatalf("%d counters left after the release", n)
			}
		})
	}
}

func TestRefusalError(t *testing.T) {
	t.Parallel()
	var err error = &Refusal{Limit: "per_ip", Status: http.StatusTooManyRequests}
	if got := err.Error(); got != "per_ip limit reached" {
		t.Fatalf("Error() = %q", got)
	}
}

// countingStore is a store.Store that counts the calls it gets.
type countingStore struct {
	*store.Memory
	acquires, releases atomic.Int64
}

func (s *countingStore) Acquire(ctx context.Context, claims []store.Claim) (int, error) {
	s.acquires.Add(1)
	return s.Memory.Acquire(ctx, claims)
}

func (s *countingStore) Release(ctx context.Context, keys []store.Key) error {
	s.releases.Add(1)
	return s.Memory.Release(ctx, keys)
}

func TestReleaseZeroLease(t *testing.T) {
	t.Parallel()
	s := &countingStore{Memory: store.NewMemory()}
	a := New(s, Policy{MaxConnections: 10, PerIP: 1, IPv4Prefix: 32, IPv6Prefix: 64}, 10)
	ctx := context.Background()
	client := netip.MustParseAddr("192.0.2.1")

	lease, ref, err := a.Admit(ctx, client, nil)
	if err != nil || ref != nil {
		t.Fatalf("admit: %+v, %v", ref, err)
	}
	// Releasing nothing touches nothing: the real lease keeps its slot.
	if err := a.Release(ctx, Lease{}); err != nil {
		t.Fatalf("releasing the zero Lease: %v", err)
	}
	if n := s.releases.Load(); n != 0 {
		t.Fatalf("the zero Lease called the store %d times", n)
	}
	if _, ref, _ := a.Admit(ctx, client, nil); ref == nil || ref.Limit != "per_ip" {
		t.Fatalf("the slot was given back by a zero release: %+v", ref)
	}

	// A refusal's lease is the zero Lease, so releasing it is safe too.
	refused, ref, _ := a.Admit(ctx, client, nil)
	if ref == nil || refused != (Lease{}) {
		t.Fatalf("expected a refusal without a lease, got %+v %+v", ref, refused)
	}
	a.Release(ctx, refused)
	if n := s.releases.Load(); n != 0 {
		t.Fatalf("a refusal's lease called the store %d times", n)
	}
	a.Release(ctx, lease)
	if n := s.Len(); n != 0 {
		t.Fatalf("%d counters left", n)
	}
}

func TestConcurrentAdmitRelease(t *testing.T) {
	t.Parallel()
	const (
		maxConns   = 3
		goroutines = 8
		rounds     = 200
	)
	a, mem, _ := newTestAdmitter(Policy{MaxConnections: maxConns, IPv4Prefix: 32, IPv6Prefix: 64}, 100)
	ctx := context.Background()

	// inUse counts leases held; it rises after Admit and falls before
	// Release, so it never exceeds what the store has handed out.
	var inUse, high, refusals atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			client := netip.AddrFrom4([4]byte{10, 1, 0, byte(g)})
			var held []Lease
			for range rounds {
				// Take slots until refused, then give them all back.
				for {
					l, ref, err := a.Admit(ctx, client, nil)
					if err != nil {
						t.Error(err)
						return
					}
					if ref != nil {
						if ref.Limit != "max_connections" {
							t.Errorf("refused by %s", ref.Limit)
						}
						refusals.Add(1)
						break
					}
					n := inUse.Add(1)
					for h := high.Load(); n > h && !high.CompareAndSwap(h, n); h = high.Load() {
					}
					held = append(held, l)
				}
				for _, l := range held {
					inUse.Add(-1)
					if err := a.Release(ctx, l); err != nil {
						t.Error(err)
					}
				}
				held = held[:0]
			}
		})
	}
	wg.Wait()

	if h := high.Load(); h > maxConns || h < 1 {
		t.Fatalf("high-water mark %d, want 1 to %d", h, maxConns)
	}
	if n := refusals.Load(); n < goroutines*rounds {
		t.Fatalf("%d refusals, want at least one per round", n)
	}
	if n := mem.Len(); n != 0 {
		t.Fatalf("%d counters left after every release", n)
	}
}

func BenchmarkAdmitRelease(b *testing.B) {
	ctx := context.Background()
	routes := []struct {
		name  string
		route *Route
	}{
		{"instance limits", nil},
		{"with route limits", &Route{Name: "/chat", MaxConnections: 1 << 20, PerIP: 100}},
	}
	for _, r := range routes {
		b.Run(r.name, func(b *testing.B) {
			a := New(store.NewMemory(), Policy{
				MaxConnections: 1 << 20,
				PerIP:          100,
				IPv4Prefix:     32,
				IPv6Prefix:     64,
				HandshakeRate:  1e9, // on, but never the limit
				HandshakeBurst: 1 << 20,
				RetryAfter:     5 * time.Second,
			}, 1024)
			client := netip.MustParseAddr("198.51.100.7")
			b.ReportAllocs()
			for b.Loop() {
				l, ref, err := a.Admit(ctx, client, r.route)
				if err != nil || ref != nil {
					b.Fatalf("admit: %+v, %v", ref, err)
				}
				a.Release(ctx, l)
			}
		})
	}
}

func ExampleAdmitter() {
	a := New(store.NewMemory(), Policy{
		MaxConnections: 1000,
		PerIP:          1,
		IPv4Prefix:     32,
		IPv6Prefix:     64,
		RetryAfter:     5 * time.Second,
	}, 10000)
	ctx := context.Background()
	client := netip.MustParseAddr("203.0.113.7")

	lease, ref, err := a.Admit(ctx, client, nil)
	fmt.Println("first:", ref, err, lease.Prefix())

	_, ref, _ = a.Admit(ctx, client, nil)
	fmt.Println("second:", ref.Status, ref, "retry after", ref.RetryAfter)

	// The connection ends: its slot returns.
	a.Release(ctx, lease)
	lease, ref, _ = a.Admit(ctx, client, nil)
	fmt.Println("after release:", ref)
	a.Release(ctx, lease)
	// Output:
	// first: <nil> <nil> 203.0.113.7/32
	// second: 429 per_ip limit reached retry after 5s
	// after release: <nil>
}

func TestRouteHandshakeSparesTheInstanceRate(t *testing.T) {
	t.Parallel()
	a, _, _ := newTestAdmitter(Policy{
		MaxConnections: 10, IPv4Prefix: 32, IPv6Prefix: 64,
		HandshakeRate: 1, HandshakeBurst: 1,
	}, 10)
	client := netip.MustParseAddr("192.0.2.1")
	route := &Route{Name: "/chat", HandshakeRate: 1, HandshakeBurst: 2}

	// The instance token, taken before a TLS handshake.
	if ref := a.Handshake(client, nil); ref != nil {
		t.Fatalf("first token: %+v", ref)
	}
	// Then the route's alone, twice: the instance burst of one is not
	// charged again.
	for i := range 2 {
		if ref := a.RouteHandshake(client, route); ref != nil {
			t.Fatalf("route token %d: %+v", i, ref)
		}
	}
	if ref := a.RouteHandshake(client, route); ref == nil || ref.Limit != "route.handshake_rate" {
		t.Fatalf("third route token: %+v, want route.handshake_rate", ref)
	}
	if ref := a.RouteHandshake(client, nil); ref != nil {
		t.Fatalf("no route, no rate: %+v", ref)
	}
	if ref := a.Handshake(client, nil); ref == nil || ref.Limit != "handshake_rate" {
		t.Fatalf("second instance token: %+v, want handshake_rate", ref)
	}
}
